"""The whole work side, claimed ticket → concluded check run, without Docker or a network.

Tickets come from GitHub's real webhook payloads through the bot's own
rules into a real SQLite store; the worker claims them and runs them
through the pipeline unchanged. The ports are filled by `pipeline_world`:
GitHub in memory, git on disk (a bare repository), and containers that
replay opencode's recorded output (recorded from the real opencode).
The end-to-end tests (tests/e2e) run the same paths with Docker, the real
opencode and a strict fake GitHub over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.models import Delivery, Ticket, TicketState, Trigger
from bot.pipeline.worker import Worker
from bot.store.sqlite import SQLiteStore
from bot.triggers.rules import RuleSettings, decide
from tests.paths import PAYLOADS
from tests.record_opencode import APP_PY, README
from tests.unit.pipeline_world import (
    RECORDINGS,
    LocalWorkspace,
    MemoryApp,
    MemoryGitHub,
    Replay,
    ReplayEngine,
    make_remote,
)

RULES = RuleSettings(trigger_label="auto-code")
LABELED: dict[str, Any] = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
COMMENTED: dict[str, Any] = json.loads((PAYLOADS / "issue_comment" / "created.json").read_text())
REPOSITORY = LABELED["repository"]["full_name"]
NUMBER = LABELED["issue"]["number"]
SENDER = LABELED["sender"]["login"]
BRANCH = f"autocode/issue-{NUMBER}"


def meta(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / f"{name}.meta.json").read_text()))


@dataclass
class World:
    github: MemoryGitHub
    app: MemoryApp
    engine: ReplayEngine
    store: SQLiteStore
    worker: Worker
    settings: Settings

    def deliver(self, event: str, payload: dict[str, Any], delivery: str = "d-1") -> Ticket:
        """A webhook delivery through the bot's rules into the store, then claimed."""
        decision = decide(Delivery(delivery, event, payload.get("action", ""), payload), RULES)
        assert isinstance(decision, Trigger), decision
        self.store.add(delivery, event, decision)
        ticket = self.store.claim(self.worker.worker_id, 60, self.worker.clock())
        assert ticket is not None
        return ticket

    def label(self) -> Ticket:
        payload = json.loads(json.dumps(LABELED))
        payload["label"]["name"] = "auto-code"
        return self.deliver("issues", payload)

    def command(self, body: str) -> Ticket:
        payload = json.loads(json.dumps(COMMENTED))
        payload["comment"]["body"] = body
        payload["issue"]["number"] = NUMBER
        payload["issue"].pop("pull_request", None)
        return self.deliver("issue_comment", payload, delivery="d-2")

    async def run(self, ticket: Ticket) -> Ticket:
        await self.worker.process(ticket)
        final = self.store.get(ticket.id)
        assert final is not None
        return final

    def comment(self) -> str:
        """The ticket's one comment (its last state)."""
        bodies = self.github.bot_comments()
        assert len(bodies) == 1, bodies
        return bodies[0]

    def check_run(self) -> dict[str, Any]:
        (check,) = self.github.check_runs.values()
        return check


def a_world(tmp_path: Path, settings_file: str = "", **environ: str) -> World:
    files = {"README.md": README, "src/app.py": APP_PY}
    if settings_file:
        files[".github/autocode.yml"] = settings_file
    remote = make_remote(tmp_path / "github", files)
    github = MemoryGitHub(REPOSITORY, remote, LABELED["issue"])
    github.permissions[SENDER] = "write"
    app = MemoryApp(github)
    engine = ReplayEngine()
    settings = Settings.from_environ(
        {
            "AUTOCODE_WORKDIR": str(tmp_path / "work"),
            "AUTOCODE_PUBLIC_URL": "https://bot.example.com",
            **environ,
        }
    )
    store = SQLiteStore(tmp_path / "tickets.db")
    clone_url = LABELED["repository"]["clone_url"]

    def workspace(root: Path, url: str) -> LocalWorkspace:
        assert url == clone_url  # the repository's own clone URL, as the payload gives it
        return LocalWorkspace(root, str(remote))

    worker = Worker(settings, store, app, engine, worker_id="pipeline-test", workspace=workspace)
    return World(github, app, engine, store, worker, settings)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return a_world(tmp_path)


