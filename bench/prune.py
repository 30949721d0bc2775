"""What piles up, and what pruning gives back: 10,000 finished tickets with logs, on SQLite.

    python -m bench.prune [--tickets 10000] [--lines 40]

Makes the tickets through the store (`add_many`), then ends them and writes
their log lines and two delivered notifications each in bulk, straight into
the same SQLite file (one transaction: writing them one commit at a time, as
runs do, would only measure the disk). Prints the file's size and the row
counts before pruning, after the upkeep's pruning (`prune_logs`,
`prune_notifications`, as a month later), and after `VACUUM` (SQLite reuses the
freed pages for new rows; only a vacuum gives them back to the disk).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bot.models import TicketKind, TicketState, Trigger
from bot.store.sqlite import SQLiteStore

LINE = "[bash] python -m pytest -q tests/test_app.py (completed) " + "x" * 60


def trigger(number: int) -> Trigger:
    return Trigger(
        kind=TicketKind.COMMAND, repository="bench/prune", clone_url="https://x/bench/prune.git",
        installation_id=1, number=number, is_pull_request=False, title=f"Issue {number}",
        body="Please fix it.", requested_by="octocat", instructions="Fix the bug.",
    )  # fmt: skip


def sizes(path: Path) -> str:
    files = [path, path.with_name(path.name + "-wal")]
    total = sum(f.stat().st_size for f in files if f.exists())
    with sqlite3.connect(path) as conn:
        logs = conn.execute("SELECT count(*) FROM ticket_logs").fetchone()[0]
        sent = conn.execute("SELECT count(*) FROM notifications").fetchone()[0]
    return f"{total / 1e6:8.1f} MB   {logs:>9,} log lines   {sent:>7,} notifications"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=40, help="log lines per ticket")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "autocode.db"
        store = SQLiteStore(path)
        store.add_many([(f"d-{n}", "issue_comment", trigger(n)) for n in range(args.tickets)])
        with sqlite3.connect(path) as conn:
            conn.execute(
                "UPDATE tickets SET state = ?, conclusion = 'success', started_at = 990, "
                "finished_at = 1000",
                (str(TicketState.SUCCEEDED),),
            )
            ids = [i for (i,) in conn.execute("SELECT id FROM tickets ORDER BY id")]
            conn.executemany(
                "INSERT INTO ticket_logs (ticket_id, at, kind, message) VALUES (?, ?, ?, ?)",
                ((i, 1000.0 + n, "tool", LINE) for i in ids for n in range(args.lines)),
            )
            conn.executemany(
                "INSERT INTO notifications (ticket_id, url, event, body, created_at, "
                "next_attempt_at, delivered_at) VALUES (?, ?, ?, ?, 1000, 1000, 1000)",
                ((i, url, "ticket.finished", "{}" + " " * 400) for i in ids
                 for url in ("https://a.example.test", "https://b.example.test")),
            )  # fmt: skip
        out = sys.stdout
        out.write(f"{len(ids):,} finished tickets, {args.lines} log lines each\n")
        out.write(f"before pruning   {sizes(path)}\n")
        month = 1000.0 + 31 * 86400
        began = time.perf_counter()
        logs = store.prune_logs(month - 30 * 86400)
        sent = store.prune_notifications(month - 7 * 86400)
        took = time.perf_counter() - began
        out.write(f"after pruning    {sizes(path)}   ({logs:,} + {sent:,} rows in {took:.2f} s)\n")
        store.close()
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the vacuum went through the WAL
        out.write(f"after VACUUM     {sizes(path)}\n")


if __name__ == "__main__":
    main()
