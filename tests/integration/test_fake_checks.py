"""The fake GitHub's check suites, Actions job logs, reviews and their webhooks.

What a bot reads to finish its own pull requests, through githubkit's own
models: the suites on the bot's pushed commit (GitHub Actions' and the bot's
App's own), their runs and annotations, a job's log behind a 302 to signed
blob storage on another origin, and a review's comments; the permissions each
needs; the check_suite and pull_request_review payloads.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit import GitHub, TokenAuthStrategy
from githubkit.compat import type_validate_python
from githubkit.exception import RequestFailed
from githubkit.webhooks import parse_obj

from tests.fakes.github import DEFAULT_PERMISSIONS, FakeGitHub
from tests.integration.test_fake_github import app_github

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from githubkit.versions.latest import models as m

REPO = "octo/hello"
BRANCH = "autocode/issue-1"
OLD_APP = "def greet():\n    return 'hi'\n\n\nprint(greet())\n"
NEW_APP = "def greet():\n    return 'HI'\n\n\nprint(greet())\nprint(greet() * 2)\n"
LOG = (
    "2024-05-01T10:00:00.0000000Z ##[group]Run pytest\n"
    "E   AssertionError: 'HI' != 'hi'\n"
    "2024-05-01T10:00:09.0000000Z ##[error]Process completed with exit code 1.\n"
)
READ = {"checks": "read", "pull_requests": "read", "metadata": "read"}
FAILING = {
    "name": "test (3.12)",
    "conclusion": "failure",
    "output": {"title": "1 test failed", "summary": "tests/test_app.py::test_greet", "text": "E"},
    "annotations": [
        {
            "path": "src/app.py",
            "start_line": 2,
            "end_line": 2,
            "annotation_level": "failure",
            "message": "AssertionError: 'HI' != 'hi'",
            "title": "test_greet",
        }
    ],
    "log": LOG,
}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as gh:
        gh.add_repo(REPO, {"README.md": "# Hello\n", "src/app.py": OLD_APP})
        gh.add_repo("octo/world", {"README.md": "world\n"})
        gh.add_repo("octo/secret", {"README.md": "secret\n"}, private=True)
        gh.commit_file(REPO, BRANCH, "src/app.py", NEW_APP, "Greet louder")
        gh.add_pull(REPO, 2, title="Greet louder", body="Fixes #1", user=gh.bot_login, head=BRANCH)
        gh.set_permission(REPO, "carol", "write")
        yield gh


def mint(fake: FakeGitHub, permissions: dict[str, str], repo: str = REPO) -> str:
    gh = app_github(fake)
    owner, name = repo.split("/")
    inst = gh.rest.apps.get_repo_installation(owner, name).parsed_data
    data = {"repositories": [name], "permissions": permissions}
    return gh.rest.apps.create_installation_access_token(inst.id, data=data).parsed_data.token


def token_github(fake: FakeGitHub, token: str, **kwargs: Any) -> GitHub[Any]:
    kwargs.setdefault("auto_retry", False)
    return GitHub(TokenAuthStrategy(token), base_url=fake.api_url, http_cache=False, **kwargs)


def api(fake: FakeGitHub, token: str) -> httpx.Client:
    return httpx.Client(base_url=fake.api_url, headers={"Authorization": f"token {token}"})


def head(fake: FakeGitHub) -> str:
    sha = fake.branch_sha(REPO, BRANCH)
    assert sha is not None
    return sha


def valid(model: Any, data: Any) -> Any:
    return type_validate_python(model, data)


# --- check suites ----------------------------------------------------------------------


def test_bot_check_runs_land_in_the_bot_apps_suite(fake: FakeGitHub) -> None:
    gh = token_github(fake, mint(fake, DEFAULT_PERMISSIONS))
    sha = head(fake)
    first = gh.rest.checks.create("octo", "hello", data={"name": "Auto-Code", "head_sha": sha})
    second = gh.rest.checks.create("octo", "hello", data={"name": "lint", "head_sha": sha})
    suite_id = first.parsed_data.check_suite.id
    assert second.parsed_data.check_suite.id == suite_id
    actions = fake.add_check_suite(REPO, sha, runs=[FAILING])
    assert actions != suite_id
    listed = gh.rest.checks.list_suites_for_ref("octo", "hello", sha).parsed_data
    assert [s.id for s in listed.check_suites] == [suite_id, actions]
    ours = listed.check_suites[0]
    assert ours.app is not None and (ours.app.id, ours.app.slug) == (fake.app_id, fake.app_slug)
    assert (ours.status, ours.conclusion, ours.latest_check_runs_count) == ("queued", None, 2)
    assert ours.head_branch == BRANCH and [p.number for p in ours.pull_requests or []] == [2]
    theirs = listed.check_suites[1]
    assert theirs.app is not None and theirs.app.slug == "github-actions"
    assert theirs.app.name == "GitHub Actions" and theirs.app.id != fake.app_id
    assert (theirs.status, theirs.conclusion) == ("completed", "failure")
    only = gh.rest.checks.list_suites_for_ref("octo", "hello", BRANCH, app_id=fake.app_id)
    assert [s.id for s in only.parsed_data.check_suites] == [suite_id]
    named = gh.rest.checks.list_suites_for_ref("octo", "hello", sha, check_name="test (3.12)")
    assert [s.id for s in named.parsed_data.check_suites] == [actions]
    # the bot completes its runs: its suite follows
    for run in (first, second):
        gh.rest.checks.update("octo", "hello", run.parsed_data.id, data={"conclusion": "success"})
    suite = gh.rest.checks.get_suite("octo", "hello", suite_id).parsed_data
    assert (suite.status, suite.conclusion) == ("completed", "success")
    # another App's run is not the bot's to update
    run_id = fake.suite_check_runs(actions)[0]["id"]
    refused = api(fake, mint(fake, DEFAULT_PERMISSIONS)).patch(
        f"/repos/{REPO}/check-runs/{run_id}", json={"conclusion": "success"}
    )
    assert refused.status_code == 403


async def test_suite_routes_parse_with_githubkit(fake: FakeGitHub) -> None:
    sha = head(fake)
    passing = {"name": "lint", "conclusion": "success", "log": b"ok\n"}
    suite_id = fake.add_check_suite(REPO, sha, runs=[FAILING, passing])
    gh = token_github(fake, mint(fake, READ))
    suites = (await gh.rest.checks.async_list_suites_for_ref("octo", "hello", sha)).parsed_data
    assert suites.total_count == 1 and suites.check_suites[0].id == suite_id
    suite = (await gh.rest.checks.async_get_suite("octo", "hello", suite_id)).parsed_data
    assert suite.head_sha == sha and suite.after == sha and suite.repository.full_name == REPO
    assert suite.head_commit.message == "Greet louder" and suite.latest_check_runs_count == 2
    runs = (await gh.rest.checks.async_list_for_suite("octo", "hello", suite_id)).parsed_data
    assert runs.total_count == 2 and {r.name for r in runs.check_runs} == {"test (3.12)", "lint"}
    failed = next(r for r in runs.check_runs if r.conclusion == "failure")
    assert failed.check_suite is not None and failed.check_suite.id == suite_id
    assert failed.app is not None and failed.app.slug == "github-actions"
    assert failed.output.title == "1 test failed" and failed.output.annotations_count == 1
    assert failed.html_url is not None and failed.html_url.endswith(f"/job/{failed.id}")
    assert [p.number for p in failed.pull_requests] == [2]
    page = await gh.rest.checks.async_list_for_suite("octo", "hello", suite_id, per_page=1)
    assert len(page.parsed_data.check_runs) == 1 and 'rel="next"' in page.headers["link"]
    done = await gh.rest.checks.async_list_for_suite("octo", "hello", suite_id, status="queued")
    assert done.parsed_data.total_count == 0
    notes = (await gh.rest.checks.async_list_annotations("octo", "hello", failed.id)).parsed_data
    assert [(a.path, a.start_line, a.annotation_level, a.title) for a in notes] == [
        ("src/app.py", 2, "failure", "test_greet")
    ]
    assert notes[0].blob_href.endswith(f"/{REPO}/blob/{sha}/src/app.py")
    one = (await gh.rest.checks.async_get("octo", "hello", failed.id)).parsed_data
    assert one.id == failed.id and one.conclusion == "failure"
    for ref in (sha, BRANCH):  # the commit's runs include other Apps' runs
        listed = await gh.rest.checks.async_list_for_ref("octo", "hello", ref)
        assert {r.id for r in listed.parsed_data.check_runs} == {r.id for r in runs.check_runs}


async def test_annotations_of_the_bots_own_runs(fake: FakeGitHub) -> None:
    gh = token_github(fake, mint(fake, DEFAULT_PERMISSIONS))
    note = {"path": "README.md", "start_line": 1, "end_line": 1,
            "annotation_level": "warning", "message": "typo"}  # fmt: skip
    output = {"title": "t", "summary": "s", "annotations": [note]}
    run = await gh.rest.checks.async_create(
        "octo", "hello", data={"name": "Auto-Code", "head_sha": head(fake), "output": output}
    )
    more = {**note, "message": "another", "start_column": 1, "end_column": 3}
    await gh.rest.checks.async_update(
        "octo", "hello", run.parsed_data.id, data={"output": {**output, "annotations": [more]}}
    )
    found = await gh.rest.checks.async_list_annotations("octo", "hello", run.parsed_data.id)
    notes = found.parsed_data
    assert [(a.message, a.start_column, a.title) for a in notes] == [
        ("typo", None, None),
        ("another", 1, None),
    ]


@pytest.mark.parametrize(
    ("conclusions", "expected"),
    [
        (["success", "success"], "success"),
        (["success", "neutral", "skipped"], "success"),
        (["neutral", "neutral"], "neutral"),
        (["skipped"], "skipped"),
        (["success", "failure"], "failure"),
        (["timed_out", "success", "neutral"], "timed_out"),
        (["failure", "cancelled"], "cancelled"),
        (["failure", "action_required", "cancelled"], "action_required"),
    ],
)
def test_suite_conclusion_derived(fake: FakeGitHub, conclusions: list[str], expected: str) -> None:
    runs = [{"name": f"job {i}", "conclusion": c} for i, c in enumerate(conclusions)]
    suite_id = fake.add_check_suite(REPO, head(fake), app="circleci", runs=runs)
    suite = fake.check_suite(suite_id)
    assert (suite["status"], suite["conclusion"]) == ("completed", expected)
    assert suite["app"]["slug"] == "circleci"


def test_suite_status_follows_its_runs(fake: FakeGitHub) -> None:
    sha = head(fake)
    suite_id = fake.add_check_suite(REPO, sha, status="queued", runs=[{"name": "a"}, {"name": "b"}])
    assert fake.check_suite(suite_id)["status"] == "queued"
    a, b = (r["id"] for r in fake.suite_check_runs(suite_id))
    fake.complete_check_run(REPO, a, None, status="in_progress")
    assert fake.check_suite(suite_id)["status"] == "in_progress"
    fake.complete_check_run(REPO, a, "success")
    assert (fake.check_suite(suite_id)["status"], fake.check_suite(suite_id)["conclusion"]) == (
        "in_progress",
        None,
    )
    fake.complete_check_run(REPO, b, "failure", log="boom\n", annotations=FAILING["annotations"])
    suite = fake.check_suite(suite_id)
    assert (suite["status"], suite["conclusion"]) == ("completed", "failure")
    assert fake.job_logs[b] == b"boom\n" and len(fake.check_annotations(b)) == 1
    retitled = fake.complete_check_run(REPO, b, None, output={"title": "t", "summary": "s"})
    assert (retitled["conclusion"], retitled["output"]["title"]) == ("failure", "t")
    # a re-run: a newer run of the same name replaces the older in the conclusion
    fake.add_check_run(REPO, suite_id, {"name": "b", "conclusion": "success"})
    assert fake.check_suite(suite_id)["conclusion"] == "success"
    assert len(fake.suite_check_runs(suite_id)) == 3
    assert len(fake.suite_check_runs(suite_id, latest=True)) == 2
    empty = fake.add_check_suite(REPO, sha, app="circleci")
    assert (fake.check_suite(empty)["status"], fake.check_suite(empty)["conclusion"]) == (
        "queued",
        None,
    )
    assert [s["id"] for s in fake.find_check_suites(REPO, BRANCH, app="circleci")] == [empty]
    with pytest.raises(ValueError, match="conclusion"):
        fake.add_check_suite(REPO, sha, runs=[{"name": "x"}])
    with pytest.raises(ValueError, match="job logs"):
        fake.add_check_suite(REPO, sha, app="circleci", runs=[{**FAILING}])


# --- permissions --------------------------------------------------------------------------


def test_checks_and_reviews_need_their_permissions(fake: FakeGitHub) -> None:
    sha = head(fake)
    suite_id = fake.add_check_suite(REPO, sha, runs=[FAILING])
    run_id = fake.suite_check_runs(suite_id)[0]["id"]
    review_id = fake.add_review(REPO, 2, "carol", body="Please fix")
    paths = {
        "checks": [
            f"/repos/{REPO}/commits/{sha}/check-suites",
            f"/repos/{REPO}/check-suites/{suite_id}",
            f"/repos/{REPO}/check-suites/{suite_id}/check-runs",
            f"/repos/{REPO}/check-runs/{run_id}/annotations",
        ],
        "pull_requests": [
            f"/repos/{REPO}/pulls/2/reviews",
            f"/repos/{REPO}/pulls/2/reviews/{review_id}",
            f"/repos/{REPO}/pulls/2/reviews/{review_id}/comments",
        ],
    }
    everything = api(fake, mint(fake, READ))
    for name, urls in paths.items():
        without = api(fake, mint(fake, {k: v for k, v in READ.items() if k != name}))
        for url in urls:
            assert everything.get(url).status_code == 200, url
            refused = without.get(url)
            assert refused.status_code == 403, url
            assert refused.json()["message"] == "Resource not accessible by integration"
    elsewhere = api(fake, mint(fake, READ, repo="octo/world"))  # same installation
    for url in paths["checks"] + paths["pull_requests"]:
        assert elsewhere.get(url).status_code == 403, url
    secret = fake.add_check_suite(
        "octo/secret", "main", runs=[{"name": "t", "conclusion": "success"}]
    )
    assert elsewhere.get(f"/repos/octo/secret/check-suites/{secret}").status_code == 404
    assert everything.get(f"/repos/octo/world/check-suites/{suite_id}").status_code == 403


def test_a_token_for_actions_needs_an_installation_that_has_it(fake: FakeGitHub) -> None:
    gh = app_github(fake)
    inst = gh.rest.apps.get_repo_installation("octo", "hello").parsed_data
    installed = gh.rest.apps.get_repo_installation("octo", "hello").json()["permissions"]
    assert installed == DEFAULT_PERMISSIONS  # no `actions` unless a test grants it
    wanted = {"actions": "read", "metadata": "read"}
    with pytest.raises(RequestFailed) as err:
        gh.rest.apps.create_installation_access_token(
            inst.id, data={"repositories": ["hello"], "permissions": wanted}
        )
    assert err.value.response.status_code == 422
    assert "not granted to this installation" in err.value.response.json()["message"]
    fake.grant("octo", actions="read")
    assert fake.app_json()["permissions"]["actions"] == "read"
    granted = gh.rest.apps.create_installation_access_token(
        inst.id, data={"repositories": ["hello"], "permissions": wanted}
    )
    assert granted.json()["permissions"] == wanted


# --- GitHub Actions job logs ----------------------------------------------------------------


def log_token(fake: FakeGitHub, repo: str = REPO) -> str:
    fake.grant(repo.split("/")[0], actions="read")
    return mint(fake, {"actions": "read", "metadata": "read"}, repo)


async def test_job_log_through_githubkit(fake: FakeGitHub) -> None:
    binary = LOG.encode() + bytes(range(256)) * 4000  # ~1 MB, not text
    suite_id = fake.add_check_suite(REPO, head(fake), runs=[{**FAILING, "log": binary}])
    job = fake.suite_check_runs(suite_id)[0]["id"]
    gh = token_github(fake, log_token(fake))
    # githubkit follows the 302; the blob host is another origin, so httpx drops
    # the Authorization header on the way, as it does for GitHub's storage
    got = await gh.rest.actions.async_download_job_logs_for_workflow_run("octo", "hello", job)
    assert got.status_code == 200 and got.content == binary
    assert got.headers["content-type"] == "text/plain"
    assert [(f["status"], f["authorization"]) for f in fake.blob_fetches] == [(200, False)]
    assert fake.violations == []
    redirect = next(r for r in fake.requests if r["path"].endswith(f"/jobs/{job}/logs"))
    assert redirect["status"] == 302 and redirect["auth"] == "installation"


def test_job_log_redirect_and_the_blob_host(fake: FakeGitHub) -> None:
    suite_id = fake.add_check_suite(REPO, head(fake), runs=[FAILING])
    job = fake.suite_check_runs(suite_id)[0]["id"]
    token = log_token(fake)
    answer = api(fake, token).get(f"/repos/{REPO}/actions/jobs/{job}/logs")
    assert answer.status_code == 302 and answer.content == b""
    location = answer.headers["location"]
    assert location.startswith(f"{fake.blob_url}/_blob/job-logs/") and "sig=" in location
    assert not location.startswith(fake.url)  # another origin than the API
    with_token = httpx.get(location, headers={"Authorization": f"token {token}"})
    assert with_token.status_code == 400 and b"InvalidAuthenticationInfo" in with_token.content
    assert len(fake.violations) == 1 and "Authorization" in fake.violations[0]["what"]
    plain = httpx.get(location)
    assert plain.status_code == 200 and plain.text == LOG
    assert plain.headers["content-type"] == "text/plain"
    forged = httpx.get(location.replace("sig=", "sig=x"))
    assert forged.status_code == 403
    fake.expire_blobs()
    assert httpx.get(location).status_code == 403
    assert [f["status"] for f in fake.blob_fetches] == [400, 200, 403, 403]
    assert {f["authorization"] for f in fake.blob_fetches[1:]} == {False}


def test_blob_urls_expire(fake: FakeGitHub) -> None:
    suite_id = fake.add_check_suite(REPO, head(fake), runs=[FAILING])
    job = fake.suite_check_runs(suite_id)[0]["id"]
    client = api(fake, log_token(fake))
    assert fake.blob_ttl == 60.0
    fake.blob_ttl = 0.3
    location = client.get(f"/repos/{REPO}/actions/jobs/{job}/logs").headers["location"]
    assert httpx.get(location).status_code == 200
    time.sleep(0.4)
    expired = httpx.get(location)
    assert expired.status_code == 403 and b"AuthenticationFailed" in expired.content


def test_a_client_that_sends_its_token_to_the_blob_is_caught(fake: FakeGitHub) -> None:
    """With the blob on the API's own origin, httpx keeps the token on the redirect."""
    suite_id = fake.add_check_suite(REPO, head(fake), runs=[FAILING])
    job = fake.suite_check_runs(suite_id)[0]["id"]
    fake.blob_url = fake.url
    gh = token_github(fake, log_token(fake))
    with pytest.raises(RequestFailed) as err:
        gh.rest.actions.download_job_logs_for_workflow_run("octo", "hello", job)
    assert err.value.response.status_code == 400
    assert fake.violations and fake.blob_fetches[-1]["authorization"] is True


