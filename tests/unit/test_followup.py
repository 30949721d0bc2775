"""Whether the bot follows up its own pull request, and what the agent is told (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.models import EMPTY_ORIGIN, Origin, Ticket, TicketKind, TicketState
from bot.policy.followup import (
    CAP_REACHED,
    FIX,
    PASSED,
    History,
    Passed,
    Pull,
    Skip,
    Suite,
    cap,
    ci_decision,
    history,
    review_decision,
)
from bot.repo_settings import RepoSettings
from bot.runner.feedback import (
    Annotation,
    FailedCheck,
    Review,
    ReviewComment,
    ci_brief,
    ci_why,
    log_tail,
    replies,
    review_brief,
    thread_reply,
)
from tests.paths import PAYLOADS

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
OURS = "4242"
ON = RepoSettings(ci_fix_attempts=2)
OPEN = Pull(open=True, fork=False, head_sha=SHA)
PUSHED = History(
    last_push=SHA, pusher=1, used=0, stopped=False, followed=frozenset(), cap_said=False
)


def ticket(id: int, kind: TicketKind = TicketKind.LABEL, **fields: Any) -> Ticket:
    base = Ticket(
        id=id, delivery_id=f"d{id}", event="e", kind=kind, repository="o/r", clone_url="",
        installation_id=1, number=7, is_pull_request=True, title="t", body="", requested_by="a",
        instructions="", origin=EMPTY_ORIGIN, state=TicketState.SUCCEEDED, created_at=0.0,
    )  # fmt: skip
    return replace(base, **fields)


def suite(app_id: int, status: str = "completed", conclusion: str = "success") -> Suite:
    return Suite(id=app_id * 10, app_id=app_id, app=f"app{app_id}", status=status,
                 conclusion=conclusion)  # fmt: skip


def decide_ci(*suites: Suite, **changes: Any) -> Skip | Passed | object:
    facts: dict[str, Any] = dict(
        sha=SHA, pull=OPEN, suites=suites, our_app_id=OURS, past=PUSHED, settings=ON, host_cap=5
    )
    facts.update(changes)
    return ci_decision(**facts)


def test_the_pull_request_of_githubs_example_is_read_as_github_has_it() -> None:
    payload = json.loads((PAYLOADS / "pull_request" / "opened.json").read_text())
    pull = Pull.of(payload["pull_request"], payload["repository"]["full_name"])
    assert pull == Pull(open=True, fork=False, head_sha=payload["pull_request"]["head"]["sha"])
    assert Pull.of(payload["pull_request"], "someone/else").fork
    assert Pull.of({"state": "open", "head": {"repo": None, "sha": "x"}}, "o/r").fork


def test_a_failed_suite_of_the_bots_last_push_is_fixed() -> None:
    assert decide_ci(suite(1, conclusion="failure"), suite(int(OURS))) is FIX


def test_passing_checks_end_the_loop_with_a_tick_only_when_it_is_on() -> None:
    assert decide_ci(suite(1), suite(2, conclusion="neutral")) == Passed(announce=True)
    off = decide_ci(suite(1), settings=RepoSettings())
    assert off == Passed(announce=False)


def test_our_own_suite_never_counts_even_when_it_failed() -> None:
    assert decide_ci(suite(int(OURS), conclusion="failure")) == Passed(announce=True)
    still = decide_ci(suite(1), suite(int(OURS), status="in_progress", conclusion=""))
    assert still == Passed(announce=True)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"pull": replace(OPEN, open=False)}, "closed"),
        ({"pull": replace(OPEN, fork=True)}, "fork"),
        ({"pull": replace(OPEN, head_sha="b" * 40)}, "newer commit"),
        ({"past": replace(PUSHED, last_push="c" * 40)}, "not the bot's last push"),
        ({"past": replace(PUSHED, last_push=None)}, "never pushed"),
        ({"past": replace(PUSHED, followed=frozenset({SHA}))}, "followed up already"),
        ({"past": replace(PUSHED, stopped=True)}, "stop"),
        ({"settings": RepoSettings()}, "ci_fix_attempts"),
        ({"host_cap": 0}, "AUTOCODE_MAX_CI_FIX_ATTEMPTS"),
    ],
)
def test_failed_checks_that_make_no_run(changes: dict[str, Any], reason: str) -> None:
    decision = decide_ci(suite(1, conclusion="failure"), **changes)
    assert isinstance(decision, Skip)
    assert reason in decision.reason
    assert decision.say == ""


def test_nothing_while_another_suite_of_the_commit_runs() -> None:
    decision = decide_ci(suite(1, conclusion="failure"), suite(2, status="in_progress"))
    assert isinstance(decision, Skip) and "still running" in decision.reason


def test_the_cap_is_said_once() -> None:
    spent = replace(PUSHED, used=2)
    first = decide_ci(suite(1, conclusion="failure"), past=spent)
    assert isinstance(first, Skip) and first.reason == CAP_REACHED
    assert "2 times" in first.say and "ci_fix_attempts" in first.say
    again = decide_ci(suite(1, conclusion="failure"), past=replace(spent, cap_said=True))
    assert isinstance(again, Skip) and again.say == ""


def test_the_cap_counts_reviews_too_and_the_host_caps_the_file() -> None:
    assert cap(RepoSettings(ci_fix_attempts=3), 5) == 3
    assert cap(RepoSettings(ci_fix_attempts=3), 1) == 1
    assert cap(RepoSettings(), 5) == 5  # no CI fixes: reviews within the host's cap
    decision = review_decision(pull=OPEN, past=replace(PUSHED, used=2), settings=ON, host_cap=5)
    assert isinstance(decision, Skip) and decision.reason == CAP_REACHED


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"pull": replace(OPEN, open=False)}, "closed"),
        ({"past": replace(PUSHED, last_push=None)}, "not a pull request of the bot"),
        ({"settings": RepoSettings(on_review="off")}, "on_review"),
        ({"past": replace(PUSHED, stopped=True)}, "stop"),
    ],
)
def test_reviews_that_make_no_run(changes: dict[str, Any], reason: str) -> None:
    facts: dict[str, Any] = dict(pull=OPEN, past=PUSHED, settings=RepoSettings(), host_cap=5)
    facts.update(changes)
    decision = review_decision(**facts)
    assert isinstance(decision, Skip) and reason in decision.reason


def test_a_review_on_the_bots_pull_request_goes_ahead_by_default() -> None:
    assert review_decision(pull=OPEN, past=PUSHED, settings=RepoSettings(), host_cap=5) is FIX


def test_history_reads_the_pull_requests_tickets() -> None:
    tickets = [
        ticket(1, number=3, pr_number=7, pushed_sha="a" * 40),  # the run opened PR 7
        ticket(
            2, TicketKind.CI_FIX, check_run_id=11, pushed_sha=SHA, origin=Origin(head_sha="a" * 40)
        ),
        ticket(3, TicketKind.CI_FIX, conclusion=PASSED, origin=Origin(head_sha=SHA)),
        ticket(4, TicketKind.REVIEW_FIX, check_run_id=12),
        ticket(5, TicketKind.CI_FIX, state=TicketState.REJECTED, error="skipped"),
        ticket(6, TicketKind.STOP, state=TicketState.FAILED),
        ticket(9, TicketKind.CI_FIX, check_run_id=13, origin=Origin(head_sha="f" * 40)),
    ]
    past = history(tickets, 7, me=9)
    assert past.last_push == SHA and past.pusher == 2
    assert past.used == 2  # those that ran; not the skipped one, not this one
    assert past.followed == {"a" * 40, SHA}
    assert not past.stopped and not past.cap_said
    stopped = history([*tickets, ticket(10, TicketKind.STOP)], 7, me=9)
    assert stopped.stopped
    said = ticket(11, TicketKind.CI_FIX, error=CAP_REACHED, comment_id=5)
    assert history([*tickets, said], 7, me=9).cap_said


def test_the_log_tail_is_cut_on_a_line_and_cleaned() -> None:
    lines = [f"2024-05-01T10:00:{i % 60:02d}.1234567Z \x1b[31mline {i}\x1b[0m" for i in range(5000)]
    data = "\n".join(lines).encode()
    tail = log_tail(data, limit=1000)
    assert len(tail.encode()) <= 1000
    assert tail.splitlines()[0].startswith("line ")  # a whole line, its stamp and colours gone
    assert tail.endswith("line 4999")
    binary = bytes(range(256)) * 10 + b"\nreadable end\n"
    assert log_tail(binary).endswith("readable end")
    assert "\x00" not in log_tail(binary)


def test_the_ci_brief_holds_the_output_annotations_and_log() -> None:
    check = FailedCheck(
        name="test (3.12)", app="github-actions", conclusion="failure", title="1 failed",
        summary="tests/test_calc.py::test_add FAILED",
        annotations=(Annotation("calc.py", 3, 3, "failure", "assert 5 == 4"),),
        log_tail="E   assert add(2, 2) == 4",
    )  # fmt: skip
    brief = ci_brief([check], SHA, no_logs=False)
    assert "ec26c3e" in brief and "`test (3.12)`" in brief
    assert "calc.py:3 (failure) assert 5 == 4" in brief
    assert "E   assert add(2, 2) == 4" in brief
    assert "actions: read" in ci_brief([check], SHA, no_logs=True)
    assert ci_why([check, check], SHA) == "CI `test (3.12)` and 1 more failed on ec26c3e"


def test_the_review_brief_numbers_the_comments_and_replies_are_read_back() -> None:
    review = Review(5, "alice", "Two things.", (
        ReviewComment(1, "calc.py", 3, "@@ -1,3 +1,3 @@\n def add", "Rename `add`."),
        ReviewComment(2, "README.md", None, "@@", "Typo."),
    ))  # fmt: skip
    brief = review_brief(review)
    assert "@alice" in brief and "> Two things." in brief
    assert "[1] On `calc.py`, line 3" in brief and "[2] On `README.md`" in brief
    assert "```" not in brief and "~~~~diff" in brief
    answer = "Done.\n\n[1] Renamed it to `plus`.\n- [2]: Fixed the typo.\n[3] nothing"
    assert replies(answer, 2) == {1: "Renamed it to `plus`.", 2: "Fixed the typo."}
    assert thread_reply("Renamed.", SHA, changed=True) == "Addressed in ec26c3e. Renamed."
    assert thread_reply(None, None, changed=False) == "No change was made for this comment."


def test_the_settings_file_asks_for_follow_ups_within_the_hosts_cap() -> None:
    from bot.repo_settings import HostLimits, Invalid, parse

    host = HostLimits(run_timeout=1800, max_ci_fix_attempts=2)
    settings = parse("ci_fix_attempts: 2\non_review: 'off'\n", host)
    assert isinstance(settings, RepoSettings)
    assert (settings.ci_fix_attempts, settings.on_review) == (2, "off")
    over = parse("ci_fix_attempts: 3\n", host)
    assert isinstance(over, Invalid)
    assert [str(p) for p in over.problems] == [
        "line 1: `ci_fix_attempts` is 3, more than this host allows "
        "(AUTOCODE_MAX_CI_FIX_ATTEMPTS is 2)"
    ]
    wrong = parse("ci_fix_attempts: 6\non_review: sometimes\n", HostLimits(run_timeout=1800))
    assert isinstance(wrong, Invalid) and len(wrong.problems) == 2