async def test_a_labeled_issue_becomes_a_pull_request(world: World) -> None:
    world.engine.agents = [Replay("success")]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.SUCCEEDED and ticket.conclusion == "success"
    (number,) = world.github.pulls
    pull = world.github.pulls[number]
    assert pull["head"]["ref"] == BRANCH and pull["base"]["ref"] == "main"
    assert not pull["draft"] and "hello.txt" in pull["body"]
    assert world.github.file_on(BRANCH, "hello.txt") == "hello from the agent"
    assert (ticket.pr_number, ticket.files_changed) == (number, ("hello.txt",))
    assert f"opened pull request #{number}" in world.comment()
    check = world.check_run()
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    assert check["details_url"] == f"https://bot.example.com/tickets/{ticket.id}"
    assert ("issue", NUMBER, "eyes") in world.github.reactions
    # the usage opencode reported, summed over the recording's steps
    steps = [s["usage"] for s in meta("success")["script"]]
    assert ticket.tokens_input == sum(u["prompt_tokens"] for u in steps)
    assert ticket.tokens_output == sum(u["completion_tokens"] for u in steps)
    (spec,) = world.engine.specs
    assert spec.role == "agent" and not spec.workspace_read_only
    assert spec.network == "internal" and spec.user == "1000:1000"
    assert "GITHUB_TOKEN" not in spec.environment and not any(
        token.token in " ".join(spec.command) for token in world.app.tokens
    )
    assert not (Path(world.settings.workdir) / f"ticket-{ticket.id}").exists()


async def test_no_change_opens_nothing(world: World) -> None:
    world.engine.agents = [Replay("no_change")]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.SUCCEEDED and ticket.conclusion == "neutral"
    assert "the agent made no changes" in world.comment()
    assert world.github.pulls == {} and await world.github.branch_sha(BRANCH) is None


async def test_a_failing_agent_says_why(world: World) -> None:
    world.engine.agents = [Replay("provider_error")]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.FAILED and ticket.conclusion == "failure"
    assert "the agent failed" in world.comment()
    status = meta("provider_error")["script"][0]["status"]  # what the LLM answered, every time
    assert ticket.error and str(status) in ticket.error and ticket.error in world.comment()
    assert world.github.pulls == {}


async def test_a_cancel_stops_the_agent(world: World) -> None:
    world.engine.agents = [Replay(hang=True)]
    ticket = world.label()
    running = asyncio.create_task(world.run(ticket))
    await asyncio.wait_for(world.engine.started.wait(), 10)
    assert world.worker.cancel(ticket.id, "octocat")
    done = await asyncio.wait_for(running, 10)

    assert done.state is TicketState.CANCELLED
    assert "cancelled" in world.comment() and "@octocat" in world.comment()
    assert world.check_run()["conclusion"] == "cancelled"


async def test_a_silent_agent_times_out(tmp_path: Path) -> None:
    world = a_world(tmp_path, AUTOCODE_IDLE_TIMEOUT="1")
    world.engine.agents = [Replay(hang=True)]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.TIMED_OUT
    assert "went silent" in world.comment() and "AUTOCODE_IDLE_TIMEOUT" in world.comment()


async def test_the_test_loop_gives_the_agent_the_failure_and_tries_again(tmp_path: Path) -> None:
    world = a_world(tmp_path, "test: python -m pytest -q\nmax_attempts: 2\n")
    world.engine.agents = [Replay("edit"), Replay("success")]
    world.engine.commands = [
        (1, "FAILED test_app.py::test_greet - AssertionError"),
        (0, "1 passed"),
    ]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.SUCCEEDED and ticket.conclusion == "success"
    roles = [s.role for s in world.engine.specs]
    assert roles == ["agent", "test", "agent", "test"]
    feedback = world.engine.specs[2].command[-1]
    assert "FAILED test_app.py::test_greet" in feedback and "python -m pytest -q" in feedback
    assert set(ticket.files_changed) == {"src/app.py", "hello.txt"}
    assert world.github.file_on(BRANCH, "src/app.py").count('name + "!"') == 1
    comment = world.comment()
    assert "attempt 1" in comment and "attempt 2" in comment


