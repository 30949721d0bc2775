"""What the operator may do to tickets from outside GitHub: cancel, retry, queue.

Each action takes the same path as its GitHub counterpart (`/opencode
cancel`, `/opencode retry`, the label) so the worker reports it the same
way. The tickets it adds carry `operator` in their origin: the
request comes from whoever holds the admin token, not from a GitHub user,
so the worker must not look up a GitHub permission for it. Nothing here
calls GitHub or does slow work; everything is one or two store writes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Protocol

from starlette.requests import Request

from ..models import Origin, Ticket, TicketKind, TicketState, Trigger
from ..store.base import TicketStore

log = logging.getLogger("bot.web")

OPERATOR = "dashboard"  # who asked, as the store and the comments show it
API_USER = "api"


class Workers(Protocol):
    """The in-process worker, when this process runs one (`app.state.worker`)."""

    def cancel(self, ticket_id: int, by: str = "") -> bool: ...

    def wake(self) -> None: ...


def workers_of(request: Request) -> Workers | None:
    """The worker `bot/app.py` put on `app.state` (None with `--no-workers`)."""
    worker: Workers | None = getattr(request.app.state, "worker", None)
    return worker


def _follow_up(ticket: Ticket, kind: TicketKind, origin: Origin) -> Trigger:
    """A control or retry trigger on the same issue as `ticket`, asked by the operator."""
    return Trigger(
        kind=kind,
        repository=ticket.repository,
        clone_url=ticket.clone_url,
        installation_id=ticket.installation_id,
        number=ticket.number,
        is_pull_request=ticket.is_pull_request,
        title=ticket.title,
        body="",
        requested_by=OPERATOR,
        origin=origin.but(operator=True),
    )


async def cancel(store: TicketStore, workers: Workers | None, ticket_id: int) -> str:
    """Stop a running ticket, or drop a queued one; returns a notice code.

    The ticket is flagged in the store: a running one's worker, on any host,
    polls that (and it is stopped at once if it runs in this process); a queued
    one ends cancelled as soon as a worker claims it. Should it end or change
    state between the reads, a `cancel` ticket aimed at it is queued, exactly
    like `/opencode cancel` makes. Store calls run in threads; the worker is
    touched on the event loop it lives on.
    """
    if await asyncio.to_thread(store.request_cancel, ticket_id, OPERATOR):
        if workers is not None:
            workers.cancel(ticket_id, OPERATOR)
        log.info("cancel requested", extra={"ticket": ticket_id, "by": OPERATOR})
        return "cancel-requested"
    ticket = await asyncio.to_thread(store.get, ticket_id)
    if ticket is None or ticket.state.final:
        return "already-final"
    if ticket.state is TicketState.RUNNING:  # claimed between the two reads
        return await cancel(store, workers, ticket_id)
    trigger = _follow_up(ticket, TicketKind.CANCEL, Origin(target=ticket.id, source=OPERATOR))
    delivery = f"dashboard-cancel-{ticket.id}-{uuid.uuid4().hex}"
    cancel_id, _ = await asyncio.to_thread(store.add, delivery, OPERATOR, trigger)
    if workers is not None:
        workers.wake()
    log.info("cancel queued", extra={"ticket": ticket_id, "cancel_ticket": cancel_id})
    return "cancel-queued"


async def retry(store: TicketStore, workers: Workers | None, ticket: Ticket) -> int:
    """Queue a `retry` of `ticket` (as `/opencode retry` would); returns the new ticket's id."""
    trigger = _follow_up(ticket, TicketKind.RETRY, Origin(retry_of=ticket.id, source=OPERATOR))
    delivery = f"dashboard-retry-{ticket.id}-{uuid.uuid4().hex}"
    retry_id, _ = await asyncio.to_thread(store.add, delivery, OPERATOR, trigger)
    if workers is not None:
        workers.wake()
    log.info("retry queued", extra={"ticket": ticket.id, "retry_ticket": retry_id})
    return retry_id


async def queue_issue(
    store: TicketStore,
    workers: Workers | None,
    *,
    repository: str,
    number: int,
    clone_url: str,
    instructions: str = "",
    delivery_id: str = "",
) -> tuple[int, bool]:
    """A ticket on an issue, as the label (or `/opencode <instructions>`) would make.

    The installation is looked up by the worker; the issue's title and body
    are read when the run starts. Returns (ticket id, created): a repeated
    `delivery_id`, or a bare request joining one already waiting, is not new.
    """
    trigger = Trigger(
        kind=TicketKind.COMMAND if instructions.strip() else TicketKind.LABEL,
        repository=repository,
        clone_url=clone_url,
        installation_id=None,
        number=number,
        is_pull_request=False,
        title="",
        body="",
        requested_by=API_USER,
        instructions=instructions.strip(),
        origin=Origin(source=API_USER, operator=True),
    )
    delivery = delivery_id or f"api-{uuid.uuid4().hex}"
    ticket_id, created = await asyncio.to_thread(store.add, delivery, API_USER, trigger)
    if created and workers is not None:
        workers.wake()
    log.info(
        "ticket queued" if created else "repeated API request",
        extra={"ticket": ticket_id, "repository": repository, "number": number, "via": API_USER},
    )
    return ticket_id, created
