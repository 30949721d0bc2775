"""The arguments PostgresStore.add_many sends: a batch as one array per column.

Pure: values in, statement arguments out, no connection. The rule itself is
the function `autocode_add_tickets` of schema/postgres/004_add_tickets.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ..errors import StoreError
from ..models import COALESCE_SECONDS, Trigger
from .outbox import queued_event

T = TypeVar("T")

Items = Sequence[tuple[str, str, Trigger]]  # (delivery id, event, trigger) of each delivery

# Arguments in binary (%b): psycopg dumps an array of binary values several times faster.
# One row per delivery, in the order of the batch (`item` is its position, from 1).
ADD_TICKETS = (
    "SELECT ticket_id, created FROM autocode_add_tickets("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[], "
    "%b::boolean[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
    "%b::boolean[], %b, %b) ORDER BY item"
)
# The ticket.queued outbox rows of a batch's new tickets, one per ticket and URL, in order.
ADD_QUEUED = (
    "INSERT INTO notifications (ticket_id, url, event, body, created_at, next_attempt_at) "
    "SELECT q.ticket_id, q.url, q.event, q.body, %b, %b "
    "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[]) "
    "AS q (ticket_id, url, event, body)"
)


def pg_text(value: T) -> T:
    """A string PostgreSQL can store: TEXT refuses NUL, which SQLite keeps.

    Webhook payloads are untrusted; a NUL in an issue title must not make a
    delivery fail forever, so it becomes U+FFFD (the replacement character).
    """
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")  # type: ignore[return-value]
    return value


def add_tickets_args(items: Items, now: float) -> tuple[Any, ...]:
    """The arguments of `ADD_TICKETS` for these deliveries, made at `now`."""
    rows = [
        (
            pg_text(delivery_id),
            pg_text(event),
            pg_text(trigger.kind),
            pg_text(trigger.repository),
            pg_text(trigger.clone_url),
            trigger.installation_id,
            trigger.number,
            bool(trigger.is_pull_request),
            pg_text(trigger.title),
            pg_text(trigger.body),
            pg_text(trigger.requested_by),
            pg_text(trigger.instructions),
            trigger.origin.to_json(),
            pg_text(trigger.lane),
            trigger.bare,
        )
        for delivery_id, event, trigger in items
    ]
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 15
    return (*columns, now, now - COALESCE_SECONDS)


def added(items: Items, rows: Sequence[Sequence[Any]]) -> list[tuple[int, bool]]:
    """(ticket id, created) of each delivery, from the rows of `ADD_TICKETS`."""
    if len(rows) != len(items):
        raise StoreError(f"{len(items)} deliveries were sent but {len(rows)} came back")
    return [(int(ticket_id), bool(created)) for ticket_id, created in rows]


def add_queued_args(
    items: Items, results: Sequence[tuple[int, bool]], now: float, urls: Sequence[str]
) -> tuple[Any, ...] | None:
    """The arguments of `ADD_QUEUED` for the batch's new tickets; None when there are none."""
    ticket_ids: list[int] = []
    to: list[str] = []
    events: list[str] = []
    bodies: list[str] = []
    for (delivery_id, event, trigger), (ticket_id, created) in zip(items, results, strict=True):
        if not created:
            continue
        _, name, body, _ = queued_event(ticket_id, delivery_id, event, trigger, now)
        for url in urls:
            ticket_ids.append(ticket_id)
            to.append(pg_text(url))
            events.append(pg_text(name))
            bodies.append(pg_text(body))
    if not ticket_ids:
        return None
    return now, now, ticket_ids, to, events, bodies
