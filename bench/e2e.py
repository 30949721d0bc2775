"""End to end: signed webhook → completed check run, split by phase.

    python -m bench.e2e [--runs 3]

The whole bot runs in this process behind a real uvicorn server, against the
fake GitHub and the scripted LLM on 127.0.0.1, with the real opencode in the
real runner image on the local Docker engine. The agent writes one file and
answers. Prints each phase (median over the runs) and the bot's overhead:
everything that is not the agent's own time (target < 3 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bot.app import build_app
from bot.config import Settings
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.fakes.server import ServerThread
from tests.webhooks import send

SECRET = "bench-secret"
ADMIN = "bench-admin"
REPO = "bench/hello"
PHASES = ("token", "clone", "container_start", "agent", "container_remove", "commit_push",
          "pull_request")  # fmt: skip


class Timings(logging.Handler):
    """Collects the per-phase timings the worker logs when a ticket finishes."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_ticket: dict[int, dict[str, float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "ticket finished":
            self.by_ticket[int(record.__dict__["ticket"])] = dict(record.__dict__["timings"])


def one_run(bot_url: str, github: FakeGitHub, llm: ScriptedLLM) -> dict[str, Any]:
    number = github.repo(REPO).next_number  # pull requests take numbers too
    github.add_issue(REPO, number, title=f"Add file {number}", body="Please.", user="alice")
    llm.script([tool("write", filePath=f"file-{number}.txt", content="hi\n"), text("Added.")])
    payload = github.payload(
        "issues/labeled.json", repo=REPO, number=number, label="auto-code", sender="alice"
    )
    began = time.time()
    response = send(bot_url, "issues", payload, SECRET)
    ticket_id = int(response.json()["ticket"])
    while True:
        ticket = httpx.get(
            f"{bot_url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        if ticket["state"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    runs = [
        r for r in github.find_check_runs(REPO, "Auto-Code") if r["external_id"] == str(ticket_id)
    ]
    completed = [h for h in github.check_run_history(runs[0]["id"]) if h["status"] == "completed"]
    return {"ticket": ticket_id, "state": ticket["state"], "total": completed[0]["time"] - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    timings = Timings()
    logging.getLogger().addHandler(timings)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("bot").propagate = True
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(Path(tmp) / "github") as github, \
            ScriptedLLM() as llm:  # fmt: skip
        github.add_repo(REPO, {"README.md": "# hello\n"})
        github.set_permission(REPO, "alice", "write")
        config = Path(tmp) / "opencode.json"
        config.write_text(json.dumps(llm.provider_config()))
        settings = Settings.from_environ({
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_APP_ID": str(github.app_id),
            "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode(),
            "AUTOCODE_GITHUB_API_URL": github.api_url,
            "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp}/autocode.db",
            "AUTOCODE_WORKDIR": f"{tmp}/work",
            "AUTOCODE_MODEL": "fake/scripted",
            "AUTOCODE_OPENCODE_CONFIG": str(config),
            "AUTOCODE_OPENCODE_AUTH": f"{tmp}/none.json",
            "AUTOCODE_AGENT_NETWORK": "host",
            "AUTOCODE_ADMIN_TOKEN": ADMIN,
        })  # fmt: skip
        with ServerThread(build_app(settings)) as server:
            results = [one_run(server.url, github, llm) for _ in range(args.runs)]
    rows = []
    for result in results:
        phases = timings.by_ticket.get(result["ticket"], {})
        rows.append({**{p: phases.get(p, 0.0) for p in PHASES}, "total": result["total"]})
    states = {r["state"] for r in results}
    out = sys.stdout
    out.write(f"runs: {len(results)}  states: {sorted(states)}\n")
    out.write(f"{'phase':<18}{'median s':>10}\n")
    for phase in (*PHASES, "total"):
        out.write(f"{phase:<18}{statistics.median(r[phase] for r in rows):>10.3f}\n")
    overhead = statistics.median(r["total"] - r["agent"] for r in rows)
    out.write(f"bot overhead beyond the agent's own time: {overhead:.2f} s (target < 3 s)\n")


if __name__ == "__main__":
    main()
