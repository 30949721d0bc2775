"""The other tickets of an issue: its lane, and telling those queued behind a run that they wait.

Only the worker running an issue's ticket announces, so two workers never
both write the same waiting comment.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import GitHubError
from ..github import render
from ..github.reporter import Reporter
from ..ledger import Ledger
from ..models import CONTROL_KINDS, FOLLOW_UP_KINDS, Ticket, TicketKind, TicketState
from ..policy.authz import Asker, Decision, authorize
from ..store.base import TicketStore
from .ports import Repository

log = logging.getLogger("bot.worker")

ANNOUNCE_EVERY = 2.0  # seconds between looks for tickets waiting behind a run


async def lane(store: TicketStore, ticket: Ticket, states: tuple[TicketState, ...]) -> list[Ticket]:
    """The work tickets of the same issue or PR in one of `states`, oldest first."""
    found: list[Ticket] = []
    for state in states:
        found += await asyncio.to_thread(
            lambda s=state: store.tickets(  # type: ignore[misc]
                state=s, repository=ticket.repository, limit=500
            )
        )
    return sorted(
        (
            t
            for t in found
            if t.number == ticket.number and t.kind not in CONTROL_KINDS and t.id != ticket.id
        ),
        key=lambda t: t.id,
    )


async def asker_of(gh: Repository, ticket: Ticket) -> Asker:
    """Who asks, with their role; the operator's own tickets need no GitHub lookup.

    Webhook triggers are built from fixed payload fields, so no payload can
    claim to be the operator.
    """
    if ticket.origin.operator:
        return Asker(ticket.requested_by, "admin", operator=True)
    if ticket.kind == TicketKind.CI_FIX:  # the bot's own follow-up, opted into by the settings
        return Asker(ticket.requested_by, "admin", operator=True)
    return Asker(ticket.requested_by, await gh.permission(ticket.requested_by))


async def reject(
    ledger: Ledger, ticket: Ticket, reporter: Reporter, asker: Asker, decision: Decision
) -> None:
    """Say why `asker` may not, and end the ticket `rejected`."""
    try:
        await reporter.say(
            render.marker(ticket.id) + "\n" + render.rejected_comment(asker.login, asker.role)
        )
    except GitHubError as exc:
        log.warning("rejection comment failed", extra={"ticket": ticket.id, "error": exc.message})
    await ledger.finished(ticket.id, TicketState.REJECTED, error=decision.reason)
    log.info("ticket rejected", extra={"ticket": ticket.id, "role": asker.role})


class Waiting:
    """Announces, at most every few seconds per run, the tickets queued behind it."""

    def __init__(self, store: TicketStore, ledger: Ledger) -> None:
        self.store = store
        self.ledger = ledger
        self._announced: dict[int, float] = {}

    async def announce(self, running: Ticket, gh: Repository) -> None:
        now = time.monotonic()
        if now - self._announced.get(running.id, 0.0) < ANNOUNCE_EVERY:
            return
        self._announced[running.id] = now
        for waiting in await lane(self.store, running, (TicketState.QUEUED,)):
            if waiting.comment_id is not None or waiting.kind in FOLLOW_UP_KINDS:
                continue  # a follow-up says nothing until it is decided
            reporter = Reporter(gh, waiting)
            asker = await asker_of(gh, waiting)
            decision = authorize(asker)
            if not decision.allowed:
                await reject(self.ledger, waiting, reporter, asker, decision)
                continue
            comment_id = await reporter.post(render.waiting_comment(waiting.id, running.id))
            await self.ledger.commented(waiting.id, comment_id)

    def forget(self, ticket_id: int) -> None:
        self._announced.pop(ticket_id, None)
