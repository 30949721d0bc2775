"""Two `autocode worker` processes share one PostgreSQL: every ticket runs once, all finish.

The intake runs here (`build_app(workers=False)` behind uvicorn); the two
workers are real processes started with `python -m bot worker`, each with
its own work directory, both on one fresh database, both driving the real
opencode in real containers against the fake GitHub and the scripted LLM.
12 labels on 12 issues → 12 pull requests, 12 completed check runs, each
ticket claimed once (attempts 1, one "ticket started" in one worker's log),
and both workers did part of the work. SIGTERM stops both within seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app
from bot.config import Settings
from bot.models import Ticket, TicketState
from bot.runner.docker import DockerRunner
from bot.store import open_store
from tests.conftest import RUNNER_IMAGE
from tests.e2e.conftest import REPO, SECRET
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, Step, text, tool
from tests.fakes.server import ServerThread
from tests.paths import ROOT
from tests.pg import create_database, drop_database
from tests.webhooks import send

ISSUES = 12
STARTED = re.compile(r"ticket started ticket=(\d+)\b")
ISSUE_IN_PROMPT = re.compile(r"\bissue #(\d+)\b")


def worker_environ(
    github: FakeGitHub, llm_config: Path, database_url: str, workdir: Path, **extra: str
) -> dict[str, str]:
    """The process environment of one worker: ours without AUTOCODE_*, plus its settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCODE_")}
    return {
        **base,
        "PYTHONPATH": str(ROOT),
        "AUTOCODE_WEBHOOK_SECRET": SECRET,
        "AUTOCODE_APP_ID": str(github.app_id),
        "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode(),
        "AUTOCODE_GITHUB_API_URL": github.api_url,
        "AUTOCODE_DATABASE_URL": database_url,
        "AUTOCODE_WORKDIR": str(workdir),
        "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
        "AUTOCODE_MODEL": "fake/scripted",
        "AUTOCODE_OPENCODE_CONFIG": str(llm_config),
        "AUTOCODE_OPENCODE_AUTH": str(workdir.parent / "no-auth.json"),
        "AUTOCODE_AGENT_NETWORK": "host",  # the scripted LLM listens on the host's loopback
        "AUTOCODE_AGENT_MEMORY": "1g",
        "AUTOCODE_RUN_TIMEOUT": "180",
        "AUTOCODE_MAX_PARALLEL": "2",
        **extra,
    }


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    workdir: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> list[int]:
        return [int(m) for m in STARTED.findall(self.text())]


