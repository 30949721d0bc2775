"""The bot finishes its own pull requests: failed checks and reviews go back to the agent.

The fake GitHub serves check suites, annotations, the Actions job-log redirect
and reviews as GitHub does; the deliveries are built from GitHub's real
`check_suite.completed` and `pull_request_review.submitted` examples. The
agent is the real opencode in the runner image, talking to the scripted LLM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import ADMIN, REPO, SECRET, Bot, labeled_payload
from tests.fakes.llm import hang, text, tool
from tests.webhooks import send

BRANCH = "autocode/issue-1"
OWNER = REPO.split("/")[0]
BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
FAILING_RUN = {
    "name": "test (3.12)",
    "conclusion": "failure",
    "output": {"title": "1 test failed", "summary": "tests/test_calc.py::test_add FAILED"},
    "annotations": [
        {
            "path": "calc.py",
            "start_line": 2,
            "end_line": 2,
            "annotation_level": "failure",
            "message": "AssertionError: add(2, 2) returned 0, expected 4",
        }
    ],
    "log": "\n".join(f"2024-05-01T10:00:00.0000000Z setup step {i}" for i in range(3000))
    + "\n2024-05-01T10:00:01.0000000Z E   assert add(2, 2) == 4\n",
}


def prepare(gh: Any, settings: str | None) -> None:
    files: dict[str, str | bytes] = {"README.md": "# Calc\n", "calc.py": "# to do\n"}
    if settings is not None:
        files[".github/autocode.yml"] = settings
    gh.add_repo(REPO, files)
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Add add()", body="calc.py needs add(a, b).", user="Codertocat")


def open_pull(bot: Bot, content: str = BUGGY) -> tuple[int, str]:
    """The label's run opens the bot's pull request; its number and the commit pushed.

    The label's ticket is `bot.extra["opened"]`."""
    bot.llm.script([tool("write", filePath="calc.py", content=content), text("Added add().")])
    ticket = bot.wait(bot.deliver("issues", labeled_payload(bot.github)))
    assert ticket["state"] == "succeeded", ticket
    bot.extra["opened"] = ticket["id"]
    return int(ticket["pr_number"]), str(bot.github.branch_sha(REPO, BRANCH))


def checks_finished(bot: Bot, sha: str, *runs: dict[str, Any], app: str = "github-actions") -> Any:
    """A suite of `runs` on `sha` completes: GitHub's delivery of it, and the bot's answer."""
    suite = bot.github.add_check_suite(REPO, sha, app=app, runs=list(runs))
    return send(bot.url, "check_suite", bot.github.check_suite_payload(REPO, suite), SECRET)


def ticket_of(response: Any) -> int:
    assert response.status_code == 202, response.text
    return int(response.json()["ticket"])


def bot_comments(gh: Any, number: int) -> list[str]:
    return [
        c["body"] for c in gh.issue_comments(REPO, number) if c["user"]["login"] == gh.bot_login
    ]


def reviewed(bot: Bot, number: int, review: int) -> int:
    payload = bot.github.review_payload(REPO, number, review)
    return ticket_of(send(bot.url, "pull_request_review", payload, SECRET))


