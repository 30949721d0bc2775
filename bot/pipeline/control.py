"""Tickets that act on other tickets: `cancel`, `retry` (and Re-run), `help`.

A cancel stops the runs of its issue (or the one its check run names) once
its asker may; a retry becomes a copy of the ticket it repeats, which then
runs like any work ticket; help answers with the command list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from ..errors import GitHubError
from ..github import render
from ..github.reporter import Reporter
from ..ledger import Ledger
from ..models import WORK_KINDS, Ticket, TicketState
from ..policy.authz import Asker, authorize
from ..store.base import TicketStore
from ..triggers.commands import help_text
from .ports import Repository
from .state import CancelSignal, effective_kind
from .waiting import lane, reject

log = logging.getLogger("bot.worker")


class Control:
    """Carries out control tickets against the store and this process's running tickets."""

    def __init__(
        self,
        store: TicketStore,
        ledger: Ledger,
        command: str,
        running: dict[int, CancelSignal],
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.command = command
        self.running = running  # the worker's own: ticket id → its cancel signal

    def stop(self, ticket_id: int, by: str = "") -> bool:
        """Stop a ticket running in this process (the store carries requests across hosts)."""
        signal = self.running.get(ticket_id)
        if signal is None:
            return False
        signal.request(by)
        return True

    async def poll_requests(self) -> None:
        """Cancel requests made anywhere (another process, another host) reach our runs."""
        if not self.running:
            return
        try:
            asked = await asyncio.to_thread(self.store.cancel_requests, list(self.running))
        except Exception:
            log.warning("cannot read cancel requests", exc_info=True)
            return
        for ticket_id, by in asked.items():
            self.stop(ticket_id, by)

    async def help(self, ticket: Ticket, reporter: Reporter) -> None:
        """`/opencode help`: the command list (also for an unknown sub-command)."""
        await reporter.post(help_text(self.command, ticket.origin.unknown))
        await self.ledger.finished(ticket.id, TicketState.SUCCEEDED, conclusion="neutral")

    async def stop_follow_ups(self, ticket: Ticket, reporter: Reporter) -> None:
        """`stop` on a pull request: no more follow-ups of its checks or reviews."""
        if not ticket.is_pull_request:
            await reporter.post(render.stop_needs_a_pull_request(self.command))
            await self.ledger.finished(
                ticket.id, TicketState.SUCCEEDED, conclusion="neutral", error="not a pull request"
            )
            return
        await reporter.post(render.follow_ups_stopped(self.command))
        await self.ledger.finished(ticket.id, TicketState.SUCCEEDED, conclusion="success")
        log.info("follow-ups stopped", extra={"ticket": ticket.id, "number": ticket.number})

    async def cancel(
        self, ticket: Ticket, gh: Repository, reporter: Reporter, asker: Asker
    ) -> None:
        """`cancel` (a comment, or the check run's button): stop the runs of that issue."""
        target = ticket.origin.target
        if target is not None:
            one = await asyncio.to_thread(self.store.get, target)
            targets = [one] if one is not None and not one.state.final else []
        else:
            targets = await lane(self.store, ticket, (TicketState.RUNNING, TicketState.QUEUED))
        decision = authorize(asker, cancel_of=tuple(t.requested_by for t in targets))
        if not decision.allowed:
            await reject(self.ledger, ticket, reporter, asker, decision)
            return
        if not targets:
            await reporter.post(render.nothing_to_cancel())
            await self.ledger.finished(
                ticket.id, TicketState.SUCCEEDED, conclusion="neutral", error="nothing to cancel"
            )
            return
        for victim in targets:
            # queued ones end as soon as they are claimed; running ones within a tick
            await asyncio.to_thread(self.store.request_cancel, victim.id, ticket.requested_by)
            self.stop(victim.id, ticket.requested_by)
        if reporter.trigger_comment is not None:
            with contextlib.suppress(GitHubError):
                await gh.react_comment(reporter.trigger_comment, "+1")
        await self.ledger.finished(ticket.id, TicketState.SUCCEEDED, conclusion="success")
        log.info("cancel requested", extra={"ticket": ticket.id,
                                            "targets": [t.id for t in targets]})  # fmt: skip

    async def resolve_retry(self, ticket: Ticket, reporter: Reporter) -> Ticket | None:
        """A retry becomes a copy of the ticket it repeats; None (answered) when there is none."""
        source = await self._retry_source(ticket)
        if source is None or source.repository != ticket.repository:
            await reporter.post(render.nothing_to_retry())
            await self.ledger.finished(
                ticket.id, TicketState.SUCCEEDED, conclusion="neutral", error="nothing to retry"
            )
            return None
        own = ticket.origin  # where the retry was asked: its 👀 and its answer go there
        origin = source.origin.but(
            source=own.source or "retry",
            comment_id=own.comment_id,
            comment_url=own.comment_url,
            operator=own.operator,
            retry_of=source.id,
            as_kind=effective_kind(source),
        )
        await self.ledger.repeats(ticket.id, instructions=source.instructions, origin=origin)
        return replace(
            ticket,
            instructions=source.instructions,
            origin=origin,
            is_pull_request=source.is_pull_request,
            title=source.title,
        )

    async def _retry_source(self, ticket: Ticket) -> Ticket | None:
        source_id = ticket.origin.retry_of
        if source_id is not None:
            return await asyncio.to_thread(self.store.get, source_id)
        earlier = [
            t
            for t in await lane(self.store, ticket, tuple(TicketState))
            if t.id < ticket.id and t.kind in WORK_KINDS and t.state.final and t.repeatable
        ]
        return earlier[-1] if earlier else None


async def keep_lease(
    store: TicketStore,
    ticket_id: int,
    worker_id: str,
    cancel: CancelSignal,
    lease_seconds: float,
    clock: Callable[[], float],
) -> None:
    """Renew a running ticket's lease until cancelled; a lost lease stops the run."""
    interval = max(1.0, lease_seconds / 3)
    while True:
        await asyncio.sleep(interval)
        ok = await asyncio.to_thread(store.renew, ticket_id, worker_id, lease_seconds, clock())
        if not ok:
            log.warning("lease lost; stopping the run", extra={"ticket": ticket_id})
            cancel.request()
            return