def test_job_logs_refused(fake: FakeGitHub) -> None:
    sha = head(fake)
    suite_id = fake.add_check_suite(REPO, sha, runs=[FAILING, {"name": "wait", "status": "queued"}])
    job, queued = (r["id"] for r in fake.suite_check_runs(suite_id))
    other = fake.add_check_suite(
        REPO, sha, app="circleci", runs=[{"name": "c", "conclusion": "failure"}]
    )
    foreign = fake.suite_check_runs(other)[0]["id"]
    ours = api(fake, mint(fake, DEFAULT_PERMISSIONS)).post(
        f"/repos/{REPO}/check-runs", json={"name": "Auto-Code", "head_sha": sha}
    )
    no_actions = api(fake, mint(fake, READ)).get(f"/repos/{REPO}/actions/jobs/{job}/logs")
    assert no_actions.status_code == 403
    assert no_actions.json() == {
        "message": "Resource not accessible by integration",
        "documentation_url": no_actions.json()["documentation_url"],
        "status": "403",
    }
    client = api(fake, log_token(fake))
    for ident in (ours.json()["id"], foreign, queued, 999999999):
        assert client.get(f"/repos/{REPO}/actions/jobs/{ident}/logs").status_code == 404, ident
    assert client.get(f"/repos/{REPO}/actions/jobs/{job}/logs").status_code == 302
    elsewhere = api(fake, log_token(fake, "octo/world"))
    assert elsewhere.get(f"/repos/{REPO}/actions/jobs/{job}/logs").status_code == 403
    assert elsewhere.get(f"/repos/octo/world/actions/jobs/{job}/logs").status_code == 404
    assert fake.blob_fetches == []


