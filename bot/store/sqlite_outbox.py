"""The notification outbox of SQLiteStore: queue, claim and settle outbox rows."""

from __future__ import annotations

import sqlite3
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
from .sqlite_db import SQLiteDatabase


class SQLiteOutbox(SQLiteDatabase):
    """The outbox methods of SQLiteStore, on its connections and transactions."""

    # -- the notification outbox -------------------------------------------
    def _outbox(
        self, conn: sqlite3.Connection, queued: QueuedEvent, urls: Sequence[str] | None = None
    ) -> list[int]:
        ticket_id, event, body, now = queued
        return [
            int(
                conn.execute(
                    "INSERT INTO notifications (ticket_id, url, event, body, created_at, "
                    "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (ticket_id, url, event, body, now, now),
                ).fetchone()[0]
            )
            for url in (self.notify_urls if urls is None else urls)
        ]

    def enqueue_notifications(
        self, ticket_id: int, event: str, body: str, urls: Sequence[str], now: float
    ) -> list[int]:
        if not urls:
            return []
        with self._tx() as conn:
            return self._outbox(conn, (ticket_id, event, body, now), urls)

    def due_notifications(
        self, now: float, limit: int, *, lease_seconds: float = NOTIFY_LEASE
    ) -> list[Notification]:
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute(DUE_IDS.format(p="?"), (now, limit))]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            rows = conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, "  # noqa: S608
                f"next_attempt_at = ? WHERE id IN ({marks}) RETURNING {NOTIFICATION_COLUMNS}",
                (now + lease_seconds, *ids),
            ).fetchall()
        return sorted((notification_from_row(r) for r in rows), key=lambda n: n.id)

    def mark_delivered(self, notification_id: int, now: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE notifications SET delivered_at = ?, last_error = NULL WHERE id = ?",
                (now, notification_id),
            )

    def prune_notifications(self, settled_before: float) -> int:
        """Delete notifications delivered or given up before then; how many went."""
        with self._tx() as conn:
            cursor = conn.execute(PRUNE_SETTLED.format(p="?"), (settled_before, settled_before))
            return int(cursor.rowcount)

    def mark_failed(self, notification_id: int, now: float, next_at: float, error: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE notifications SET next_attempt_at = ?, last_error = ? "
                "WHERE id = ? AND delivered_at IS NULL",
                (next_at, error[:1000], notification_id),
            )

    def mark_dead(self, notification_id: int, now: float, error: str) -> None:
        with self._tx() as conn:
            conn.execute(MARK_DEAD.format(p="?"), (now, error[:1000], notification_id))

    def notifications(self, ticket_id: int) -> list[Notification]:
        rows = self._conn().execute(TICKET_NOTIFICATIONS.format(p="?"), (ticket_id,))
        return [notification_from_row(r) for r in rows.fetchall()]
