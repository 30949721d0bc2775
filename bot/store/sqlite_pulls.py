"""A pull request's tickets in SQLiteStore: its history, and who pushed a commit."""

from __future__ import annotations

from ..models import Ticket
from .pulls import PULL_TICKETS, PUSHER
from .rows import ticket_from_row
from .sqlite_db import SQLiteDatabase

_PULL_TICKETS = PULL_TICKETS.format(p="?")
_PUSHER = PUSHER.format(p="?")


class SQLitePulls(SQLiteDatabase):
    """The pull-request reads of SQLiteStore."""

    def pull_tickets(self, repository: str, number: int, limit: int = 500) -> list[Ticket]:
        rows = self._conn().execute(_PULL_TICKETS, (repository, number, number, limit))
        return [ticket_from_row(r) for r in rows]

    def pusher(self, repository: str, sha: str) -> Ticket | None:
        row = self._conn().execute(_PUSHER, (repository, sha)).fetchone()
        return ticket_from_row(row) if row else None