# --- reviews ----------------------------------------------------------------------------------


async def test_review_with_comments_and_replies(fake: FakeGitHub) -> None:
    review_id = fake.add_review(
        REPO,
        2,
        "carol",
        body="Two things",
        comments=[
            {"path": "src/app.py", "line": 2, "body": "Keep it lower case"},
            {"path": "src/app.py", "line": 6, "body": "Why twice?"},
        ],
    )
    gh = token_github(fake, mint(fake, DEFAULT_PERMISSIONS))
    reviews = (await gh.rest.pulls.async_list_reviews("octo", "hello", 2)).parsed_data
    assert [(r.id, r.state, r.body) for r in reviews] == [
        (review_id, "CHANGES_REQUESTED", "Two things")
    ]
    review = (await gh.rest.pulls.async_get_review("octo", "hello", 2, review_id)).parsed_data
    assert review.user is not None and review.user.login == "carol"
    assert review.commit_id == head(fake) and review.author_association == "COLLABORATOR"
    assert review.html_url.endswith(f"/pull/2#pullrequestreview-{review_id}")
    found = await gh.rest.pulls.async_list_comments_for_review("octo", "hello", 2, review_id)
    first, second = found.parsed_data
    assert (first.path, first.line, first.side, first.position) == ("src/app.py", 2, "RIGHT", 3)
    assert first.diff_hunk.startswith("@@ -1,5 +1,6 @@")
    assert first.diff_hunk.endswith("+    return 'HI'")
    assert second.diff_hunk.splitlines()[-1] == "+print(greet() * 2)" and second.position == 7
    assert first.pull_request_review_id == review_id and first.commit_id == head(fake)
    assert "in_reply_to_id" not in found.json()[0]  # absent, as GitHub leaves it
    for comment in (first, second):
        await gh.rest.pulls.async_create_reply_for_review_comment(
            "octo", "hello", 2, comment.id, data={"body": f"Done: {comment.body}"}
        )
    listed = (await gh.rest.pulls.async_list_review_comments("octo", "hello", 2)).parsed_data
    replies = [c for c in listed if c.in_reply_to_id]  # UNSET on the others
    assert [(c.in_reply_to_id, c.diff_hunk, c.line) for c in replies] == [
        (first.id, first.diff_hunk, 2),
        (second.id, second.diff_hunk, 6),
    ]
    assert {c.user.login for c in replies if c.user} == {fake.bot_login}
    # each reply is a review of its own (COMMENTED), as on GitHub
    states = [(r["user"]["login"], r["state"]) for r in fake.reviews(REPO, 2)]
    assert states == [("carol", "CHANGES_REQUESTED")] + [(fake.bot_login, "COMMENTED")] * 2
    assert len(fake.review_comments_of(review_id)) == 2


