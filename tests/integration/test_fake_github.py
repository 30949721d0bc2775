"""The fake GitHub itself: auth, scoping, shapes (githubkit models), git over HTTP, faults."""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.compat import type_validate_python
from githubkit.exception import RequestFailed

from tests.fakes.github import FakeGitHub

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from githubkit.versions.latest import models as m

RUN_PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as gh:
        gh.add_repo("octo/hello", {"README.md": "# Hello\n", "src/app.py": "print('hi')\n"})
        gh.add_repo("octo/secret", {"README.md": "secret\n"}, private=True)
        gh.add_repo("other/lib", {"lib.py": "x = 1\n"})
        gh.add_issue(
            "octo/hello",
            1,
            title="Add a greeting",
            body="Please.",
            user="alice",
            labels=["auto-code"],
            comments=[("alice", "first"), ("bob", "second")],
        )
        yield gh


def app_jwt(
    fake: FakeGitHub,
    *,
    iat: float | None = None,
    exp: float | None = None,
    iss: str | None = None,
    key: Any = None,
) -> str:
    now = time.time()
    claims = {
        "iss": iss or str(fake.app_id),
        "iat": int(now - 60 if iat is None else iat),
        "exp": int(now + 540 if exp is None else exp),
    }
    return jwt.encode(claims, key or fake.private_key_pem, algorithm="RS256")


def api(fake: FakeGitHub, auth: str | None = None) -> httpx.Client:
    headers = {"Authorization": auth} if auth else {}
    return httpx.Client(base_url=fake.api_url, headers=headers, timeout=10)


def app_github(fake: FakeGitHub) -> GitHub[Any]:
    return GitHub(
        AppAuthStrategy(str(fake.app_id), fake.private_key_pem.decode()),
        base_url=fake.api_url,
        auto_retry=False,
        http_cache=False,
    )


def token_github(token: str, fake: FakeGitHub, **kwargs: Any) -> GitHub[Any]:
    kwargs.setdefault("auto_retry", False)
    return GitHub(TokenAuthStrategy(token), base_url=fake.api_url, http_cache=False, **kwargs)


def mint(
    fake: FakeGitHub, repo: str = "octo/hello", permissions: dict[str, str] | None = None
) -> str:
    gh = app_github(fake)
    owner, name = repo.split("/")
    inst = gh.rest.apps.get_repo_installation(owner, name).parsed_data
    resp = gh.rest.apps.create_installation_access_token(
        inst.id, data={"repositories": [name], "permissions": permissions or RUN_PERMISSIONS}
    )
    return resp.parsed_data.token


def git(
    *args: str, cwd: Path | None = None, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        TOKEN=token or "",
    )
    helper = ["-c", "credential.helper="]
    if token is not None:
        helper += [
            "-c",
            "credential.helper=!f() { echo username=x-access-token; echo password=$TOKEN; }; f",
        ]
    cmd = ["git", *helper, "-c", "user.name=Bot", "-c", "user.email=bot@example.com", *args]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed: {result.stderr}")
    return result


def valid(model: Any, data: Any) -> Any:
    return type_validate_python(model, data)


# --- App JWT --------------------------------------------------------------------


def test_jwt_accepted_through_githubkit(fake: FakeGitHub) -> None:
    gh = app_github(fake)
    app = gh.rest.apps.get_authenticated().parsed_data
    assert app is not None and app.slug == fake.app_slug and app.id == fake.app_id
    installs = gh.rest.apps.list_installations().parsed_data
    assert {i.account.login for i in installs if i.account} >= {"octo", "other"}
    inst = gh.rest.apps.get_repo_installation("octo", "hello").parsed_data
    assert gh.rest.apps.get_installation(inst.id).parsed_data.app_slug == fake.app_slug
    # githubkit's AppAuthStrategy sends only the /app… routes with the JWT; others
    # need an installation. GitHub (and the fake) take a JWT on GET /users/{login}.
    bot = api(fake, f"Bearer {app_jwt(fake)}").get(f"/users/{fake.bot_login}").json()
    assert bot["type"] == "Bot" and bot["id"] == fake.bot_user_id
    assert fake.requests[0]["auth"] == "jwt"


