"""Intake throughput: signed deliveries that make tickets, beside a bare Starlette 202.

    python -m bench.intake [--requests 4000] [--connections 16] [--database all|sqlite|postgres]
                           [--baseline REV] [--rounds N]

Side by side in one run: a bare Starlette app answering 202, the bot on a
SQLite file, and the bot on PostgreSQL (a throw-away cluster started with
tests/pg.py on 127.0.0.1, a fresh database; that cluster runs with
fsync=off, so its commits cost no disk flush, while SQLite syncs each
commit). Each server runs in its own process under uvicorn on 127.0.0.1,
one at a time; the load comes from this process. Prints deliveries/s and
p50/p99, and how many tickets each store holds afterwards.

`--baseline REV` also measures the bot as it was at git revision REV
(exported with `git archive` into a temporary folder and imported from
there), beside this tree's, so a change is judged against its "before" on
the same machine in the same minute. `--rounds N` measures every server N
times, round after round, and prints the medians (each round's ratio is to
that round's bare server; the median of those ratios is shown). Every
measurement gets a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.loadgen import Result, build_request, run
from bot.webhook.verify import signature

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "data" / "github" / "payloads" / "issues" / "labeled.json"
SECRET = "bench-secret"

# Only settings every revision of the bot accepts: it also serves a --baseline export.
SERVE = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

kind, port, database, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if kind == "bare":
    async def hook(request):
        await request.body()
        return JSONResponse({"ticket": 1}, status_code=202)
    app = Starlette(routes=[Route("/webhook", hook, methods=["POST"])])
else:
    import logging
    import os
    import bot
    if not os.path.realpath(bot.__file__).startswith(os.path.realpath(root) + os.sep):
        sys.exit(f"the bot was imported from {bot.__file__}, not from {root}")
    logging.disable(logging.INFO)
    from bot.app import build_app
    from bot.config import Settings
    app = build_app(Settings.from_environ({
        "AUTOCODE_WEBHOOK_SECRET": "bench-secret",
        "AUTOCODE_DATABASE_URL": database,
    }), workers=False)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deliveries(port: int, count: int, first: int = 1) -> list[bytes]:
    """Signed `issues/labeled` deliveries, each on its own issue from `first` on.

    Bare label requests on one issue coalesce into one ticket, so no two
    deliveries of a run (warm-up included) share an issue.
    """
    payload = json.loads(PAYLOAD.read_text())
    payload["label"]["name"] = "auto-code"
    requests = []
    for index in range(count):
        payload["issue"]["number"] = first + index
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(SECRET, body),
        }
        requests.append(build_request("127.0.0.1", port, "/webhook", body, headers))
    return requests


LABELS = {"bare": "bare Starlette 202", "sqlite": "bot + SQLite", "postgres": "bot + PostgreSQL"}


@dataclass(frozen=True)
class Server:
    """One server to measure: bare, or the bot on a store, from this tree or a revision."""

    kind: str  # bare | sqlite | postgres
    root: Path  # the folder its `bot` package is imported from
    label: str


@contextlib.contextmanager
def serving(server: Server, database: str) -> Iterator[int]:
    """`server` under uvicorn in its own process on 127.0.0.1 while the block runs; its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, server.kind, str(port), database, str(server.root)],
        cwd=server.root,
        env={**os.environ, "PYTHONPATH": str(server.root)},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server.label} server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(server: Server, database: str, count: int, connections: int) -> Result:
    with serving(server, database) as port:
        warm_up = deliveries(port, 200, first=count + 1)
        asyncio.run(run("127.0.0.1", port, warm_up, connections))
        return asyncio.run(run("127.0.0.1", port, deliveries(port, count), connections))


def stored(database: str) -> int | None:
    """How many tickets the store holds: the 200 of the warm-up and the measured ones."""
    query = "SELECT count(*) FROM tickets"
    if database.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database[len("sqlite:///") :])) as conn:
            return int(conn.execute(query).fetchone()[0])
    if database.startswith("postgresql://"):
        with psycopg.connect(database) as conn:
            row = conn.execute(query).fetchone()
            return int(row[0]) if row else 0
    return None


