"""What a run shows while it goes, and how it ends: its comment, check run and ledger.

`phase` and `show` edit the ticket's one comment and its check run;
`reporting()` keeps them current while a container works (and tells the
tickets queued behind this one that they wait); `conclude` publishes the
outcome and writes the ticket's final state. Nothing here decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from ..github import render
from ..github.render import Outcome
from ..models import Conclusion, TicketState
from .outcomes import STATE_OF, attempt_lines, proxied_line
from .ports import Repository, Voice
from .state import CancelSignal, Deps, RunState

log = logging.getLogger("bot.pipeline")

PROGRESS_INTERVAL = 8.0  # seconds between edits of the progress comment and check run
TICK = 1.0  # seconds between looks at cancel requests and waiting tickets


class RunReport:
    """One run's voice: progress while it works, the outcome when it ends."""

    def __init__(self, deps: Deps, state: RunState, reporter: Voice, gh: Repository) -> None:
        self.deps = deps
        self.state = state
        self.reporter = reporter
        self.gh = gh
        self.outcome: Outcome | None = None  # how the run ended, once it has

    def now(self) -> float:
        return self.deps.clock()

    def details_url(self) -> str:
        base = self.deps.settings.public_url
        return f"{base}/tickets/{self.state.ticket.id}" if base else ""

    def log(self, kind: str, message: str) -> None:
        """A line of the ticket's own log; a store that fails here does not stop the run."""
        ticket_id = self.state.ticket.id
        try:
            self.deps.log.log(ticket_id, kind, message, self.now())
        except Exception:
            log.warning("the ticket's log line was not stored", exc_info=True,
                        extra={"ticket": ticket_id, "kind": kind})  # fmt: skip

    async def phase(self, phase: str, *, start: bool = False) -> None:
        self.state.progress.phase = phase
        self.log("phase", phase)
        await self.show(start=start)

    async def show(self, *, start: bool = False) -> None:
        state, progress = self.state, self.state.progress
        elapsed = self.now() - progress.started
        progress.dirty = False
        progress.shown_at = time.monotonic()
        lines = attempt_lines(
            state.attempts, state.repo, testing=state.testing, phase=progress.phase
        )
        comment = render.progress_comment(
            state.ticket.id,
            progress.phase,
            elapsed,
            progress.last_step,
            self.details_url(),
            attempts=lines,
            with_tests=bool(state.repo.test) and not state.ask,
            why=state.ticket.origin.why,
        )
        await self.reporter.try_say(comment)
        output = render.progress_output(progress.phase, elapsed, progress.last_step, attempts=lines)
        if start:
            await self.reporter.start_check(self.now(), output)
        else:
            await self.reporter.update_check({"output": output})

    @contextlib.asynccontextmanager
    async def reporting(self) -> AsyncIterator[None]:
        """While a container works: progress every few seconds, and tell who waits behind."""
        task = asyncio.create_task(self._keep_reporting())
        try:
            yield
        finally:
            task.cancel()

    async def _keep_reporting(self) -> None:
        progress = self.state.progress
        while True:
            await asyncio.sleep(TICK)
            if self.deps.waiting is not None:
                try:
                    await self.deps.waiting.announce(self.state.ticket, self.gh)
                except Exception:
                    log.warning("telling waiting requests failed", exc_info=True,
                                extra={"ticket": self.state.ticket.id})  # fmt: skip
            stale = time.monotonic() - progress.shown_at >= PROGRESS_INTERVAL
            if progress.dirty and stale:
                await self.show()

    async def finish(self, state: TicketState, conclusion: str | None, error: str | None) -> None:
        await self.deps.ledger.finished(
            self.state.ticket.id, state, conclusion=conclusion, error=error, ran=True
        )

    async def conclude(self, outcome: Outcome) -> None:
        """Publish the outcome (comment and check run) and put the ticket in its final state."""
        run = self.state
        self.outcome = outcome
        final = STATE_OF[outcome.conclusion]
        proxied = proxied_line(run.proxied)
        if proxied:
            outcome = replace(outcome, proxied=proxied)
        if run.environment:
            outcome = replace(outcome, environment=run.environment)
        if run.ticket.origin.why:
            outcome = replace(outcome, why=run.ticket.origin.why)
        body = (
            render.answer_comment(run.ticket.id, outcome)
            if run.ask and outcome.conclusion is Conclusion.NEUTRAL
            else render.outcome_comment(run.ticket.id, outcome)
        )
        await self.reporter.try_say(body)
        await self.reporter.conclude_check(
            self.now(), str(outcome.conclusion), render.check_output(outcome)
        )
        await self.deps.ledger.used(run.ticket.id, outcome.usage)
        await self.finish(final, str(outcome.conclusion), outcome.reason or None)
        self.log("done", f"{final}: {outcome.headline}")
        log.info(
            "ticket finished",
            extra={"ticket": run.ticket.id, "state": str(final), "timings": run.progress.timings},
        )


class Stage:
    """A stage of a run that runs containers: what it reads, where it reports, what stops it."""

    def __init__(
        self, deps: Deps, state: RunState, report: RunReport, cancel: CancelSignal
    ) -> None:
        self.deps = deps
        self.state = state
        self.report = report
        self.cancel = cancel
