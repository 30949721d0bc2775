"""A run's parts and its live state: what each stage of the pipeline reads and adds to.

`Deps` is what the worker hands a run (ports and settings, nothing that
calls back into the worker); `RunState` is the run's own memory, from the
ticket as claimed to the usage and test attempts its outcome reports;
`CancelSignal` is how a cancel reaches it, with who asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..memory import Session, SessionStore
from ..models import RunResult, Ticket, TicketKind, Usage
from ..repo_settings import HostLimits, RepoSettings
from ..testloop import TestAttempt
from ..workspace import Workspace
from .ports import Announcer, App, Containers, Environments, TicketLedger, TicketLog
from .spec import Site

if TYPE_CHECKING:
    from ..llm.proxy import LLMProxy


@dataclass(frozen=True)
class Placement:
    """Where a run's containers belong: their user, worker and store labels."""

    user: str  # uid:gid
    worker: str = ""
    store: str = ""

    @property
    def owner(self) -> tuple[int, int]:
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)


@dataclass
class Deps:
    """What a run needs, handed down by the worker (or the Python API)."""

    settings: Settings
    ledger: TicketLedger  # the one writer of the ticket's state
    log: TicketLog  # the ticket's own log lines
    app: App
    containers: Containers
    sessions: SessionStore | None  # the agent's memory across runs (None: every run is new)
    placement: Placement
    clock: Callable[[], float] = time.time
    waiting: Announcer | None = None  # who tells the tickets queued behind this one
    workspace: Callable[[Path, str], Workspace] = Workspace  # a ticket's clone (root, URL)
    llm: LLMProxy | None = None  # provider keys stay on the host: the proxy of this process
    images: Environments | None = None  # None: every run uses the runner image


@dataclass
class CancelSignal:
    """A cancel request for one running ticket: set once, with the first asker's login."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    by: str = ""

    def request(self, by: str = "") -> None:
        if by and not self.by:
            self.by = by
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def effective_kind(ticket: Ticket) -> TicketKind:
    """What a ticket does: a retry does what the ticket it repeats did."""
    return ticket.origin.as_kind or ticket.kind


def ticket_kind_and_priority(ticket: Ticket) -> tuple[str, str]:
    """A Python API ticket's type and priority (as its caller gave them)."""
    origin = ticket.origin
    return origin.ticket_type or "feature", origin.priority or "medium"


@dataclass
class Progress:
    """The run's live state as its comment and check run show it."""

    started: float
    phase: str = "queued"
    last_step: str = ""
    dirty: bool = True
    shown_at: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RunState:
    """One run's memory; the stages add to it, the outcome reports it."""

    ticket: Ticket
    repo: RepoSettings  # the host's defaults until `.github/autocode.yml` is read
    progress: Progress
    title: str = ""
    deadline: float = 0.0  # on time.monotonic()
    session: Session | None = None
    attempts: list[TestAttempt] = field(default_factory=list)  # the test loop's, oldest first
    testing: int = 0  # the attempt whose tests run right now
    dropped: list[str] = field(default_factory=list)  # protected paths whose changes were undone
    usage: Usage = field(default_factory=Usage)  # over every agent container of the run
    budget: str = ""  # the budget that stopped the run, in words
    proxied: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # requests, failed, in, out
    image: str = ""  # the image of the run's containers ("" = the host's runner image)
    container_env: dict[str, str] = field(default_factory=dict)  # the dev container's containerEnv
    environment: str = ""  # which image ran, and whether it was built, in words
    pushed: str = ""  # the commit the run pushed

    @classmethod
    def start(cls, ticket: Ticket, settings: Settings, now: float) -> RunState:
        repo = RepoSettings.defaults(HostLimits.of(settings))
        return cls(
            ticket=ticket,
            repo=repo,
            progress=Progress(started=now),
            title=ticket.title,
            deadline=time.monotonic() + repo.run_timeout,
        )

    @property
    def ask(self) -> bool:
        return effective_kind(self.ticket) == TicketKind.ASK

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def site(self, workspace: Workspace, placement: Placement) -> Site:
        """Where this run's containers go: its workspace, its ticket, their labels."""
        return Site(
            work_tree=workspace.work_tree,
            git_dir=workspace.git_dir,
            ticket_id=self.ticket.id,
            user=placement.user,
            worker=placement.worker,
            store=placement.store,
            image=self.image,
            env=dict(self.container_env),
        )

    def tests_fail(self) -> bool:
        return bool(self.attempts) and not self.attempts[-1].passed

    def common(self, result: RunResult, now: float) -> dict[str, Any]:
        """What every outcome of a run that reached the agent reports."""
        return {
            "usage": result.usage,
            "seconds": now - self.progress.started,
            "output_tail": result.output_tail[-15:],
            "answer": result.final_text,
            "dropped": list(self.dropped),
            "tests": list(self.attempts),
            "test_command": self.repo.test,
            "max_attempts": self.repo.max_attempts,
        }
