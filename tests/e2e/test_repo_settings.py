""".github/autocode.yml, the test loop, protected paths, sessions across runs, budgets.

Real webhooks into the real bot, the fake GitHub, the scripted LLM, and the
real opencode in the real runner image on the real Docker engine: setup and
test commands run in their own containers on the same workspace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, SECRET, Bot, labeled_payload
from tests.fakes.llm import text, tool
from tests.webhooks import send

BRANCH = "autocode/issue-1"


def prepare(gh: Any, files: dict[str, str], *, role: str = "write") -> None:
    gh.add_repo(REPO, {"README.md": "# Hello World\n", **files})
    gh.set_permission(REPO, "Codertocat", role)
    gh.add_issue(
        REPO, 1, title="Add a greeting", body="Please add greeting.txt.", user="Codertocat"
    )


def bot_comments(gh: Any, number: int = 1) -> list[dict[str, Any]]:
    return [c for c in gh.issue_comments(REPO, number) if c["user"]["login"] == gh.bot_login]


def pulls(gh: Any) -> list[dict[str, Any]]:
    return [p for (repo, _), p in gh.pulls.items() if repo == REPO]


def comment(bot: Bot, body: str, number: int = 1) -> int:
    payload = bot.github.payload(
        "issue_comment/created.json", repo=REPO, number=number, sender="Codertocat", comment=body
    )
    response = send(bot.url, "issue_comment", payload, SECRET)
    assert response.status_code == 202, response.text
    return int(response.json()["ticket"])


LOOP_SETTINGS = """\
# the bot's settings for this repository
setup:
  - mkdir -p .cache && echo ready > .cache/setup-done
test: test -f .cache/setup-done && grep -q good greeting.txt
max_attempts: 3
pr_labels: [autocode]
"""


def test_a_failing_change_goes_back_to_the_agent_and_passes_on_the_second_attempt(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, {".gitignore": ".cache/\n", ".github/autocode.yml": LOOP_SETTINGS})
    bot.llm.script([
        tool("write", filePath="greeting.txt", content="bad\n"),
        text("Wrote greeting.txt."),
        tool("write", filePath="greeting.txt", content="good\n"),
        text("Fixed greeting.txt so the test passes."),
    ])  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    assert ticket["conclusion"] == "success"

    # the branch holds the second attempt's change and nothing setup or the tests wrote
    assert gh.read_file(REPO, BRANCH, "greeting.txt") == "good\n"
    assert gh.read_file(REPO, BRANCH, ".cache/setup-done") is None
    assert ticket["files_changed"] == ["greeting.txt"]

    # the agent was told the command and its failure, in the same session
    feedback = next(p for p in bot.llm.prompts() if "test command" in p)
    assert "grep -q good greeting.txt" in feedback and "exit code 1" in feedback
    last = json.dumps(bot.llm.requests[-1]["body"]["messages"])
    assert "Please add greeting.txt." in last  # the first prompt is still in the conversation

    # one PR, not a draft, whose body says the tests pass; the settings' label on it
    (pull,) = pulls(gh)
    assert pull["draft"] is False
    assert "the tests pass (on attempt 2 of 3)" in pull["body"]
    assert [label["name"] for label in pull["labels"]] == ["autocode"]

    # both attempts in the outcome comment and in the check run, as it ran and at the end
    body = bot_comments(gh)[0]["body"]
    assert "attempt 1 of 3: tests failed (exit 1" in body
    assert "attempt 2 of 3: tests passed" in body
    run = gh.find_check_runs(REPO, "Auto-Code")[0]
    history = gh.check_run_history(run["id"])
    shown = "\n".join(h["output"]["summary"] for h in history if h.get("output"))
    assert "attempt 1 of 3: tests failed" in shown
    assert history[-1]["conclusion"] == "success"
    assert "attempt 2 of 3: tests passed" in history[-1]["output"]["summary"]
    assert "Test output (attempt 2" in (history[-1]["output"]["text"] or "")


NEVER_SETTINGS = """\
test: >-
  if grep -q hang greeting.txt; then sleep 60; fi;
  echo "tests/test_greeting.py:3: AssertionError"; exit 1
