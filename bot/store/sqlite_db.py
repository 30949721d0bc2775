"""The SQLite plumbing under SQLiteStore: connections, transactions, migrations.

Each thread has its own connection; writers of one process queue on a lock,
then take the database with BEGIN IMMEDIATE. Every write commits before it
returns (`synchronous=FULL`), so a ticket acknowledged with 202 survives a
crash of the process or the machine.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreError
from .rows import migrations


class SQLiteDatabase:
    """One SQLite file in WAL mode, shared between the threads of one process."""

    def __init__(self, path: str | Path, *, notify_urls: Sequence[str] = ()) -> None:
        self.path = str(path)
        self.notify_urls = tuple(notify_urls)  # where each new ticket's ticket.queued goes
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        # Writers of this process queue here instead of spinning in SQLite's busy handler.
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self.migrate()

    # -- connections -------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the SQLite database {self.path}: {exc}") from exc
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"database unavailable: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise StoreError(f"database commit failed: {exc}") from exc

    def migrate(self) -> int:
        """Apply the schema files not applied yet; return the schema version."""
        with self._tx() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL DEFAULT (unixepoch()))"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            version = max(done, default=0)
            for number, sql in migrations("sqlite"):
                if number in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
                version = number
        return version

    def schema_version(self) -> int:
        row = self._conn().execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def ping(self) -> None:
        """Raise StoreError when the database cannot answer."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"database unavailable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
