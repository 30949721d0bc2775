"""The ticket log lines of SQLiteStore: append one, read them in order."""

from __future__ import annotations

from .base import LogLine
from .sqlite_db import SQLiteDatabase


class SQLiteLogs(SQLiteDatabase):
    """The log-line methods of SQLiteStore, on its connections and transactions."""

    # -- logs --------------------------------------------------------------
    def log(self, ticket_id: int, kind: str, message: str, now: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO ticket_logs (ticket_id, at, kind, message) VALUES (?, ?, ?, ?)",
                (ticket_id, now, kind, message),
            )

    def logs(self, ticket_id: int, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = self._conn().execute(
            "SELECT id, ticket_id, at, kind, message FROM ticket_logs "
            "WHERE ticket_id = ? AND id > ? ORDER BY id LIMIT ?",
            (ticket_id, after, limit),
        )
        return [LogLine(*r) for r in rows]
