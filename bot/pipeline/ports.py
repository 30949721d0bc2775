"""What the pipeline needs from the world, as protocols: GitHub, containers, the ticket's log.

The pipeline (`pipeline.run` and its stages) is written against these and
nothing concrete. The bot's adapters fill them: `github.client.RepoClient`
and `GitHubApp`, `runner.docker.DockerRunner`, the worker's
`pipeline.waiting.Waiting`, and the ticket store (its log; its state goes
through `ledger.Ledger`). The LLM proxy is handed in as it is (`Deps.llm`).
A test of the whole pipeline fills them with an in-memory repository and a
runner that replays recorded opencode output (`tests/unit/test_pipeline.py`):
no Docker, no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..github.client import AccessToken, Identity
from ..models import Ticket, TicketState, Usage
from ..runner.recipe import BuildRecipe, Prepared
from ..runner.spec import ContainerExit, ContainerSpec


class Repository(Protocol):
    """One repository on GitHub, as the run's installation token sees it."""

    async def user_id(self, login: str) -> int: ...
    async def permission(self, username: str) -> str: ...
    async def default_branch(self) -> str: ...
    async def branch_sha(self, branch: str) -> str | None: ...
    async def issue(self, number: int) -> dict[str, Any]: ...
    async def comments(self, number: int, limit: int = 300) -> list[dict[str, Any]]: ...
    async def pull(self, number: int) -> dict[str, Any]: ...
    async def react(self, number: int, content: str = "eyes") -> None: ...
    async def comment(self, number: int, body: str) -> int: ...
    async def edit_comment(self, comment_id: int, body: str) -> None: ...
    async def react_comment(self, comment_id: int, content: str = "eyes") -> None: ...
    async def react_review_comment(self, comment_id: int, content: str = "eyes") -> None: ...
    async def reply_review(self, number: int, comment_id: int, body: str) -> int: ...
    async def edit_review_comment(self, comment_id: int, body: str) -> None: ...
    async def create_check_run(self, data: dict[str, Any]) -> int: ...
    async def update_check_run(self, check_run_id: int, data: dict[str, Any]) -> None: ...
    async def find_pull(self, branch: str) -> tuple[int, str] | None: ...
    async def create_pull(
        self, *, title: str, head: str, base: str, body: str, draft: bool = False
    ) -> tuple[int, str]: ...
    async def update_pull(self, number: int, *, body: str) -> None: ...
    async def add_labels(self, number: int, labels: list[str]) -> None: ...
    async def request_reviewers(
        self, number: int, *, users: list[str], teams: list[str]
    ) -> None: ...


class App(Protocol):
    """The GitHub App: installation tokens for one repository, its identity, team lookups."""

    async def repo(self, repository: str, installation_id: int | None = None) -> Repository: ...
    async def token(self, repository: str, installation_id: int | None = None) -> AccessToken: ...
    async def identity(self, repo: Repository) -> Identity: ...
    async def team_member(
        self, repository: str, installation_id: int | None, org: str, team: str, login: str
    ) -> bool: ...
    async def aclose(self) -> None: ...


class Containers(Protocol):
    """Runs one container to its end; `on_line` hears its stdout, `stop` ends it early."""

    async def run(
        self, spec: ContainerSpec, on_line: Callable[[str], None], stop: asyncio.Event
    ) -> ContainerExit: ...


@runtime_checkable
class Environments(Protocol):
    """Makes the image a repository's runs use from its own (`runner.images`)."""

    def prepare_image(
        self,
        repository: str,
        runner_image: str,
        *,
        image: str = "",
        build: BuildRecipe | None = None,
        work_tree: Path | None = None,
        on_line: Callable[[str], None] = ...,
        network: str = ...,
        timeout: float = ...,
    ) -> Prepared: ...


class Engine(Containers, Protocol):
    """Where the worker's containers run: reachable or not, and its leftovers."""

    def ping(self) -> None: ...
    def remove_orphans(self, store: str, keep: Callable[[int, str], bool]) -> list[int]: ...


class Announcer(Protocol):
    """Tells the requests queued behind a running ticket that they wait."""

    async def announce(self, running: Ticket, gh: Repository) -> None: ...


class Voice(Protocol):
    """Where a run talks: its one comment and its check run (`github.reporter.Reporter`)."""

    async def say(self, body: str) -> int | None: ...
    async def try_say(self, body: str) -> None: ...
    async def open_check(
        self, head_sha: str, details_url: str, output: dict[str, str]
    ) -> int | None: ...
    async def start_check(self, now: float, output: dict[str, str]) -> None: ...
    async def update_check(self, data: dict[str, Any]) -> None: ...
    async def conclude_check(self, now: float, conclusion: str, output: dict[str, str]) -> None: ...


class TicketLedger(Protocol):
    """The one writer of the ticket's state (`ledger.Ledger`), as a run uses it."""

    async def commented(self, ticket_id: int, comment_id: int) -> None: ...
    async def targeted(
        self, ticket_id: int, *, check_run_id: int | None, branch: str, head_sha: str
    ) -> None: ...
    async def published(
        self, ticket_id: int, *, pr_number: int, pr_url: str, files: Sequence[str]
    ) -> None: ...
    async def used(self, ticket_id: int, usage: Usage) -> None: ...
    async def finished(
        self,
        ticket_id: int,
        state: TicketState,
        *,
        conclusion: str | None = None,
        error: str | None = None,
        ran: bool = False,
    ) -> None: ...


class TicketLog(Protocol):
    """The ticket's own log (the dashboard's live view)."""

    def log(self, ticket_id: int, kind: str, message: str, at: float) -> None: ...
