"""End to end: signed webhook → completed check run, split by phase.

    python -m bench.e2e [--runs 3] [--baseline REV] [--rounds N]

The whole bot runs in this process behind a real uvicorn server, against the
fake GitHub and the scripted LLM on 127.0.0.1, with the real opencode in the
real runner image on the local Docker engine. The agent writes one file and
answers. Prints each phase (median over the runs) and the bot's overhead:
everything that is not the agent's own time (target < 3 s).

`--baseline REV` measures the bot as it was at git revision REV beside this
tree's, in one run: each side runs in its own process (the `bot` package of
REV exported with `git archive`, the same fakes and bench), alternating,
`--rounds` times (default 3) with `--runs` tickets each; the table shows
each phase's median over all of a side's tickets.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
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


def bot_settings(github: FakeGitHub, llm: ScriptedLLM, tmp: str, **environ: str) -> Settings:
    """The settings of a bench's bot: the fakes, a SQLite file and a workdir in `tmp`.

    `environ` adds to (or overrides) them. The agent reaches the scripted LLM
    on the host's loopback, and the operator's token is ADMIN.
    """
    config = Path(tmp) / "opencode.json"
    config.write_text(json.dumps(llm.provider_config()))
    return Settings.from_environ({
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
        **environ,
    })  # fmt: skip


def measure(runs: int, **environ: str) -> list[dict[str, float]]:
    """`runs` tickets through the bot of this process; each one's phases and total.

    `environ` adds to (or overrides) the bot's settings: another engine, a runtime.
    """
    timings = Timings()
    logging.getLogger().addHandler(timings)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("bot").propagate = True
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(Path(tmp) / "github") as github, \
            ScriptedLLM() as llm:  # fmt: skip
        github.add_repo(REPO, {"README.md": "# hello\n"})
        github.set_permission(REPO, "alice", "write")
        settings = bot_settings(github, llm, tmp, **environ)
        with ServerThread(build_app(settings)) as server:
            results = [one_run(server.url, github, llm) for _ in range(runs)]
    rows = []
    for result in results:
        if result["state"] != "succeeded":
            raise SystemExit(f"ticket {result['ticket']} ended {result['state']}")
        phases = timings.by_ticket.get(result["ticket"], {})
        rows.append({**{p: phases.get(p, 0.0) for p in PHASES}, "total": result["total"]})
    return rows


def table(sides: dict[str, list[dict[str, float]]]) -> str:
    """Each phase's median per side, and the bot's overhead beyond the agent's own time."""
    names = list(sides)
    lines = [f"{'phase':<18}" + "".join(f"{n:>22}" for n in names)]
    for phase in (*PHASES, "total"):
        cells = "".join(f"{statistics.median(r[phase] for r in sides[n]):>22.3f}" for n in names)
        lines.append(f"{phase:<18}{cells}")
    overheads = "".join(
        f"{statistics.median(r['total'] - r['agent'] for r in sides[n]):>22.3f}" for n in names
    )
    lines.append(f"{'overhead':<18}{overheads}")
    lines.append("overhead: the bot's time beyond the agent's own, median s (target < 3 s)")
    return "\n".join(lines) + "\n"


def side_by_side(baseline: str, runs: int, rounds: int) -> None:
    from bench.intake import ROOT, export

    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "baseline"
        commit = export(baseline, before)
        sides: dict[str, list[dict[str, float]]] = {f"@{baseline} {commit}": [], "this tree": []}
        paths = {f"@{baseline} {commit}": f"{before}{os.pathsep}{ROOT}", "this tree": str(ROOT)}
        expected = {f"@{baseline} {commit}": before / "bot", "this tree": ROOT / "bot"}
        for _ in range(rounds):
            for name, path in paths.items():
                env = {**os.environ, "PYTHONPATH": path}
                # run from elsewhere: `python -m` puts the working directory first on the path
                done = subprocess.run(
                    [sys.executable, "-m", "bench.e2e", "--runs", str(runs), "--json"],
                    cwd=tmp, env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {done.stderr[-2000:]}")
                measured = json.loads(done.stdout.splitlines()[-1])
                if Path(measured["bot"]).parent != expected[name]:
                    raise SystemExit(f"{name}: measured the bot in {measured['bot']}")
                sides[name] += measured["rows"]
    sys.stdout.write(f"tickets per side: {runs * rounds} ({rounds} rounds of {runs})\n")
    sys.stdout.write(table(sides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="also measure the bot at this git revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        side_by_side(args.baseline, args.runs, args.rounds)
        return
    rows = measure(args.runs)
    if args.json:
        import bot

        sys.stdout.write("\n" + json.dumps({"bot": bot.__file__, "rows": rows}) + "\n")
        return
    sys.stdout.write(f"runs: {len(rows)}\n")
    sys.stdout.write(table({"this tree": rows}))


if __name__ == "__main__":
    main()