def test_review_rules(fake: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="not part of the diff"):
        fake.add_review(REPO, 2, "carol", comments=[{"path": "README.md", "line": 1, "body": "x"}])
    with pytest.raises(ValueError, match="not part of the diff"):
        fake.add_review(REPO, 2, "carol", comments=[{"path": "src/app.py", "line": 6, "body": "x",
                                                     "side": "LEFT"}])  # fmt: skip
    with pytest.raises(ValueError, match="own"):
        fake.add_review(REPO, 2, fake.bot_login, state="APPROVED")
    with pytest.raises(ValueError, match="body"):
        fake.add_review(REPO, 2, "carol")
    left = fake.add_review(
        REPO, 2, "carol", state="COMMENT",
        comments=[{"path": "src/app.py", "line": 2, "side": "LEFT", "body": "was fine"}],
    )  # fmt: skip
    (comment,) = fake.review_comments_of(left)
    assert comment["side"] == "LEFT" and comment["diff_hunk"].endswith("-    return 'hi'")
    assert fake.reviews(REPO, 2)[-1]["state"] == "COMMENTED"
    approved = fake.add_review(REPO, 2, "carol", state="APPROVED")
    assert fake.reviews(REPO, 2)[-1]["id"] == approved
    assert api(fake, mint(fake, READ)).get(f"/repos/{REPO}/pulls/3/reviews").status_code == 404
    assert api(fake, mint(fake, READ)).get(f"/repos/{REPO}/pulls/2/reviews/1").status_code == 404


