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

    def prune_logs(self, finished_before: float) -> int:
        """Delete the log lines of tickets that finished before then; how many went."""
        with self._tx() as conn:
            cursor = conn.execute(
                "DELETE FROM ticket_logs WHERE ticket_id IN (SELECT id FROM tickets "
                "WHERE finished_at IS NOT NULL AND finished_at < ?)",
                (finished_before,),
            )
            return int(cursor.rowcount)

    def logs(self, ticket_id: int, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = self._conn().execute(
            "SELECT id, ticket_id, at, kind, message FROM ticket_logs "
            "WHERE ticket_id = ? AND id > ? ORDER BY id LIMIT ?",
            (ticket_id, after, limit),
        )
        return [LogLine(*r) for r in rows]
