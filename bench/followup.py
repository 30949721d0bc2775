"""Failed checks to the follow-up's agent: how long the bot takes to go back to work.

    python -m bench.followup [--runs 5]

The whole bot runs in this process behind a real uvicorn server, against the
fake GitHub and the scripted LLM on 127.0.0.1, with the real opencode in the
real runner image on the local Docker engine. Each run: the label's run
opens a pull request (not measured), then a GitHub Actions suite with a
failing job (an annotation, a 2 MB log) completes on the bot's commit, and
the `check_suite.completed` delivery is sent. Printed, median and max over
the runs, from that delivery to:

- `run begins`: the follow-up was decided and its run began (the PR, its
  tickets, the settings file, the suites, the failing runs, annotations and
  the log's tail read from GitHub);
- `agent start`: the run reached its agent phase (its container starts);
- `first model request`: opencode in the container asked the model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.e2e import ADMIN, SECRET, bot_settings
from bot.app import build_app
from bot.store.sqlite import SQLiteStore
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.fakes.server import ServerThread
from tests.webhooks import send

REPO = "bench/hello"
LOG = b"".join(b"2024-05-01T10:00:00.0000000Z step %d of the job\n" % i for i in range(45000))
FAILING = {
    "name": "test",
    "conclusion": "failure",
    "output": {"title": "1 failed", "summary": "test_add failed"},
    "annotations": [{"path": "a.txt", "start_line": 1, "end_line": 1,
                     "annotation_level": "failure", "message": "assert 1 == 2"}],
    "log": LOG + b"E   assert 1 == 2\n",
}  # fmt: skip


def wait(url: str, ticket_id: int) -> dict[str, object]:
    while True:
        ticket = httpx.get(
            f"{url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        if ticket["state"] not in ("queued", "running"):
            return dict(ticket)
        time.sleep(0.05)


def one_run(url: str, github: FakeGitHub, llm: ScriptedLLM, store: SQLiteStore) -> list[float]:
    number = github.repo(REPO).next_number
    github.add_issue(REPO, number, title=f"Add {number}", body="Please.", user="alice")
    llm.script([tool("write", filePath=f"a-{number}.txt", content="1\n"), text("Added.")])
    labeled = github.payload(
        "issues/labeled.json", repo=REPO, number=number, label="auto-code", sender="alice"
    )
    opened = wait(url, int(send(url, "issues", labeled, SECRET).json()["ticket"]))
    if opened["state"] != "succeeded":
        raise SystemExit(f"the label's run ended {opened['state']}")
    sha = str(github.branch_sha(REPO, f"autocode/issue-{number}"))
    suite = github.add_check_suite(REPO, sha, runs=[FAILING])
    llm.script([tool("write", filePath=f"a-{number}.txt", content="2\n"), text("Fixed.")])
    asked = len(llm.requests)
    began = time.time()
    response = send(url, "check_suite", github.check_suite_payload(REPO, suite), SECRET)
    ticket_id = int(response.json()["ticket"])
    fixed = wait(url, ticket_id)
    if fixed["state"] != "succeeded":
        raise SystemExit(f"the follow-up ended {fixed['state']}: {fixed.get('error')}")
    lines = store.logs(ticket_id)
    agent = next(line.at for line in lines if line.kind == "phase" and line.message == "agent")
    first = next(line.at for line in lines if line.kind == "phase")
    model = llm.requests[asked]["time"]
    return [first - began, agent - began, float(str(model)) - began]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(Path(tmp) / "github") as github, \
            ScriptedLLM() as llm:  # fmt: skip
        github.add_repo(REPO, {"README.md": "# hello\n", ".github/autocode.yml":
                               "ci_fix_attempts: 5\n"})  # fmt: skip
        github.set_permission(REPO, "alice", "write")
        github.grant("bench", actions="read")
        database = f"{tmp}/autocode.db"
        settings = bot_settings(github, llm, tmp)
        with ServerThread(build_app(settings)) as server:
            store = SQLiteStore(database)
            rows = [one_run(server.url, github, llm, store) for _ in range(args.runs)]
            store.close()
    sys.stdout.write(f"runs: {len(rows)} (log of {len(FAILING['log']) // 1024} KB per job)\n")
    sys.stdout.write(f"{'check_suite.completed →':<28}{'median s':>10}{'max s':>10}\n")
    for index, name in enumerate(("run begins", "agent start", "first model request")):
        values = [row[index] for row in rows]
        sys.stdout.write(f"{name:<28}{statistics.median(values):>10.3f}{max(values):>10.3f}\n")


if __name__ == "__main__":
    main()
