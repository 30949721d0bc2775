"""The database, read only: never created or migrated here."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...config import Settings
from .check import Check, fail

# --- database ---------------------------------------------------------------------


def _latest(dialect: str) -> int:
    from ...store.rows import migrations

    return max((n for n, _ in migrations(dialect)), default=0)


def _judge(name: str, where: str, version: int, latest: int) -> Check:
    """A schema version against this bot's: newer is wrong, older is migrated at start."""
    if version > latest:
        return fail(
            name,
            f"{where}: schema version {version} is newer than this bot's {latest}",
            "upgrade the bot (pip install -U) to the version that wrote this database",
        )
    if version < latest:
        return Check(
            name,
            True,
            f"{where}: schema version {version}; `autocode serve` and `autocode worker` "
            f"migrate it to {latest} when they start",
        )
    return Check(name, True, f"{where}, schema version {version}")


def _writable_folder(path: Path) -> Path | None:
    """The nearest existing folder of `path` when the bot could create `path` there."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else None


def _absent_sqlite(name: str, path: Path, latest: int) -> Check:
    """A database file not there yet: fine when the bot can create it."""
    folder = _writable_folder(path)
    if folder is None:
        return fail(
            name,
            f"{path} does not exist, and the bot could not create it: no writable folder "
            "on its way",
            f"make {path.parent} (or the nearest folder above it) writable by the bot's "
            "user, or point AUTOCODE_DATABASE_URL elsewhere",
        )
    return Check(
        name,
        True,
        f"{path} does not exist yet: `autocode serve` (or `autocode worker`) creates it "
        f"with schema version {latest}; {folder} is writable",
    )


def _read_sqlite(name: str, path: Path, latest: int) -> Check:
    """Open the file read-only and judge its schema version."""
    import sqlite3
    from urllib.parse import quote

    # Read-only, so nothing is migrated; `immutable` when no journal is there (no bot has it
    # open), or even a read-only open would leave an empty -wal and -shm beside the file.
    wal = path.with_name(path.name + "-wal")
    uri = f"file:{quote(str(path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
    except sqlite3.Error as exc:
        return fail(name, f"{path}: cannot open it ({exc})", "check the file's permissions")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = None
        if "schema_migrations" in tables:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except sqlite3.Error as exc:
        return fail(
            name,
            f"{path}: not a database this bot can read ({exc})",
            "point AUTOCODE_DATABASE_URL at the bot's database, or move this file away",
        )
    finally:
        conn.close()
    if row is None and tables:
        return fail(
            name,
            f"{path} holds tables of something else (no schema_migrations table)",
            "point AUTOCODE_DATABASE_URL at the bot's own database file",
        )
    return _judge(name, str(path), int(row[0] or 0) if row else 0, latest)


def _check_sqlite(settings: Settings) -> Check:
    """Read the file as it is: nothing is created, migrated or left behind."""
    name = "database"
    path = Path(settings.sqlite_path).expanduser().resolve()
    latest = _latest("sqlite")
    if not path.exists():
        return _absent_sqlite(name, path, latest)
    if not path.is_file():
        return fail(name, f"{path} is not a file", "point AUTOCODE_DATABASE_URL at a file")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return fail(
            name,
            f"{path}: the bot's user cannot write it, or its folder (SQLite keeps a journal "
            "beside the file)",
            f"give the bot's user write access to {path} and {path.parent}",
        )
    return _read_sqlite(name, path, latest)


def _check_postgres(settings: Settings) -> Check:
    """Connect and read the schema version; migrations are left to `serve` and `worker`."""
    import psycopg

    from ...store.postgres import CONNECT_TIMEOUT, _passwords, redact_url

    name = "database"
    where = redact_url(settings.database_url)
    try:
        with psycopg.connect(
            settings.database_url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="autocode-doctor",
        ) as conn:
            # SQL_ASCII (initdb without a UTF-8 locale): text would come back as bytes
            encoding = conn.info.parameter_status("client_encoding") or ""
            table = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            row = None
            if table and table[0] is not None:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except psycopg.Error as exc:
        detail = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
        for secret in _passwords(settings.database_url):
            detail = detail.replace(secret, "***")
        return fail(
            name,
            f"{where}: cannot connect ({detail})"[:400],
            "start PostgreSQL, or correct AUTOCODE_DATABASE_URL (host, port, user, password, "
            "database)",
        )
    if encoding.upper() == "SQL_ASCII":
        return fail(
            name,
            f"{where}: the database's encoding is SQL_ASCII, so the bot would read text back "
            "undecoded",
            "use a database made with ENCODING 'UTF8' (the official postgres image's default), "
            "or set PGCLIENTENCODING=UTF8 in the bot's environment",
        )
    if row is None:
        latest = _latest("postgres")
        return Check(
            name,
            True,
            f"{where}: connected, no tables yet; `autocode serve` (or `autocode worker`) "
            f"creates them (schema version {latest}) when it starts",
        )
    return _judge(name, where, int(row[0] or 0), _latest("postgres"))


def check_database(settings: Settings) -> Check:
    """The store is there (or can be made) and its schema is this bot's; nothing is written.

    A doctor run on a fresh machine leaves no database behind: `autocode
    serve` and `autocode worker` create and migrate it when they start.
    """
    if settings.database_url.startswith("sqlite://"):
        return _check_sqlite(settings)
    if settings.database_url.startswith(("postgresql://", "postgres://")):
        return _check_postgres(settings)
    return fail(
        "database",
        "AUTOCODE_DATABASE_URL must start with sqlite:// or postgresql://",
        "correct AUTOCODE_DATABASE_URL",
    )