def test_jwt_with_client_id_as_issuer(fake: FakeGitHub) -> None:
    assert api(fake, f"Bearer {app_jwt(fake, iss=fake.client_id)}").get("/app").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # iat / exp are seconds from the moment the test runs (not when it is collected)
        ({"exp": -10, "iat": -300}, "'Expiration time'"),
        ({"iat": 300, "exp": 500}, "'Issued at'"),
        ({"iat": -60, "exp": 3600}, "too far in the future"),
        ({"iss": "999"}, "could not be decoded"),
        (
            {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
            "could not be decoded",
        ),
    ],
)
def test_jwt_rejected(fake: FakeGitHub, kwargs: dict[str, Any], message: str) -> None:
    kwargs = {k: time.time() + v if k in ("iat", "exp") else v for k, v in kwargs.items()}
    key = kwargs.pop("key", None)
    if key is not None:
        key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    resp = api(fake, f"Bearer {app_jwt(fake, key=key, **kwargs)}").get("/app")
    assert resp.status_code == 401
    assert message in resp.json()["message"]
    assert resp.json()["documentation_url"]


def test_jwt_only_where_github_takes_it(fake: FakeGitHub) -> None:
    client = api(fake, f"Bearer {app_jwt(fake)}")
    resp = client.get("/repos/octo/hello/issues/1")
    assert (
        resp.status_code == 403
        and resp.json()["message"] == "Resource not accessible by integration"
    )
    token = mint(fake)
    resp = api(fake, f"token {token}").get("/app")
    assert resp.status_code == 401 and "JSON web token" in resp.json()["message"]
    assert api(fake).get("/app/installations").status_code == 401


# --- installation tokens ----------------------------------------------------------


def test_installation_token_shape_and_narrowing(fake: FakeGitHub) -> None:
    gh = app_github(fake)
    inst = gh.rest.apps.get_repo_installation("octo", "hello").parsed_data
    resp = gh.rest.apps.create_installation_access_token(
        inst.id, data={"repositories": ["hello"], "permissions": {"issues": "write"}}
    )
    assert resp.status_code == 201
    token = valid(m.InstallationToken, resp.json())
    assert token.token.startswith("ghs_") and len(token.token) == 40
    assert token.repository_selection == "selected"
    assert [r.full_name for r in token.repositories or []] == ["octo/hello"]
    assert resp.json()["permissions"] == {"issues": "write", "metadata": "read"}
    issued = fake.tokens[-1]
    assert issued["repositories"] == ["octo/hello"] and issued["installation_id"] == inst.id
    # no narrowing: every repository of the installation, its permissions
    all_repos = gh.rest.apps.create_installation_access_token(inst.id).json()
    assert all_repos["repository_selection"] == "all"
    assert all_repos["permissions"]["contents"] == "write"


def test_installation_token_422s(fake: FakeGitHub) -> None:
    gh = app_github(fake)
    inst = gh.rest.apps.get_repo_installation("octo", "hello").parsed_data
    for data, message in [
        ({"repositories": ["lib"]}, "not accessible to the parent installation"),
        ({"permissions": {"administration": "write"}}, "not granted to this installation"),
        ({"permissions": {"metadata": "write"}}, "not granted to this installation"),
    ]:
        with pytest.raises(RequestFailed) as err:
            gh.rest.apps.create_installation_access_token(inst.id, data=data)  # type: ignore[arg-type]
        assert err.value.response.status_code == 422
        assert message in err.value.response.json()["message"]
    with pytest.raises(RequestFailed) as err:
        gh.rest.apps.create_installation_access_token(987654321)
    assert err.value.response.status_code == 404


def test_token_scoping_on_rest(fake: FakeGitHub) -> None:
    token = mint(fake, "octo/hello", {"issues": "write", "contents": "read"})
    client = api(fake, f"token {token}")
    assert client.get("/repos/octo/hello").status_code == 200
    assert client.get("/repos/octo/secret").status_code == 404  # private, not in the token
    assert client.get("/repos/other/lib").status_code == 403  # other installation
    resp = client.post(
        "/repos/octo/hello/check-runs",
        json={"name": "x", "head_sha": fake.branch_sha("octo/hello", "main")},
    )
    assert resp.status_code == 403
    assert resp.json()["message"] == "Resource not accessible by integration"
    assert client.post("/repos/octo/hello/pulls", json={}).status_code == 403
    # Bearer works as well as `token`
    assert api(fake, f"Bearer {token}").get("/repos/octo/hello/issues/1").status_code == 200
    # an expired token is refused
    fake.expire_tokens(token)
    resp = client.get("/repos/octo/hello")
    assert resp.status_code == 401 and resp.json()["message"] == "Bad credentials"
    assert (
        api(fake, "token ghs_unknownunknownunknownunknownunknown1")
        .get("/repos/octo/hello")
        .status_code
        == 401
    )


