"""The shared store: PostgreSQL, for several bot processes on one or many hosts.

It behaves exactly like SQLiteStore (same tickets, same return values); what
it adds is safety between processes: claims lock rows with `FOR UPDATE SKIP
LOCKED` and take only the oldest queued ticket of an issue, a partial unique
index keeps one running ticket per issue, and migrations run under an
advisory lock. Every write commits before it returns, so a ticket
acknowledged with 202 is durable. A batch of deliveries is one statement,
the schema's function `autocode_add_tickets` (see add_many).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from ..errors import StoreError
from ..models import Ticket, TicketState, Trigger
from .base import NOTIFY_LEASE, UPDATABLE, LogLine, Notification, column_name, column_value
from .outbox import DUE_IDS, NOTIFICATION_COLUMNS, QueuedEvent, notification_from_row
from .pgbatch import ADD_QUEUED, ADD_TICKETS, add_queued_args, add_tickets_args, added
from .pgbatch import pg_text as _text
from .rows import COLUMNS, FAIR_ORDER, migrations, ticket_from_row

log = logging.getLogger(__name__)

# The key of the transaction-level advisory lock that serializes migrations of one
# database: "autocode" in ASCII, so it cannot be mistaken for another app's lock.
MIGRATION_LOCK = 0x6175746F636F6465
# The partial unique index of schema/postgres/001_init.sql: the backstop under claim.
ONE_RUNNING_INDEX = "tickets_one_running"
# Races one claim may lose (each lost race is another claimer's win) before it
# leaves the queue to the next poll.
CLAIM_ATTEMPTS = 32
CONNECT_TIMEOUT = 10

Conn = psycopg.Connection[TupleRow]


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, fit for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hostport}"
    query = "&".join(
        "password=***" if pair.split("=", 1)[0].lower() == "password" else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _passwords(url: str) -> list[str]:
    """Every spelling of the URL's password that could show up in a driver's message."""
    parts = urlsplit(url)
    found = []
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"]
    spelled = {p for raw in found for p in (raw, unquote(raw))}
    return sorted((p for p in spelled if p), key=len, reverse=True)


class PostgresStore:
    """TicketStore on a PostgreSQL database; safe for many threads and many processes."""

    inline_writes = False

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 8, notify_urls: Sequence[str] = ()
    ) -> None:
        self._url = url
        self.notify_urls = tuple(notify_urls)  # where each new ticket's ticket.queued goes
        self.safe_url = redact_url(url)
        self._secrets = _passwords(url)
        # A direct connection first: it fails fast with libpq's own reason (refused,
        # bad password, no such database), where a pool would only time out.
        self.migrate()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT,
                "application_name": "autocode-bot",
            },
            name="autocode-store",
            timeout=30,
            open=False,
        )
        try:
            with self._errors("open a connection pool"):
                self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.safe_url!r})"

    # -- connections -------------------------------------------------------
    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn driver errors into StoreError with a sentence that holds no password."""
        try:
            yield
        except psycopg.Error as exc:
            detail = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
            leaked = any(secret in detail for secret in self._secrets)
            for secret in self._secrets:
                detail = detail.replace(secret, "***")
            message = f"PostgreSQL could not {what} ({self.safe_url}): {detail}"
            raise StoreError(message) from (None if leaked else exc)

    @contextmanager
    def _read(self, what: str, timeout: float | None = None) -> Iterator[Conn]:
        """A pooled connection in autocommit: each read sees the latest commits."""
        with self._errors(what), self._pool.connection(timeout=timeout) as conn:
            yield conn

    @contextmanager
    def _tx(self, what: str) -> Iterator[Conn]:
        """A pooled connection inside one transaction, committed when the block ends."""
        with self._errors(what), self._pool.connection() as conn, conn.transaction():
            yield conn

    def migrate(self) -> int:
        """Apply the schema files not applied yet; return the schema version.

        One transaction holds `pg_advisory_xact_lock(MIGRATION_LOCK)` from the
        first statement on: a second process starting at the same moment waits,
        then finds the versions applied and does nothing. DDL is transactional
        in PostgreSQL, so a failed file leaves the schema as it was. Each file
        is sent whole, as one simple query (no parameters): the server splits
        its statements, so a function body's `;` inside `$…$` quotes is safe.
        """
        version = 0
        applied: list[int] = []
        with (
            self._errors("connect and migrate the schema"),
            psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="autocode-bot-migrate",
            ) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))"
            )
            done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
            version = max(done, default=0)
            for number, text in migrations("postgres"):
                if number in done:
                    continue
                conn.execute(text.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
                applied.append(number)
                version = number
        if applied:
            log.info(
                "schema migrated",
                extra={"database": self.safe_url, "applied": applied, "schema_version": version},
            )
        return version

    def schema_version(self) -> int:
        with self._read("read the schema version") as conn:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

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

    # -- logs --------------------------------------------------------------
    def log(self, ticket_id: int, kind: str, message: str, now: float) -> None:
        with self._tx("write a ticket log line") as conn:
            conn.execute(
                "INSERT INTO ticket_logs (ticket_id, at, kind, message) VALUES (%s, %s, %s, %s)",
                (ticket_id, now, _text(kind), _text(message)),
            )

    def logs(self, ticket_id: int, after: int = 0, limit: int = 1000) -> list[LogLine]:
        with self._read("read ticket logs") as conn:
            rows = conn.execute(
                "SELECT id, ticket_id, at, kind, message FROM ticket_logs "
                "WHERE ticket_id = %s AND id > %s ORDER BY id LIMIT %s",
                (ticket_id, after, limit),
            ).fetchall()
        return [LogLine(int(i), int(t), float(at), kind, msg) for i, t, at, kind, msg in rows]

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

    def mark_failed(self, notification_id: int, now: float, next_at: float, error: str) -> None:
        with self._tx("record a failed notification") as conn:
            conn.execute(
                "UPDATE notifications SET next_attempt_at = %s, last_error = %s "
                "WHERE id = %s AND delivered_at IS NULL",
                (next_at, _text(error[:1000]), notification_id),
            )

    def ping(self) -> None:
        """Raise StoreError when the database cannot answer within a few seconds."""
        with self._read("answer a ping", timeout=5) as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._pool.close()
