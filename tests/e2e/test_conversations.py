"""`/opencode` on issues and pull requests, cancel, retry, rerequest, order, forks.

Every test goes through GitHub's real payload examples (rewritten only where
they must point at the fake), a real uvicorn server, the real opencode in the
real runner image on the real Docker engine, and the scripted LLM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import REPO, SECRET, Bot, labeled_payload
from tests.fakes.llm import hang, slow, text, tool
from tests.webhooks import send

log = logging.getLogger("tests.conversations")


def prepare(gh: Any, *, role: str = "write") -> None:
    gh.add_repo(REPO, {"README.md": "# Hello World\n", "src/app.py": "print('hi')\n"})
    gh.set_permission(REPO, "Codertocat", role)
    gh.add_issue(REPO, 1, title="Greeting", body="We need a greeting.", user="Codertocat")


def add_pull(gh: Any, number: int = 2, branch: str = "feature") -> str:
    gh.commit_file(REPO, branch, "src/feature.py", "x = 1\n", "Start the feature")
    gh.add_pull(REPO, number, title="A feature", body="Work in progress.", user="Codertocat",
                head=branch)  # fmt: skip
    return str(gh.branch_sha(REPO, branch))


def comment(bot: Bot, body: str, number: int = 1, sender: str = "Codertocat") -> httpx.Response:
    payload = bot.github.payload(
        "issue_comment/created.json", repo=REPO, number=number, sender=sender, comment=body
    )
    return send(bot.url, "issue_comment", payload, SECRET)


def ticket_of(response: httpx.Response) -> int:
    assert response.status_code == 202, response.text
    return int(response.json()["ticket"])


def bot_comments(gh: Any, number: int) -> list[dict[str, Any]]:
    return [c for c in gh.issue_comments(REPO, number) if c["user"]["login"] == gh.bot_login]


def wait_for(what: Callable[[], Any], timeout: float = 120, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_command_on_an_issue_without_the_label_opens_a_pull_request(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([tool("write", filePath="hello.txt", content="Hello!\n"), text("Added.")])
    response = comment(bot, "/opencode add hello.txt saying Hello!\nKeep it short.")
    ticket = bot.wait(ticket_of(response))
    assert ticket["state"] == "succeeded", ticket
    assert ticket["instructions"] == "add hello.txt saying Hello!\nKeep it short."
    assert gh.read_file(REPO, "autocode/issue-1", "hello.txt") == "Hello!\n"
    prompt = next(p for p in bot.llm.prompts() if "Your task:" in p)
    assert prompt.index("add hello.txt saying Hello!") < prompt.index("We need a greeting.")
    # 👀 on the comment that asked, one comment of ours with the PR link
    command_id = response.request and next(
        c["id"] for c in gh.issue_comments(REPO, 1) if c["body"].startswith("/opencode")
    )
    assert any(r["content"] == "eyes" and r.get("comment_id") == command_id for r in gh.reactions)
    mine = bot_comments(gh, 1)
    assert len(mine) == 1 and ticket["pr_url"] in mine[0]["body"]


def test_a_command_on_a_pull_request_adds_a_commit_to_its_branch(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    head = add_pull(gh)
    bot.llm.script([tool("write", filePath="src/feature.py", content="x = 2\n"), text("Done.")])
    ticket = bot.wait(ticket_of(comment(bot, "/opencode set x to 2", number=2)))
    assert ticket["state"] == "succeeded", ticket
    log_ = gh.commit_log(REPO, "feature")
    assert log_[0]["parents"] == [head]  # a new commit on top, no force push
    assert gh.bot_login in log_[0]["author_name"]
    assert gh.read_file(REPO, "feature", "src/feature.py") == "x = 2\n"
    assert len(gh.pulls) == 1  # no new pull request
    assert ticket["pr_number"] == 2
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert runs[-1]["head_sha"] == head and runs[-1]["conclusion"] == "success"
    replies = bot_comments(gh, 2)
    assert len(replies) == 1 and "pull request #2" in replies[0]["body"]
    prompt = next(p for p in bot.llm.prompts() if "Your task:" in p)
    assert "pull request's branch" in prompt


def test_a_review_comment_command_gets_the_file_and_hunk_and_a_thread_reply(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    add_pull(gh)
    hunk = "@@ -0,0 +1 @@\n+x = 1"
    payload = gh.payload(
        "pull_request_review_comment/created.json", repo=REPO, number=2, sender="Codertocat",
        comment="/opencode rename x to answer",
        fields={"comment.path": "src/feature.py", "comment.line": 1, "comment.start_line": None,
                "comment.diff_hunk": hunk},
    )  # fmt: skip
    asked = payload["comment"]["id"]
    bot.llm.script([tool("write", filePath="src/feature.py", content="answer = 1\n"), text("ok")])
    ticket = bot.wait(ticket_of(send(bot.url, "pull_request_review_comment", payload, SECRET)))
    assert ticket["state"] == "succeeded", ticket
    prompt = next(p for p in bot.llm.prompts() if "Your task:" in p)
    assert "`src/feature.py`, line 1" in prompt and hunk in prompt
    assert gh.read_file(REPO, "feature", "src/feature.py") == "answer = 1\n"
    replies = [c for c in gh.review_comments.values() if c.get("in_reply_to_id") == asked]
    assert len(replies) == 1 and replies[0]["user"]["login"] == gh.bot_login
    assert "pull request #2" in replies[0]["body"]
    assert bot_comments(gh, 2) == []  # the answer is in the thread, not the conversation


def test_a_review_body_command_runs_on_the_pull_request(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    add_pull(gh)
    payload = gh.payload(
        "pull_request_review/submitted.json", repo=REPO, number=2, sender="Codertocat",
        fields={"review.body": "Looks close.\n/opencode add a docstring",
                "review.user": gh.user_json("Codertocat")},
    )  # fmt: skip
    bot.llm.script([tool("write", filePath="src/feature.py", content='"""Doc."""\n'), text("ok")])
    ticket = bot.wait(ticket_of(send(bot.url, "pull_request_review", payload, SECRET)))
    assert ticket["state"] == "succeeded", ticket
    assert ticket["instructions"] == "add a docstring"
    assert gh.read_file(REPO, "feature", "src/feature.py") == '"""Doc."""\n'


def test_cancel_stops_the_running_container(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([tool("bash", command="echo working", description="Work"), hang()])
    try:
        run_id = ticket_of(comment(bot, "/opencode do something long"))
        wait_for(
            lambda: (
                bot.containers(run_id)
                and bot.llm.requests
                and any(r["body"].get("tools") for r in bot.llm.requests[-1:])
                and len(bot.llm.requests) >= 3
            )
        )
        began = time.monotonic()
        cancel_id = ticket_of(comment(bot, "/opencode cancel"))
        ticket = bot.wait(run_id, timeout=60)
        took = time.monotonic() - began
    finally:
        bot.llm.release()
    log.info("cancel took %.2f s", took)
    assert ticket["state"] == "cancelled" and ticket["conclusion"] == "cancelled"
    assert took < 15
    assert bot.containers(run_id) == []
    assert bot.wait(cancel_id)["state"] == "succeeded"
    run = gh.find_check_runs(REPO, "Auto-Code")[-1]
    assert run["status"] == "completed" and run["conclusion"] == "cancelled"
    body = bot_comments(gh, 1)[0]["body"]
    assert "cancelled by @Codertocat" in body
    assert gh.branch_sha(REPO, "autocode/issue-1") is None


def test_the_check_runs_cancel_button_stops_the_run(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([hang()])
    try:
        run_id = ticket_of(comment(bot, "/opencode take your time"))
        run = wait_for(lambda: [r for r in gh.find_check_runs(REPO, "Auto-Code")
                                if r["status"] == "in_progress"])[0]  # fmt: skip
        offered = gh.check_run_history(run["id"])[-1]["actions"]
        assert [a["identifier"] for a in offered] == ["cancel"]
        payload = gh.payload(
            "check_run/requested_action.json", repo=REPO, sender="Codertocat",
            fields={"check_run.name": "Auto-Code", "check_run.external_id": str(run_id),
                    "check_run.app.id": gh.app_id, "requested_action.identifier": "cancel"},
        )  # fmt: skip
        assert send(bot.url, "check_run", payload, SECRET).status_code == 202
        ticket = bot.wait(run_id, timeout=60)
    finally:
        bot.llm.release()
    assert ticket["state"] == "cancelled"
    final = gh.check_run_history(run["id"])[-1]
    assert final["conclusion"] == "cancelled" and final["actions"] == []


def test_retry_runs_the_last_request_again(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([text("I will not change anything this time.")])
    first = bot.wait(ticket_of(comment(bot, "/opencode add hello.txt")))
    assert first["conclusion"] == "neutral"
    bot.llm.script([tool("write", filePath="hello.txt", content="hi\n"), text("Added.")])
    retry = bot.wait(ticket_of(comment(bot, "/opencode retry")))
    assert retry["state"] == "succeeded" and retry["conclusion"] == "success", retry
    assert retry["instructions"] == "add hello.txt"
    assert gh.read_file(REPO, "autocode/issue-1", "hello.txt") == "hi\n"


def test_rerunning_the_check_run_from_github_runs_that_ticket_again(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([text("No change.")])
    first_id = ticket_of(comment(bot, "/opencode add hello.txt"))
    bot.wait(first_id)
    payload = gh.payload(
        "check_run/rerequested.json", repo=REPO, sender="Codertocat",
        fields={"check_run.name": "Auto-Code", "check_run.external_id": str(first_id),
                "check_run.app.id": gh.app_id},
    )  # fmt: skip
    bot.llm.script([tool("write", filePath="hello.txt", content="hi\n"), text("Added.")])
    again = bot.wait(ticket_of(send(bot.url, "check_run", payload, SECRET)))
    assert again["state"] == "succeeded" and again["conclusion"] == "success", again
    assert again["number"] == 1 and again["instructions"] == "add hello.txt"
    # a check run of another app, or an unknown ticket, does nothing
    payload["check_run"]["external_id"] = "999999"
    assert send(bot.url, "check_run", payload, SECRET).status_code == 200


def test_a_second_request_waits_behind_the_running_one(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([
        tool("write", filePath="one.txt", content="1\n"),
        slow(text("First done."), 6),
        tool("write", filePath="two.txt", content="2\n"),
        text("Second done."),
    ])  # fmt: skip
    first_id = ticket_of(comment(bot, "/opencode write one.txt"))
    wait_for(lambda: bot.ticket(first_id)["state"] == "running" and bot.containers(first_id))
    second_id = ticket_of(comment(bot, "/opencode write two.txt"))
    waiting = wait_for(lambda: [c for c in bot_comments(gh, 1) if "queued behind" in c["body"]])
    assert len(waiting) == 1 and f"ticket {first_id}" in waiting[0]["body"]
    assert bot.ticket(second_id)["state"] == "queued"
    first, second = bot.wait(first_id), bot.wait(second_id)
    assert first["state"] == second["state"] == "succeeded", (first, second)
    assert second["started_at"] >= first["finished_at"]
    # the waiting comment became the second run's outcome: still one comment per run
    assert len(bot_comments(gh, 1)) == 2
    assert gh.read_file(REPO, "autocode/issue-1", "two.txt") == "2\n"


def test_the_label_and_a_bare_command_together_make_one_run(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([tool("write", filePath="hello.txt", content="hi\n"), text("Added.")])
    label_id = bot.deliver("issues", labeled_payload(gh))
    joined = comment(bot, "/opencode")
    assert joined.status_code == 200 and joined.json()["ticket"] == label_id
    assert bot.wait(label_id)["state"] == "succeeded"
    assert len(gh.find_check_runs(REPO, "Auto-Code")) == 1


def test_quoted_and_edited_commands_and_bot_comments_do_nothing(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    quoted = comment(bot, "> /opencode do it\n\nThat's what they said.")
    assert quoted.status_code == 200 and "ticket" not in quoted.json()
    in_code = comment(bot, "```\n/opencode do it\n```")
    assert in_code.status_code == 200 and "ticket" not in in_code.json()
    edited = gh.payload("issue_comment/edited.json", repo=REPO, number=1, sender="Codertocat",
                        comment="/opencode do it")  # fmt: skip
    assert send(bot.url, "issue_comment", edited, SECRET).status_code == 200
    by_bot = gh.payload("issue_comment/created.json", repo=REPO, number=1, sender=gh.bot_login,
                        comment="/opencode do it")  # fmt: skip
    assert send(bot.url, "issue_comment", by_bot, SECRET).status_code == 200
    assert bot.llm.requests == []


def test_a_pull_request_from_a_fork_is_refused(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    gh.add_repo("mallory/Hello-World", {}, fork_of=REPO, installation_id=0)
    gh.commit_file("mallory/Hello-World", "evil", "src/app.py", "print('pwn')\n", "Evil")
    gh.add_pull(REPO, 2, title="From a fork", body="", user="mallory", head="evil",
                head_repo="mallory/Hello-World")  # fmt: skip
    ticket = bot.wait(ticket_of(comment(bot, "/opencode polish this", number=2)))
    assert ticket["state"] == "failed"
    body = bot_comments(gh, 2)[0]["body"]
    assert "fork" in body and "mallory/Hello-World" in body
    assert bot.llm.requests == []
    assert gh.find_check_runs(REPO, "Auto-Code") == []


def test_help_and_unknown_commands_answer_with_the_command_list(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.wait(ticket_of(comment(bot, "/opencode help")))
    bot.wait(ticket_of(comment(bot, "/opencode frobnicate")))
    answers = bot_comments(gh, 1)
    assert len(answers) == 2
    for answer in answers:
        for word in ("retry", "cancel", "help", "ask", "fresh"):
            assert f"/opencode {word}" in answer["body"]
    assert "frobnicate" in answers[1]["body"]


def test_a_reader_may_not_command_but_may_cancel_their_own_request(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    gh.set_permission(REPO, "reader", "read")
    rejected = bot.wait(ticket_of(comment(bot, "/opencode do it", sender="reader")))
    assert rejected["state"] == "rejected"
    assert "write, maintain or admin" in bot_comments(gh, 1)[-1]["body"]
    # someone else's run: a reader's cancel is refused and the run goes on
    bot.llm.script([hang()])
    try:
        run_id = ticket_of(comment(bot, "/opencode long job"))
        wait_for(lambda: bot.containers(run_id))
        refused = bot.wait(ticket_of(comment(bot, "/opencode cancel", sender="reader")))
        assert refused["state"] == "rejected"
        assert bot.ticket(run_id)["state"] == "running"
        ticket_of(comment(bot, "/opencode cancel"))
        assert bot.wait(run_id, timeout=60)["state"] == "cancelled"
    finally:
        bot.llm.release()


def test_ask_answers_in_a_comment_and_pushes_nothing(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([
        tool("bash", command="cat src/app.py; touch x 2>&1 || echo read-only", description="Look"),
        text("It prints hi."),
    ])  # fmt: skip
    ticket = bot.wait(ticket_of(comment(bot, "/opencode ask what does src/app.py do?")))
    assert ticket["state"] == "succeeded" and ticket["conclusion"] == "neutral", ticket["error"]
    answer = bot_comments(gh, 1)[0]["body"]
    assert "It prints hi." in answer
    assert any("Read-only file system" in r or "read-only" in r for r in bot.llm.tool_results())
    assert gh.branch_sha(REPO, "autocode/issue-1") is None and gh.pulls == {}
    run = gh.find_check_runs(REPO, "Auto-Code")[-1]
    assert run["conclusion"] == "neutral" and "It prints hi." in run["output"]["text"]
