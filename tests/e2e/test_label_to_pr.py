"""A label on an issue becomes a pull request: webhook → worker → container → GitHub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import BOTH_STORES, REPO, Bot, labeled_payload
from tests.fakes.llm import text, tool

pytestmark = BOTH_STORES


def prepare(bot_github, *, role: str = "admin") -> None:
    bot_github.add_repo(REPO, {"README.md": "# Hello World\n", "src/app.py": "print('hi')\n"})
    bot_github.set_permission(REPO, "Codertocat", role)
    bot_github.add_issue(
        REPO,
        1,
        title="Add a greeting file",
        body="Please add hello.txt that greets the world.",
        user="Codertocat",
        comments=[("octocat", "Make it friendly, please.")],
    )


def test_a_labeled_issue_becomes_a_pull_request(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script(
        [
            tool("write", filePath="hello.txt", content="Hello, world!\n"),
            tool("bash", command="cat hello.txt", description="Show the file"),
            text("Added hello.txt with a friendly greeting."),
        ]
    )
    ticket_id = bot.deliver("issues", labeled_payload(gh))
    ticket = bot.wait(ticket_id)
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    assert ticket["conclusion"] == "success"

    # the branch holds the agent's file, committed as the App's bot
    branch = "autocode/issue-1"
    assert gh.read_file(REPO, branch, "hello.txt") == "Hello, world!\n"
    head = gh.commit_log(REPO, branch)[0]
    assert gh.bot_login in head["author_name"] and "#1" in head["message"]
    assert (
        head["author_email"].endswith("[bot]@users.noreply.127.0.0.1")
        or "[bot]" in head["author_email"]
    )
    assert gh.read_file(REPO, "main", "hello.txt") is None  # default branch untouched

    # one pull request, from the branch, closing the issue
    pulls = [p for (repo, _), p in gh.pulls.items() if repo == REPO]
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["head"]["ref"] == branch and pull["base"]["ref"] == "main"
    assert pull["title"] == "Add a greeting file"
    assert "Closes #1" in pull["body"]
    assert ticket["pr_url"] == pull["html_url"]
    assert ticket["files_changed"] == ["hello.txt"]

    # the prompt held the issue and its thread; the tool output went back to the model
    first = bot.llm.requests[-1]["body"]["messages"]
    prompt = next(m for m in first if m["role"] == "user")
    content = prompt["content"] if isinstance(prompt["content"], str) else str(prompt["content"])
    assert "Add a greeting file" in content and "Make it friendly, please." in content

    # reporting: 👀, one comment with the outcome and the link, a completed check run
    assert any(r["content"] == "eyes" for r in gh.reactions)
    comments = gh.issue_comments(REPO, 1)
    mine = [c for c in comments if c["user"]["login"] == gh.bot_login]
    assert len(mine) == 1
    assert pull["html_url"] in mine[0]["body"]
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert len(runs) == 1
    history = [(h["status"], h.get("conclusion")) for h in gh.check_run_history(runs[0]["id"])]
    assert history[0] == ("queued", None)
    assert ("in_progress", None) in history
    assert history[-1] == ("completed", "success")
    # the agent reached the model only through the host's LLM proxy, which counted it
    summary = runs[0]["output"]["summary"]
    assert "LLM requests through the proxy (0 failed)" in summary
    assert len(bot.llm.requests) >= 3 and f"{len(bot.llm.requests)} LLM requests" in summary
    assert runs[0]["head_sha"] == gh.branch_sha(REPO, "main")

    # the token was scoped to this one repository and the run's permissions
    assert gh.tokens and all(t["repositories"] == [REPO] for t in gh.tokens)
    assert gh.tokens[0]["permissions"] == {
        "contents": "write", "pull_requests": "write", "issues": "write",
        "checks": "write", "metadata": "read",
    }  # fmt: skip
    assert bot.containers(ticket_id) == []
    assert list(Path(bot.settings.workdir).glob("ticket-*")) == []  # the clone is removed


def test_a_sender_without_write_permission_is_rejected(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh, role="read")
    ticket_id = bot.deliver("issues", labeled_payload(gh))
    ticket = bot.wait(ticket_id, timeout=60)
    assert ticket["state"] == "rejected"
    comments = gh.issue_comments(REPO, 1)
    assert any("write, maintain or admin" in c["body"] for c in comments)
    assert gh.find_check_runs(REPO) == []
    assert [p for (repo, _), p in gh.pulls.items() if repo == REPO] == []
    assert bot.llm.requests == []


def test_no_changes_means_no_pull_request_and_a_neutral_check(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    bot.llm.script([text("Nothing needs to change: hello.txt is not wanted here.")])
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "succeeded" and ticket["conclusion"] == "neutral"
    assert gh.branch_sha(REPO, "autocode/issue-1") is None
    assert [p for (repo, _), p in gh.pulls.items() if repo == REPO] == []
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert runs[0]["conclusion"] == "neutral"
    body = next(c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login)["body"]
    assert "no changes" in body


def test_a_run_past_its_timeout_ends_timed_out(make_bot: Callable[..., Bot]) -> None:
    from tests.fakes.llm import hang

    bot = make_bot(AUTOCODE_RUN_TIMEOUT="8")
    gh = bot.github
    prepare(gh)
    bot.llm.script([hang()])
    try:
        ticket_id = bot.deliver("issues", labeled_payload(gh))
        ticket = bot.wait(ticket_id, timeout=90)
    finally:
        bot.llm.release()
    assert ticket["state"] == "timed_out"
    runs = gh.find_check_runs(REPO, "Auto-Code")
    assert runs[0]["status"] == "completed" and runs[0]["conclusion"] == "timed_out"
    body = next(c for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login)["body"]
    assert "longer than 8s" in body
    assert bot.containers(ticket_id) == []


def test_the_agent_never_sees_a_github_token(make_bot: Callable[..., Bot]) -> None:
    """A prompt-injected agent dumps what it can reach: no token is in any of it."""
    bot = make_bot()
    gh = bot.github
    prepare(gh)
    snoop = (
        "env; echo ---; git config --list --show-origin; echo ---; cat .git/config; "
        "ls -la /run/autocode ~ ~/.config 2>&1; cat ~/.git-credentials ~/.gitconfig 2>&1; "
        "cat ~/.local/share/opencode/auth.json 2>&1; "
        "grep -rs ghs_ / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -5; "
        "cat /proc/1/environ | tr '\\0' '\\n'; echo snoop-done"
    )
    bot.llm.script(
        [
            tool("bash", command=snoop, description="Look around"),
            tool("write", filePath="notes.txt", content="looked\n"),
            text("Done looking."),
        ]
    )
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh)))
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    seen = "\n".join(str(r["body"]) for r in bot.llm.requests)
    assert "snoop-done" in seen  # the dump really reached the model
    tokens = [t["token"] for t in gh.tokens]
    assert tokens
    for token in tokens:
        assert token not in seen
        assert not any(token in line for line in bot.logs.lines)
    assert gh.private_key_pem.decode().splitlines()[1] not in seen
    assert "x-access-token" not in seen
