"""What both SQL backends share about the notification outbox: columns, row → Notification.

The SQL that picks due rows is the same text in both dialects but for the
placeholders, so it lives here too: one definition of "due" and "in order".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models import Trigger
from ..notify.bodies import event_body, queued_ticket
from .base import Notification

NOTIFICATION_COLUMNS = (
    "id, ticket_id, url, event, body, created_at, attempts, next_attempt_at, delivered_at, "
    "last_error, dead_at"
)

# Due: neither delivered nor given up (dead), its time has come, and no earlier such row
# of the same ticket and URL (that one goes first, until it is delivered or given up).
DUE_IDS = (
    "SELECT n.id FROM notifications n "
    "WHERE n.delivered_at IS NULL AND n.dead_at IS NULL AND n.next_attempt_at <= {p} "
    "AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.ticket_id = n.ticket_id "
    "AND e.url = n.url AND e.delivered_at IS NULL AND e.dead_at IS NULL AND e.id < n.id) "
    "ORDER BY n.next_attempt_at, n.id LIMIT {p}"
)

# Give a row up: never sent again. A row delivered meanwhile (a late answer) stays delivered.
MARK_DEAD = (
    "UPDATE notifications SET dead_at = {p}, last_error = {p} "
    "WHERE id = {p} AND delivered_at IS NULL AND dead_at IS NULL"
)

# Settled rows past their keep window: delivered or given up before the cut-off.
PRUNE_SETTLED = "DELETE FROM notifications WHERE delivered_at < {p} OR dead_at < {p}"

# One ticket's rows, for the dashboard and the API: each event per receiver, in order.
TICKET_NOTIFICATIONS = (
    f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE ticket_id = {{p}} ORDER BY id"  # noqa: S608
)

QueuedEvent = tuple[int, str, str, float]  # ticket id, event, body, now


def queued_event(
    ticket_id: int, delivery_id: str, event: str, trigger: Trigger, now: float
) -> QueuedEvent:
    """The `ticket.queued` outbox entry of a ticket add_many has just inserted."""
    ticket = queued_ticket(ticket_id, delivery_id, event, trigger, now)
    return ticket_id, "ticket.queued", event_body("ticket.queued", ticket, now), now


def notification_from_row(row: Sequence[Any]) -> Notification:
    """A Notification from a row in `NOTIFICATION_COLUMNS` order."""
    (
        id_, ticket_id, url, event, body, created_at, attempts, next_at, delivered_at, error,
        dead_at,
    ) = row  # fmt: skip
    return Notification(
        id=int(id_),
        ticket_id=int(ticket_id),
        url=str(url),
        event=str(event),
        body=str(body),
        created_at=float(created_at),
        attempts=int(attempts),
        next_attempt_at=float(next_at),
        delivered_at=None if delivered_at is None else float(delivered_at),
        last_error=error,
        dead_at=None if dead_at is None else float(dead_at),
    )
