"""A real `autocode serve` process killed with SIGKILL in the middle of a run.

After a restart the ticket's lease expires, the run starts again from a clean
workspace, and it ends `succeeded` with exactly one pull request and one
outcome comment; the dead run's container is removed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.store import open_store
from tests.conftest import RUNNER_IMAGE
from tests.e2e.conftest import ADMIN, BOTH_STORES, REPO, SECRET, agent_containers, labeled_payload
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, hang, text, tool
from tests.paths import ROOT
from tests.webhooks import send

pytestmark = BOTH_STORES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """`autocode serve` as a child process on a fixed port and database."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            cwd=self.log.parent, env=self.env, stdout=out, stderr=out,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"autocode serve did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def containers(self, ticket_id: int) -> list[str]:
        return agent_containers(self.env["AUTOCODE_DATABASE_URL"], ticket_id)

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture
def serve(
    tmp_path: Path, docker_runner: object, database_url: str
) -> Iterator[tuple[Serve, FakeGitHub, ScriptedLLM]]:
    with FakeGitHub(tmp_path / "github") as github, ScriptedLLM() as llm:
        config = tmp_path / "opencode.json"
        config.write_text(json.dumps(llm.provider_config()))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AUTOCODE_")},
            "PYTHONPATH": str(ROOT),
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_APP_ID": str(github.app_id),
            "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode(),
            "AUTOCODE_GITHUB_API_URL": github.api_url,
            "AUTOCODE_DATABASE_URL": database_url,
            "AUTOCODE_WORKDIR": str(tmp_path / "work"),
            "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
            "AUTOCODE_MODEL": "fake/scripted",
            "AUTOCODE_OPENCODE_CONFIG": str(config),
            "AUTOCODE_OPENCODE_AUTH": str(tmp_path / "no-auth.json"),
            "AUTOCODE_AGENT_NETWORK": "host",
            "AUTOCODE_ADMIN_TOKEN": ADMIN,
            "AUTOCODE_LEASE_SECONDS": "4",
            "AUTOCODE_SHUTDOWN_GRACE": "5",
        }
        server = Serve(env, tmp_path / "serve.log")
        try:
            yield server, github, llm
        finally:
            llm.release()
            server.stop()


def test_a_killed_server_finishes_the_run_after_a_restart(
    serve: tuple[Serve, FakeGitHub, ScriptedLLM],
) -> None:
    server, gh, llm = serve
    gh.add_repo(REPO, {"README.md": "# Hello\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Add hello", body="Please.", user="Codertocat")
    # the first attempt hangs in the model; the second writes the file
    llm.script([hang(), tool("write", filePath="hello.txt", content="hi\n"), text("Added.")])
    server.start()
    response = send(server.url, "issues", labeled_payload(gh), SECRET)
    assert response.status_code == 202
    ticket_id = int(response.json()["ticket"])
    deadline = time.monotonic() + 90
    while not server.containers(ticket_id) or len(llm.requests) < 2:
        assert time.monotonic() < deadline, "the first attempt never reached the model"
        time.sleep(0.2)
    server.kill()
    assert agent_containers(
        server.env["AUTOCODE_DATABASE_URL"], ticket_id
    )  # the dead run's container is still there
    server.start()
    deadline = time.monotonic() + 180
    while (ticket := server.ticket(ticket_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, ticket
        time.sleep(0.5)
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    assert ticket["attempts"] == 2
    assert gh.read_file(REPO, "autocode/issue-1", "hello.txt") == "hi\n"
    assert len(gh.pulls) == 1
    mine = [c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1 and ticket["pr_url"] in mine[0]["body"]
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert len(runs) == 1 and runs[0]["conclusion"] == "success"
    deadline = time.monotonic() + 30
    while server.containers(ticket_id):
        assert time.monotonic() < deadline, "the dead run's container was not removed"
        time.sleep(0.5)


def test_sigterm_hands_a_run_past_its_grace_back_to_the_queue(
    serve: tuple[Serve, FakeGitHub, ScriptedLLM],
) -> None:
    server, gh, llm = serve
    gh.add_repo(REPO, {"README.md": "# Hello\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Add hello", body="Please.", user="Codertocat")
    llm.script([hang(), tool("write", filePath="hello.txt", content="hi\n"), text("Added.")])
    server.start()
    ticket_id = int(send(server.url, "issues", labeled_payload(gh), SECRET).json()["ticket"])
    deadline = time.monotonic() + 90
    while not server.containers(ticket_id) or len(llm.requests) < 2:
        assert time.monotonic() < deadline, "the first attempt never reached the model"
        time.sleep(0.2)
    began = time.monotonic()
    assert server.proc is not None
    server.proc.terminate()
    server.proc.wait(timeout=40)
    stopped = time.monotonic() - began
    assert stopped < 25  # the 5 s grace, then the container is stopped
    store = open_store(Settings.from_environ(server.env))
    try:
        handed_back = store.get(ticket_id)
    finally:
        store.close()
    assert handed_back is not None
    state, attempts = str(handed_back.state), handed_back.attempts
    assert (state, attempts) == ("queued", 0)  # handed back, not counted as lost
    assert server.containers(ticket_id) == []
    server.start()
    deadline = time.monotonic() + 120
    while (ticket := server.ticket(ticket_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, ticket
        time.sleep(0.5)
    assert ticket["state"] == "succeeded", ticket["error"]
    assert len(gh.pulls) == 1
    assert len([c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]) == 1


def test_a_run_lost_twice_ends_failed_with_a_comment(
    serve: tuple[Serve, FakeGitHub, ScriptedLLM],
) -> None:
    server, gh, llm = serve
    gh.add_repo(REPO, {"README.md": "# Hello\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Add hello", body="Please.", user="Codertocat")
    llm.script([hang(), hang()])
    server.start()
    ticket_id = int(send(server.url, "issues", labeled_payload(gh), SECRET).json()["ticket"])
    for attempt in (1, 2):
        deadline = time.monotonic() + 90
        while server.ticket(ticket_id)["attempts"] < attempt or len(llm.requests) < 2 * attempt:
            assert time.monotonic() < deadline, f"attempt {attempt} never reached the model"
            time.sleep(0.2)
        server.kill()
        server.start()
    deadline = time.monotonic() + 60
    while (ticket := server.ticket(ticket_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, ticket
        time.sleep(0.5)
    assert ticket["state"] == "failed" and ticket["attempts"] == 2
    assert "lost twice" in ticket["error"]
    mine = [c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1 and "lost twice" in mine[0]["body"]
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert len(runs) == 1 and runs[0]["conclusion"] == "failure"
    assert gh.pulls == {}
