"""The worker: claim tickets, authorize them, and run or act on them.

claim (with a lease) → ask GitHub who the sender is → then by kind:
label/command/ask/retry/rerequest → a Run (`pipeline.run`); cancel, retry's
resolution and help → `pipeline.control`. Whatever fails, the ticket
ends in a final state with a comment; no ticket stays `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..config import Settings
from ..errors import BotError, DockerUnavailable, GitHubError
from ..github.reporter import Reporter
from ..hooks import TicketEvents
from ..ledger import Ledger
from ..memory import session_store
from ..models import FOLLOW_UP_KINDS, Ticket, TicketKind, TicketState
from ..policy.authz import Asker, authorize
from ..runner.docker import container_user, store_key
from ..store.base import TicketStore
from ..workspace import Workspace
from .control import Control, keep_lease
from .followups import FollowUps
from .ports import App, Engine, Environments, Repository
from .run import Run
from .state import CancelSignal, Deps, Placement
from .upkeep import Upkeep
from .waiting import Waiting, asker_of, reject

if TYPE_CHECKING:
    from ..llm.proxy import LLMProxy

log = logging.getLogger("bot.worker")


class Job(NamedTuple):
    """A claimed ticket with what its handler needs."""

    ticket: Ticket
    gh: Repository
    reporter: Reporter
    asker: Asker
    cancel: CancelSignal


class Worker:
    """Runs tickets from the store, at most `max_parallel` at once on this host."""

    def __init__(
        self,
        settings: Settings,
        store: TicketStore,
        github: App,
        runner: Engine,
        *,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
        events: TicketEvents | None = None,
        workspace: Callable[[Path, str], Workspace] = Workspace,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        # the one writer of ticket state; metrics and notifications hear of it (none by default)
        self.ledger = Ledger(store, events, lambda: self.clock())
        self.github = github
        self.runner = runner
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._cancels: dict[int, CancelSignal] = {}  # the tickets running here
        self.waiting = Waiting(store, self.ledger)
        self.control = Control(store, self.ledger, settings.command, self._cancels)
        self.follow_ups = FollowUps(store, self.ledger, settings, github)
        self._tasks: set[asyncio.Task[None]] = set()
        # names the database on container labels, never revealing its URL
        self.store_key = store_key(settings.database_url)
        self.docker_ok = True
        placement = Placement(container_user(), self.worker_id, self.store_key)
        self.sessions = session_store(settings.workdir, placement.owner)
        self.deps = self._deps(placement, workspace)
        self.upkeep = Upkeep(settings, store, self.ledger, github, runner, self.sessions,
                             worker_id=self.worker_id, store_key=self.store_key,
                             running=self._cancels, clock=lambda: self.clock())  # fmt: skip
        # the one dispatch table: what each kind of ticket does once it is claimed
        self._handlers: dict[TicketKind, Callable[[Job], Awaitable[None]]] = {
            TicketKind.LABEL: self._run,
            TicketKind.COMMAND: self._run,
            TicketKind.ASK: self._run,
            TicketKind.RETRY: self._retry,
            TicketKind.RERUN: self._retry,
            TicketKind.CANCEL: self._cancel_runs,
            TicketKind.HELP: self._help,
            TicketKind.STOP: self._stop,
            TicketKind.CI_FIX: self._follow_up,
            TicketKind.REVIEW_FIX: self._follow_up,
        }

    def _deps(self, placement: Placement, workspace: Callable[[Path, str], Workspace]) -> Deps:
        """What each run gets: this worker's ports, its ledger and its placement."""
        return Deps(
            settings=self.settings,
            ledger=self.ledger,
            log=self.store,
            app=self.github,
            containers=self.runner,
            # an engine that can make images from the repositories' own (the replay cannot)
            images=self.runner if isinstance(self.runner, Environments) else None,
            sessions=self.sessions,
            placement=placement,
            clock=lambda: self.clock(),
            waiting=self.waiting,
            workspace=workspace,
        )

    # -- the loop ------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def cancel(self, ticket_id: int, by: str = "") -> bool:
        """Stop a ticket running in this process (the store carries requests across hosts)."""
        return self.control.stop(ticket_id, by)

    @property
    def running(self) -> list[int]:
        return list(self._cancels)

    async def run_forever(self, stop: asyncio.Event, *, llm: LLMProxy | None = None) -> None:
        """Claim and run tickets until `stop`; then shut down gracefully.

        Running tickets get `AUTOCODE_SHUTDOWN_GRACE` seconds to finish; those
        still running then are stopped and handed back to the queue (not
        failed, not reported), for this or another worker to run again.
        """
        self.deps.llm = llm  # the LLM proxy of this process, handed to every run
        log.info("worker started", extra={"worker": self.worker_id})
        while not stop.is_set():
            await self.upkeep.tick()
            await self.control.poll_requests()
            while len(self._tasks) < self.settings.max_parallel and not stop.is_set():
                if not await self._docker_ready():
                    break
                ticket = await asyncio.to_thread(
                    self.store.claim, self.worker_id, self.settings.lease_seconds, self.clock()
                )
                if ticket is None:
                    break
                task = asyncio.create_task(self.process(ticket), name=f"ticket-{ticket.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(lambda _t: self._wake.set())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        await self._shutdown()
        await self.github.aclose()  # the App's connections: its runs are over

    async def _shutdown(self) -> None:
        if not self._tasks:
            return
        log.info(
            "stopping: waiting for running tickets",
            extra={"tickets": self.running, "grace": self.settings.shutdown_grace},
        )
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace)
        for task in pending:
            task.cancel()  # process() hands the ticket back to the queue
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _docker_ready(self) -> bool:
        try:
            await asyncio.to_thread(self.runner.ping)
        except DockerUnavailable:
            if self.docker_ok:
                log.error(
                    "Docker engine unreachable; tickets wait", extra={"worker": self.worker_id}
                )
            self.docker_ok = False
            return False
        self.docker_ok = True
        return True

    # -- one ticket ----------------------------------------------------------
    async def process(self, ticket: Ticket) -> None:
        cancel = CancelSignal()
        self._cancels[ticket.id] = cancel
        seconds, now = self.settings.lease_seconds, lambda: self.clock()
        lease = asyncio.create_task(
            keep_lease(self.store, ticket.id, self.worker_id, cancel, seconds, now)
        )
        context = {"ticket": ticket.id, "repository": ticket.repository, "number": ticket.number}
        log.info("ticket started", extra={**context, "kind": ticket.kind})
        try:
            await self._process(ticket, cancel)
        except asyncio.CancelledError:
            # shutdown past its grace period: the ticket goes back to the queue
            await asyncio.to_thread(self.store.release, ticket.id, self.worker_id)
            log.info("ticket handed back", extra=context)
            raise
        except Exception as exc:
            # outside a Run (authorization, retry resolution, GitHub down): still say so on GitHub
            log.exception("ticket crashed", extra=context)
            reason = (
                exc.message
                if isinstance(exc, BotError)
                else f"internal error ({exc.__class__.__name__}); see the bot's logs"
            )
            await self.ledger.finished(
                ticket.id, TicketState.FAILED, conclusion="failure", error=reason
            )
            current = await asyncio.to_thread(self.store.get, ticket.id)
            try:
                await self.upkeep.report_failure(current or ticket, reason)
            except Exception:
                log.warning("reporting a failed ticket on GitHub failed", exc_info=True,
                            extra={"ticket": ticket.id})  # fmt: skip
        finally:
            lease.cancel()
            self._cancels.pop(ticket.id, None)
            self.waiting.forget(ticket.id)
            log.info("ticket ended", extra=context)

    async def _finish(
        self, ticket: Ticket, state: TicketState, conclusion: str | None, error: str | None
    ) -> None:
        await self.ledger.finished(ticket.id, state, conclusion=conclusion, error=error)

    async def _process(self, ticket: Ticket, cancel: CancelSignal) -> None:
        try:
            gh = await self.github.repo(ticket.repository, ticket.installation_id)
        except GitHubError as exc:
            await self._finish(ticket, TicketState.FAILED, "failure", exc.message)
            log.error("no installation token", extra={"ticket": ticket.id, "error": exc.message})
            return
        asker = await asker_of(gh, ticket)
        job = Job(ticket, gh, Reporter(gh, ticket), asker, cancel)
        # cancel decides with the runs it would stop, a follow-up once it knows it is one
        if ticket.kind != TicketKind.CANCEL and ticket.kind not in FOLLOW_UP_KINDS:
            decision = authorize(asker)
            if not decision.allowed:
                await reject(self.ledger, ticket, job.reporter, asker, decision)
                return
        handler = self._handlers.get(ticket.kind)
        if handler is None:
            raise BotError(f"a worker cannot run a ticket of kind {ticket.kind!r}")
        await handler(job)

    async def _help(self, job: Job) -> None:
        await self.control.help(job.ticket, job.reporter)

    async def _stop(self, job: Job) -> None:
        await self.control.stop_follow_ups(job.ticket, job.reporter)

    async def _follow_up(self, job: Job) -> None:
        """Failed checks or a review on a pull request: a run, if the bot's and allowed."""
        resolved = await self.follow_ups.resolve(job.ticket, job.gh, job.reporter, job.asker)
        if resolved is not None:
            await self._run(job._replace(ticket=resolved, reporter=Reporter(job.gh, resolved)))

    async def _cancel_runs(self, job: Job) -> None:
        await self.control.cancel(job.ticket, job.gh, job.reporter, job.asker)

    async def _retry(self, job: Job) -> None:
        """`retry` and Re-run: the run of a copy of the ticket it repeats, if there is one."""
        resolved = await self.control.resolve_retry(job.ticket, job.reporter)
        if resolved is not None:
            await self._run(job._replace(ticket=resolved, reporter=Reporter(job.gh, resolved)))

    async def _run(self, job: Job) -> None:
        """A work ticket: 👀, then one Run of it to its concluded check run."""
        ticket, gh, reporter, asker, cancel = job
        await reporter.acknowledge()
        asked = await asyncio.to_thread(self.store.cancel_requests, [ticket.id])
        if ticket.id in asked:  # cancelled while it waited
            cancel.request(asked[ticket.id])
        await self.ledger.started(ticket)
        await Run(self.deps, ticket, gh, reporter, cancel, asker).execute()
