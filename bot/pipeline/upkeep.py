"""A worker's upkeep between claims: lost tickets, dead runs' leftovers, what piles up.

Every pass of the worker's loop calls `tick`; each chore keeps its own
pace. A chore that fails (Docker or the store down) is logged and tried
again on a later pass: upkeep never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Container
from pathlib import Path

from ..config import Settings
from ..github import render
from ..github.render import Outcome
from ..github.reporter import Reporter
from ..ledger import Ledger
from ..memory import SessionStore
from ..models import Conclusion, Ticket, TicketState
from ..store.base import TicketStore
from .ports import App, Engine

log = logging.getLogger("bot.worker")

SWEEP_EVERY = 30.0  # seconds between sweeps for containers of dead runs
SESSION_SWEEP_EVERY = 3600.0  # seconds between sweeps for agent sessions past their TTL
PRUNE_EVERY = 3600.0  # seconds between prunings of old log lines and settled notifications
DAY = 86400.0


class Upkeep:
    """The chores of one worker; `running` holds the ids of the tickets it runs now."""

    def __init__(
        self,
        settings: Settings,
        store: TicketStore,
        ledger: Ledger,
        app: App,
        engine: Engine,
        sessions: SessionStore,
        *,
        worker_id: str,
        store_key: str,
        running: Container[int],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.app = app
        self.engine = engine
        self.sessions = sessions
        self.worker_id = worker_id
        self.store_key = store_key
        self.running = running
        self.clock = clock
        self._swept = 0.0
        self._sessions_swept = 0.0
        self._pruned = 0.0
        self._folders_swept = False

    async def tick(self) -> None:
        await self.recover()
        await self.sweep_containers()
        await self.sweep_sessions()
        await self.sweep_work_folders()
        await self.prune()

    async def sweep_work_folders(self) -> None:
        """Once, at start: remove the clones of runs that crashed (a run removes its own).

        A folder `ticket-N` stays while ticket N runs (another worker of this
        host may run it); every other one is a leftover.
        """
        if self._folders_swept:
            return
        self._folders_swept = True
        try:
            removed = await asyncio.to_thread(self._remove_leftovers)
        except Exception:  # the store down: the next start tries again
            log.warning("work folder sweep failed", exc_info=True)
            return
        if removed:
            log.info("removed work folders of crashed runs", extra={"tickets": removed})

    def _remove_leftovers(self) -> list[int]:
        removed: list[int] = []
        root = Path(self.settings.workdir).resolve()
        for folder in root.glob("ticket-*") if root.is_dir() else ():
            number = folder.name.removeprefix("ticket-")
            if not number.isdigit() or not folder.is_dir():
                continue
            ticket = self.store.get(int(number))
            if ticket is not None and ticket.state is TicketState.RUNNING:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(int(number))
        return removed

    async def prune(self) -> None:
        """Hourly: finished tickets' log lines, delivered and dead notifications past their time."""
        now = time.monotonic()
        if self._pruned and now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        wall = self.clock()
        try:
            logs = await asyncio.to_thread(
                self.store.prune_logs, wall - self.settings.log_keep_days * DAY
            )
            sent = await asyncio.to_thread(
                self.store.prune_notifications, wall - self.settings.notify_keep_days * DAY
            )
        except Exception:  # the store down: the next pruning tries again
            log.warning("pruning failed", exc_info=True)
            return
        if logs or sent:
            log.info("pruned", extra={"log_lines": logs, "notifications": sent})

    async def recover(self) -> None:
        """Tickets whose lease expired go back to the queue; those lost twice end failed."""
        for ticket in await self.ledger.recover(self.settings.max_attempts):
            reason = ticket.error or "the run was lost twice; it was not retried again"
            try:
                await self.report_failure(ticket, reason)
            except Exception:
                log.warning("reporting a lost ticket on GitHub failed", exc_info=True,
                            extra={"ticket": ticket.id})  # fmt: skip

    async def report_failure(self, ticket: Ticket, reason: str) -> None:
        """The failure on GitHub: the ticket's comment and, if it has one, its check run."""
        gh = await self.app.repo(ticket.repository, ticket.installation_id)
        reporter = Reporter(gh, ticket)
        outcome = Outcome(Conclusion.FAILURE, "the run failed", reason=reason)
        await reporter.try_say(render.outcome_comment(ticket.id, outcome))
        await reporter.conclude_check(self.clock(), "failure", render.check_output(outcome))

    async def sweep_containers(self) -> None:
        """Remove agent containers of runs that are over or whose worker is gone.

        A container is kept while the store says its ticket runs under the
        worker named on its label (another live worker on the same engine
        included); this worker's own are kept while it runs them.
        """
        now = time.monotonic()
        # a dead run's lease must expire before its container is disowned: look that often
        every = min(SWEEP_EVERY, max(2.0, float(self.settings.lease_seconds)))
        if self._swept and now - self._swept < every:
            return
        self._swept = now

        def keep(ticket_id: int, worker: str) -> bool:
            if worker == self.worker_id:
                return ticket_id in self.running
            ticket = self.store.get(ticket_id) if ticket_id else None
            return (
                ticket is not None
                and ticket.state is TicketState.RUNNING
                and ticket.lease_owner == worker
            )

        try:
            removed = await asyncio.to_thread(self.engine.remove_orphans, self.store_key, keep)
        except Exception:  # Docker or the store down: the next sweep retries
            log.warning("orphan sweep failed", exc_info=True)
            return
        if removed:
            log.info("removed containers of dead runs", extra={"tickets": removed})

    async def sweep_sessions(self) -> None:
        """At start and hourly: remove agent sessions unused for AUTOCODE_SESSION_TTL_DAYS."""
        now = time.monotonic()
        if self._sessions_swept and now - self._sessions_swept < SESSION_SWEEP_EVERY:
            return
        self._sessions_swept = now
        try:
            await asyncio.to_thread(
                self.sessions.sweep, self.clock(), self.settings.session_ttl_days
            )
        except OSError:
            log.warning("session sweep failed", exc_info=True)