# --- webhook payloads ---------------------------------------------------------------------------


def test_check_suite_payload(fake: FakeGitHub) -> None:
    sha = head(fake)
    suite_id = fake.add_check_suite(REPO, sha, runs=[FAILING])
    data = fake.check_suite_payload(REPO, suite_id)
    event = parse_obj("check_suite", data)
    assert isinstance(event, m.WebhookCheckSuiteCompleted)
    suite = event.check_suite
    assert (suite.id, suite.head_sha, suite.head_branch) == (suite_id, sha, BRANCH)
    assert (suite.status, suite.conclusion) == ("completed", "failure")
    assert suite.app.slug == "github-actions" and suite.app.name == "GitHub Actions"
    (pull,) = suite.pull_requests
    assert (pull.number, pull.head.ref, pull.head.sha, pull.base.ref) == (2, BRANCH, sha, "main")
    assert pull.head.repo.id == fake.repo(REPO).id and pull.base.repo.name == "hello"
    assert suite.check_runs_url.startswith(fake.api_url)
    assert event.installation is not None
    assert event.installation.id == fake.repo(REPO).installation_id
    assert event.repository.full_name == REPO and event.sender.login == fake.bot_login
    assert "repository" not in data["check_suite"]
    pending = fake.add_check_suite(REPO, sha, runs=[{"name": "x", "status": "in_progress"}])
    with pytest.raises(ValueError, match="not completed"):
        fake.check_suite_payload(REPO, pending)
    requested = fake.check_suite_payload(REPO, pending, action="requested", sender="carol")
    assert parse_obj("check_suite", requested).sender.login == "carol"


