"""Worker processes on one PostgreSQL: throughput by process count, and lease takeover.

    python -m bench.workers [--tickets 16] [--workers 1,2,4] [--parallel 2] [--lease 5]

Everything is real and on 127.0.0.1: a throw-away PostgreSQL (tests/pg.py),
the fake GitHub and the scripted LLM in this process, the intake behind
uvicorn here, and 1, 2 or 4 `python -m bot worker` processes, each running
opencode in the runner image on the local Docker engine. The agent is
trivial (one text answer, no changes → a neutral check run), so the figures
are the bot's own cost per ticket: claim, GitHub calls, clone, container.

Then a dead worker: one worker with AUTOCODE_LEASE_SECONDS=<lease> runs a
ticket whose agent hangs; it is killed with SIGKILL; a second worker starts
at once. Printed: seconds from the kill until the ticket is `running` again
under the new worker. Prints figures only; removes the containers it made.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.app import build_app
from bot.config import Settings
from bot.models import TicketState
from bot.store import TicketStore, open_store
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, hang
from tests.fakes.server import ServerThread
from tests.pg import create_database, drop_database, postgres_server
from tests.webhooks import send

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
RUNNER_IMAGE = os.environ.get("AUTOCODE_TEST_RUNNER_IMAGE", "autocode-runner:latest")


@dataclass
class Lab:
    """What every configuration shares: the fakes and the scratch directory."""

    root: Path
    github: FakeGitHub
    llm: ScriptedLLM
    llm_config: Path
    postgres: str


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def worker_environ(lab: Lab, database: str, workdir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCODE_")}
    return {
        **base,
        "PYTHONPATH": str(ROOT),
        "AUTOCODE_WEBHOOK_SECRET": SECRET,
        "AUTOCODE_APP_ID": str(lab.github.app_id),
        "AUTOCODE_PRIVATE_KEY": lab.github.private_key_pem.decode(),
        "AUTOCODE_GITHUB_API_URL": lab.github.api_url,
        "AUTOCODE_DATABASE_URL": database,
        "AUTOCODE_WORKDIR": str(workdir),
        "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
        "AUTOCODE_MODEL": "fake/scripted",
        "AUTOCODE_OPENCODE_CONFIG": str(lab.llm_config),
        "AUTOCODE_OPENCODE_AUTH": str(lab.root / "no-auth.json"),
        "AUTOCODE_AGENT_NETWORK": "host",
        "AUTOCODE_AGENT_MEMORY": "1g",
        "AUTOCODE_RUN_TIMEOUT": "300",
        **extra,
    }


def start_worker(home: Path, environ: dict[str, str]) -> WorkerProcess:
    home.mkdir(parents=True, exist_ok=True)
    log = home / "worker.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            cwd=home,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log)


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def stop(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=10)


def remove_containers(root: Path) -> None:
    """`docker rm -f` the agent containers (label autocode.ticket) whose workspace is ours.

    Other bots on the same engine have such containers too; they are left alone.
    """
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=autocode.ticket"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for container in listed:
        mounts = subprocess.run(
            ["docker", "inspect", "--format", "{{range .Mounts}}{{.Source}} {{end}}", container],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        if str(root) in mounts:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def intake_settings(lab: Lab, database: str) -> Settings:
    return Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_APP_ID": str(lab.github.app_id),
            "AUTOCODE_PRIVATE_KEY": lab.github.private_key_pem.decode(),
            "AUTOCODE_GITHUB_API_URL": lab.github.api_url,
            "AUTOCODE_DATABASE_URL": database,
        }
    )


def add_issues(lab: Lab, repo: str, count: int) -> list[int]:
    lab.github.add_repo(repo, {"README.md": "# bench\n"})
    lab.github.set_permission(repo, "alice", "write")
    numbers = list(range(1, count + 1))
    for number in numbers:
        lab.github.add_issue(repo, number, title=f"Task {number}", body="Look.", user="alice")
    return numbers


def deliver(lab: Lab, url: str, repo: str, number: int) -> int:
    payload = lab.github.payload(
        "issues/labeled.json", repo=repo, number=number, label="auto-code", sender="alice"
    )
    response = send(url, "issues", payload, SECRET)
    if response.status_code != 202:
        raise RuntimeError(f"intake answered {response.status_code}: {response.text}")
    return int(response.json()["ticket"])


@dataclass
class Throughput:
    workers: int
    tickets: int
    seconds: float
    states: dict[str, int]
    per_worker: list[int]
    latency_p50: float

    @property
    def rate(self) -> float:
        return self.tickets / self.seconds if self.seconds else 0.0


def throughput(lab: Lab, count: int, tickets: int, parallel: int) -> Throughput:
    database = create_database(lab.postgres)
    home = lab.root / f"throughput-{count}"
    repo = f"bench/w{count}"
    numbers = add_issues(lab, repo, tickets)
    workers: list[WorkerProcess] = []
    store: TicketStore | None = None
    try:
        for index in range(count):
            environ = worker_environ(
                lab, database, home / f"w{index}" / "work", AUTOCODE_MAX_PARALLEL=str(parallel)
            )
            workers.append(start_worker(home / f"w{index}", environ))
        wait_until(
            lambda: all("worker started" in w.text() for w in workers), 90, "workers to start"
        )
        settings = intake_settings(lab, database)
        store = open_store(settings)
        with ServerThread(build_app(settings, store=store, workers=False)) as intake:
            began = time.time()
            ids = [deliver(lab, intake.url, repo, n) for n in numbers]
            current = store

            def finished() -> bool:
                counts = current.counts()
                return sum(counts.values()) == tickets and not (
                    counts.get("queued") or counts.get("running")
                )

            wait_until(finished, 900, "every ticket to finish", step=0.1)
            seconds = time.time() - began
        done = [t for t in (store.get(i) for i in ids) if t is not None]
        latencies = [(t.finished_at or 0.0) - t.created_at for t in done]
        states = {str(s): sum(1 for t in done if t.state is s) for s in TicketState}
        stop(workers)
        per_worker = [w.text().count("ticket started") for w in workers]
        return Throughput(
            count,
            tickets,
            seconds,
            {k: v for k, v in states.items() if v},
            per_worker,
            statistics.median(latencies),
        )
    finally:
        stop(workers)
        if store is not None:
            store.close()
        remove_containers(home)
        drop_database(database)


@dataclass
class Takeover:
    seconds: float  # kill → running under the new owner
    lease_left: float  # how much of the dead worker's lease remained at the kill
    first_owner: str
    second_owner: str
    final_state: str
    attempts: int


def takeover(lab: Lab, lease: int) -> Takeover:
    database = create_database(lab.postgres)
    home = lab.root / "takeover"
    repo = "bench/takeover"
    add_issues(lab, repo, 1)
    lab.llm.script([hang()])  # the first run's agent hangs; any later run answers at once
    asked = len(lab.llm.requests)
    workers: list[WorkerProcess] = []
    store: TicketStore | None = None
    extra = {"AUTOCODE_LEASE_SECONDS": str(lease), "AUTOCODE_MAX_PARALLEL": "1"}
    try:
        first = start_worker(
            home / "a", worker_environ(lab, database, home / "a" / "work", **extra)
        )
        workers.append(first)
        wait_until(lambda: "worker started" in first.text(), 90, "the first worker to start")
        settings = intake_settings(lab, database)
        store = open_store(settings)
        current = store
        with ServerThread(build_app(settings, store=store, workers=False)) as intake:
            ticket_id = deliver(lab, intake.url, repo, 1)

        def agent_waiting() -> bool:  # the hanging completion has been asked for
            return any(r["body"].get("tools") for r in lab.llm.requests[asked:])

        wait_until(agent_waiting, 120, "the agent to hang")
        ticket = store.get(ticket_id)
        if ticket is None or ticket.state is not TicketState.RUNNING:
            raise RuntimeError(f"the ticket is not running: {ticket}")
        old_owner = ticket.lease_owner or ""
        first.process.send_signal(signal.SIGKILL)
        killed = time.time()
        first.process.wait(timeout=10)
        lease_left = (ticket.lease_expires_at or killed) - killed
        second = start_worker(
            home / "b", worker_environ(lab, database, home / "b" / "work", **extra)
        )
        workers.append(second)

        def taken_over() -> bool:
            t = current.get(ticket_id)
            return (
                t is not None
                and t.state is TicketState.RUNNING
                and t.lease_owner is not None
                and t.lease_owner != old_owner
            )

        wait_until(taken_over, 180, "another worker to take the ticket over", step=0.02)
        seconds = time.time() - killed
        taken = store.get(ticket_id)
        new_owner = (taken.lease_owner if taken else None) or ""
        wait_until(
            lambda: (t := current.get(ticket_id)) is not None and t.state.final,
            300,
            "the ticket to finish",
            step=0.1,
        )
        final = store.get(ticket_id)
        if final is None:
            raise RuntimeError("the ticket vanished")
        return Takeover(seconds, lease_left, old_owner, new_owner, str(final.state), final.attempts)
    finally:
        lab.llm.release()
        stop(workers)
        if store is not None:
            store.close()
        remove_containers(home)
        drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=16)
    parser.add_argument("--workers", default="1,2,4", help="process counts, comma-separated")
    parser.add_argument("--parallel", type=int, default=2, help="AUTOCODE_MAX_PARALLEL each")
    parser.add_argument("--lease", type=int, default=5, help="AUTOCODE_LEASE_SECONDS (takeover)")
    parser.add_argument("--no-takeover", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",") if c.strip()]
    out = sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="autocode-bench-workers-") as tmp,
        postgres_server() as postgres,
        FakeGitHub(Path(tmp) / "github") as github,
        ScriptedLLM() as llm,
    ):
        root = Path(tmp).resolve()
        config = root / "opencode.json"
        config.write_text(json.dumps(llm.provider_config()))
        lab = Lab(root, github, llm, config, postgres)
        try:
            results = [throughput(lab, c, args.tickets, args.parallel) for c in counts]
            out.write(
                f"{args.tickets} tickets per run, trivial agent (no changes → neutral), "
                f"AUTOCODE_MAX_PARALLEL={args.parallel} per worker, one PostgreSQL\n"
            )
            out.write(
                f"{'workers':>7}{'seconds':>10}{'tickets/s':>11}{'p50 ticket s':>14}"
                f"  {'tickets per worker':<20}states\n"
            )
            for r in results:
                split = "/".join(str(n) for n in r.per_worker)
                out.write(
                    f"{r.workers:>7}{r.seconds:>10.1f}{r.rate:>11.2f}{r.latency_p50:>14.1f}"
                    f"  {split:<20}{r.states}\n"
                )
            if not args.no_takeover:
                t = takeover(lab, args.lease)
                out.write(
                    f"dead worker (SIGKILL, AUTOCODE_LEASE_SECONDS={args.lease}): its ticket ran "
                    f"again under the new worker {t.seconds:.1f} s after the kill "
                    f"(lease left at the kill: {t.lease_left:.1f} s); "
                    f"then {t.final_state}, attempts {t.attempts}\n"
                )
        finally:
            remove_containers(root)


if __name__ == "__main__":
    main()
