"""githubkit behind a small adapter: App JWT, scoped installation tokens, repo calls.

Installation tokens are minted for one repository and the least permissions a
run needs, and reused until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed
from githubkit.typing import RetryOption

from ..errors import GitHubError

if TYPE_CHECKING:
    from ..pipeline.ports import Repository

log = logging.getLogger("bot.github")

# The permissions a run needs, and nothing more.
RUN_PERMISSIONS: dict[str, str] = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
# Asked for only to check `allowed_teams` (GET /orgs/{org}/teams/{team}/memberships/{user}).
MEMBERS_PERMISSIONS: dict[str, str] = {"members": "read", "metadata": "read"}
REFRESH_MARGIN = 300.0  # seconds before expiry when a token is replaced
MAX_RETRY_WAIT = 900.0  # seconds: the longest a single rate-limit wait may last


class Backoff:
    """githubkit's retry decision, tuned for a bot that must reach the same end state.

    Rate limits (403/429 with `retry-after` or an exhausted `x-ratelimit-*`)
    wait as long as GitHub asks, capped; 5xx answers, timeouts and dropped
    connections back off exponentially. githubkit's own deciders are not used
    because a `retry-after: 0` becomes a falsy timedelta, which it turns into
    a 60 s sleep.
    """

    def __init__(self, *, rate_limit_retries: int = 4, error_retries: int = 4) -> None:
        self.rate_limit_retries = rate_limit_retries
        self.error_retries = error_retries

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            if retry_count >= self.rate_limit_retries:
                return RetryOption(False)
            wait = min(max(exc.retry_after.total_seconds(), 1.0), MAX_RETRY_WAIT)
            log.warning(
                "GitHub rate limit; waiting",
                extra={"seconds": wait, "path": exc.request.url.path, "retry": retry_count + 1},
            )
            return RetryOption(True, timedelta(seconds=wait))
        if retry_count >= self.error_retries:
            return RetryOption(False)
        if isinstance(exc, RequestFailed):
            if exc.response.status_code < 500:
                return RetryOption(False)
        elif not isinstance(exc, RequestError):
            return RetryOption(False)
        wait = 0.5 * 2**retry_count
        log.warning(
            "GitHub request failed; retrying",
            extra={"error": exc.__class__.__name__, "seconds": wait, "retry": retry_count + 1},
        )
        return RetryOption(True, timedelta(seconds=wait))


RETRY = Backoff()
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

T = TypeVar("T")
EventHooks = Mapping[str, list[Callable[..., Any]]]  # httpx's event_hooks


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: float
    repository: str

    def __repr__(self) -> str:  # never show the secret
        return f"AccessToken(repository={self.repository!r}, expires_at={self.expires_at})"

    def fresh(self, now: float) -> bool:
        return self.expires_at - now > REFRESH_MARGIN


@dataclass(frozen=True)
class Identity:
    """The App's bot account, used as the author of its commits."""

    login: str
    name: str
    email: str


def _describe(exc: GitHubException) -> str:
    if isinstance(exc, RequestFailed):
        response = exc.response
        message = ""
        try:
            data = response.json()
            if isinstance(data, dict):
                message = str(data.get("message", ""))
        except ValueError:
            pass
        request = exc.request
        return f"GitHub answered {response.status_code} to {request.method} {request.url.path}" + (
            f": {message}" if message else ""
        )
    if isinstance(exc, RequestError):
        origin = exc.exc
        where = ""
        sent = getattr(origin, "_request", None)
        if isinstance(sent, httpx.Request):
            where = f" ({sent.method} {sent.url.path})"
        return f"cannot reach GitHub{where}: {origin.__class__.__name__}: {origin}"[:500]
    return f"GitHub request failed: {exc.__class__.__name__}"


async def call(what: Callable[[], Awaitable[T]]) -> T:
    """Await a githubkit call, turning its failures into GitHubError."""
    try:
        return await what()
    except GitHubException as exc:
        raise GitHubError(_describe(exc)) from exc
    except httpx.HTTPError as exc:
        raise GitHubError(f"cannot reach GitHub: {exc.__class__.__name__}") from exc


def status_of(exc: BaseException) -> int | None:
    cause = exc.__cause__
    if isinstance(cause, RequestFailed):
        return int(cause.response.status_code)
    return None


