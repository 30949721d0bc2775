"""Intake throughput: signed deliveries that make tickets, beside a bare Starlette 202.

    python -m bench.intake [--requests 4000] [--connections 16] [--database all|sqlite|postgres]

Side by side in one run: a bare Starlette app answering 202, the bot on a
SQLite file, and the bot on PostgreSQL (a throw-away cluster started with
tests/pg.py on 127.0.0.1, a fresh database; that cluster runs with
fsync=off, so its commits cost no disk flush, while SQLite syncs each
commit). Each server runs in its own process under uvicorn on 127.0.0.1,
one at a time; the load comes from this process. Prints deliveries/s and
p50/p99, and how many tickets each store holds afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from bench.loadgen import Result, build_request, run
from bot.webhook.verify import signature

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "data" / "github" / "payloads" / "issues" / "labeled.json"
SECRET = "bench-secret"

SERVE = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

kind, port, database = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "bare":
    async def hook(request):
        await request.body()
        return JSONResponse({"ticket": 1}, status_code=202)
    app = Starlette(routes=[Route("/webhook", hook, methods=["POST"])])
else:
    import logging
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


KINDS = ("bare", "sqlite", "postgres")
LABELS = {
    "bare": "bare Starlette 202",
    "sqlite": "bot + SQLite",
    "postgres": "bot + PostgreSQL",
}


def measure(kind: str, database: str, count: int, connections: int) -> Result:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, kind, str(port), database],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        warm_up = deliveries(port, 200, first=count + 1)
        asyncio.run(run("127.0.0.1", port, warm_up, connections))
        return asyncio.run(run("127.0.0.1", port, deliveries(port, count), connections))
    finally:
        server.terminate()
        server.wait(timeout=10)


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
def databases(kinds: list[str], workdir: Path) -> Iterator[dict[str, str]]:
    """The database URL of each kind; a throw-away PostgreSQL while PostgreSQL is measured."""
    urls = {"bare": "", "sqlite": f"sqlite:///{workdir / 'intake.db'}"}
    if "postgres" not in kinds:
        yield urls
        return
    from tests.pg import create_database, postgres_server

    with postgres_server() as server:
        yield {**urls, "postgres": create_database(server)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--database",
        choices=("all", "sqlite", "postgres"),
        default="all",
        help="the bot's stores to measure beside the bare server (default: both)",
    )
    args = parser.parse_args()
    kinds = ["bare", *(k for k in ("sqlite", "postgres") if args.database in ("all", k))]
    results: dict[str, Result] = {}
    held: dict[str, int | None] = {}
    with tempfile.TemporaryDirectory() as tmp, databases(kinds, Path(tmp)) as urls:
        for kind in kinds:
            results[kind] = measure(kind, urls[kind], args.requests, args.connections)
            held[kind] = stored(urls[kind]) if kind != "bare" else None
    out = sys.stdout
    out.write(
        f"{args.requests} deliveries, {args.connections} keep-alive connections, "
        "each delivery a new issue (a new ticket)\n"
    )
    out.write(
        f"{'server':<22}{'deliveries/s':>14}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'vs bare':>9}  {'tickets stored':<16}statuses\n"
    )
    bare = results["bare"].rate
    for kind, r in results.items():
        tickets = "" if held[kind] is None else str(held[kind])
        out.write(
            f"{LABELS[kind]:<22}{r.rate:>14.0f}{r.percentile(50) * 1000:>10.2f}"
            f"{r.percentile(99) * 1000:>10.2f}{r.rate / bare:>9.2f}  {tickets:<16}{r.statuses}\n"
        )
    for kind in kinds[1:]:
        r = results[kind]
        out.write(
            f"{LABELS[kind]}: {r.rate / bare:.2f} of bare throughput (target >= 0.5); "
            f"p99 {r.percentile(99) * 1000:.1f} ms (target < 50)\n"
        )


if __name__ == "__main__":
    main()