def test_token_ttl_expiry(tmp_path: Path) -> None:
    with FakeGitHub(tmp_path, token_ttl=0.5) as gh:
        gh.add_repo("octo/hello", {"a": "b"})
        token = mint(gh)
        assert api(gh, f"token {token}").get("/repos/octo/hello").status_code == 200
        time.sleep(0.6)
        assert api(gh, f"token {token}").get("/repos/octo/hello").status_code == 401


def test_anonymous_access(fake: FakeGitHub) -> None:
    client = api(fake)
    resp = client.get("/repos/octo/hello")
    assert resp.status_code == 200 and resp.headers["x-ratelimit-limit"] == "60"
    assert client.get("/repos/octo/secret").status_code == 404
    assert client.post("/repos/octo/hello/issues/1/comments", json={"body": "x"}).status_code == 401
    assert fake.requests[-1]["auth"] == "none"


def test_headers_on_every_response(fake: FakeGitHub) -> None:
    for resp in (api(fake).get("/nowhere"), api(fake, f"Bearer {app_jwt(fake)}").get("/app")):
        for header in (
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
            "x-github-request-id",
            "x-github-api-version-selected",
        ):
            assert header in resp.headers, header
    assert api(fake).get("/nowhere").json()["message"] == "Not Found"
    resp = api(fake).get("/repos/octo/hello", headers={"X-GitHub-Api-Version": "1999-01-01"})
    assert resp.status_code == 400


# --- shapes through githubkit ---------------------------------------------------------


