"""A throw-away PostgreSQL cluster for the tests: the real server, on 127.0.0.1 only.

Debian's `postgresql` package provides the binaries (`.ci/run` installs it);
no system service is used. `initdb` refuses to run as root, so as root the
cluster belongs to the `postgres` user the package creates. The password is
real (scram-sha-256 over TCP), so URLs carry one, as in production.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

USER = "autocode"
PASSWORD = "pg-test-secret-6f1d"  # a throw-away cluster on loopback
MISSING = (
    "the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) "
    "are missing; .ci/run installs postgresql"
)


class PostgresMissing(RuntimeError):
    """PostgreSQL is not installed here."""


def binaries() -> Path:
    """The bin folder of the newest installed PostgreSQL server."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [b for b in found if (b / "pg_ctl").exists() and b.parent.name.isdigit()]
    if not found:
        raise PostgresMissing(MISSING)
    return max(found, key=lambda b: int(b.parent.name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    """Run as `postgres` when we are root (initdb refuses root), else as ourselves."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _give_to_owner(path: Path) -> None:
    """Hand a path to the user the server runs as (only needed when we are root)."""
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(f"there is no postgres user; {MISSING}") from None
    os.chown(path, owner.pw_uid, owner.pw_gid)


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_owner(argv), cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{Path(argv[0]).name} failed: {output}")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster; yield the URL of its `postgres` database; stop and delete it."""
    bindir = binaries()
    root = Path(tempfile.mkdtemp(prefix="autocode-pg-"))
    try:
        _give_to_owner(root)
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        _give_to_owner(pwfile)
        data = root / "data"
        _run(
            [
                str(bindir / "initdb"),
                "-D", str(data),
                "-U", USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
            ],
            root,
        )  # fmt: skip
        url = _start(bindir, root, data)
        try:
            yield url
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(bindir: Path, root: Path, data: Path) -> str:
    """Start the server on a free loopback port (retried: a port can be taken meanwhile)."""
    error: Exception | None = None
    for _ in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        try:
            _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D", str(data),
                    "-l", str(root / "server.log"),
                    "-o", options,
                    "-w", "-t", "60",
                    "start",
                ],
                root,
            )  # fmt: skip
        except RuntimeError as exc:
            error = exc
            log.warning("postgres did not start; retrying", extra={"port": port})
            continue
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    tail = (root / "server.log").read_text()[-2000:] if (root / "server.log").exists() else ""
    raise RuntimeError(f"PostgreSQL did not start: {error}\n{tail}")


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(url: str) -> str:
    """A new empty database `t_<random>` on the server of `url`; return its URL."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(url, name)


def drop_database(url: str) -> None:
    """Drop the database of `url`, disconnecting whoever is still on it."""
    name = urlsplit(url).path.lstrip("/")
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