async def test_tests_that_still_fail_give_a_draft(tmp_path: Path) -> None:
    world = a_world(tmp_path, "test: make test\nmax_attempts: 1\n")
    world.engine.agents = [Replay("edit")]
    world.engine.commands = [(2, "make: *** [test] Error 2")]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.FAILED and ticket.conclusion == "failure"
    (pull,) = world.github.pulls.values()
    assert pull["draft"] and "the tests still fail" in world.comment()


async def test_changes_to_protected_paths_are_undone(tmp_path: Path) -> None:
    world = a_world(tmp_path, "protected_paths:\n  - hello.txt\n")
    world.engine.agents = [Replay("success")]
    ticket = await world.run(world.label())

    assert ticket.conclusion == "neutral"
    assert "changed only protected paths" in world.comment()
    assert world.github.pulls == {} and await world.github.branch_sha(BRANCH) is None


async def test_the_token_budget_stops_the_agent(tmp_path: Path) -> None:
    world = a_world(tmp_path, "max_tokens_per_run: 1000\n")
    world.engine.agents = [Replay("success")]
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.FAILED
    assert "budget reached" in world.comment() and "1,000 tokens" in world.comment()
    first_step = meta("success")["script"][0]["usage"]
    assert ticket.tokens_input == first_step["prompt_tokens"]  # stopped after the first step
    assert world.github.pulls == {}


async def test_an_ask_answers_and_pushes_nothing(world: World) -> None:
    world.engine.agents = [Replay("no_change")]
    ticket = await world.run(world.command("/opencode ask what does greet do?"))

    assert ticket.conclusion == "neutral"
    answer = meta("no_change")["script"][0]["text"]
    assert answer in world.comment()
    (spec,) = world.engine.specs
    assert spec.workspace_read_only
    assert world.github.pulls == {} and await world.github.branch_sha(BRANCH) is None


async def test_someone_without_write_access_is_refused_before_any_container(world: World) -> None:
    world.github.permissions[SENDER] = "read"
    ticket = await world.run(world.label())

    assert ticket.state is TicketState.REJECTED
    assert world.engine.specs == [] and world.github.check_runs == {}
    assert "@" + SENDER in world.comment()


async def test_a_ticket_lost_twice_ends_failed_and_says_so(world: World) -> None:
    """A worker that died mid-run: the lease expires, the ticket runs again; lost twice, it ends."""
    now = [1000.0]
    world.worker.clock = lambda: now[0]
    ticket = world.label()  # claimed with a 60 s lease, then the worker "dies"
    await world.github.comment(NUMBER, "<!-- autocode:ticket=1 -->\n⏳ working")
    world.store.update(ticket.id, comment_id=max(world.github.comments_by_id))
    now[0] += 61
    await world.worker.upkeep.recover()
    assert world.store.get(ticket.id).state is TicketState.QUEUED  # handed back: runs again
    again = world.store.claim("another-worker", 60, now[0])
    assert again is not None and again.id == ticket.id
    now[0] += 61
    await world.worker.upkeep.recover()

    final = world.store.get(ticket.id)
    assert final is not None and final.state is TicketState.FAILED
    assert "the run failed" in world.comment() and "lost" in world.comment()


async def test_upkeep_removes_crashed_runs_folders_and_prunes_old_logs(world: World) -> None:
    """At start, clones of runs that died stay behind no longer; old log lines go hourly."""
    world.engine.agents = [Replay("no_change")]
    done = await world.run(world.label())
    running = world.command("/opencode add a test")  # claimed: running on some worker
    work = Path(world.settings.workdir).resolve()
    for ticket_id in (done.id, running.id, 999):  # 999: a ticket the store does not know
        (work / f"ticket-{ticket_id}" / "work").mkdir(parents=True, exist_ok=True)
    assert world.store.logs(done.id)

    later = (done.finished_at or 0) + 31 * 86400  # a month on
    world.worker.clock = lambda: later
    assert world.store.renew(running.id, world.worker.worker_id, 60, later)  # still alive
    await world.worker.upkeep.tick()

    assert sorted(p.name for p in work.glob("ticket-*")) == [f"ticket-{running.id}"]
    assert world.store.logs(done.id) == []  # finished 31 days ago: AUTOCODE_LOG_KEEP_DAYS=30
