"""What GitHub tells of the bot's pull request after a push: checks, logs, reviews.

The check suites of a commit, the failing check runs of a suite with their
output and annotations, a GitHub Actions job's log, a review and its
comments, and the repository's settings file at a commit — each read with
the run's installation token, except the job log: that needs `actions: read`,
which no run needs otherwise, so a separate short-lived token asks for it
(`GitHubApp.job_log`). GitHub answers a log request with a redirect to a
signed storage URL; the log is fetched from there WITHOUT the token (the
storage host must never see it), and only its tail is kept.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

import httpx

from ..errors import GitHubError
from ..policy.followup import FAILED, Suite
from ..runner.feedback import Annotation, FailedCheck, Review, ReviewComment
from .calls import TIMEOUT, EventHooks, call, status_of, token_client
from .tokens import AccessToken

LOG_PERMISSIONS: dict[str, str] = {"actions": "read", "metadata": "read"}
MAX_LOG_DOWNLOAD = 64 * 1024 * 1024  # bytes read of a log at most (its tail is what counts)
KEEP_LOG_BYTES = 256 * 1024  # of the end of the log, kept while reading
ACTIONS_APP = "github-actions"


class NoActionsAccess(GitHubError):
    """The App may not read GitHub Actions logs (no `actions: read`)."""


class FeedbackReader:
    """Reads one repository's checks, reviews and settings file with the run's token."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: AccessToken,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: EventHooks | None = None,
    ) -> None:
        self.owner, self.name = repository.split("/", 1)
        client = token_client(api_url, token.token, transport=transport, event_hooks=event_hooks)
        self._client = client  # the namespace below holds its client weakly
        self._rest: Any = client.rest

    async def suites(self, sha: str) -> list[Suite]:
        """The check suites of commit `sha`, every App's."""
        response = await call(
            lambda: self._rest.checks.async_list_suites_for_ref(
                self.owner, self.name, sha, per_page=100
            )
        )
        found = []
        for item in response.json().get("check_suites") or []:
            app = item.get("app") or {}
            found.append(
                Suite(
                    id=int(item["id"]),
                    app_id=app.get("id"),
                    app=str(app.get("slug") or ""),
                    status=str(item.get("status") or ""),
                    conclusion=str(item.get("conclusion") or ""),
                    client_id=str(app.get("client_id") or ""),
                )
            )
        return found

    async def failed_runs(self, suite: Suite) -> list[dict[str, Any]]:
        """The latest check runs of a suite that failed, as GitHub gives them."""
        response = await call(
            lambda: self._rest.checks.async_list_for_suite(
                self.owner, self.name, suite.id, filter_="latest", per_page=100
            )
        )
        runs = response.json().get("check_runs") or []
        return [r for r in runs if r.get("conclusion") in FAILED]

    async def annotations(self, run_id: int, limit: int = 50) -> list[Annotation]:
        response = await call(
            lambda: self._rest.checks.async_list_annotations(
                self.owner, self.name, run_id, per_page=min(limit, 100)
            )
        )
        return [
            Annotation(
                path=str(a.get("path") or ""),
                start_line=a.get("start_line"),
                end_line=a.get("end_line"),
                level=str(a.get("annotation_level") or "failure"),
                message=str(a.get("message") or ""),
                title=str(a.get("title") or ""),
            )
            for a in response.json()[:limit]
        ]

    async def review(self, number: int, review_id: int) -> Review:
        """A review, with its comments (file, line, diff hunk), as GitHub has them now."""
        got = await call(
            lambda: self._rest.pulls.async_get_review(self.owner, self.name, number, review_id)
        )
        listed = await call(
            lambda: self._rest.pulls.async_list_comments_for_review(
                self.owner, self.name, number, review_id, per_page=100
            )
        )
        data = got.json()
        comments = [
            ReviewComment(
                id=int(c["id"]),
                path=str(c.get("path") or ""),
                line=c.get("line"),
                start_line=c.get("start_line"),
                diff_hunk=str(c.get("diff_hunk") or ""),
                body=str(c.get("body") or ""),
            )
            for c in listed.json()
        ]
        author = str((data.get("user") or {}).get("login") or "")
        return Review(int(data["id"]), author, str(data.get("body") or ""), tuple(comments))

    async def file(self, path: str, ref: str, limit: int) -> bytes | None:
        """A file's bytes at commit `ref`; None when there is none (or it is too large)."""
        try:
            response = await call(
                lambda: self._rest.repos.async_get_content(self.owner, self.name, path, ref=ref)
            )
        except GitHubError as exc:
            if status_of(exc) == 404:
                return None
            raise
        data = response.json()
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        if int(data.get("size") or 0) > limit:
            return b"\0" * (limit + 1)  # the parser says the file is too large
        return base64.b64decode(str(data.get("content") or ""))

    async def comment_body(self, comment_id: int) -> str:
        response = await call(
            lambda: self._rest.issues.async_get_comment(self.owner, self.name, comment_id)
        )
        return str(response.json().get("body") or "")

    async def failed_check(self, run: dict[str, Any]) -> FailedCheck:
        """A failing check run with its output and annotations (not yet its log)."""
        output = run.get("output") or {}
        count = int(output.get("annotations_count") or 0)
        annotations = await self.annotations(int(run["id"])) if count else []
        return FailedCheck(
            name=str(run.get("name") or ""),
            app=str((run.get("app") or {}).get("slug") or ""),
            conclusion=str(run.get("conclusion") or ""),
            title=str(output.get("title") or ""),
            summary=str(output.get("summary") or ""),
            text=str(output.get("text") or ""),
            annotations=tuple(annotations),
        )


async def download_job_log(
    api_url: str,
    repository: str,
    job_id: int,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bytes:
    """The end of a GitHub Actions job's log (at most KEEP_LOG_BYTES).

    GitHub answers 302 to a signed storage URL: that is fetched by a client
    of its own, which never carries the token.
    """
    url = f"{api_url.rstrip('/')}/repos/{repository}/actions/jobs/{job_id}/logs"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as api:
        answer = await api.get(url, headers=headers, follow_redirects=False)
    if answer.status_code == 403:
        raise NoActionsAccess("the App may not read GitHub Actions logs (actions: read)")
    if answer.status_code not in (301, 302, 303, 307, 308):
        if answer.is_success:
            return answer.content[-KEEP_LOG_BYTES:]
        raise GitHubError(f"GitHub refused the job's log ({answer.status_code})")
    location = answer.headers.get("location", "")
    if not location.startswith(("https://", "http://")):
        raise GitHubError("GitHub's answer for the job's log had no location")
    return await _tail(location)


async def _tail(url: str) -> bytes:
    """The last KEEP_LOG_BYTES of what `url` serves, read as a stream (no credentials)."""
    kept: deque[bytes] = deque()
    size = read = 0
    async with (
        httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True) as storage,
        storage.stream("GET", url) as response,
    ):
        if not response.is_success:
            raise GitHubError(f"the job's log could not be downloaded ({response.status_code})")
        async for chunk in response.aiter_bytes():
            kept.append(chunk)
            size += len(chunk)
            read += len(chunk)
            while kept and size - len(kept[0]) >= KEEP_LOG_BYTES:
                size -= len(kept.popleft())
            if read >= MAX_LOG_DOWNLOAD:
                break
    return b"".join(kept)[-KEEP_LOG_BYTES:]