def _parse_time(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def noreply_domain(api_url: str) -> str:
    host = urlsplit(api_url).hostname or "github.com"
    if host == "api.github.com":
        host = "github.com"
    return f"users.noreply.{host}"


class GitHubApp:
    """The App: JWT-authenticated calls and a cache of installation tokens."""

    def __init__(
        self,
        *,
        api_url: str,
        private_key: str,
        app_id: str = "",
        client_id: str = "",
        event_hooks: EventHooks | None = None,
    ) -> None:
        self.api_url = api_url
        self.event_hooks = event_hooks  # httpx hooks on every GitHub call (metrics)
        self._auth = AppAuthStrategy(app_id or None, private_key, client_id=client_id or None)
        self._app = GitHub(
            self._auth, base_url=api_url, auto_retry=RETRY, timeout=TIMEOUT, http_cache=False,
            async_event_hooks=event_hooks,
        )  # fmt: skip
        # githubkit's overloads are precise but huge; the adapter checks shapes itself.
        self._rest: Any = self._app.rest
        self._tokens: dict[tuple[int, str], AccessToken] = {}
        self._installations: dict[str, int] = {}
        self._identity: Identity | None = None
        self._lock = asyncio.Lock()

    async def installation_id(self, repository: str) -> int:
        if repository not in self._installations:
            owner, name = repository.split("/", 1)
            response = await call(lambda: self._rest.apps.async_get_repo_installation(owner, name))
            self._installations[repository] = response.parsed_data.id
        return self._installations[repository]

    async def token(self, repository: str, installation_id: int | None = None) -> AccessToken:
        """A token for one repository with the run permissions, reused while fresh."""
        if installation_id is None:
            installation_id = await self.installation_id(repository)
        key = (installation_id, repository)
        async with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.fresh(time.time()):
                return cached
            name = repository.split("/", 1)[1]
            response = await call(
                lambda: self._rest.apps.async_create_installation_access_token(
                    installation_id, data={"repositories": [name], "permissions": RUN_PERMISSIONS}
                )
            )
            data = response.parsed_data
            token = AccessToken(data.token, _parse_time(data.expires_at), repository)
            self._tokens[key] = token
            log.info(
                "installation token minted",
                extra={"repository": repository, "installation": installation_id},
            )
            return token

    async def team_member(
        self, repository: str, installation_id: int | None, org: str, team: str, login: str
    ) -> bool:
        """Whether `login` is an active member of `org`'s team `team`.

        Team membership needs the organization permission `members: read`,
        which no run needs otherwise: a separate short-lived token asks for it,
        only when a repository's settings name `allowed_teams`. An App not
        granted it gets a GitHubError saying so.
        """
        if installation_id is None:
            installation_id = await self.installation_id(repository)
        name = repository.split("/", 1)[1]
        try:
            response = await call(
                lambda: self._rest.apps.async_create_installation_access_token(
                    installation_id,
                    data={"repositories": [name], "permissions": MEMBERS_PERMISSIONS},
                )
            )
        except GitHubError as exc:
            if status_of(exc) == 422:
                raise GitHubError(
                    "allowed_teams needs the App's organization permission `members: read`; "
                    "the App's owner can grant it in the App's settings"
                ) from exc
            raise
        client = GitHub(
            TokenAuthStrategy(response.parsed_data.token),
            base_url=self.api_url,
            auto_retry=RETRY,
            timeout=TIMEOUT,
            http_cache=False,
        )
        rest: Any = client.rest
        try:
            found = await call(
                lambda: rest.teams.async_get_membership_for_user_in_org(org, team, login)
            )
        except GitHubError as exc:
            if status_of(exc) == 404:
                return False
            if status_of(exc) == 403:
                raise GitHubError(
                    "allowed_teams needs the App's organization permission `members: read`"
                ) from exc
            raise
        data = found.json()
        return isinstance(data, dict) and data.get("state") == "active"

    async def identity(self, repo: Repository) -> Identity:
        """The `<slug>[bot]` account the App commits as.

        The App's own record needs the JWT; the bot user's id (for its noreply
        address) is read with an installation token, as GitHub only lets an
        App call `/users` as an installation.
        """
        if self._identity is None:
            app = (await call(self._rest.apps.async_get_authenticated)).parsed_data
            if app is None or not app.slug:
                raise GitHubError("GitHub did not return the App's slug")
            login = f"{app.slug}[bot]"
            user_id = await repo.user_id(login)
            self._identity = Identity(
                login=login, name=login, email=f"{user_id}+{login}@{noreply_domain(self.api_url)}"
            )
        return self._identity

    async def repo(self, repository: str, installation_id: int | None = None) -> RepoClient:
        token = await self.token(repository, installation_id)
        return RepoClient(self.api_url, repository, token, event_hooks=self.event_hooks)


class RepoClient:
    """Calls on one repository with its installation token."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: AccessToken,
        *,
        event_hooks: EventHooks | None = None,
    ) -> None:
        self.repository = repository
        self.owner, self.name = repository.split("/", 1)
        self.token = token
        self._gh = GitHub(
            TokenAuthStrategy(token.token),
            base_url=api_url,
            auto_retry=RETRY,
            timeout=TIMEOUT,
            http_cache=False,
            async_event_hooks=event_hooks,
        )
        self._rest: Any = self._gh.rest

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
        response = await call(
            lambda: self._rest.issues.async_create_comment(
                self.owner, self.name, number, data={"body": body}
            )
        )
        return int(response.parsed_data.id)

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
        response = await call(
            lambda: self._rest.pulls.async_create_reply_for_review_comment(
                self.owner, self.name, number, comment_id, data={"body": body}
            )
        )
        return int(response.parsed_data.id)

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
        response = await call(
            lambda: self._rest.checks.async_create(self.owner, self.name, data=data)
        )
        return int(response.parsed_data.id)

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
        response = await call(
            lambda: self._rest.pulls.async_create(
                self.owner,
                self.name,
                data={"title": title, "head": head, "base": base, "body": body, "draft": draft},
            )
        )
        pull = response.parsed_data
        return pull.number, pull.html_url

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