def test_failed_checks_are_fixed_once_and_passing_checks_end_the_loop(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, "ci_fix_attempts: 2\n")
    gh.grant(OWNER, actions="read")
    number, pushed = open_pull(bot)
    first = bot.extra["opened"]

    bot.llm.script([tool("write", filePath="calc.py", content=FIXED), text("Fixed add().")])
    fix = bot.wait(ticket_of(checks_finished(bot, pushed, FAILING_RUN)))
    assert fix["state"] == "succeeded", fix
    assert fix["kind"] == "ci_fix" and fix["number"] == number
    # the agent was given the failing check, its annotation and the end of its job's log
    task = next(p for p in bot.llm.prompts() if "checks of your last commit" in p)
    assert f"({pushed[:7]})" in task and "`test (3.12)`" in task
    assert "calc.py:2 (failure) AssertionError: add(2, 2) returned 0, expected 4" in task
    assert "E   assert add(2, 2) == 4" in task and "2024-05-01T10" not in task
    assert "setup step 0\n" not in task  # only the log's tail
    blob = [f for f in gh.blob_fetches if f["kind"] == "job-logs"]
    assert blob and not any(f["authorization"] for f in blob) and not gh.violations
    # one new commit on the pull request's branch, no new pull request
    commits = gh.commit_log(REPO, BRANCH)
    assert commits[0]["parents"] == [pushed]
    assert gh.read_file(REPO, BRANCH, "calc.py") == FIXED
    assert len(gh.pulls) == 1
    why = f"Started because CI `test (3.12)` failed on {pushed[:7]}."
    assert any(why in body for body in bot_comments(gh, number))
    run = gh.find_check_runs(REPO, "Auto-Code")[-1]
    assert run["head_sha"] == pushed and run["conclusion"] == "success"
    assert why in run["output"]["summary"]
    # the dashboard shows the pull request's chain: the run that opened it, then the fix
    page = httpx.get(f"{bot.url}/tickets/{fix['id']}", headers={"Authorization": f"Bearer {ADMIN}"})
    assert page.status_code == 200 and 'id="chain"' in page.text
    assert f'data-chain="{first}"' in page.text and f'data-chain="{fix["id"]}"' in page.text
    assert f"CI `test (3.12)` failed on {pushed[:7]}" in page.text

    fixed = str(gh.branch_sha(REPO, BRANCH))
    requests = len(bot.llm.requests)
    passed = bot.wait(
        ticket_of(checks_finished(bot, fixed, {"name": "test (3.12)", "conclusion": "success"}))
    )
    assert passed["state"] == "succeeded" and passed["conclusion"] == "passed", passed
    assert any(f"✓ The checks of {fixed[:7]} passed." in b for b in bot_comments(gh, number))
    assert gh.branch_sha(REPO, BRANCH) == fixed and len(bot.llm.requests) == requests
    # the same suite delivered again: nothing more
    again = bot.wait(
        ticket_of(checks_finished(bot, fixed, {"name": "lint", "conclusion": "success"}))
    )
    assert again["state"] == "rejected" and "followed up already" in again["error"]


def test_the_cap_is_said_once_and_then_nothing_more_starts(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, "ci_fix_attempts: 1\n")  # no `actions: read`: output and annotations only
    number, pushed = open_pull(bot)
    bot.llm.script(
        [
            tool("write", filePath="calc.py", content="def add(a, b):\n    return 0\n"),
            text("Tried."),
        ]
    )
    fix = bot.wait(ticket_of(checks_finished(bot, pushed, FAILING_RUN)))
    assert fix["state"] == "succeeded", fix
    task = next(p for p in bot.llm.prompts() if "checks of your last commit" in p)
    assert "AssertionError: add(2, 2) returned 0" in task and "actions: read" in task
    assert "E   assert add(2, 2) == 4" not in task
    assert any("job logs not read" in body for body in bot_comments(gh, number))

    second = str(gh.branch_sha(REPO, BRANCH))
    requests = len(bot.llm.requests)
    spent = bot.wait(ticket_of(checks_finished(bot, second, FAILING_RUN)))
    assert spent["state"] == "rejected" and "all the follow-ups" in spent["error"], spent
    rerun = bot.wait(ticket_of(checks_finished(bot, second, FAILING_RUN)))
    assert rerun["state"] == "rejected"
    said = [b for b in bot_comments(gh, number) if "followed up this pull request once" in b]
    assert len(said) == 1
    assert len(bot.llm.requests) == requests and gh.branch_sha(REPO, BRANCH) == second


def test_a_human_push_stops_the_loop_and_others_checks_make_nothing(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, "ci_fix_attempts: 3\n")
    number, pushed = open_pull(bot)
    gh.commit_file(
        REPO, BRANCH, "calc.py", FIXED, "Fix it myself", author=("Codertocat", "c@example.com")
    )
    human = str(gh.branch_sha(REPO, BRANCH))
    requests = len(bot.llm.requests)

    # GitHub lists a suite's pull requests by their head: the bot's commit is no head now
    late = checks_finished(bot, pushed, FAILING_RUN)
    assert late.status_code == 200 and "no pull request" in late.json()["ignored"]
    theirs = checks_finished(bot, human, FAILING_RUN)
    assert theirs.status_code == 200 and "did not push" in theirs.json()["ignored"]
    ours = checks_finished(
        bot, pushed, {"name": "Auto-Code", "conclusion": "failure"}, app=gh.app_slug
    )
    assert ours.status_code == 200 and "own check suite" in ours.json()["ignored"]
    assert len(bot.llm.requests) == requests and gh.branch_sha(REPO, BRANCH) == human
    assert not any("Started because" in body for body in bot_comments(gh, number))