def test_every_shape_validates(fake: FakeGitHub) -> None:
    fake.set_permission("octo/hello", "carol", "maintain")
    fake.add_user("octo", type="Organization")
    fake.add_team_member("octo", "core", "carol")
    fake.commit_file("octo/hello", "feature", "src/new.py", "x = 2\n", "Add new")
    fake.add_pull("octo/hello", 2, title="Feature", body=None, user="carol", head="feature")
    review = fake.add_review_comment("octo/hello", 2, user="carol", body="nit")
    # the App on "octo" may read team membership too
    fake.installations[fake.repo("octo/hello").installation_id].permissions["members"] = "read"
    token = mint(fake, permissions={**RUN_PERMISSIONS, "members": "read"})
    client = api(fake, f"token {token}")
    jwt_client = api(fake, f"Bearer {app_jwt(fake)}")
    sha = fake.branch_sha("octo/hello", "main")
    inst = fake.repo("octo/hello").installation_id

    def ok(resp: httpx.Response, status: int = 200) -> Any:
        assert resp.status_code == status, resp.text
        return resp.json()

    valid(m.Integration, ok(jwt_client.get("/app")))
    valid(list[m.Installation], ok(jwt_client.get("/app/installations")))
    valid(m.Installation, ok(jwt_client.get(f"/app/installations/{inst}")))
    valid(m.Installation, ok(jwt_client.get("/repos/octo/hello/installation")))
    valid(m.PublicUser, ok(client.get("/users/alice")))
    valid(m.PublicUser, ok(jwt_client.get(f"/users/{fake.bot_login}")))
    repo = valid(m.FullRepository, ok(client.get("/repos/octo/hello")))
    assert repo.clone_url == fake.clone_url("octo/hello") and repo.default_branch == "main"
    perm = ok(client.get("/repos/octo/hello/collaborators/carol/permission"))
    valid(m.RepositoryCollaboratorPermission, perm)
    assert (perm["permission"], perm["role_name"]) == ("write", "maintain")
    issue = valid(m.Issue, ok(client.get("/repos/octo/hello/issues/1")))
    assert [lb.name for lb in issue.labels if not isinstance(lb, str)] == ["auto-code"]
    as_issue = valid(m.Issue, ok(client.get("/repos/octo/hello/issues/2")))
    assert as_issue.pull_request is not None
    valid(list[m.IssueComment], ok(client.get("/repos/octo/hello/issues/1/comments")))
    comment = ok(client.post("/repos/octo/hello/issues/1/comments", json={"body": "hi"}), 201)
    valid(m.IssueComment, comment)
    valid(m.IssueComment, ok(client.get(f"/repos/octo/hello/issues/comments/{comment['id']}")))
    valid(
        m.IssueComment,
        ok(
            client.patch(
                f"/repos/octo/hello/issues/comments/{comment['id']}", json={"body": "edited"}
            )
        ),
    )
    valid(
        m.Reaction,
        ok(client.post("/repos/octo/hello/issues/1/reactions", json={"content": "eyes"}), 201),
    )
    valid(
        m.Reaction,
        ok(
            client.post(
                f"/repos/octo/hello/issues/comments/{comment['id']}/reactions",
                json={"content": "+1"},
            ),
            201,
        ),
    )
    valid(
        m.Reaction,
        ok(
            client.post(
                f"/repos/octo/hello/pulls/comments/{review}/reactions", json={"content": "rocket"}
            ),
            201,
        ),
    )
    run = ok(
        client.post("/repos/octo/hello/check-runs", json={"name": "Auto-Code", "head_sha": sha}),
        201,
    )
    valid(m.CheckRun, run)
    valid(
        m.CheckRun,
        ok(
            client.patch(
                f"/repos/octo/hello/check-runs/{run['id']}", json={"status": "in_progress"}
            )
        ),
    )
    valid(m.CheckRun, ok(client.get(f"/repos/octo/hello/check-runs/{run['id']}")))
    listed = ok(client.get(f"/repos/octo/hello/commits/{sha}/check-runs"))
    valid(list[m.CheckRun], listed["check_runs"])
    valid(list[m.PullRequestSimple], ok(client.get("/repos/octo/hello/pulls")))
    valid(m.PullRequest, ok(client.get("/repos/octo/hello/pulls/2")))
    valid(m.PullRequest, ok(client.patch("/repos/octo/hello/pulls/2", json={"body": "b"})))
    valid(
        m.PullRequestSimple,
        ok(
            client.post(
                "/repos/octo/hello/pulls/2/requested_reviewers", json={"reviewers": ["octo"]}
            ),
            201,
        ),
    )
    valid(m.PullRequestReviewComment, ok(client.get(f"/repos/octo/hello/pulls/comments/{review}")))
    valid(
        m.PullRequestReviewComment,
        ok(
            client.post(
                f"/repos/octo/hello/pulls/2/comments/{review}/replies", json={"body": "done"}
            ),
            201,
        ),
    )
    valid(
        list[m.Label], ok(client.post("/repos/octo/hello/issues/1/labels", json={"labels": ["x"]}))
    )
    content = valid(m.ContentFile, ok(client.get("/repos/octo/hello/contents/src/app.py?ref=main")))
    assert content.name == "app.py"
    ref = valid(m.GitRef, ok(client.get("/repos/octo/hello/git/ref/heads/feature")))
    assert ref.object_.sha == fake.branch_sha("octo/hello", "feature")
    valid(m.TeamMembership, ok(client.get("/orgs/octo/teams/core/memberships/carol")))


def test_githubkit_repo_calls(fake: FakeGitHub) -> None:
    gh = token_github(mint(fake), fake)
    assert gh.rest.repos.get("octo", "hello").parsed_data.default_branch == "main"
    level = gh.rest.repos.get_collaborator_permission_level("octo", "hello", "octo").parsed_data
    assert level.permission == "admin"
    assert gh.rest.issues.get("octo", "hello", 1).parsed_data.title == "Add a greeting"
    created = gh.rest.issues.create_comment("octo", "hello", 1, data={"body": "On it"}).parsed_data
    assert created.user is not None and created.user.login == fake.bot_login
    gh.rest.issues.update_comment("octo", "hello", created.id, data={"body": "Done"})
    assert fake.comments[created.id]["body"] == "Done"
    assert (
        gh.rest.reactions.create_for_issue("octo", "hello", 1, data={"content": "eyes"}).status_code
        == 201
    )
    assert (
        gh.rest.reactions.create_for_issue("octo", "hello", 1, data={"content": "eyes"}).status_code
        == 200
    )
    assert fake.reactions[-1]["content"] == "eyes" and len(fake.reactions) == 1
    ref = gh.rest.git.get_ref("octo", "hello", "heads/main").parsed_data
    assert ref.object_.sha == fake.branch_sha("octo/hello", "main")
    assert fake.requests[-1]["auth"] == "installation"


