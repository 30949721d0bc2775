"""A pull request's tickets in PostgresStore: its history, and who pushed a commit."""

from __future__ import annotations

from ..models import Ticket
from .postgres_db import PostgresDatabase
from .pulls import PULL_TICKETS, PUSHER
from .rows import ticket_from_row

_PULL_TICKETS = PULL_TICKETS.format(p="%s")
_PUSHER = PUSHER.format(p="%s")


class PostgresPulls(PostgresDatabase):
    """The pull-request reads of PostgresStore."""

    def pull_tickets(self, repository: str, number: int, limit: int = 500) -> list[Ticket]:
        with self._read("read a pull request's tickets") as conn:
            rows = conn.execute(_PULL_TICKETS, (repository, number, number, limit)).fetchall()
        return [ticket_from_row(r) for r in rows]

    def pusher(self, repository: str, sha: str) -> Ticket | None:
        with self._read("find who pushed a commit") as conn:
            row = conn.execute(_PUSHER, (repository, sha)).fetchone()
        return ticket_from_row(row) if row else None
