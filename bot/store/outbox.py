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
    "last_error"
)

# Due: not delivered, its time has come, and no earlier undelivered row of the same
# ticket and URL (that one goes first, however long it keeps failing).
DUE_IDS = (
    "SELECT n.id FROM notifications n "
    "WHERE n.delivered_at IS NULL AND n.next_attempt_at <= {p} "
    "AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.ticket_id = n.ticket_id "
    "AND e.url = n.url AND e.delivered_at IS NULL AND e.id < n.id) "
    "ORDER BY n.next_attempt_at, n.id LIMIT {p}"
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
    id_, ticket_id, url, event, body, created_at, attempts, next_at, delivered_at, error = row
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
    )
