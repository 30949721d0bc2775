"""Calls on one repository with its installation token: issues, comments, pulls, checks."""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import GitHubError
from .calls import EventHooks, call, status_of, token_client
from .tokens import AccessToken
from .writes import ONCE, create_once, since


class RepoClient:
    """Calls on one repository with its installation token."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: AccessToken,
        *,
        event_hooks: EventHooks | None = None,
        transport: httpx.AsyncBaseTransport | None = None,  # the owner's connection pool
    ) -> None:
        self.repository = repository
        self.owner, self.name = repository.split("/", 1)
        self.token = token
        self._gh = token_client(api_url, token.token, transport=transport, event_hooks=event_hooks)
        self._rest: Any = self._gh.rest
        # creating writes go out without githubkit's retries: `writes.create_once` retries them
        self._gh_once = token_client(
            api_url, token.token, transport=transport, event_hooks=event_hooks, retry=ONCE
        )
        self._once: Any = self._gh_once.rest  # the namespace holds its client weakly

    async def user_id(self, login: str) -> int:
        response = await call(lambda: self._rest.users.async_get_by_username(login))
        return int(response.parsed_data.id)

    async def permission(self, username: str) -> str:
        """The user's role on the repository: admin, maintain, write, triage, read or none."""
        try:
            response = await call(
                lambda: self._rest.repos.async_get_collaborator_permission_level(
                    self.owner, self.name, username
                )
            )
        except GitHubError as exc:
            if status_of(exc) == 404:
                return "none"
            raise
        data = response.json()
        role = data.get("role_name") or data.get("permission") or "none"
        return str(role)

    async def default_branch(self) -> str:
        response = await call(lambda: self._rest.repos.async_get(self.owner, self.name))
        return str(response.parsed_data.default_branch)

    async def branch_sha(self, branch: str) -> str | None:
        try:
            response = await call(
                lambda: self._rest.git.async_get_ref(self.owner, self.name, f"heads/{branch}")
            )
        except GitHubError as exc:
            if status_of(exc) == 404:
                return None
            raise
        return str(response.parsed_data.object_.sha)

    async def issue(self, number: int) -> dict[str, Any]:
        response = await call(lambda: self._rest.issues.async_get(self.owner, self.name, number))
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def comments(self, number: int, limit: int = 300) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while len(found) < limit:
            response = await call(
                lambda page=page: self._rest.issues.async_list_comments(  # type: ignore[misc]
                    self.owner, self.name, number, per_page=100, page=page
                )
            )
            batch = response.json()
            if not isinstance(batch, list) or not batch:
                break
            found.extend(c for c in batch if isinstance(c, dict))
            if len(batch) < 100:
                break
            page += 1
        return found[:limit]

    async def react(self, number: int, content: str = "eyes") -> None:
        await call(
            lambda: self._rest.reactions.async_create_for_issue(
                self.owner, self.name, number, data={"content": content}
            )
        )

    async def comment(self, number: int, body: str) -> int:
        after = since()

        async def make() -> int:
            response = await call(
                lambda: self._once.issues.async_create_comment(
                    self.owner, self.name, number, data={"body": body}
                )
            )
            return int(response.parsed_data.id)

        async def find() -> int | None:
            response = await call(
                lambda: self._rest.issues.async_list_comments(
                    self.owner, self.name, number, since=after, per_page=100
                )
            )
            return _same_body(response.json(), body)

        return await create_once(make, find, "comment")

    async def edit_comment(self, comment_id: int, body: str) -> None:
        await call(
            lambda: self._rest.issues.async_update_comment(
                self.owner, self.name, comment_id, data={"body": body}
            )
        )

    async def react_comment(self, comment_id: int, content: str = "eyes") -> None:
        await call(
            lambda: self._rest.reactions.async_create_for_issue_comment(
                self.owner, self.name, comment_id, data={"content": content}
            )
        )

    async def react_review_comment(self, comment_id: int, content: str = "eyes") -> None:
        await call(
            lambda: self._rest.reactions.async_create_for_pull_request_review_comment(
                self.owner, self.name, comment_id, data={"content": content}
            )
        )

    async def reply_review(self, number: int, comment_id: int, body: str) -> int:
        """A reply in the review thread of `comment_id` on pull request `number`."""
        after = since()

        async def make() -> int:
            response = await call(
                lambda: self._once.pulls.async_create_reply_for_review_comment(
                    self.owner, self.name, number, comment_id, data={"body": body}
                )
            )
            return int(response.parsed_data.id)

        async def find() -> int | None:
            response = await call(
                lambda: self._rest.pulls.async_list_review_comments(
                    self.owner, self.name, number, since=after, per_page=100
                )
            )
            return _same_body(response.json(), body)

        return await create_once(make, find, "review reply")

    async def edit_review_comment(self, comment_id: int, body: str) -> None:
        await call(
            lambda: self._rest.pulls.async_update_review_comment(
                self.owner, self.name, comment_id, data={"body": body}
            )
        )

    async def pull(self, number: int) -> dict[str, Any]:
        """The pull request as raw JSON (head/base refs, repos and shas, html_url)."""
        response = await call(lambda: self._rest.pulls.async_get(self.owner, self.name, number))
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def create_check_run(self, data: dict[str, Any]) -> int:
        async def make() -> int:
            response = await call(
                lambda: self._once.checks.async_create(self.owner, self.name, data=data)
            )
            return int(response.parsed_data.id)

        async def find() -> int | None:
            response = await call(
                lambda: self._rest.checks.async_list_for_ref(
                    self.owner, self.name, data["head_sha"], check_name=data["name"],
                    filter_="all", per_page=100,
                )
            )  # fmt: skip
            runs = response.json().get("check_runs") or []
            for run in runs:
                if run.get("external_id") == data.get("external_id"):
                    return int(run["id"])
            return None

        return await create_once(make, find, "check run")

    async def update_check_run(self, check_run_id: int, data: dict[str, Any]) -> None:
        await call(
            lambda: self._rest.checks.async_update(self.owner, self.name, check_run_id, data=data)
        )

    async def find_pull(self, branch: str) -> tuple[int, str] | None:
        response = await call(
            lambda: self._rest.pulls.async_list(
                self.owner, self.name, state="open", head=f"{self.owner}:{branch}"
            )
        )
        for pull in response.parsed_data:
            if pull.head.ref == branch:
                return pull.number, pull.html_url
        return None

    async def create_pull(
        self, *, title: str, head: str, base: str, body: str, draft: bool = False
    ) -> tuple[int, str]:
        data = {"title": title, "head": head, "base": base, "body": body, "draft": draft}

        async def make() -> tuple[int, str]:
            response = await call(
                lambda: self._once.pulls.async_create(self.owner, self.name, data=data)
            )
            pull = response.parsed_data
            return pull.number, pull.html_url

        return await create_once(make, lambda: self.find_pull(head), "pull request")

    async def add_labels(self, number: int, labels: list[str]) -> None:
        await call(
            lambda: self._rest.issues.async_add_labels(
                self.owner, self.name, number, data={"labels": labels}
            )
        )

    async def request_reviewers(self, number: int, *, users: list[str], teams: list[str]) -> None:
        data: dict[str, list[str]] = {"reviewers": users}
        if teams:
            data["team_reviewers"] = teams
        await call(
            lambda: self._rest.pulls.async_request_reviewers(
                self.owner, self.name, number, data=data
            )
        )

    async def update_pull(self, number: int, *, body: str) -> None:
        await call(
            lambda: self._rest.pulls.async_update(
                self.owner, self.name, number, data={"body": body}
            )
        )


def _same_body(comments: Any, body: str) -> int | None:
    """The newest comment in a listing whose body is exactly `body`."""
    if not isinstance(comments, list):
        return None
    found = [c for c in comments if isinstance(c, dict) and c.get("body") == body]
    return int(found[-1]["id"]) if found else None
