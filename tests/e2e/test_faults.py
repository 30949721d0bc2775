"""GitHub and the LLM misbehave; the ticket still ends where it would have without faults.

The fake GitHub answers chosen requests with 5xx (also after carrying out a
write, or dropping the connection mid-answer), secondary rate limits
(403/429 with `retry-after`) and an exhausted primary rate limit (403,
`x-ratelimit-remaining: 0`, `x-ratelimit-reset` in two seconds). The bot
must ride them out: one ticket, one pull request, one comment with its link,
one check run completed `success`. A failing LLM must end the ticket
`failed`, with the reason on GitHub.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import BOTH_STORES, REPO, Bot, labeled_payload
from tests.e2e.test_label_to_pr import prepare
from tests.fakes.github import DROP, FakeGitHub
from tests.fakes.llm import error, text, tool

BRANCH = "autocode/issue-1"


def script_one_file(bot: Bot) -> None:
    bot.llm.script(
        [
            tool("write", filePath="hello.txt", content="Hello, world!\n"),
            text("Added hello.txt with a friendly greeting."),
        ]
    )


def containers_of(bot: Bot, ticket_id: int) -> list[str]:
    """This bot's containers of a ticket (other sessions on the engine have tickets too)."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=autocode.ticket={ticket_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    workdir = str(Path(bot.settings.workdir).resolve())
    mine = []
    for container in listed:
        mounts = subprocess.run(
            ["docker", "inspect", "--format", "{{range .Mounts}}{{.Source}} {{end}}", container],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        if workdir in mounts:
            mine.append(container)
    return mine


def injected(gh: FakeGitHub) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request the fake answered with a planned fault."""
    with gh._lock:
        return [(r["method"], r["path"], r["status"]) for r in gh.requests if r.get("injected")]


def assert_one_pull_request_reported(bot: Bot, ticket: dict[str, object]) -> None:
    """The end state of a label run that made a change, exactly as without faults."""
    gh = bot.github
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    assert ticket["conclusion"] == "success"
    assert gh.read_file(REPO, BRANCH, "hello.txt") == "Hello, world!\n"
    assert len(gh.commit_log(REPO, BRANCH)) == 2  # the initial commit and the agent's one

    pulls = [p for (repo, _), p in gh.pulls.items() if repo == REPO]
    assert len(pulls) == 1, pulls
    assert pulls[0]["head"]["ref"] == BRANCH
    assert ticket["pr_url"] == pulls[0]["html_url"]

    mine = [c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1, [c["body"] for c in mine]
    assert pulls[0]["html_url"] in mine[0]["body"]

    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert len(runs) == 1, runs
    assert runs[0]["external_id"] == str(ticket["id"])
    assert (runs[0]["status"], runs[0]["conclusion"]) == ("completed", "success")
    assert containers_of(bot, int(str(ticket["id"]))) == []


@BOTH_STORES
def test_rest_errors_and_rate_limits_do_not_change_the_outcome(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    script_one_file(bot)
    primary = {
        "message": "API rate limit exceeded for installation ID 1.",
        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    }
    faults = [
        # 5xx: retried with exponential backoff
        ("POST", r"/app/installations/\d+/access_tokens$", 502, 1, {}, None),
        ("GET", r"/collaborators/[^/]+/permission$", 502, 1, {}, None),
        ("POST", r"/issues/1/reactions$", 503, 1, {}, None),
        ("POST", r"/check-runs$", 502, 2, {}, None),
        ("PATCH", r"/issues/comments/\d+$", 502, 1, {}, None),
        ("PATCH", r"/check-runs/\d+$", 500, 1, {}, None),
        # a 429 and a secondary rate limit, both asking for one second
        ("POST", r"/pulls$", 429, 1, {"retry-after": "1"}, None),
        ("GET", r"/issues/1/comments$", 403, 1, {"retry-after": "1"}, None),
        # the primary rate limit, exhausted until two seconds from now
        (
            "GET",
            r"/repos/[^/]+/[^/]+/issues/1$",
            403,
            1,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 2)},
            primary,
        ),
    ]
    for method, pattern, status, times, headers, body in faults:
        gh.inject(method, pattern, status, times=times, headers=headers, body=body)

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))

    # every planned fault was served (so each call above really was retried)
    assert gh.injections == []
    served = injected(gh)
    assert len(served) == sum(f[3] for f in faults), served
    assert sorted({s for _, _, s in served}) == [403, 429, 500, 502, 503]
    assert_one_pull_request_reported(bot, ticket)
    assert any(r["content"] == "eyes" for r in gh.reactions)
    run_id = gh.find_check_runs(REPO, "Auto-Code")[0]["id"]
    history = [(h["status"], h.get("conclusion")) for h in gh.check_run_history(run_id)]
    assert history[0] == ("queued", None) and history[-1] == ("completed", "success")
    assert ("in_progress", None) in history


@pytest.mark.parametrize("fault", [502, DROP], ids=["502-after-the-write", "dropped-answer"])
def test_writes_github_did_but_did_not_confirm_are_not_doubled(
    make_bot: Callable[..., Bot], fault: int
) -> None:
    """The comment, the check run and the pull request are each made, and the answer lost."""
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    script_one_file(bot)
    for pattern in (r"/issues/1/comments$", r"/check-runs$", r"/pulls$"):
        gh.inject("POST", pattern, fault, after=True)

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))

    assert gh.injections == [] and len(injected(gh)) == 3
    assert_one_pull_request_reported(bot, ticket)  # one comment, one check run, one PR


@BOTH_STORES
@pytest.mark.parametrize(
    ("step", "method", "pattern"),
    [
        ("clone", "GET", r"\.git/info/refs$"),  # the first info/refs is the clone's
        ("push", "POST", r"\.git/git-receive-pack$"),
    ],
)
def test_a_git_server_error_does_not_change_the_outcome(
    make_bot: Callable[..., Bot], step: str, method: str, pattern: str
) -> None:
    """GitHub's git front ends answer 502 now and then; one of them must not fail the run."""
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    script_one_file(bot)
    gh.inject(method, pattern, 502, times=1)

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))

    assert gh.injections == [], f"the {step} never reached the fake"
    assert [s for _, _, s in injected(gh)] == [502]
    assert_one_pull_request_reported(bot, ticket)


