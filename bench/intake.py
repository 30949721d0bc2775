"""Intake throughput: signed deliveries that make tickets, beside a bare Starlette 202.

    python -m bench.intake [--requests 4000] [--connections 16]

Both servers run in their own process under uvicorn on 127.0.0.1, one at a
time; the load comes from this process. Prints deliveries/s and p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.loadgen import Result, build_request, run
from bot.webhook.verify import signature

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT.parent / "shared" / "github" / "payloads" / "issues" / "labeled.json"
SECRET = "bench-secret"

SERVE = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

kind, port, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
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
        "AUTOCODE_DATABASE_URL": "sqlite:///" + db,
    }), workers=False)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deliveries(port: int, count: int) -> list[bytes]:
    payload = json.loads(PAYLOAD.read_text())
    payload["label"]["name"] = "auto-code"
    requests = []
    for index in range(count):
        payload["issue"]["number"] = index + 1
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(SECRET, body),
        }
        requests.append(build_request("127.0.0.1", port, "/webhook", body, headers))
    return requests


def measure(kind: str, count: int, connections: int, workdir: Path) -> Result:
    port = free_port()
    db = str(workdir / f"{kind}.db")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, kind, str(port), db],
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
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        asyncio.run(run("127.0.0.1", port, deliveries(port, 200), connections))  # warm up
        return asyncio.run(run("127.0.0.1", port, deliveries(port, count), connections))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            kind: measure(kind, args.requests, args.connections, Path(tmp))
            for kind in ("bare", "bot")
        }
    sys.stdout.write(f"{'server':<28}{'deliveries/s':>14}{'p50 ms':>10}{'p99 ms':>10}  statuses\n")
    for kind, r in results.items():
        label = "bare Starlette 202" if kind == "bare" else "bot (verify+parse+SQLite)"
        sys.stdout.write(
            f"{label:<28}{r.rate:>14.0f}{r.percentile(50) * 1000:>10.2f}"
            f"{r.percentile(99) * 1000:>10.2f}  {r.statuses}\n"
        )
    ratio = results["bot"].rate / results["bare"].rate
    sys.stdout.write(
        f"bot / bare throughput: {ratio:.2f} (target >= 0.5); "
        f"bot p99 {results['bot'].percentile(99) * 1000:.1f} ms (target < 50)\n"
    )


if __name__ == "__main__":
    main()
