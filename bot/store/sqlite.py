"""The embedded store: one SQLite file in WAL mode.

Every write commits before it returns (`synchronous=FULL`), so a ticket
acknowledged with 202 survives a crash of the process or the machine. The
connections and the migrations are in sqlite_db.py, the notification outbox in
sqlite_outbox.py, the ticket log lines in sqlite_logs.py; here are the tickets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..errors import StoreError
from ..models import COALESCE_SECONDS, Ticket, TicketState, Trigger
from .base import UPDATABLE, column_name, column_value
from .outbox import queued_event
from .rows import COLUMNS as _COLUMNS
from .rows import FAIR_ORDER, migrations, ticket_from_row
from .sqlite_logs import SQLiteLogs
from .sqlite_outbox import SQLiteOutbox
from .sqlite_pulls import SQLitePulls

__all__ = ["SQLiteStore", "migrations", "ticket_from_row"]


# A bare request (label, or the command without new instructions) joins the bare ticket
# of its lane still queued or running, made less than COALESCE_SECONDS ago.
_JOINABLE = (
    "SELECT id FROM tickets WHERE lane = ? AND bare = 1 AND state IN ('queued', 'running') "
    "AND created_at > ? ORDER BY id LIMIT 1"
)
_BY_DELIVERY = "SELECT id FROM tickets WHERE delivery_id = ?"
# No RETURNING: the cursor's rowcount and lastrowid say the same for half the work.
_INSERT = (
    "INSERT INTO tickets (delivery_id, event, kind, repository, clone_url, installation_id, "
    "number, is_pull_request, title, body, requested_by, instructions, context, state, "
    "created_at, lane, bare) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) "
    "ON CONFLICT (delivery_id) DO NOTHING"
)


class SQLiteStore(SQLiteLogs, SQLiteOutbox, SQLitePulls):
    """TicketStore on one SQLite file; safe to share between threads of one process."""

    inline_writes = True

    # -- tickets -----------------------------------------------------------
    def add(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[int, bool]:
        return self.add_many([(delivery_id, event, trigger)])[0]

    def add_many(self, items: Sequence[tuple[str, str, Trigger]]) -> list[tuple[int, bool]]:
        """Store several deliveries in one transaction (one disk sync for all).

        The rule, for each delivery in order: its delivery's ticket if it has
        one; else, for a bare trigger, the ticket it joins; else a new ticket.
        The INSERT skips a stored delivery itself (ON CONFLICT), so a new
        ticket costs one statement, a bare one two. The write lock and BEGIN
        IMMEDIATE keep every other writer out meanwhile.
        """
        now = time.time()
        since = now - COALESCE_SECONDS
        results: list[tuple[int, bool]] = []
        with self._tx() as conn:
            for delivery_id, event, trigger in items:
                bare = trigger.bare
                if bare:
                    joined = conn.execute(_JOINABLE, (trigger.lane, since)).fetchone()
                    if joined is not None:  # unless the delivery has its own ticket
                        own = conn.execute(_BY_DELIVERY, (delivery_id,)).fetchone()
                        results.append((int((own or joined)[0]), False))
                        continue
                cursor = conn.execute(
                    _INSERT,
                    (
                        delivery_id,
                        event,
                        trigger.kind,
                        trigger.repository,
                        trigger.clone_url,
                        trigger.installation_id,
                        trigger.number,
                        int(trigger.is_pull_request),
                        trigger.title,
                        trigger.body,
                        trigger.requested_by,
                        trigger.instructions,
                        trigger.origin.to_json(),
                        now,
                        trigger.lane,
                        int(bare),
                    ),
                )
                if cursor.rowcount == 1 and cursor.lastrowid is not None:
                    ticket_id = cursor.lastrowid
                    results.append((ticket_id, True))
                    if self.notify_urls:  # the ticket and its first event commit together
                        queued = queued_event(ticket_id, delivery_id, event, trigger, now)
                        self._outbox(conn, queued)
                    continue
                found = conn.execute(_BY_DELIVERY, (delivery_id,)).fetchone()
                if found is None:
                    raise StoreError(f"delivery {delivery_id} was not stored and has no ticket")
                results.append((int(found[0]), False))
        return results

    def get(self, ticket_id: int) -> Ticket | None:
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,))  # noqa: S608
            .fetchone()
        )
        return ticket_from_row(row) if row else None

    def tickets(
        self,
        *,
        state: TicketState | None = None,
        repository: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[Ticket]:
        where: list[str] = []
        args: list[object] = []
        if state is not None:
            where.append("state = ?")
            args.append(str(state))
        if repository is not None:
            where.append("repository = ?")
            args.append(repository)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM tickets {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [ticket_from_row(r) for r in rows]

    def claim(self, worker_id: str, lease_seconds: float, now: float) -> Ticket | None:
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM tickets t WHERE state = 'queued' "  # noqa: S608
                "AND NOT EXISTS (SELECT 1 FROM tickets r WHERE r.state = 'running' "
                f"AND r.lane = t.lane) {FAIR_ORDER} LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            ticket = ticket_from_row(row)
            conn.execute(
                "UPDATE tickets SET state = 'running', lease_owner = ?, lease_expires_at = ?, "
                "attempts = attempts + 1, started_at = coalesce(started_at, ?) WHERE id = ?",
                (worker_id, now + lease_seconds, now, ticket.id),
            )
        return self.get(ticket.id)

    def renew(self, ticket_id: int, worker_id: str, lease_seconds: float, now: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE tickets SET lease_expires_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = 'running'",
                (now + lease_seconds, ticket_id, worker_id),
            )
            return cur.rowcount == 1

    def update(self, ticket_id: int, **fields: Any) -> None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise StoreError(f"cannot update ticket fields {sorted(unknown)}")
        if not fields:
            return
        values = [column_value(k, v) for k, v in fields.items()]
        assignments = ", ".join(f"{column_name(k)} = ?" for k in fields)
        with self._tx() as conn:
            conn.execute(
                f"UPDATE tickets SET {assignments} WHERE id = ?",  # noqa: S608
                (*values, ticket_id),
            )

    def finish(
        self,
        ticket_id: int,
        state: TicketState,
        now: float,
        *,
        conclusion: str | None = None,
        error: str | None = None,
    ) -> None:
        if not state.final:
            raise StoreError(f"{state} is not a final state")
        with self._tx() as conn:
            conn.execute(
                "UPDATE tickets SET state = ?, conclusion = coalesce(?, conclusion), "
                "error = coalesce(?, error), finished_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL WHERE id = ?",
                (str(state), conclusion, error, now, ticket_id),
            )

    def release(self, ticket_id: int, worker_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE tickets SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
                "attempts = max(attempts - 1, 0) "
                "WHERE id = ? AND lease_owner = ? AND state = 'running'",
                (ticket_id, worker_id),
            )

    def requeue_expired(self, now: float, max_attempts: int) -> list[Ticket]:
        failed: list[int] = []
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, attempts FROM tickets WHERE state = 'running' "
                "AND lease_expires_at IS NOT NULL AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for ticket_id, attempts in rows:
                if attempts >= max_attempts:
                    conn.execute(
                        "UPDATE tickets SET state = 'failed', conclusion = 'failure', "
                        "error = 'the run was lost twice (its worker stopped); not retried again', "
                        "finished_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                        "WHERE id = ?",
                        (now, ticket_id),
                    )
                    failed.append(ticket_id)
                else:
                    conn.execute(
                        "UPDATE tickets SET state = 'queued', lease_owner = NULL, "
                        "lease_expires_at = NULL WHERE id = ?",
                        (ticket_id,),
                    )
        return [t for t in (self.get(i) for i in failed) if t is not None]

    def request_cancel(self, ticket_id: int, by: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE tickets SET cancel_requested_by = ? "
                "WHERE id = ? AND state IN ('queued', 'running')",
                (by, ticket_id),
            )
            return cur.rowcount == 1

    def cancel_requests(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        if not ticket_ids:
            return {}
        marks = ", ".join("?" for _ in ticket_ids)
        rows = self._conn().execute(
            f"SELECT id, cancel_requested_by FROM tickets WHERE id IN ({marks}) "  # noqa: S608
            "AND state = 'running' AND cancel_requested_by IS NOT NULL",
            tuple(ticket_ids),
        )
        return {int(i): str(by) for i, by in rows}

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT state, count(*) FROM tickets GROUP BY state")
        return {state: int(n) for state, n in rows}

    def oldest_queued(self, now: float) -> float | None:
        row = (
            self._conn()
            .execute("SELECT min(created_at) FROM tickets WHERE state = 'queued'")
            .fetchone()
        )
        return None if row is None or row[0] is None else max(0.0, now - float(row[0]))