# --- issues, comments, reactions -----------------------------------------------------


def test_comments_pagination(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.add_comment("octo/hello", 1, "bob", f"more {i}")
    client = api(fake, f"token {mint(fake)}")
    resp = client.get("/repos/octo/hello/issues/1/comments", params={"per_page": 4})
    assert len(resp.json()) == 4 and 'rel="next"' in resp.headers["link"]
    nxt = resp.links["next"]["url"]
    second = client.get(nxt)
    assert len(second.json()) == 3 and "next" not in second.links and "prev" in second.links
    bodies = [c["body"] for c in resp.json() + second.json()]
    assert bodies == ["first", "second"] + [f"more {i}" for i in range(5)]
    gh = token_github(mint(fake), fake)
    everything = list(
        gh.paginate(
            gh.rest.issues.list_comments, owner="octo", repo="hello", issue_number=1, per_page=2
        )
    )
    assert len(everything) == 7


def test_comment_rules(fake: FakeGitHub) -> None:
    client = api(fake, f"token {mint(fake)}")
    theirs = fake.issue_comments("octo/hello", 1)[0]["id"]
    assert (
        client.patch(f"/repos/octo/hello/issues/comments/{theirs}", json={"body": "x"}).status_code
        == 403
    )
    assert client.post("/repos/octo/hello/issues/1/comments", json={}).status_code == 422
    assert client.post("/repos/octo/hello/issues/1/comments", json={"body": 5}).status_code == 422
    assert client.post("/repos/octo/hello/issues/1/comments", content=b"{nope").status_code == 400
    assert (
        client.post("/repos/octo/hello/issues/99/comments", json={"body": "x"}).status_code == 404
    )
    resp = client.post("/repos/octo/hello/issues/1/reactions", json={"content": "smile"})
    assert resp.status_code == 422
    other = api(fake, f"token {mint(fake, permissions={'contents': 'write'})}")
    assert (
        other.post("/repos/octo/hello/issues/1/reactions", json={"content": "eyes"}).status_code
        == 403
    )


# --- check runs ----------------------------------------------------------------------


def test_check_run_history(fake: FakeGitHub) -> None:
    gh = token_github(mint(fake), fake)
    sha = fake.branch_sha("octo/hello", "main")
    assert sha is not None
    run = gh.rest.checks.create(
        "octo",
        "hello",
        data={
            "name": "Auto-Code",
            "head_sha": sha,
            "status": "queued",
            "external_id": "7",
        },
    ).parsed_data
    gh.rest.checks.update("octo", "hello", run.id, data={"status": "in_progress"})
    done = gh.rest.checks.update(
        "octo",
        "hello",
        run.id,
        data={
            "conclusion": "success",
            "output": {
                "title": "Done",
                "summary": "All good",
                "annotations": [
                    {
                        "path": "README.md",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "notice",
                        "message": "hello",
                    }
                ],
            },
            "actions": [{"label": "Retry", "description": "Run again", "identifier": "retry"}],
        },
    ).parsed_data
    assert done.status == "completed" and done.conclusion == "success" and done.completed_at
    assert done.output.annotations_count == 1
    history = fake.check_run_history(run.id)
    assert [(h["status"], h["conclusion"]) for h in history] == [
        ("queued", None),
        ("in_progress", None),
        ("completed", "success"),
    ]
    assert history[-1]["output"]["summary"] == "All good"
    listed = gh.rest.checks.list_for_ref(
        "octo", "hello", "main", check_name="Auto-Code"
    ).parsed_data
    assert listed.total_count == 1 and listed.check_runs[0].id == run.id
    assert fake.find_check_runs("octo/hello", "Auto-Code")[0]["status"] == "completed"


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "head_sha": "0" * 40},
        {"name": "x", "head_sha": "main"},
        {"head_sha": "SHA"},
        {"name": "x", "head_sha": "SHA", "status": "done"},
        {"name": "x", "head_sha": "SHA", "status": "waiting"},
        {"name": "x", "head_sha": "SHA", "status": "completed"},
        {"name": "x", "head_sha": "SHA", "conclusion": "great"},
        {"name": "x", "head_sha": "SHA", "status": "in_progress", "conclusion": "success"},
        {"name": "x", "head_sha": "SHA", "output": {"title": "t"}},
        {"name": "x", "head_sha": "SHA", "output": {"title": "t", "summary": "s" * 65536}},
        {
            "name": "x",
            "head_sha": "SHA",
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {
                        "path": "a",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "notice",
                        "message": "m",
                    }
                ]
                * 51,
            },
        },
        {
            "name": "x",
            "head_sha": "SHA",
            "output": {
                "title": "t",
                "summary": "s",
                "annotations": [
                    {
                        "path": "a",
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "error",
                        "message": "m",
                    }
                ],
            },
        },
        {
            "name": "x",
            "head_sha": "SHA",
            "actions": [{"label": "L" * 21, "description": "d", "identifier": "i"}],
        },
        {
            "name": "x",
            "head_sha": "SHA",
            "actions": [{"label": "l", "description": "d", "identifier": "i"}] * 4,
        },
    ],
)
def test_check_run_validation(fake: FakeGitHub, data: dict[str, Any]) -> None:
    sha = fake.branch_sha("octo/hello", "main")
    body = {k: (sha if v == "SHA" else v) for k, v in data.items()}
    resp = api(fake, f"token {mint(fake)}").post("/repos/octo/hello/check-runs", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"]
    assert fake.check_runs == {}


def test_check_run_update_validation(fake: FakeGitHub) -> None:
    client = api(fake, f"token {mint(fake)}")
    sha = fake.branch_sha("octo/hello", "main")
    run = client.post("/repos/octo/hello/check-runs", json={"name": "x", "head_sha": sha}).json()
    assert (
        client.patch(
            f"/repos/octo/hello/check-runs/{run['id']}", json={"status": "completed"}
        ).status_code
        == 422
    )
    assert client.patch("/repos/octo/hello/check-runs/123456789", json={}).status_code == 404
    assert client.get(f"/repos/other/lib/check-runs/{run['id']}").status_code == 403


# --- pull requests ------------------------------------------------------------------


def test_pull_request_rules(fake: FakeGitHub) -> None:
    gh = token_github(mint(fake), fake)
    fake.commit_file("octo/hello", "autocode/issue-1", "src/app.py", "print('hello')\n", "Greet")
    pull = gh.rest.pulls.create(
        "octo",
        "hello",
        data={
            "title": "Greeting",
            "head": "autocode/issue-1",
            "base": "main",
            "body": "Closes #1",
        },
    ).parsed_data
    assert pull.number == 2  # shares the sequence with issues
    assert pull.head.sha == fake.branch_sha("octo/hello", "autocode/issue-1")
    assert pull.commits == 1 and pull.changed_files == 1
    assert gh.rest.issues.get("octo", "hello", 2).parsed_data.pull_request is not None

    def fails(data: dict[str, Any], message: str) -> None:
        with pytest.raises(RequestFailed) as err:
            gh.rest.pulls.create("octo", "hello", data=data)  # type: ignore[arg-type]
        assert err.value.response.status_code == 422
        assert message in str(err.value.response.json()), err.value.response.json()

    fails(
        {"title": "t", "head": "autocode/issue-1", "base": "main"},
        "A pull request already exists for octo:autocode/issue-1.",
    )
    fails({"title": "t", "head": "octo:autocode/issue-1", "base": "main"}, "already exists")
    fake.commit_file("octo/hello", "empty", "README.md", "# Hello\n", "No change")
    fake.repo("octo/hello").git.set_ref(
        "refs/heads/same", fake.branch_sha("octo/hello", "main") or ""
    )
    fails({"title": "t", "head": "same", "base": "main"}, "No commits between main and same")
    fails({"title": "t", "head": "missing", "base": "main"}, "'field': 'head'")
    fails({"title": "t", "head": "autocode/issue-1", "base": "missing"}, "'field': 'base'")
    fails({"head": "autocode/issue-1", "base": "main"}, "'field': 'title'")

    found = gh.rest.pulls.list(
        "octo", "hello", state="open", head="octo:autocode/issue-1"
    ).parsed_data
    assert [p.number for p in found] == [2]
    assert gh.rest.pulls.list("octo", "hello", head="octo:nothing").parsed_data == []
    # the head sha follows the branch
    new_sha = fake.commit_file("octo/hello", "autocode/issue-1", "b.txt", "b\n", "More")
    assert gh.rest.pulls.get("octo", "hello", 2).parsed_data.head.sha == new_sha
    assert fake.pulls[("octo/hello", 2)]["head"]["sha"] == new_sha
    updated = gh.rest.pulls.update(
        "octo", "hello", 2, data={"body": "new", "state": "closed"}
    ).parsed_data
    assert updated.state == "closed" and updated.body == "new"
    assert gh.rest.pulls.list("octo", "hello").parsed_data == []
    assert len(gh.rest.pulls.list("octo", "hello", state="closed").parsed_data) == 1


def test_fork_pull_and_reviewers(fake: FakeGitHub) -> None:
    fake.add_repo("mallory/hello", {}, fork_of="octo/hello", installation_id=0)
    fake.commit_file("mallory/hello", "patch", "README.md", "# Hi\n", "Edit")
    fake.add_pull(
        "octo/hello",
        5,
        title="From a fork",
        body=None,
        user="mallory",
        head="patch",
        head_repo="mallory/hello",
    )
    client = api(fake, f"token {mint(fake)}")
    pull = client.get("/repos/octo/hello/pulls/5").json()
    assert pull["head"]["repo"]["full_name"] == "mallory/hello" and pull["commits"] == 1
    assert client.get("/repos/mallory/hello").status_code == 403
    resp = client.post("/repos/octo/hello/pulls/5/requested_reviewers", json={"reviewers": ["bob"]})
    assert resp.status_code == 422 and "collaborators" in resp.text
    resp = client.post(
        "/repos/octo/hello/pulls/5/requested_reviewers", json={"reviewers": ["mallory"]}
    )
    assert resp.status_code == 422 and "author" in resp.text
    fake.set_permission("octo/hello", "bob", "write")
    resp = client.post("/repos/octo/hello/pulls/5/requested_reviewers", json={"reviewers": ["bob"]})
    assert resp.status_code == 201
    assert [u["login"] for u in resp.json()["requested_reviewers"]] == ["bob"]


# --- git over HTTP ----------------------------------------------------------------------


def test_git_clone_and_push(fake: FakeGitHub, tmp_path: Path) -> None:
    token = mint(fake)
    work = tmp_path / "work"
    git("clone", fake.clone_url("octo/hello"), str(work), token=token)
    assert (work / "src" / "app.py").read_text() == "print('hi')\n"
    git("checkout", "-b", "autocode/issue-1", cwd=work)
    (work / "NEW.md").write_text("new\n")
    git("add", "NEW.md", cwd=work)
    git("commit", "-m", "Add NEW", cwd=work)
    git("push", "origin", "autocode/issue-1", cwd=work, token=token)
    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert fake.branch_sha("octo/hello", "autocode/issue-1") == head
    assert fake.read_file("octo/hello", "autocode/issue-1", "NEW.md") == "new\n"
    log = fake.commit_log("octo/hello", "autocode/issue-1")
    assert log[0]["message"] == "Add NEW" and log[0]["author_email"] == "bot@example.com"
    kinds = {(r["auth"], r.get("service")) for r in fake.requests if "service" in r}
    assert ("basic", "git-upload-pack") in kinds and ("basic", "git-receive-pack") in kinds
    # fetch again (protocol v2 over POST) after another commit on the server
    fake.commit_file("octo/hello", "main", "b.txt", "b\n", "server side")
    git("fetch", "origin", cwd=work, token=token)
    assert git("rev-parse", "origin/main", cwd=work).stdout.strip() == fake.branch_sha(
        "octo/hello", "main"
    )


def test_git_auth_failures(fake: FakeGitHub, tmp_path: Path) -> None:
    url = fake.clone_url("octo/hello")
    result = git("clone", url, str(tmp_path / "anon"), check=False)
    assert result.returncode != 0
    assert any(r["status"] == 401 and r["auth"] == "none" for r in fake.requests)
    # a token for another repository cannot read this one
    other = mint(fake, "other/lib")
    assert git("clone", url, str(tmp_path / "x"), token=other, check=False).returncode != 0
    assert fake.requests[-1]["status"] == 404
    # a read-only token clones but cannot push
    reader = mint(fake, permissions={"contents": "read"})
    work = tmp_path / "ro"
    git("clone", url, str(work), token=reader)
    git("commit", "--allow-empty", "-m", "x", cwd=work)
    result = git("push", "origin", "HEAD:refs/heads/ro", cwd=work, token=reader, check=False)
    assert result.returncode != 0 and "403" in result.stderr
    assert fake.branch_sha("octo/hello", "ro") is None
    # an expired token is refused
    fake.expire_tokens(reader)
    assert git("clone", url, str(tmp_path / "late"), token=reader, check=False).returncode != 0
    assert fake.requests[-1]["status"] == 401


def test_git_protected_branch(fake: FakeGitHub, tmp_path: Path) -> None:
    token = mint(fake)
    fake.protect_branch("octo/hello", "main")
    work = tmp_path / "w"
    git("clone", fake.clone_url("octo/hello"), str(work), token=token)
    git("commit", "--allow-empty", "-m", "direct", cwd=work)
    before = fake.branch_sha("octo/hello", "main")
    result = git("push", "origin", "HEAD:main", cwd=work, token=token, check=False)
    assert result.returncode != 0 and "GH006" in result.stderr
    assert fake.branch_sha("octo/hello", "main") == before
    git("push", "origin", "HEAD:refs/heads/side", cwd=work, token=token)


# --- faults ---------------------------------------------------------------------------


def test_fault_injection(fake: FakeGitHub) -> None:
    token = mint(fake)
    client = api(fake, f"token {token}")
    fake.inject("GET", r"/issues/1$", 502, times=2)
    assert client.get("/repos/octo/hello/issues/1").status_code == 502
    assert client.get("/repos/octo/hello/issues/1").status_code == 502
    assert client.get("/repos/octo/hello/issues/1").status_code == 200
    # githubkit retries a 5xx (after 1 s) and a secondary rate limit with retry-after
    gh = token_github(token, fake, auto_retry=True)
    fake.inject("POST", r"/issues/1/comments$", 403, headers={"retry-after": "1"})
    assert gh.rest.issues.create_comment("octo", "hello", 1, data={"body": "x"}).status_code == 201
    injected = [r for r in fake.requests if r.get("injected")]
    assert injected[-1]["status"] == 403
    fake.inject("*", r"/issues/1$", 429, headers={"retry-after": "1"})
    assert gh.rest.issues.get("octo", "hello", 1).status_code == 200
    # a plain 403 secondary rate limit without retry-after is an error for the caller
    fake.inject("GET", r"/repos/octo/hello$", 403)
    resp = client.get("/repos/octo/hello")
    assert resp.status_code == 403 and "secondary rate limit" in resp.json()["message"]
    # a slow answer makes the client time out
    fake.inject("GET", r"/repos/octo/hello$", 0, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/repos/octo/hello", timeout=0.1)
    # a failure on git
    fake.inject("GET", r"/info/refs$", 502)
    assert (
        httpx.get(fake.clone_url("octo/hello") + "/info/refs?service=git-upload-pack").status_code
        == 502
    )


# --- webhook payloads ------------------------------------------------------------------


def test_payload_points_at_the_fake(fake: FakeGitHub) -> None:
    data = fake.payload(
        "issues/labeled.json", repo="octo/hello", number=1, label="auto-code", sender="alice"
    )
    assert data["repository"]["full_name"] == "octo/hello"
    assert data["repository"]["clone_url"] == fake.clone_url("octo/hello")
    assert data["installation"]["id"] == fake.repo("octo/hello").installation_id
    assert data["issue"]["title"] == "Add a greeting" and data["issue"]["number"] == 1
    assert data["label"]["name"] == "auto-code" and data["sender"]["login"] == "alice"
    assert data["action"] == "labeled"
    comment = fake.payload(
        "issue_comment/created.json",
        repo="octo/hello",
        number=1,
        sender="bob",
        comment="/opencode please",
        fields={"issue.locked": True},
    )
    assert comment["comment"]["body"] == "/opencode please"
    assert comment["comment"]["id"] in fake.comments
    assert comment["comment"]["user"]["login"] == "bob" and comment["issue"]["locked"] is True
    plain = fake.payload("issues/opened.json")
    assert plain["repository"]["clone_url"].startswith(fake.url)
    assert plain["sender"]["login"] == "Codertocat"
    with pytest.raises(TypeError):
        fake.payload("issues/opened.json", nonsense=1)
