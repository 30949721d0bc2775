"""The notification outbox of PostgresStore: queue, claim and settle outbox rows."""

from __future__ import annotations

from collections.abc import Sequence

from .base import NOTIFY_LEASE, Notification
from .outbox import (
    DUE_IDS,
    MARK_DEAD,
    NOTIFICATION_COLUMNS,
    PRUNE_SETTLED,
    TICKET_NOTIFICATIONS,
    QueuedEvent,
    notification_from_row,
)
from .pgbatch import pg_text as _text
from .postgres_db import Conn, PostgresDatabase


class PostgresOutbox(PostgresDatabase):
    """The outbox methods of PostgresStore, on its pooled connections and transactions."""

    # -- the notification outbox -------------------------------------------
    def _outbox(
        self, conn: Conn, queued: QueuedEvent, urls: Sequence[str] | None = None
    ) -> list[int]:
        ticket_id, event, body, now = queued
        ids = []
        for url in self.notify_urls if urls is None else urls:
            row = conn.execute(
                "INSERT INTO notifications (ticket_id, url, event, body, created_at, "
                "next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (ticket_id, _text(url), _text(event), _text(body), now, now),
            ).fetchone()
            assert row is not None  # INSERT … RETURNING always returns its row
            ids.append(int(row[0]))
        return ids

    def enqueue_notifications(
        self, ticket_id: int, event: str, body: str, urls: Sequence[str], now: float
    ) -> list[int]:
        if not urls:
            return []
        with self._tx("queue notifications") as conn:
            return self._outbox(conn, (ticket_id, event, body, now), urls)

    def due_notifications(
        self, now: float, limit: int, *, lease_seconds: float = NOTIFY_LEASE
    ) -> list[Notification]:
        """Claim due rows; `FOR UPDATE SKIP LOCKED` leaves rows another notifier is claiming."""
        with self._tx("claim due notifications") as conn:
            rows = conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = %s "  # noqa: S608
                f"WHERE id IN ({DUE_IDS.format(p='%s')} FOR UPDATE OF n SKIP LOCKED) "
                f"RETURNING {NOTIFICATION_COLUMNS}",
                (now + lease_seconds, now, limit),
            ).fetchall()
        return sorted((notification_from_row(r) for r in rows), key=lambda n: n.id)

    def mark_delivered(self, notification_id: int, now: float) -> None:
        with self._tx("mark a notification delivered") as conn:
            conn.execute(
                "UPDATE notifications SET delivered_at = %s, last_error = NULL WHERE id = %s",
                (now, notification_id),
            )

    def prune_notifications(self, settled_before: float) -> int:
        """Delete notifications delivered or given up before then; how many went."""
        with self._tx("prune settled notifications") as conn:
            cursor = conn.execute(PRUNE_SETTLED.format(p="%s"), (settled_before, settled_before))
            return int(cursor.rowcount)

    def mark_failed(self, notification_id: int, now: float, next_at: float, error: str) -> None:
        with self._tx("record a failed notification") as conn:
            conn.execute(
                "UPDATE notifications SET next_attempt_at = %s, last_error = %s "
                "WHERE id = %s AND delivered_at IS NULL",
                (next_at, _text(error[:1000]), notification_id),
            )

    def mark_dead(self, notification_id: int, now: float, error: str) -> None:
        with self._tx("give a notification up") as conn:
            conn.execute(MARK_DEAD.format(p="%s"), (now, _text(error[:1000]), notification_id))

    def notifications(self, ticket_id: int) -> list[Notification]:
        with self._read("read a ticket's notifications") as conn:
            rows = conn.execute(TICKET_NOTIFICATIONS.format(p="%s"), (ticket_id,)).fetchall()
        return [notification_from_row(r) for r in rows]
