"""What the test loop costs beyond the tests' own time.

    python -m bench.testloop [--runs 3] [--test-seconds 1]

The whole bot runs here behind a real uvicorn server, against the fake GitHub
and the scripted LLM, with the real opencode in the real runner image. Two
kinds of run on a fresh issue each:

- baseline: the agent writes a file and answers; no `test` in the settings;
- loop: the same, with `.github/autocode.yml` naming a test command that
  sleeps `--test-seconds` and then fails on the first change; the agent is
  told, fixes it in the same session, and the second test run passes.

The loop's extra wall time minus the tests' own time is what the loop costs:
per test run (container create/start/remove, undoing what the tests wrote,
the progress edits) and per extra attempt (that plus the agent's follow-up
round: a container, opencode resuming the session, and a scripted LLM that
answers at once — with a real model its thinking comes on top).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.e2e import ADMIN, SECRET, bot_settings
from bot.app import build_app
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.fakes.server import ServerThread
from tests.webhooks import send

LOOP_REPO = "bench/loop"
BASE_REPO = "bench/base"


class Timings(logging.Handler):
    """Collects the per-phase timings the run logs when a ticket finishes."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_ticket: dict[int, dict[str, float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "ticket finished":
            self.by_ticket[int(record.__dict__["ticket"])] = dict(record.__dict__["timings"])


def one_run(
    url: str, github: FakeGitHub, llm: ScriptedLLM, repo: str, loop: bool
) -> dict[str, Any]:
    number = github.repo(repo).next_number
    github.add_issue(repo, number, title=f"Greeting {number}", body="Please.", user="alice")
    steps = [tool("write", filePath="greeting.txt", content="bad\n"), text("Wrote it.")]
    if loop:
        steps += [tool("write", filePath="greeting.txt", content="good\n"), text("Fixed it.")]
    llm.script(steps)
    payload = github.payload(
        "issues/labeled.json", repo=repo, number=number, label="auto-code", sender="alice"
    )
    began = time.time()
    ticket_id = int(send(url, "issues", payload, SECRET).json()["ticket"])
    while True:
        ticket = httpx.get(
            f"{url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        if ticket["state"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    runs = [r for r in github.find_check_runs(repo, "Auto-Code")
            if r["external_id"] == str(ticket_id)]  # fmt: skip
    completed = [h for h in github.check_run_history(runs[0]["id"]) if h["status"] == "completed"]
    return {
        "ticket": ticket_id,
        "state": ticket["state"],
        "conclusion": ticket["conclusion"],
        "total": completed[0]["time"] - began,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--test-seconds", type=float, default=1.0)
    args = parser.parse_args()
    timings = Timings()
    logging.getLogger().addHandler(timings)
    logging.getLogger().setLevel(logging.INFO)
    settings_file = (
        f"test: sleep {args.test_seconds:g}; grep -q good greeting.txt\nmax_attempts: 3\n"
    )
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(Path(tmp) / "github") as github, \
            ScriptedLLM() as llm:  # fmt: skip
        github.add_repo(LOOP_REPO, {"README.md": "# loop\n", ".github/autocode.yml": settings_file})
        github.add_repo(BASE_REPO, {"README.md": "# base\n"})
        for repo in (LOOP_REPO, BASE_REPO):
            github.set_permission(repo, "alice", "write")
        settings = bot_settings(github, llm, tmp)
        with ServerThread(build_app(settings)) as server:
            one_run(server.url, github, llm, BASE_REPO, loop=False)  # warm caches
            base = [one_run(server.url, github, llm, BASE_REPO, False) for _ in range(args.runs)]
            loop = [one_run(server.url, github, llm, LOOP_REPO, True) for _ in range(args.runs)]

    out = sys.stdout
    states = sorted({(r["state"], r["conclusion"]) for r in base + loop})
    out.write(f"runs: {args.runs} baseline + {args.runs} with the loop; outcomes: {states}\n")
    phases = [timings.by_ticket.get(r["ticket"], {}) for r in loop]
    own = [p.get("test_1", 0.0) + p.get("test_2", 0.0) for p in phases]
    wall = [p.get(f"test_{n}_wall", 0.0) - p.get(f"test_{n}", 0.0) for p in phases for n in (1, 2)]
    lifecycle = [p.get(f"test_{n}_overhead", 0.0) for p in phases for n in (1, 2)]
    follow_up = [
        p.get("container_start_2", 0.0) + p.get("agent_2", 0.0) + p.get("container_remove_2", 0.0)
        for p in phases
    ]
    rows = [
        ("baseline run (no tests), total", median([r["total"] for r in base])),
        ("run with 2 attempts, total", median([r["total"] for r in loop])),
        ("tests' own time (2 test runs)", median(own)),
        ("test run: container and bookkeeping", median(wall)),
        ("  of which container create/start/remove", median(lifecycle)),
        ("agent follow-up round (container + opencode)", median(follow_up)),
    ]
    out.write(f"{'':<48}{'median s':>10}\n")
    for name, value in rows:
        out.write(f"{name:<48}{value:>10.3f}\n")
    per_test = median(wall)
    per_attempt = per_test + median(follow_up)
    loop_beyond = median([p.get("test_loop", 0.0) - p.get("test_1", 0.0) - p.get("test_2", 0.0)
                          for p in phases])  # fmt: skip
    out.write(f"cost of the first test run beyond its own time: {per_test:.2f} s\n")
    out.write(f"cost of each further attempt beyond the tests' own time: {per_attempt:.2f} s "
              "(a test run's bookkeeping + the agent's follow-up round)\n")  # fmt: skip
    out.write(f"the whole loop (2 test runs, 1 follow-up) beyond the tests' own time: "
              f"{loop_beyond:.2f} s, measured around it\n")  # fmt: skip
    extra = median([r["total"] for r in loop]) - median([r["total"] for r in base]) - median(own)
    out.write(f"whole-run difference minus the tests' own time: {extra:.2f} s "
              "(with the noise of the agents' own times on a shared host)\n")  # fmt: skip


if __name__ == "__main__":
    main()
