"""The Docker engine goes away and comes back: tickets wait, then every one ends.

The bot reaches the real engine through a link the test can cut (see
tests/fakes/docker_link.py): for the bot that is the engine stopping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import BOTH_STORES, REPO, Bot, labeled_payload
from tests.fakes.docker_link import DockerLink
from tests.fakes.llm import slow, text, tool

pytestmark = BOTH_STORES


@pytest.fixture
def link(tmp_path: Path) -> Iterator[DockerLink]:
    with DockerLink(tmp_path / "docker.sock") as made:
        yield made


def test_tickets_wait_for_the_engine_and_all_end(
    make_bot: Callable[..., Bot], link: DockerLink
) -> None:
    bot = make_bot(DOCKER_HOST=link.url, AUTOCODE_MAX_PARALLEL="1", AUTOCODE_LEASE_SECONDS="6")
    gh = bot.github
    gh.add_repo(REPO, {"README.md": "# Hello\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    for number in (1, 2, 3, 4):
        gh.add_issue(REPO, number, title=f"File {number}", body="Please.", user="Codertocat")
    bot.llm.on_tools = lambda body: (
        tool("write", filePath="done.txt", content="done\n")
        if not any(m.get("role") == "tool" for m in body.get("messages", []))
        else text("Done.")
    )

    link.cut()
    health = httpx.get(f"{bot.url}/healthz").json()
    assert health["status"] == "degraded" and health["docker"] == "unreachable"
    waiting = [bot.deliver("issues", labeled_payload(gh, number=n)) for n in (1, 2, 3)]
    time.sleep(4)
    assert [bot.ticket(t)["state"] for t in waiting] == ["queued"] * 3
    link.restore()
    for ticket_id in waiting:
        ticket = bot.wait(ticket_id, timeout=180)
        assert ticket["state"] == "succeeded", ticket["error"]
    assert httpx.get(f"{bot.url}/healthz").json()["status"] == "ok"

    # the engine goes away in the middle of a run: that run ends with the reason
    bot.llm.on_tools = None
    bot.llm.script([slow(text("Thinking."), 30)])
    running = bot.deliver("issues", labeled_payload(gh, number=4))
    deadline = time.monotonic() + 90
    while not bot.containers(running) or bot.ticket(running)["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)
    link.cut()
    ticket = bot.wait(running, timeout=120)
    assert ticket["state"] == "failed" and "Docker engine" in ticket["error"], ticket
    body = next(c for c in gh.issue_comments(REPO, 4) if c["user"]["login"] == gh.bot_login)["body"]
    assert "Docker engine" in body
    assert gh.find_check_runs(REPO, "Auto-Code")[-1]["conclusion"] == "failure"
    link.restore()
    deadline = time.monotonic() + 60
    while bot.containers(running):  # the sweep removes what the cut run left
        assert time.monotonic() < deadline, "the dead run's container was not removed"
        time.sleep(0.5)