def test_check_suite_payload_for_a_forks_pull_request(fake: FakeGitHub) -> None:
    fake.add_repo("mallory/hello", {}, fork_of=REPO, installation_id=0)
    sha = fake.commit_file("mallory/hello", "patch", "src/app.py", "print('x')\n")
    fake.add_pull(REPO, 3, title="From a fork", body=None, user="mallory", head="patch",
                  head_repo="mallory/hello")  # fmt: skip
    suite_id = fake.add_check_suite(REPO, sha, runs=[FAILING])
    event = parse_obj("check_suite", fake.check_suite_payload(REPO, suite_id, sender="mallory"))
    assert isinstance(event, m.WebhookCheckSuiteCompleted)
    assert event.check_suite.pull_requests == [] and event.check_suite.head_branch is None
    assert event.check_suite.head_sha == sha


def test_review_payload(fake: FakeGitHub) -> None:
    review_id = fake.add_review(
        REPO, 2, "carol", body="",
        comments=[{"path": "src/app.py", "line": 2, "body": "a"},
                  {"path": "src/app.py", "line": 5, "body": "b"}],
    )  # fmt: skip
    data = fake.review_payload(REPO, 2, review_id)
    event = parse_obj("pull_request_review", data)
    assert isinstance(event, m.WebhookPullRequestReviewSubmitted)
    assert event.review.id == review_id and event.review.state == "changes_requested"
    assert event.review.body is None and event.review.commit_id == head(fake)
    assert event.review.user is not None and event.review.user.login == "carol"
    assert event.pull_request.number == 2 and event.pull_request.head.sha == head(fake)
    assert event.pull_request.user is not None
    assert event.pull_request.user.login == fake.bot_login
    assert event.sender.login == "carol" and event.repository.full_name == REPO
    assert event.installation is not None
    assert event.installation.id == fake.repo(REPO).installation_id
    assert [c["body"] for c in fake.review_comments_of(review_id)] == ["a", "b"]