max_attempts: 2
command_timeout: 5
"""


def test_tests_that_never_pass_give_a_draft_pull_request_and_a_failure(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, {
        ".github/autocode.yml": NEVER_SETTINGS,
        "tests/test_greeting.py": "def test_greeting():\n    assert open('greeting.txt').read()\n"
                                  "    assert False\n",
    })  # fmt: skip
    bot.llm.script([
        tool("write", filePath="greeting.txt", content="hang\n"),  # the tests hang: timeout
        text("First try."),
        tool("write", filePath="greeting.txt", content="still wrong\n"),
        text("Second try."),
    ])  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "failed" and ticket["conclusion"] == "failure", ticket

    (pull,) = pulls(gh)
    assert pull["draft"] is True
    assert "still fail after 2 attempts" in pull["body"]
    assert "AssertionError" in pull["body"]  # the failure, summarised
    assert gh.read_file(REPO, BRANCH, "greeting.txt") == "still wrong\n"

    body = bot_comments(gh)[0]["body"]
    assert "draft pull request" in body
    assert "attempt 1 of 2: tests timed out" in body
    assert "attempt 2 of 2: tests failed (exit 1" in body
    run = gh.find_check_runs(REPO, "Auto-Code")[0]
    assert run["conclusion"] == "failure"
    assert "tests/test_greeting.py:3: AssertionError" in run["output"]["text"]
    annotations = gh.check_meta[run["id"]].annotations
    assert [(a["path"], a["start_line"]) for a in annotations] == [("tests/test_greeting.py", 3)]


def test_changes_to_protected_paths_are_dropped_before_the_commit(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    workflow = "on: push\njobs: {}\n"
    prepare(gh, {
        ".github/workflows/ci.yml": workflow,
        ".github/autocode.yml": "protected_paths:\n  - secrets/**\n",
    })  # fmt: skip
    bot.llm.script([
        tool("write", filePath=".github/workflows/ci.yml", content="on: push\n# pwned\n"),
        tool("write", filePath="secrets/token.txt", content="ghp_fake\n"),
        tool("write", filePath="greeting.txt", content="Hello!\n"),
        text("Done."),
    ])  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    assert ticket["files_changed"] == ["greeting.txt"]
    assert gh.read_file(REPO, BRANCH, "greeting.txt") == "Hello!\n"
    assert gh.read_file(REPO, BRANCH, ".github/workflows/ci.yml") == workflow
    assert gh.read_file(REPO, BRANCH, "secrets/token.txt") is None
    body = bot_comments(gh)[0]["body"]
    assert "Protected paths" in body
    assert "`.github/workflows/ci.yml`" in body and "`secrets/token.txt`" in body
    (pull,) = pulls(gh)
    assert "secrets/token.txt" in pull["body"]  # listed as dropped, not as changed


def test_an_agent_that_only_changes_protected_paths_opens_no_pull_request(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, {})  # no settings file: .github/workflows/** is protected anyway
    bot.llm.script([
        tool("write", filePath=".github/workflows/release.yml", content="on: push\n"),
        text("Added a release workflow."),
    ])  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "succeeded" and ticket["conclusion"] == "neutral", ticket
    assert gh.branch_sha(REPO, BRANCH) is None and pulls(gh) == []
    body = bot_comments(gh)[0]["body"]
    assert "only protected paths" in body and "`.github/workflows/release.yml`" in body


def test_a_follow_up_continues_the_session_and_fresh_starts_a_new_one(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, {})
    bot.llm.script([
        tool("write", filePath="greeting.txt", content="v1\n"),
        text("Wrote greeting.txt, version MEMORY-MARKER-1."),
    ])  # fmt: skip
    first = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert first["state"] == "succeeded", first
    pr_number = first["pr_number"]
    kept = Path(bot.settings.workdir) / "sessions" / "codertocat" / "hello-world" / "issue-1"
    assert json.loads((kept / "session.json").read_text())["id"].startswith("ses_")
    assert not (kept / "data" / "auth.json").exists()

    # on the pull request the bot opened: the same conversation goes on
    seen = len(bot.llm.requests)
    bot.llm.script([tool("write", filePath="greeting.txt", content="v2\n"), text("Now v2.")])
    second = bot.wait(comment(bot, "/opencode make it version 2", number=pr_number))
    assert second["state"] == "succeeded", second
    later = json.dumps([r["body"] for r in bot.llm.requests[seen:]])
    assert "MEMORY-MARKER-1" in later  # the first run's answer
    assert "Please add greeting.txt." in later  # and the first run's prompt
    assert '"v1\\\\n"' in later or "v1" in later  # its tool call
    assert gh.read_file(REPO, BRANCH, "greeting.txt") == "v2\n"

    # `fresh` forgets it
    seen = len(bot.llm.requests)
    bot.llm.script([text("Starting over, nothing to change.")])
    third = bot.wait(comment(bot, "/opencode fresh look again"))
    assert third["state"] == "succeeded", third
    later = json.dumps([r["body"] for r in bot.llm.requests[seen:]])
    assert "look again" in later
    assert "MEMORY-MARKER-1" not in later and "make it version 2" not in later

    # a session opencode no longer has (its data lost) gives a new one, not a failure
    (kept / "session.json").write_text(json.dumps({"id": "ses_gone", "updated": 0}))
    bot.llm.script([text("Fine.")])
    fourth = bot.wait(comment(bot, "/opencode once more"))
    assert fourth["state"] == "succeeded", fourth
    # opencode refused `--session ses_gone`; the bot ran again without it and kept the new id
    assert json.loads((kept / "session.json").read_text())["id"] not in ("ses_gone", "")


BAD_SETTINGS = """\
test: pytest -q
max_attempts: many
timout: 60
timeout: 99999
protected_paths: docs/**
"""


def test_an_invalid_settings_file_is_answered_with_its_errors_and_nothing_runs(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, {".github/autocode.yml": BAD_SETTINGS})
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "failed" and ticket["conclusion"] == "failure", ticket
    body = bot_comments(gh)[0]["body"]
    assert "`.github/autocode.yml` is not valid" in body
    assert "line 2: `max_attempts` must be a whole number" in body
    assert "line 3: unknown key `timout` (did you mean `timeout`?)" in body
    assert "line 4: `timeout` is 99999 seconds, more than this host allows" in body
    assert "line 5: `protected_paths` must be a list" in body
    assert bot.llm.requests == []  # no agent, no container
    run = gh.find_check_runs(REPO, "Auto-Code")[0]
    assert run["conclusion"] == "failure" and "line 3" in run["output"]["summary"]
    assert gh.branch_sha(REPO, BRANCH) is None


@pytest.mark.parametrize("budget", ["tokens", "cost"])
def test_the_run_stops_when_the_budget_is_reached(
    make_bot: Callable[..., Bot], budget: str
) -> None:
    steps = [
        tool("bash", command="echo one", description="One"),
        tool("write", filePath="greeting.txt", content="hi\n"),
        tool("bash", command="echo three", description="Three"),
        tool("bash", command="echo four", description="Four"),
        text("Done."),
    ]
    if budget == "tokens":
        bot = make_bot(AUTOCODE_MAX_TOKENS_PER_RUN="200")  # 150 tokens a step
        files: dict[str, str] = {}
        expected = "token budget of 200 tokens per run was reached"
    else:
        bot = make_bot(AUTOCODE_MAX_COST_PER_RUN="5")
        config = json.loads(Path(bot.settings.opencode_config).read_text())
        model = config["provider"]["fake"]["models"]["scripted"]
        model["cost"] = {"input": 1000, "output": 2000}  # $ per million: $0.18 a step
        Path(bot.settings.opencode_config).write_text(json.dumps(config))
        files = {".github/autocode.yml": "max_cost_per_run: 0.3\n"}
        expected = "cost budget of $0.30 per run was reached"
    gh = bot.github
    prepare(gh, files)
    bot.llm.script(steps)
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "failed" and ticket["conclusion"] == "failure", ticket
    body = bot_comments(gh)[0]["body"]
    assert "budget reached" in body and expected in body
    assert gh.branch_sha(REPO, BRANCH) is None and pulls(gh) == []
    assert gh.find_check_runs(REPO, "Auto-Code")[0]["conclusion"] == "failure"
    assert bot.llm.remaining >= 2  # stopped before the script ran out


def test_a_budget_the_proxy_refuses_stops_the_run(make_bot: Callable[..., Bot]) -> None:
    """The title request spends it: opencode never reports those tokens, and on the proxy's
    403 for its first step it neither quits nor says anything; the bot stops it itself."""
    bot = make_bot(AUTOCODE_MAX_TOKENS_PER_RUN="5000", AUTOCODE_IDLE_TIMEOUT="170")
    gh = bot.github
    prepare(gh, {})
    bot.llm.title_usage = (50_000, 10)
    bot.llm.script([tool("write", filePath="greeting.txt", content="hi\n"), text("Done.")])
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert (ticket["state"], ticket["conclusion"]) == ("failed", "failure"), ticket
    body = bot_comments(gh)[0]["body"]
    assert "budget reached" in body and "token budget of 5,000 tokens" in body
    assert "50,010 tokens billed" in body and "went silent" not in body
    assert gh.branch_sha(REPO, BRANCH) is None and pulls(gh) == []
    assert len(bot.llm.requests) == 1  # the title; the first step was refused by the proxy


def test_allowed_users_and_teams_narrow_who_may_trigger(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    gh.add_user("Codertocat", type="Organization")  # teams live in organizations
    prepare(gh, {".github/autocode.yml": "allowed_users: [octocat]\nallowed_teams: [bots]\n"})
    gh.set_permission(REPO, "outsider", "write")
    gh.add_team_member("Codertocat", "bots", "insider")
    gh.set_permission(REPO, "insider", "write")

    # the App was not granted members: read: the run fails and says so
    payload = gh.payload("issues/labeled.json", repo=REPO, number=1, label="auto-code",
                         sender="insider")  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", payload))
    assert ticket["state"] == "failed"
    assert "members: read" in bot_comments(gh)[-1]["body"]

    inst = gh.repo(REPO).installation_id
    gh.installations[inst].permissions["members"] = "read"
    bot.llm.script([text("Nothing to change.")])
    payload = gh.payload("issues/labeled.json", repo=REPO, number=1, label="auto-code",
                         sender="insider")  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", payload))
    assert ticket["state"] == "succeeded", ticket  # a member of the team
    assert any(t["permissions"] == {"members": "read", "metadata": "read"} for t in gh.tokens)
    assert all("members" not in t["permissions"] or len(t["permissions"]) == 2 for t in gh.tokens)

    requests = len(bot.llm.requests)
    payload = gh.payload("issues/labeled.json", repo=REPO, number=1, label="auto-code",
                         sender="outsider")  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", payload))
    assert ticket["state"] == "rejected"  # write permission, but neither listed nor a member
    assert "allowed_users" in bot_comments(gh)[-1]["body"]
    assert len(bot.llm.requests) == requests
