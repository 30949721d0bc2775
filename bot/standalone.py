"""The pipeline's parts for the Python API: no App, no ticket store, no issue.

`OpenCodeService` runs its ticket through the same `pipeline.run.Run` as
the worker; these fill the ports the worker fills with the App, the store
and the issue:

- `TokenApp`: the caller's token, for the one repository it was given for
  (any other is refused); commits are authored by the token's user
  (`GET /user`), or by a generic identity when the token has none (an
  installation token).
- `Receipt`: the ticket's ledger, in memory: what the call returns.
- `Quiet`: no comment and no check run to write; progress goes to the log.
- `LogLines`: the ticket's log lines, to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import GitHubError
from .github.calls import token_client
from .github.client import (
    AccessToken,
    Identity,
    RepoClient,
    SharedTransport,
    call,
    noreply_domain,
)
from .models import TicketState, Usage

log = logging.getLogger("bot.service")

GENERIC_NAME = "Auto-Code"


class TokenApp:
    """`App` (pipeline/ports.py) over one caller-given token for one repository."""

    def __init__(self, api_url: str, token: AccessToken) -> None:
        self.api_url = api_url
        self.access = token
        self.transport = SharedTransport()  # the call's connections to GitHub
        self._identity: Identity | None = None

    def _check(self, repository: str) -> None:
        if repository != self.access.repository:
            raise GitHubError(f"the token was given for {self.access.repository}, not {repository}")

    async def token(self, repository: str, installation_id: int | None = None) -> AccessToken:
        self._check(repository)
        return self.access

    async def repo(self, repository: str, installation_id: int | None = None) -> RepoClient:
        self._check(repository)
        return RepoClient(self.api_url, repository, self.access, transport=self.transport)

    async def aclose(self) -> None:
        await self.transport.close()

    async def team_member(
        self, repository: str, installation_id: int | None, org: str, team: str, login: str
    ) -> bool:
        return False  # the token's owner asks: no team lookup is ever needed

    async def identity(self, repo: Any) -> Identity:
        """The token's user as the commit author, or a generic identity.

        An installation token has no user (GitHub answers 403): its commits
        are signed `Auto-Code` with a noreply address.
        """
        if self._identity is None:
            self._identity = await self._user()
        return self._identity

    async def _user(self) -> Identity:
        client = token_client(self.api_url, self.access.token, transport=self.transport)
        rest: Any = client.rest
        domain = noreply_domain(self.api_url)
        generic = Identity(GENERIC_NAME, GENERIC_NAME, f"autocode@{domain}")
        try:
            user = (await call(rest.users.async_get_authenticated)).json()
        except GitHubError as exc:
            log.info("no user behind the token; generic author", extra={"reason": exc.message})
            return generic
        if not isinstance(user, dict) or not user.get("login"):
            return generic
        login = str(user["login"])
        email = user.get("email")
        if not isinstance(email, str) or not email:
            email = f"{user.get('id', 0)}+{login}@{domain}"
        return Identity(login, str(user.get("name") or login), email)


@dataclass
class Receipt:
    """`TicketLedger` (pipeline/ports.py) of one ticket, in memory."""

    state: TicketState = TicketState.RUNNING
    conclusion: str | None = None
    error: str | None = None
    branch: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    files: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    pushed: str = ""  # the commit pushed

    async def commented(self, ticket_id: int, comment_id: int) -> None:
        return None

    async def targeted(
        self, ticket_id: int, *, check_run_id: int | None, branch: str, head_sha: str
    ) -> None:
        self.branch = branch

    async def published(
        self, ticket_id: int, *, pr_number: int, pr_url: str, files: Sequence[str]
    ) -> None:
        self.pr_number, self.pr_url, self.files = pr_number, pr_url, list(files)

    async def pushing(self, ticket_id: int, sha: str) -> None:
        self.pushed = sha

    async def used(self, ticket_id: int, usage: Usage) -> None:
        self.usage = usage

    async def finished(
        self,
        ticket_id: int,
        state: TicketState,
        *,
        conclusion: str | None = None,
        error: str | None = None,
        ran: bool = False,
    ) -> None:
        self.state, self.conclusion, self.error = state, conclusion, error


class Quiet:
    """`Voice` (pipeline/ports.py) where there is no issue and no check run."""

    async def say(self, body: str) -> int | None:
        return None

    async def try_say(self, body: str) -> None:
        return None

    async def open_check(self, head_sha: str, details_url: str, output: dict[str, str]) -> None:
        return None

    async def start_check(self, now: float, output: dict[str, str]) -> None:
        return None

    async def update_check(self, data: dict[str, Any]) -> None:
        return None

    async def conclude_check(self, now: float, conclusion: str, output: dict[str, str]) -> None:
        return None


class LogLines:
    """`TicketLog` (pipeline/ports.py): the run's steps, to the log."""

    def __init__(self, repository: str) -> None:
        self.repository = repository

    def log(self, ticket_id: int, kind: str, message: str, at: float) -> None:
        log.info("agent step", extra={"repository": self.repository, "kind": kind,
                                      "step": message})  # fmt: skip
