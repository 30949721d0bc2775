"""Writes that create something are never doubled, whatever happens to GitHub's answer.

The fake GitHub carries out each write and then loses its answer: a 502, or
the connection dropping mid-answer. The bot's own client (`RepoClient`
through `GitHubApp`, as a run uses them) must end with exactly one comment,
review reply, check run or pull request, and return that one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import GitHubError
from bot.github.client import GitHubApp, RepoClient
from tests.fakes.github import DROP, FakeGitHub

REPO = "octo/hello"
BOT = "autocode[bot]"
FAULTS = [pytest.param(502, id="502-after-the-write"), pytest.param(DROP, id="dropped-answer")]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as gh:
        gh.add_repo(REPO, {"README.md": "# Hello\n"})
        gh.add_issue(REPO, 1, title="Add a greeting", body="Please.", user="alice")
        gh.commit_file(REPO, "feature", "greeting.txt", "hi\n")
        yield gh


@pytest.fixture
async def gh(fake: FakeGitHub) -> AsyncIterator[RepoClient]:
    app = GitHubApp(
        api_url=fake.api_url, private_key=fake.private_key_pem.decode(), app_id=str(fake.app_id)
    )
    yield await app.repo(REPO)
    await app.aclose()


def writes(fake: FakeGitHub, method: str, ending: str) -> list[dict[str, Any]]:
    """The requests the bot sent (a lost answer's record and its real one count once)."""
    return [
        r
        for r in fake.requests
        if r["method"] == method and r["path"].endswith(ending) and not r.get("after")
    ]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_comment_is_made_once(fake: FakeGitHub, gh: RepoClient, fault: int) -> None:
    fake.inject("POST", r"/issues/1/comments$", fault, after=True)
    body = "<!-- autocode:ticket=7 -->\n⏳ queued"
    comment_id = await gh.comment(1, body)
    mine = [c for c in fake.issue_comments(REPO, 1) if c["body"] == body]
    assert [c["id"] for c in mine] == [comment_id]
    assert len(writes(fake, "POST", "/issues/1/comments")) == 1  # found, not sent again


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_check_run_is_made_once(fake: FakeGitHub, gh: RepoClient, fault: int) -> None:
    sha = fake.branch_sha(REPO, "main")
    fake.inject("POST", r"/check-runs$", fault, after=True)
    data = {"name": "Auto-Code", "head_sha": sha, "status": "queued", "external_id": "7",
            "output": {"title": "queued", "summary": "queued"}}  # fmt: skip
    check_id = await gh.create_check_run(data)
    runs = fake.find_check_runs(REPO, "Auto-Code")
    assert [r["id"] for r in runs] == [check_id] and runs[0]["external_id"] == "7"


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_pull_request_is_opened_once(fake: FakeGitHub, gh: RepoClient, fault: int) -> None:
    fake.inject("POST", r"/pulls$", fault, after=True)
    number, url = await gh.create_pull(title="Greeting", head="feature", base="main", body="b")
    assert await gh.find_pull("feature") == (number, url)
    assert len(writes(fake, "POST", "/pulls")) == 1


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_review_reply_is_made_once(fake: FakeGitHub, gh: RepoClient, fault: int) -> None:
    fake.add_pull(REPO, 2, title="Greeting", body=None, user="alice", head="feature")
    root = fake.add_review_comment(REPO, 2, user="alice", body="/opencode fix the typo")
    fake.inject("POST", r"/pulls/2/comments/\d+/replies$", fault, after=True)
    body = "<!-- autocode:ticket=8 -->\n⏳ queued"
    reply_id = await gh.reply_review(2, root, body)
    replies = [c for c in fake.review_comments.values() if c["body"] == body]
    assert [c["id"] for c in replies] == [reply_id]


async def test_a_write_that_never_happened_is_sent_again(fake: FakeGitHub, gh: RepoClient) -> None:
    """A 502 before the write: nothing to find, so it is sent again, and made once."""
    fake.inject("POST", r"/issues/1/comments$", 502, times=2)
    comment_id = await gh.comment(1, "<!-- autocode:ticket=9 -->\nhello")
    assert [c["id"] for c in fake.issue_comments(REPO, 1)] == [comment_id]
    assert len(writes(fake, "POST", "/issues/1/comments")) == 3


async def test_a_refused_write_is_not_retried(fake: FakeGitHub, gh: RepoClient) -> None:
    """A 4xx did nothing and will not change by asking again: the error is the answer."""
    fake.inject("POST", r"/issues/1/comments$", 422)
    with pytest.raises(GitHubError):
        await gh.comment(1, "hello")
    assert fake.issue_comments(REPO, 1) == []
    assert len(writes(fake, "POST", "/issues/1/comments")) == 1