@contextlib.contextmanager
def databases(kinds: list[str], workdir: Path) -> Iterator[Callable[[str], str]]:
    """A maker of fresh database URLs by kind; a throw-away PostgreSQL while it is measured."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:
        server = ""
        if "postgres" in kinds:
            from tests.pg import create_database, postgres_server

            server = stack.enter_context(postgres_server())

        def fresh(kind: str) -> str:
            if kind == "sqlite":
                return f"sqlite:///{workdir / f'intake-{next(numbers)}.db'}"
            if kind == "postgres":
                return create_database(server)
            return ""

        yield fresh


def export(revision: str, into: Path) -> str:
    """Write the `bot` package of a git revision under `into`; return the short commit."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "bot"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 on
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)  # noqa: S202 (our own repository's archive)
    return commit


@dataclass
class Measured:
    result: Result
    ratio: float
    tickets: int | None


def report(rows: dict[Server, list[Measured]], args: argparse.Namespace) -> None:
    out = sys.stdout
    out.write(
        f"{args.requests} deliveries, {args.connections} keep-alive connections, "
        "each delivery a new issue (a new ticket)"
        + (f"; medians of {args.rounds} rounds" if args.rounds > 1 else "")
        + "\n"
    )
    width = max(22, *(len(s.label) + 2 for s in rows))
    rounds = "  rounds (deliveries/s)" if args.rounds > 1 else ""
    out.write(
        f"{'server':<{width}}{'deliveries/s':>14}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'vs bare':>9}  {'tickets stored':<16}statuses{rounds}\n"
    )
    summary: list[tuple[Server, float, float]] = []
    for server, measured in rows.items():
        rate = statistics.median(m.result.rate for m in measured)
        p50 = statistics.median(m.result.percentile(50) for m in measured) * 1000
        p99 = statistics.median(m.result.percentile(99) for m in measured) * 1000
        ratio = statistics.median(m.ratio for m in measured)
        held = {m.tickets for m in measured}
        tickets = "" if held == {None} else "/".join(str(t) for t in sorted(held, key=str))
        statuses: dict[int, int] = {}
        for m in measured:
            for status, n in m.result.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        each = "  " + " ".join(f"{m.result.rate:.0f}" for m in measured) if rounds else ""
        out.write(
            f"{server.label:<{width}}{rate:>14.0f}{p50:>10.2f}{p99:>10.2f}{ratio:>9.2f}  "
            f"{tickets:<16}{statuses}{each}\n"
        )
        if server.kind != "bare":
            summary.append((server, ratio, p99))
    for server, ratio, p99 in summary:
        out.write(
            f"{server.label}: {ratio:.2f} of bare throughput (target >= 0.5); "
            f"p99 {p99:.1f} ms (target < 50)\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--database",
        choices=("all", "sqlite", "postgres"),
        default="all",
        help="the bot's stores to measure beside the bare server (default: both)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the bot of this git revision (e.g. HEAD), beside this tree's",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every server this many times (medians)"
    )
    args = parser.parse_args()
    args.rounds = max(1, args.rounds)
    stores = [k for k in ("sqlite", "postgres") if args.database in ("all", k)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        servers = [Server("bare", ROOT, LABELS["bare"])]
        if args.baseline:
            before = workdir / "baseline"
            commit = export(args.baseline, before)
            for kind in stores:
                servers.append(Server(kind, before, f"{LABELS[kind]} @{args.baseline} {commit}"))
                servers.append(Server(kind, ROOT, f"{LABELS[kind]} (this tree)"))
        else:
            servers += [Server(kind, ROOT, LABELS[kind]) for kind in stores]
        rows: dict[Server, list[Measured]] = {s: [] for s in servers}
        with databases(stores, workdir) as fresh:
            for _ in range(args.rounds):
                bare_rate = 0.0
                for server in servers:
                    url = fresh(server.kind)
                    result = measure(server, url, args.requests, args.connections)
                    if server.kind == "bare":
                        bare_rate = result.rate
                    tickets = stored(url) if server.kind != "bare" else None
                    ratio = result.rate / bare_rate if bare_rate else 0.0
                    rows[server].append(Measured(result, ratio, tickets))
    report(rows, args)


if __name__ == "__main__":
    main()
