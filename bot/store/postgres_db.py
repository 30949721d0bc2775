"""The PostgreSQL plumbing under PostgresStore: the pool, its errors, the migrations.

Driver errors become StoreError with a sentence that holds no password, and
migrations run under an advisory lock, so processes starting together apply
each schema file once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from ..errors import StoreError
from .rows import migrations

# Records are logged under bot.store.postgres, the module PostgresStore is imported from.
log = logging.getLogger("bot.store.postgres")

# The key of the transaction-level advisory lock that serializes migrations of one
# database: "autocode" in ASCII, so it cannot be mistaken for another app's lock.
MIGRATION_LOCK = 0x6175746F636F6465
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


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database, migrated when it opens."""

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

    def ping(self) -> None:
        """Raise StoreError when the database cannot answer within a few seconds."""
        with self._read("answer a ping", timeout=5) as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._pool.close()
