"""The ticket log lines of PostgresStore: append one, read them in order."""

from __future__ import annotations

from .base import LogLine
from .pgbatch import pg_text as _text
from .postgres_db import PostgresDatabase


class PostgresLogs(PostgresDatabase):
    """The log-line methods of PostgresStore, on its connections and transactions."""

    # -- logs --------------------------------------------------------------
    def log(self, ticket_id: int, kind: str, message: str, now: float) -> None:
        with self._tx("write a ticket log line") as conn:
            conn.execute(
                "INSERT INTO ticket_logs (ticket_id, at, kind, message) VALUES (%s, %s, %s, %s)",
                (ticket_id, now, _text(kind), _text(message)),
            )

    def prune_logs(self, finished_before: float) -> int:
        """Delete the log lines of tickets that finished before then; how many went."""
        with self._tx("prune ticket logs") as conn:
            cursor = conn.execute(
                "DELETE FROM ticket_logs WHERE ticket_id IN (SELECT id FROM tickets "
                "WHERE finished_at IS NOT NULL AND finished_at < %s)",
                (finished_before,),
            )
            return int(cursor.rowcount)

    def logs(self, ticket_id: int, after: int = 0, limit: int = 1000) -> list[LogLine]:
        with self._read("read ticket logs") as conn:
            rows = conn.execute(
                "SELECT id, ticket_id, at, kind, message FROM ticket_logs "
                "WHERE ticket_id = %s AND id > %s ORDER BY id LIMIT %s",
                (ticket_id, after, limit),
            ).fetchall()
        return [LogLine(int(i), int(t), float(at), kind, msg) for i, t, at, kind, msg in rows]
