"""The App itself: JWT-authenticated calls, installation tokens, team membership, identity.

Installation tokens are minted for one repository and the least permissions a
run needs, and reused until shortly before they expire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from githubkit import AppAuthStrategy, GitHub

from ..errors import GitHubError
from .calls import RETRY, TIMEOUT, EventHooks, SharedTransport, call, status_of, token_client
from .feedback import LOG_PERMISSIONS, FeedbackReader, NoActionsAccess, download_job_log
from .repo import RepoClient
from .tokens import (
    MEMBERS_PERMISSIONS,
    RUN_PERMISSIONS,
    AccessToken,
    Identity,
    noreply_domain,
    parse_time,
)

if TYPE_CHECKING:
    from ..pipeline.ports import Repository

log = logging.getLogger("bot.github")


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
        self.transport = SharedTransport()  # every call of the App and its repositories
        self._app = GitHub(
            self._auth, base_url=api_url, auto_retry=RETRY, timeout=TIMEOUT, http_cache=False,
            async_event_hooks=event_hooks, async_transport=self.transport,
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
            token = AccessToken(data.token, parse_time(data.expires_at), repository)
            self._tokens[key] = token
            log.info(
                "installation token minted",
                extra={"repository": repository, "installation": installation_id},
            )
            return token

    async def _scoped_token(
        self,
        repository: str,
        installation_id: int | None,
        permissions: dict[str, str],
        refused: GitHubError,
    ) -> str:
        """A short-lived token for one repository with permissions no run needs otherwise;
        `refused` is raised when the App is not granted them (GitHub's 422)."""
        if installation_id is None:
            installation_id = await self.installation_id(repository)
        name = repository.split("/", 1)[1]
        try:
            response = await call(
                lambda: self._rest.apps.async_create_installation_access_token(
                    installation_id, data={"repositories": [name], "permissions": permissions}
                )
            )
        except GitHubError as exc:
            if status_of(exc) == 422:
                raise refused from exc
            raise
        return str(response.parsed_data.token)

    async def team_member(
        self, repository: str, installation_id: int | None, org: str, team: str, login: str
    ) -> bool:
        """Whether `login` is an active member of `org`'s team `team`.

        Team membership needs the organization permission `members: read`,
        which no run needs otherwise: a separate short-lived token asks for it,
        only when a repository's settings name `allowed_teams`. An App not
        granted it gets a GitHubError saying so.
        """
        token = await self._scoped_token(
            repository,
            installation_id,
            MEMBERS_PERMISSIONS,
            GitHubError(
                "allowed_teams needs the App's organization permission `members: read`; "
                "the App's owner can grant it in the App's settings"
            ),
        )
        client = token_client(self.api_url, token, transport=self.transport)
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

    async def job_log(self, repository: str, installation_id: int | None, job_id: int) -> bytes:
        """The end of a GitHub Actions job's log; NoActionsAccess without `actions: read`.

        No run needs `actions: read`: a separate short-lived token asks for it, and
        an App not granted it (GitHub's 422 for the token) gets NoActionsAccess.
        """
        refused = NoActionsAccess("the App is not granted `actions: read`")
        token = await self._scoped_token(repository, installation_id, LOG_PERMISSIONS, refused)
        return await download_job_log(
            self.api_url, repository, job_id, token, transport=self.transport
        )

    async def feedback(self, repository: str, installation_id: int | None) -> FeedbackReader:
        """Reads of a pull request's checks, reviews and settings with the run's token."""
        token = await self.token(repository, installation_id)
        return FeedbackReader(
            self.api_url, repository, token, transport=self.transport, event_hooks=self.event_hooks
        )

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
        return RepoClient(
            self.api_url, repository, token, event_hooks=self.event_hooks, transport=self.transport
        )

    async def aclose(self) -> None:
        """Close the connections to GitHub (the App is not used after this)."""
        await self.transport.close()
