"""Where a run works, decided on GitHub's own pull request JSON."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from bot.policy.target import NoTarget, Target, branch_for, issue_target, pull_target
from tests.paths import REST_EXAMPLES

PULL: dict[str, Any] = json.loads((REST_EXAMPLES / "pull-request.json").read_text())
BASE_REPO = PULL["base"]["repo"]["full_name"]
CLONE_URL = PULL["base"]["repo"]["clone_url"]


def same_repository_pull(**changes: Any) -> dict[str, Any]:
    """GitHub's example pull request, its head branch moved into the base repository."""
    pull = copy.deepcopy(PULL)
    pull["head"]["repo"] = copy.deepcopy(pull["base"]["repo"])
    pull.update(changes)
    return pull


def decide(pull: dict[str, Any], *, ask: bool = False) -> Target | NoTarget:
    return pull_target(
        pull, number=pull["number"], repository=BASE_REPO, clone_url=CLONE_URL, ask=ask
    )


def test_an_issue_gets_the_bots_branch_from_the_default_branch() -> None:
    target = issue_target(branch_for(7), "main", None, "abc123")
    assert target == Target("autocode/issue-7", "main", "abc123", existing=False)
    assert branch_for(7) == "autocode/issue-7"


def test_a_follow_up_starts_where_the_bots_branch_is() -> None:
    target = issue_target(branch_for(7), "main", "def456", "abc123")
    assert (target.start_sha, target.existing) == ("def456", True)


def test_a_pull_request_is_worked_on_in_its_own_branch() -> None:
    pull = same_repository_pull()
    target = decide(pull)
    assert isinstance(target, Target)
    assert target.branch == pull["head"]["ref"] and target.base == pull["base"]["ref"]
    assert target.start_sha == pull["head"]["sha"] and target.existing
    assert target.pull is pull and target.clone_url == ""


def test_a_forks_branch_is_refused_naming_the_fork() -> None:
    pull = copy.deepcopy(PULL)
    pull["head"]["repo"]["full_name"] = "someone/Hello-World"
    refused = decide(pull)
    assert isinstance(refused, NoTarget) and not refused.closed
    assert "someone/Hello-World" in refused.reason and "cannot push" in refused.reason


def test_a_deleted_fork_is_refused_too() -> None:
    pull = copy.deepcopy(PULL)
    pull["head"]["repo"] = None
    refused = decide(pull)
    assert isinstance(refused, NoTarget) and "no longer exists" in refused.reason


def test_an_ask_reads_a_forks_head_from_the_fork_on_the_same_host() -> None:
    pull = copy.deepcopy(PULL)
    pull["head"]["repo"]["full_name"] = "someone/Hello-World"
    pull["head"]["repo"]["clone_url"] = "https://github.com/someone/Hello-World.git"
    target = decide(pull, ask=True)
    assert isinstance(target, Target)
    assert target.clone_url == "https://github.com/someone/Hello-World.git"
    pull["head"]["repo"]["clone_url"] = "https://elsewhere.example/someone/Hello-World.git"
    assert isinstance(decide(pull, ask=True), NoTarget)  # never another host


def test_a_closed_pull_request_gets_nothing() -> None:
    closed = decide(same_repository_pull(state="closed"))
    assert isinstance(closed, NoTarget) and closed.closed
    assert closed.reason == f"pull request #{PULL['number']} is closed"


def test_a_python_api_ticket_works_on_the_branch_it_names() -> None:
    from bot.models import Origin, Ticket, TicketKind, TicketState
    from bot.policy.target import work_branch

    ticket = Ticket(
        id=0, delivery_id="s", event="service", kind=TicketKind.SERVICE, repository="o/r",
        clone_url="https://github.com/o/r.git", installation_id=None, number=0,
        is_pull_request=False, title="Add a greeting", body="", requested_by="service",
        instructions="", origin=Origin(branch="autocode/add-a-greeting"),
        state=TicketState.RUNNING, created_at=0.0,
    )  # fmt: skip
    assert work_branch(ticket) == "autocode/add-a-greeting"
    # an issue's ticket cannot name another branch: its origin comes from a webhook
    issue = replace(ticket, kind=TicketKind.LABEL, number=7)
    assert work_branch(issue) == "autocode/issue-7"