def start_worker(name: str, home: Path, environ: dict[str, str]) -> WorkerProcess:
    """`python -m bot worker` in its own directory (no .env there), stderr to a file."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "stderr.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            cwd=home,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(name, process, log, Path(environ["AUTOCODE_WORKDIR"]))


def wait_for(what: str, check: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f}s: {why()}")


def one_file_per_issue(body: dict[str, Any]) -> Step:
    """The same answer whichever run asks: its issue's own file, then a final text."""
    messages = body.get("messages") or []
    if any(m.get("role") == "tool" for m in messages):
        return text("Added the file.")
    prompt = "\n".join(
        m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
        for m in messages
        if m.get("role") == "user"
    )
    found = ISSUE_IN_PROMPT.search(prompt)
    number = int(found.group(1)) if found else 0
    return tool("write", filePath=f"file-{number}.txt", content=f"issue {number}\n")


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    url = create_database(postgres_url)
    yield url
    drop_database(url)


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """The worker processes of a test; killed, with their containers, unless it stopped them."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(timeout=10)
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=autocode.ticket"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for container in leftovers:
        mounts = subprocess.run(
            ["docker", "inspect", "--format", "{{range .Mounts}}{{.Source}} {{end}}", container],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        if any(str(w.workdir.resolve()) in mounts for w in started):
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def test_two_worker_processes_share_the_queue_and_run_each_ticket_once(
    tmp_path: Path,
    github: FakeGitHub,
    llm: ScriptedLLM,
    database: str,
    docker_runner: DockerRunner,
    workers: list[WorkerProcess],
) -> None:
    github.add_repo(REPO, {"README.md": "# Hello World\n"})
    github.set_permission(REPO, "Codertocat", "admin")
    for number in range(1, ISSUES + 1):
        github.add_issue(
            REPO, number, title=f"Add file-{number}.txt", body="Please.", user="Codertocat"
        )
    llm.on_tools = one_file_per_issue
    llm_config = tmp_path / "opencode.json"
    llm_config.write_text(json.dumps(llm.provider_config()))

    for name in ("w1", "w2"):
        environ = worker_environ(github, llm_config, database, tmp_path / name / "work")
        workers.append(start_worker(name, tmp_path / name, environ))
    wait_for(
        "both workers started",
        lambda: all("worker started" in w.text() for w in workers),
        60,
        lambda: " | ".join(w.text()[-2000:] for w in workers),
    )
    assert all(w.process.poll() is None for w in workers)

    settings = Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_APP_ID": str(github.app_id),
            "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode(),
            "AUTOCODE_GITHUB_API_URL": github.api_url,
            "AUTOCODE_DATABASE_URL": database,
        }
    )
    store = open_store(settings)
    try:
        with ServerThread(build_app(settings, store=store, workers=False)) as intake:
            ids = []
            for number in range(1, ISSUES + 1):
                payload = github.payload(
                    "issues/labeled.json",
                    repo=REPO,
                    number=number,
                    label="auto-code",
                    sender="Codertocat",
                )
                response = send(intake.url, "issues", payload, SECRET)
                assert response.status_code == 202, response.text
                ids.append(int(response.json()["ticket"]))
        assert len(set(ids)) == ISSUES

        def tickets() -> list[Ticket]:
            found = [store.get(i) for i in ids]
            return [t for t in found if t is not None]

        wait_for(
            "every ticket finished",
            lambda: all(t.state.final for t in tickets()),
            420,
            lambda: (
                str([(t.id, str(t.state), t.error) for t in tickets() if not t.state.final])
                + " | ".join(w.text()[-3000:] for w in workers)
            ),
        )
        done = tickets()
    finally:
        store.close()

    # every ticket succeeded, claimed once
    assert [(t.id, t.state, t.conclusion) for t in done] == [
        (t.id, TicketState.SUCCEEDED, "success") for t in done
    ], [(t.id, str(t.state), t.error) for t in done if t.state is not TicketState.SUCCEEDED]
    assert {t.id: t.attempts for t in done} == dict.fromkeys(ids, 1)

    # each ran once, in one of the two workers, and both did part of the work
    started = {w.name: w.started() for w in workers}
    everything = [i for runs in started.values() for i in runs]
    assert sorted(everything) == sorted(ids), started
    first, second = (set(started[w.name]) for w in workers)
    assert first and second, started
    assert first.isdisjoint(second), started
    prompts = [
        r["body"]
        for r in llm.requests
        if r["body"].get("tools")
        and not any(m.get("role") == "tool" for m in r["body"].get("messages", []))
    ]
    asked = sorted(one_file_per_issue(b).arguments["filePath"] for b in prompts)
    assert asked == sorted(f"file-{n}.txt" for n in range(1, ISSUES + 1))

    # GitHub: a pull request for each issue, each with its own file, and its completed check run
    pulls = sorted(
        (p for (repo, _), p in github.pulls.items() if repo == REPO),
        key=lambda p: p["head"]["ref"],
    )
    assert len(pulls) == ISSUES
    branches = {p["head"]["ref"] for p in pulls}
    assert branches == {f"autocode/issue-{n}" for n in range(1, ISSUES + 1)}
    for number in range(1, ISSUES + 1):
        branch = f"autocode/issue-{number}"
        assert github.read_file(REPO, branch, f"file-{number}.txt") == f"issue {number}\n"
        assert len(github.commit_log(REPO, branch)) == 2
    assert {t.pr_url for t in done} == {p["html_url"] for p in pulls}
    runs = github.find_check_runs(REPO, "Auto-Code")
    assert sorted(int(r["external_id"]) for r in runs) == sorted(ids)
    assert {(r["status"], r["conclusion"]) for r in runs} == {("completed", "success")}
    for number in range(1, ISSUES + 1):
        mine = [
            c for c in github.issue_comments(REPO, number) if c["user"]["login"] == github.bot_login
        ]
        assert len(mine) == 1, (number, [c["body"] for c in mine])

    # SIGTERM: both stop by themselves, promptly, with status 0
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for worker in workers:
        try:
            code = worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{worker.name} did not stop within 30s of SIGTERM") from None
        assert code == 0, (worker.name, code, worker.text()[-3000:])
    for worker in workers:
        assert "Traceback" not in worker.text(), worker.text()[-5000:]
        assert list(worker.workdir.glob("ticket-*")) == []