def test_a_review_requesting_changes_is_answered_in_each_thread_with_one_commit(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, None)  # no settings file: reviews are followed up by default
    gh.set_permission(REPO, "carol", "write")
    number, pushed = open_pull(bot, "def add(a, b):\n    print('adding')\n    return a + b\n")
    review = gh.add_review(
        REPO,
        number,
        "carol",
        body="Two things.",
        comments=[
            {"path": "calc.py", "line": 1, "body": "Name it `plus`."},
            {"path": "calc.py", "line": 2, "body": "No printing, please."},
        ],
    )
    threads = [c["id"] for c in gh.review_comments_of(review)]
    bot.llm.script(
        [
            tool("write", filePath="calc.py", content="def plus(a, b):\n    return a + b\n"),
            text("Done.\n\n[1] Renamed add to plus.\n[2] Removed the print."),
        ]
    )
    started = time.monotonic()
    ticket = bot.wait(reviewed(bot, number, review))
    assert ticket["state"] == "succeeded" and ticket["kind"] == "review_fix", ticket
    assert time.monotonic() - started < 240
    task = next(p for p in bot.llm.prompts() if "requested changes" in p)
    assert "[1] On `calc.py`, line 1" in task and "Name it `plus`." in task
    assert "[2] On `calc.py`, line 2" in task and "No printing, please." in task
    assert "print('adding')" in task  # the diff hunk
    commits = gh.commit_log(REPO, BRANCH)
    assert commits[0]["parents"] == [pushed]  # one commit
    fixed = str(gh.branch_sha(REPO, BRANCH))
    replies = {
        c["in_reply_to_id"]: c["body"]
        for c in gh.review_comments.values()
        if c.get("in_reply_to_id") in threads and c["user"]["login"] == gh.bot_login
    }
    assert replies == {
        threads[0]: f"Addressed in {fixed[:7]}. Renamed add to plus.",
        threads[1]: f"Addressed in {fixed[:7]}. Removed the print.",
    }
    assert any("review by @carol requested changes" in b for b in bot_comments(gh, number))

    # `stop` on the pull request: the next review starts nothing
    stop = gh.payload(
        "issue_comment/created.json",
        repo=REPO,
        number=number,
        sender="Codertocat",
        comment="/opencode stop",
    )
    assert bot.wait(ticket_of(send(bot.url, "issue_comment", stop, SECRET)))["state"] == "succeeded"
    another = gh.add_review(
        REPO,
        number,
        "carol",
        body="One more.",
        comments=[{"path": "calc.py", "line": 1, "body": "Docstring?"}],
    )
    requests = len(bot.llm.requests)
    skipped = bot.wait(reviewed(bot, number, another))
    assert skipped["state"] == "rejected" and "stop" in skipped["error"]
    assert len(bot.llm.requests) == requests


def test_a_follow_up_is_stopped_by_cancel_on_the_pull_request(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, "ci_fix_attempts: 2\n")
    number, pushed = open_pull(bot)
    bot.llm.script([hang()])
    try:
        fix_id = ticket_of(checks_finished(bot, pushed, FAILING_RUN))
        deadline = time.monotonic() + 120
        while not bot.containers(fix_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bot.containers(fix_id), bot.ticket(fix_id)
        cancel = gh.payload("issue_comment/created.json", repo=REPO, number=number,
                            sender="Codertocat", comment="/opencode cancel")  # fmt: skip
        cancel_id = ticket_of(send(bot.url, "issue_comment", cancel, SECRET))
        fix = bot.wait(fix_id, timeout=60)
    finally:
        bot.llm.release()
    assert fix["state"] == "cancelled" and bot.wait(cancel_id)["state"] == "succeeded"
    assert gh.find_check_runs(REPO, "Auto-Code")[-1]["conclusion"] == "cancelled"
    assert gh.branch_sha(REPO, BRANCH) == pushed and bot.containers(fix_id) == []
