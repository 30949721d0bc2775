"""The shared store: PostgreSQL, for several bot processes on one or many hosts.

It behaves exactly like SQLiteStore (same tickets, same return values); what
it adds is safety between processes: claims lock rows with `FOR UPDATE SKIP
LOCKED` and take only the oldest queued ticket of an issue, a partial unique
index keeps one running ticket per issue, and migrations run under an
advisory lock. Every write commits before it returns, so a ticket
acknowledged with 202 is durable. A batch of deliveries is one statement,
the schema's function `autocode_add_tickets` (see add_many). The pool and the
migrations are in postgres_db.py, the notification outbox in postgres_outbox.py,
the ticket log lines in postgres_logs.py; here are the tickets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from psycopg import errors, sql

from ..errors import StoreError
from ..models import Ticket, TicketState, Trigger
from .base import UPDATABLE, column_name, column_value
from .pgbatch import ADD_QUEUED, ADD_TICKETS, add_queued_args, add_tickets_args, added
from .pgbatch import pg_text as _text
from .postgres_db import CONNECT_TIMEOUT, MIGRATION_LOCK, Conn, _passwords, redact_url
from .postgres_logs import PostgresLogs
from .postgres_outbox import PostgresOutbox
from .postgres_pulls import PostgresPulls
from .rows import COLUMNS, FAIR_ORDER, ticket_from_row

# What other modules import from here, the pool's names among them.
__all__ = ["CONNECT_TIMEOUT", "MIGRATION_LOCK", "Conn", "PostgresStore", "_passwords", "redact_url"]

log = logging.getLogger(__name__)

# The partial unique index of schema/postgres/001_init.sql: the backstop under claim.
ONE_RUNNING_INDEX = "tickets_one_running"
# Races one claim may lose (each lost race is another claimer's win) before it
# leaves the queue to the next poll.
CLAIM_ATTEMPTS = 32


class PostgresStore(PostgresLogs, PostgresOutbox, PostgresPulls):
    """TicketStore on a PostgreSQL database; safe for many threads and many processes."""

    inline_writes = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.safe_url!r})"

    # -- tickets -----------------------------------------------------------
    def add(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[int, bool]:
        return self.add_many([(delivery_id, event, trigger)])[0]

    def add_many(self, items: Sequence[tuple[str, str, Trigger]]) -> list[tuple[int, bool]]:
        """Store several deliveries in one transaction (one commit for all).

        One statement decides and stores the whole batch: `autocode_add_tickets`
        (schema/postgres/004_add_tickets.sql) runs the rule for each delivery in
        order, on the server. Without notify URLs that statement is its own
        transaction; with them, the ticket.queued rows of the new tickets are
        written in the same one.
        """
        if not items:
            return []
        now = time.time()
        args = add_tickets_args(items, now)
        if not self.notify_urls:
            with self._read("save the deliveries") as conn:
                return added(items, conn.execute(ADD_TICKETS, args).fetchall())
        with self._tx("save the deliveries") as conn:  # the tickets and their first events
            results = added(items, conn.execute(ADD_TICKETS, args).fetchall())
            queued = add_queued_args(items, results, now, self.notify_urls)
            if queued is not None:
                conn.execute(ADD_QUEUED, queued)
        return results

    def get(self, ticket_id: int) -> Ticket | None:
        with self._read("read a ticket") as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM tickets WHERE id = %s",  # noqa: S608
                (ticket_id,),
            ).fetchone()
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
        args: list[Any] = []
        if state is not None:
            where.append("state = %s")
            args.append(str(state))
        if repository is not None:
            where.append("repository = %s")
            args.append(repository)
        if before is not None:
            where.append("id < %s")
            args.append(before)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        with self._read("list tickets") as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM tickets {clause} ORDER BY id DESC LIMIT %s",  # noqa: S608
                (*args, limit),
            ).fetchall()
        return [ticket_from_row(r) for r in rows]

    def claim(self, worker_id: str, lease_seconds: float, now: float) -> Ticket | None:
        """Take the oldest queued ticket whose issue has none running, with a lease.

        Safe between processes under READ COMMITTED, without any table lock:

        - *Each ticket once.* The candidate is read with `FOR UPDATE OF t SKIP
          LOCKED LIMIT 1`: a row another claimer holds is skipped, not waited
          for; a row it has meanwhile committed as `running` is re-checked by
          PostgreSQL against `state = 'queued'` and skipped too. One row at a
          time, so a claimer never hides rows it will not take.
        - *One issue, one run, in order.* Only the oldest queued ticket of an
          issue is a candidate. To start a younger ticket Y of an issue, a
          claimer's snapshot must show every older ticket X of that issue as
          no longer queued, i.e. committed as running (then the issue is
          skipped) or finished. So two claimers can only ever compete for the
          same row X, which the row lock gives to one of them; and a claimer
          that skips a locked X never jumps to Y. Run one after another this
          picks exactly what SQLiteStore picks.
        - *A backstop in the schema.* The partial unique index
          `tickets_one_running` on (lane) WHERE state =
          'running' makes two running tickets of one issue impossible for any
          writer, whatever the reasoning above misses. Should an UPDATE hit it
          (it waits for the other transaction, then fails), its savepoint undoes
          the attempt and the next statement, with a fresh snapshot, looks
          further. Each lost race is another claimer's win, so attempts are
          bounded; a claimer waits only while it holds no uncommitted running
          row, so no deadlock is possible.
        """
        with self._tx("claim a ticket") as conn:
            for _ in range(CLAIM_ATTEMPTS):
                candidate = conn.execute(
                    "SELECT id FROM tickets t WHERE state = 'queued' "  # noqa: S608 (constants only)
                    "AND NOT EXISTS (SELECT 1 FROM tickets o WHERE o.lane = t.lane "
                    "AND (o.state = 'running' OR (o.state = 'queued' AND o.id < t.id))) "
                    f"{FAIR_ORDER} LIMIT 1 FOR UPDATE OF t SKIP LOCKED"
                ).fetchone()
                if candidate is None:
                    return None
                ticket_id = int(candidate[0])
                try:
                    with conn.transaction():
                        row = conn.execute(
                            "UPDATE tickets SET state = 'running', lease_owner = %s, "  # noqa: S608
                            "lease_expires_at = %s, attempts = attempts + 1, "
                            "started_at = coalesce(started_at, %s) "
                            f"WHERE id = %s RETURNING {COLUMNS}",
                            (_text(worker_id), now + lease_seconds, now, ticket_id),
                        ).fetchone()
                except errors.UniqueViolation as exc:
                    if exc.diag.constraint_name != ONE_RUNNING_INDEX:
                        raise
                    log.debug(
                        "claim lost a race for an issue",
                        extra={"ticket_id": ticket_id, "worker_id": worker_id},
                    )
                    continue
                return ticket_from_row(row) if row is not None else None
        log.info("claim gave up after lost races", extra={"worker_id": worker_id})
        return None

    def renew(self, ticket_id: int, worker_id: str, lease_seconds: float, now: float) -> bool:
        with self._tx("renew a lease") as conn:
            cur = conn.execute(
                "UPDATE tickets SET lease_expires_at = %s "
                "WHERE id = %s AND lease_owner = %s AND state = 'running'",
                (now + lease_seconds, ticket_id, _text(worker_id)),
            )
            return cur.rowcount == 1

    def update(self, ticket_id: int, **fields: Any) -> None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise StoreError(f"cannot update ticket fields {sorted(unknown)}")
        if not fields:
            return
        values = [_text(column_value(k, v)) for k, v in fields.items()]
        query = sql.SQL("UPDATE tickets SET {} WHERE id = %s").format(
            sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(column_name(k))) for k in fields
            )
        )
        with self._tx("update a ticket") as conn:
            conn.execute(query, (*values, ticket_id))

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
        with self._tx("finish a ticket") as conn:
            conn.execute(
                "UPDATE tickets SET state = %s, conclusion = coalesce(%s, conclusion), "
                "error = coalesce(%s, error), finished_at = %s, lease_owner = NULL, "
                "lease_expires_at = NULL WHERE id = %s",
                (str(state), _text(conclusion), _text(error), now, ticket_id),
            )

    def release(self, ticket_id: int, worker_id: str) -> None:
        with self._tx("release a ticket") as conn:
            conn.execute(
                "UPDATE tickets SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
                "attempts = greatest(attempts - 1, 0) "
                "WHERE id = %s AND lease_owner = %s AND state = 'running'",
                (ticket_id, _text(worker_id)),
            )

    def request_cancel(self, ticket_id: int, by: str) -> bool:
        with self._tx("request a cancel") as conn:
            cur = conn.execute(
                "UPDATE tickets SET cancel_requested_by = %s "
                "WHERE id = %s AND state IN ('queued', 'running')",
                (_text(by), ticket_id),
            )
            return cur.rowcount == 1

    def cancel_requests(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        if not ticket_ids:
            return {}
        with self._read("read cancel requests") as conn:
            rows = conn.execute(
                "SELECT id, cancel_requested_by FROM tickets WHERE id = ANY(%s) "
                "AND state = 'running' AND cancel_requested_by IS NOT NULL",
                (list(ticket_ids),),
            ).fetchall()
        return {int(i): str(by) for i, by in rows}

    def requeue_expired(self, now: float, max_attempts: int) -> list[Ticket]:
        """Queue again running tickets whose lease ran out; fail those out of attempts.

        The expired rows are locked (`SKIP LOCKED`: a ticket being claimed or
        renewed right now is left for the next sweep), so two processes
        sweeping at once never handle one ticket twice, and a ticket claimed
        again after our snapshot is re-checked by PostgreSQL and left alone.
        """
        failed: list[Ticket] = []
        with self._tx("requeue expired tickets") as conn:
            rows = conn.execute(
                "SELECT id, attempts FROM tickets WHERE state = 'running' "
                "AND lease_expires_at IS NOT NULL AND lease_expires_at < %s "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                (now,),
            ).fetchall()
            for ticket_id, attempts in rows:
                if attempts >= max_attempts:
                    row = conn.execute(
                        "UPDATE tickets SET state = 'failed', conclusion = 'failure', "  # noqa: S608
                        "error = 'the run was lost twice (its worker stopped); not retried again', "
                        "finished_at = %s, lease_owner = NULL, lease_expires_at = NULL "
                        f"WHERE id = %s RETURNING {COLUMNS}",
                        (now, ticket_id),
                    ).fetchone()
                    if row is not None:
                        failed.append(ticket_from_row(row))
                else:
                    conn.execute(
                        "UPDATE tickets SET state = 'queued', lease_owner = NULL, "
                        "lease_expires_at = NULL WHERE id = %s",
                        (ticket_id,),
                    )
        return failed

    def counts(self) -> dict[str, int]:
        with self._read("count tickets") as conn:
            rows = conn.execute("SELECT state, count(*) FROM tickets GROUP BY state").fetchall()
        return {state: int(n) for state, n in rows}

    def oldest_queued(self, now: float) -> float | None:
        with self._read("read the oldest queued ticket") as conn:
            row = conn.execute(
                "SELECT min(created_at) FROM tickets WHERE state = 'queued'"
            ).fetchone()
        return None if row is None or row[0] is None else max(0.0, now - float(row[0]))