# opencode's own retries take about 70 s: one store (the default, SQLite) shows the outcome
def test_an_llm_that_keeps_failing_ends_the_ticket_failed_with_the_reason(
    make_bot: Callable[..., Bot],
) -> None:
    """Every completion answers 500: opencode retries for about a minute, then gives up."""
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([error(500)])

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)), timeout=300)

    assert ticket["state"] == "failed", ticket
    assert ticket["conclusion"] == "failure"
    reason = str(ticket["error"] or "")
    assert "scripted failure 500" in reason, reason  # the LLM's own error message
    assert len(bot.llm.requests) > 1  # the agent did try again

    assert gh.branch_sha(REPO, BRANCH) is None
    assert [p for (repo, _), p in gh.pulls.items() if repo == REPO] == []
    mine = [c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1
    assert "failed" in mine[0]["body"] and reason in mine[0]["body"], mine[0]["body"]
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert len(runs) == 1
    assert (runs[0]["status"], runs[0]["conclusion"]) == ("completed", "failure")
    assert reason in runs[0]["output"]["summary"], runs[0]["output"]
    assert containers_of(bot, int(str(ticket["id"]))) == []


def test_github_failing_the_permission_check_still_ends_in_a_clear_comment(
    make_bot: Callable[..., Bot],
) -> None:
    """GitHub keeps failing before any run starts: the ticket fails and GitHub is told why."""
    bot = make_bot()
    gh = bot.github
    gh.add_repo(REPO, {"README.md": "# Hello\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Add hello", body="Please.", user="Codertocat")
    gh.inject("GET", r"/collaborators/.*/permission$", 502, times=20)
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)), timeout=120)
    assert ticket["state"] == "failed"
    assert "502" in ticket["error"] and "permission" in ticket["error"]
    mine = [c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1 and "502" in mine[0]["body"]
    assert bot.llm.requests == []
