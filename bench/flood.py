"""Real deliveries during a flood: does abuse of the webhook slow the deliveries that matter?

    python -m bench.flood [--rate 100] [--seconds 10] [--factor 10]

The bot (SQLite, no workers) runs under uvicorn in its own process, as in
bench.intake. Real deliveries (signed `issues.labeled`, each a new ticket)
arrive at `--rate` per second, paced, on one kept-alive connection, first
alone and then during a flood of `--factor` times that rate from the same
source on 8 more connections: half validly signed deliveries of events that
make no ticket (`issues.opened`: answered 200 "ignored"), half deliveries
with a wrong signature (401). Prints the real deliveries' p50/p99 both
times (target: p99 under 50 ms during the flood) and what the flood got.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path

from bench.intake import PAYLOAD, ROOT, SECRET, Server, serving
from bench.loadgen import build_request, paced
from bot.webhook.verify import signature

OPENED = ROOT / "tests" / "data" / "github" / "payloads" / "issues" / "opened.json"


def signed(port: int, event: str, payload: dict[str, object], *, good: bool = True) -> bytes:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature(SECRET if good else "not-the-secret", body),
    }
    return build_request("127.0.0.1", port, "/webhook", body, headers)


def real(port: int, number: int) -> bytes:
    payload = json.loads(PAYLOAD.read_text())
    payload["label"]["name"] = "auto-code"
    payload["issue"]["number"] = number
    return signed(port, "issues", payload)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def round_(port: int, args: argparse.Namespace, first: int, flood: bool) -> str:
    count = int(args.rate * args.seconds)
    reals = [real(port, first + n) for n in range(count)]
    tasks = [asyncio.create_task(paced("127.0.0.1", port, reals, args.rate))]
    if flood:
        opened = json.loads(OPENED.read_text())
        per_connection = args.rate * args.factor / 8
        for n in range(8):
            junk = [
                signed(port, "issues", opened, good=n % 2 == 0)
                for _ in range(count * args.factor // 8)
            ]
            tasks.append(asyncio.create_task(paced("127.0.0.1", port, junk, per_connection)))
    results = await asyncio.gather(*tasks)
    latencies, statuses = results[0].latencies, results[0].statuses
    when = "during the flood" if flood else "alone"
    p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
    line = f"real deliveries {when:<17} {len(latencies):>5}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
    line += f"  {statuses}"
    if flood:
        flooded: dict[int, int] = {}
        for got in results[1:]:
            for status, n in got.statuses.items():
                flooded[status] = flooded.get(status, 0) + n
        line += f"\nflood ({args.factor}x, 8 connections): {flooded}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="real deliveries per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--factor", type=int, default=10, help="the flood, times the real rate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{Path(tmp) / 'autocode.db'}"
        with serving(Server("sqlite", ROOT, "bot + SQLite"), database) as port:
            sys.stdout.write(asyncio.run(round_(port, args, 100_000, flood=False)) + "\n")
            sys.stdout.write(asyncio.run(round_(port, args, 200_000, flood=True)) + "\n")


if __name__ == "__main__":
    main()
