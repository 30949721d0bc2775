"""Check suites, GitHub Actions job logs and pull request reviews in the fake GitHub.

What a bot reads to finish its own pull requests: the check suites on a commit
(one per App and head commit, and one per workflow run for GitHub Actions),
their check runs and annotations, an Actions job's log (a 302 to a signed blob
URL on another origin, good for 60 s, to be fetched without GitHub
credentials), and a review with its comments.

The state lives on FakeGitHub (`check_suites`, `other_apps`, `job_logs`,
`blobs`, `blob_fetches`, `violations`, `pull_reviews`, `pull_review_where`);
its helpers (`add_check_suite`, `add_review`, ...) call the functions here.
The routes register themselves with `github_rest.route` when this module is
imported (github_http.py imports it).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from .github_rest import (
    ACTIONS_ONLY_STATUSES,
    ANNOTATION_LEVELS,
    CHECK_STATUSES,
    CONCLUSIONS,
    REPO,
    Req,
    Rest,
    Result,
    check_of,
    check_pulls,
    commit_for_ref,
    invalid_request,
    not_found,
    ok,
    pull_of,
    render_check,
    route,
    snapshot,
)
from .github_shapes import App, Json, Pull, Repo, Suite, iso

if TYPE_CHECKING:
    from .github import FakeGitHub

ACTIONS = "github-actions"
ACTIONS_APP_ID = 15368  # GitHub Actions' App id on github.com
# A suite's conclusion is its runs' highest priority one (GitHub's docs: timed_out,
# success and neutral make timed_out); when none of these, success/neutral/skipped
# runs make success (all neutral: neutral; all skipped: skipped).
SUITE_PRIORITY = ("action_required", "cancelled", "timed_out", "failure", "stale")
RUN_KEYS = {
    "name", "status", "conclusion", "output", "annotations", "log",
    "started_at", "completed_at", "details_url", "external_id",
}  # fmt: skip
ANNOTATION_KEYS = {
    "path", "start_line", "end_line", "start_column", "end_column",
    "annotation_level", "message", "title", "raw_details",
}  # fmt: skip
BLOB_PREFIX = "/_blob/"
BLOB_PATH = re.compile(r"^/_blob/(?P<kind>[a-z-]+)/(?P<key>[A-Za-z0-9_-]+)$")
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")
REVIEW_EVENTS = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}
COMMENT_KEYS = {"path", "line", "body", "side", "start_line", "start_side"}
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


# --- Apps ---------------------------------------------------------------------------


def other_app(fake: FakeGitHub, slug: str) -> App:
    """Another App on the fake (GitHub Actions, a CI service), made on first use."""
    found = fake.other_apps.get(slug)
    if found is not None:
        return found
    actions = slug == ACTIONS
    owner = "github" if actions else slug
    if fake.user(owner) is None:
        fake.add_user(owner, type="Organization")
    app = App(
        id=ACTIONS_APP_ID if actions else fake.next_id(),
        slug=slug,
        client_id=f"Iv1.{secrets.token_hex(8)}",
        name="GitHub Actions" if actions else slug,
        owner=owner,
        permissions={"actions": "write", "checks": "write", "contents": "write",
                     "metadata": "read", "pull_requests": "write", "statuses": "write"},
        events=["check_run", "check_suite", "pull_request", "push", "workflow_dispatch"],
        created_at="2018-07-30T09:30:17Z" if actions else iso(),
        description="Automate your workflow from idea to production" if actions else "",
        external_url="https://help.github.com/en/actions" if actions else f"https://{slug}.example",
    )  # fmt: skip
    fake.other_apps[slug] = app
    return app


def app_key(fake: FakeGitHub, app: str | None) -> str | None:
    """A suite's `app`: None for the fake's own App (by slug too), else the slug."""
    return None if app is None or app == fake.app_slug else app


def app_id(fake: FakeGitHub, app: str | None) -> int:
    return fake.app_id if app is None else other_app(fake, app).id


# --- suites -------------------------------------------------------------------------


def holder(fake: FakeGitHub, repo: Repo, sha: str) -> Repo:
    """The repository of the network (repo or a fork) that has commit `sha`."""
    for r in [repo] + [r for r in fake.repos.values() if r.fork_of == repo.full_name]:
        if r.git.resolve(sha) == sha:
            return r
    raise ValueError(f"no commit {sha} in {repo.full_name} or its forks")


def branch_at(fake: FakeGitHub, repo: Repo, sha: str) -> str | None:
    """The branch of `repo` pointing at `sha` (an open PR's head first), else None."""
    for p in fake.pull_records.values():
        if (p.head_repo, p.state) == (repo.full_name, "open") and fake.pull_head_sha(p) == sha:
            return p.head_ref
    for name, tip in sorted(repo.git.branches().items()):
        if tip == sha:
            return name
    return None


def new_suite(fake: FakeGitHub, repo: Repo, sha: str, app: str | None) -> Suite:
    parents = holder(fake, repo, sha).git.log(sha)[0]["parents"]
    assert isinstance(parents, list)
    now = iso()
    suite = Suite(
        id=fake.next_id(),
        repo=repo.full_name,
        head_sha=sha,
        head_branch=branch_at(fake, repo, sha),
        before=parents[0] if parents else None,
        app=app,
        created_at=now,
        updated_at=now,
        workflow_run=fake.next_id() if app == ACTIONS else None,
    )
    fake.check_suites[suite.id] = suite
    return suite


def suite_for(fake: FakeGitHub, repo: Repo, sha: str, app: str | None) -> Suite:
    """The App's suite on `sha`, made if missing: GitHub keeps one per App and commit."""
    for suite in fake.check_suites.values():
        if (suite.repo, suite.head_sha, suite.app) == (repo.full_name, sha, app):
            return suite
    return new_suite(fake, repo, sha, app)


def suite_run_ids(fake: FakeGitHub, suite: Suite, *, latest: bool = True) -> list[int]:
    """The suite's check runs, newest first; `latest`: the newest of each name."""
    found: list[int] = []
    names: set[str] = set()
    for ident in sorted(fake.check_state, reverse=True):
        state = fake.check_state[ident]
        if state["suite_id"] != suite.id:
            continue
        if latest and state["name"] in names:
            continue
        names.add(state["name"])
        found.append(ident)
    return found


def suite_outcome(fake: FakeGitHub, suite: Suite) -> tuple[str, str | None]:
    """(status, conclusion) derived from the latest runs, as GitHub does."""
    runs = [fake.check_state[i] for i in suite_run_ids(fake, suite)]
    if not runs:
        return "queued", None
    pending = [r for r in runs if r["status"] != "completed"]
    if pending:
        started = len(pending) < len(runs) or any(r["status"] == "in_progress" for r in pending)
        return ("in_progress" if started else "queued"), None
    conclusions = {r["conclusion"] for r in runs}
    for worst in SUITE_PRIORITY:
        if worst in conclusions:
            return "completed", worst
    return "completed", conclusions.pop() if len(conclusions) == 1 else "success"


def suite_pulls(api: Rest, repo: Repo, suite: Suite) -> list[Json]:
    """Open PRs of this repository with the suite's head sha and branch (none for forks)."""
    if suite.head_branch is None:
        return []
    return [
        p for p in check_pulls(api, repo, suite.head_sha) if p["head"]["ref"] == suite.head_branch
    ]


def head_commit(fake: FakeGitHub, repo: Repo, sha: str) -> Json:
    git = holder(fake, repo, sha).git
    commit = git.log(sha)[0]
    author, committer = commit["author"], commit["committer"]
    assert isinstance(author, dict) and isinstance(committer, dict)
    return {
        "id": sha,
        "tree_id": git.git("rev-parse", f"{sha}^{{tree}}").decode().strip(),
        "message": commit["message"],
        "timestamp": committer["date"],
        "author": {"name": author["name"], "email": author["email"]},
        "committer": {"name": committer["name"], "email": committer["email"]},
    }


def render_suite(api: Rest, suite: Suite, *, repository: bool = True) -> Json:
    """The suite as the REST API answers it; repository=False: as a webhook carries it."""
    fake = api.fake
    repo = fake.repo(suite.repo)
    status, conclusion = suite_outcome(fake, suite)
    return fake.shapes.check_suite(
        suite,
        status=status,
        conclusion=conclusion,
        app=fake.app_json(suite.app),
        pulls=suite_pulls(api, repo, suite),
        head_commit=head_commit(fake, repo, suite.head_sha),
        latest_runs=len(suite_run_ids(fake, suite)),
        repository=api.repo_json(repo) if repository else None,
    )


# --- check runs of other Apps (test helpers) ------------------------------------------


def run_fields(suite: Suite, spec: Json, default_status: str) -> Json:
    """A run as add_check_suite takes it, checked as GitHub checks a create."""
    unknown = set(spec) - RUN_KEYS
    if unknown:
        raise TypeError(f"unknown check run keys {sorted(unknown)}; known: {sorted(RUN_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a check run needs a name")
    status = spec.get("status", default_status)
    allowed = CHECK_STATUSES + (ACTIONS_ONLY_STATUSES if suite.app == ACTIONS else ())
    if status not in allowed:
        raise ValueError(f"status {status!r} is not one of {allowed}")
    conclusion = spec.get("conclusion")
    if status == "completed" and conclusion not in CONCLUSIONS:
        raise ValueError(f"a completed run needs a conclusion, one of {CONCLUSIONS}")
    if status != "completed" and conclusion is not None:
        raise ValueError("only a completed run has a conclusion")
    if spec.get("log") is not None and suite.app != ACTIONS:
        raise ValueError("only GitHub Actions runs (app='github-actions') have job logs")
    output = spec.get("output") or {}
    if set(output) - {"title", "summary", "text"}:
        raise TypeError("output takes title, summary and text (annotations beside it)")
    return {"name": name, "status": status, "conclusion": conclusion, "output": output}


def check_annotations(given: list[Json]) -> list[Json]:
    for a in given:
        if set(a) - ANNOTATION_KEYS:
            raise TypeError(f"unknown annotation keys {sorted(set(a) - ANNOTATION_KEYS)}")
        for key, kind in (("path", str), ("start_line", int), ("end_line", int),
                          ("annotation_level", str), ("message", str)):  # fmt: skip
            if not isinstance(a.get(key), kind):
                raise ValueError(f"an annotation needs {key} ({kind.__name__})")
        if a["annotation_level"] not in ANNOTATION_LEVELS:
            raise ValueError(f"annotation_level must be one of {ANNOTATION_LEVELS}")
        if a["end_line"] < a["start_line"]:
            raise ValueError("an annotation's end_line is before its start_line")
    return [dict(a) for a in given]


def add_run(fake: FakeGitHub, suite: Suite, spec: Json, default_status: str = "completed") -> int:
    """A check run of the suite's App (not the bot's), with annotations and a job log."""
    from .github import CheckMeta

    fields = run_fields(suite, spec, default_status)
    annotations = check_annotations(list(spec.get("annotations") or []))
    api, repo = Rest(fake), fake.repo(suite.repo)
    ident, now = fake.next_id(), iso()
    page = None
    if suite.app == ACTIONS:
        page = f"{fake.url}/{repo.full_name}/actions/runs/{suite.workflow_run}/job/{ident}"
    done = fields["status"] == "completed"
    state: Json = {
        **fields,
        "head_sha": suite.head_sha,
        "started_at": spec.get("started_at") or now,
        "completed_at": spec.get("completed_at") or (now if done else None),
        "external_id": spec.get("external_id") or (str(uuid.uuid4()) if page else None),
        "details_url": spec.get("details_url") or page,
        "actions": [],
        "suite_id": suite.id,
        "app": suite.app,
        "html_url": page,
    }
    fake.check_meta[ident] = CheckMeta(repo=repo.full_name, annotations=annotations)
    fake.check_state[ident] = state
    log = spec.get("log")
    if suite.app == ACTIONS:
        fake.job_logs[ident] = log.encode() if isinstance(log, str) else bytes(log or b"")
    snapshot(api, ident, "created", state)
    fake.check_runs[ident] = render_check(api, repo, ident, state)
    suite.updated_at = now
    return ident


def change_run(fake: FakeGitHub, run_id: int, changes: Json) -> Json:
    """complete_check_run: another App's run moves on (status, conclusion, output, log)."""
    state = fake.check_state.get(run_id)
    if state is None or state.get("app") is None:
        raise KeyError(f"no check run {run_id} of another App (the bot's own: PATCH it)")
    suite = fake.check_suites[state["suite_id"]]
    base: Json = {"name": state["name"]}
    if "status" not in changes:  # the status stays, and its conclusion with it
        base.update(status=state["status"], conclusion=state["conclusion"])
    fields = run_fields(suite, {**base, **changes}, state["status"])
    added = check_annotations(list(changes.get("annotations") or []))  # all checked first
    api = Rest(fake)
    now = iso()
    state.update(fields, output=fields["output"] or state["output"])
    done = state["status"] == "completed"
    state["completed_at"] = (
        (changes.get("completed_at") or state["completed_at"] or now) if done else None
    )
    fake.check_meta[run_id].annotations.extend(added)
    if changes.get("log") is not None:
        log = changes["log"]
        fake.job_logs[run_id] = log.encode() if isinstance(log, str) else bytes(log)
    snapshot(api, run_id, "updated", state)
    fake.check_runs[run_id] = render_check(api, fake.repo(suite.repo), run_id, state)
    suite.updated_at = now
    return fake.check_runs[run_id]


# --- routes: suites, runs, annotations ---------------------------------------------------


def suite_of(api: Rest, req: Req, ident: str) -> Suite:
    suite = api.fake.check_suites.get(int(ident))
    if suite is None or suite.repo != api.repo(req).full_name:
        raise not_found()
    return suite


@route("GET", f"{REPO}/commits/(.+)/check-suites", "repo", ("checks", "read"))
def list_suites_for_ref(api: Rest, req: Req) -> Result:
    fake = api.fake
    repo = api.repo(req)
    sha = commit_for_ref(api, repo, req.params[2])
    wanted_app = req.query.get("app_id")
    if wanted_app is not None and not wanted_app.isdigit():
        raise invalid_request(
            f"For 'properties/app_id', {json.dumps(wanted_app)} is not an integer."
        )
    name = req.query.get("check_name")
    suites = []
    for suite in sorted(fake.check_suites.values(), key=lambda s: s.id):
        if (suite.repo, suite.head_sha) != (repo.full_name, sha):
            continue
        if wanted_app is not None and app_id(fake, suite.app) != int(wanted_app):
            continue
        runs = suite_run_ids(fake, suite, latest=False)
        if name is not None and all(fake.check_state[i]["name"] != name for i in runs):
            continue
        suites.append(suite)
    page, headers = api.paginate(req, suites)
    data = {"total_count": len(suites), "check_suites": [render_suite(api, s) for s in page]}
    return ok(data, headers=headers)


@route("GET", rf"{REPO}/check-suites/(\d+)", "repo", ("checks", "read"))
def get_suite(api: Rest, req: Req) -> Result:
    return ok(render_suite(api, suite_of(api, req, req.params[2])))


@route("GET", rf"{REPO}/check-suites/(\d+)/check-runs", "repo", ("checks", "read"))
def list_suite_runs(api: Rest, req: Req) -> Result:
    fake = api.fake
    suite = suite_of(api, req, req.params[2])
    which = req.query.get("filter", "latest")
    if which not in ("latest", "all"):
        raise invalid_request(
            f"For 'properties/filter', {json.dumps(which)} is not one of latest, all."
        )
    status = req.query.get("status")
    if status is not None and status not in CHECK_STATUSES + ACTIONS_ONLY_STATUSES:
        raise invalid_request(f"For 'properties/status', {json.dumps(status)} is not valid.")
    name = req.query.get("check_name")
    runs = []
    for ident in suite_run_ids(fake, suite, latest=which == "latest"):
        state = fake.check_state[ident]
        if (name is not None and state["name"] != name) or (status and state["status"] != status):
            continue
        runs.append(ident)
    page, headers = api.paginate(req, runs)
    repo = api.repo(req)
    for ident in page:
        fake.check_runs[ident] = render_check(api, repo, ident, fake.check_state[ident])
    data = {"total_count": len(runs), "check_runs": [fake.check_runs[i] for i in page]}
    return ok(data, headers=headers)


@route("GET", rf"{REPO}/check-runs/(\d+)/annotations", "repo", ("checks", "read"))
def list_annotations(api: Rest, req: Req) -> Result:
    ident, state = check_of(api, req)
    repo = api.repo(req).full_name
    given = api.fake.check_meta[ident].annotations
    items = [api.fake.shapes.annotation(repo, state["head_sha"], a) for a in given]
    page, headers = api.paginate(req, items)
    return ok(page, headers=headers)


# --- GitHub Actions job logs and the blob storage ----------------------------------------


@route("GET", rf"{REPO}/actions/jobs/(\d+)/logs", "repo", ("actions", "read"))
def job_logs(api: Rest, req: Req) -> Result:
    """302 to a signed URL of the log on the blob host; 404 for what is no Actions job."""
    fake = api.fake
    ident = int(req.params[2])
    meta, state = fake.check_meta.get(ident), fake.check_state.get(ident)
    if meta is None or state is None or meta.repo != api.repo(req).full_name:
        raise not_found()
    if state.get("app") != ACTIONS or state["status"] in ("queued", *ACTIONS_ONLY_STATUSES):
        raise not_found()
    url = mint_blob(fake, "job-logs", fake.job_logs.get(ident, b""))
    return ok(None, 302, {"location": url})


def mint_blob(fake: FakeGitHub, kind: str, data: bytes) -> str:
    """A signed URL for `data` on the blob host (`fake.blob_url`), good for `blob_ttl` s."""
    key, sig = secrets.token_urlsafe(18), secrets.token_urlsafe(32)
    expires = time.time() + fake.blob_ttl
    fake.blobs[key] = {"kind": kind, "data": data, "sig": sig, "expires_ts": expires}
    query = urlencode({"sig": sig, "expires": int(expires)})
    return f"{fake.blob_url}{BLOB_PREFIX}{kind}/{key}?{query}"


def blob_error(status: int, code: str, message: str) -> tuple[int, bytes, dict[str, str]]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return status, body.encode(), {"content-type": "application/xml", "x-ms-error-code": code}


def serve_blob(
    fake: FakeGitHub, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    """The blob host: no GitHub auth at all; a request carrying Authorization is refused
    (and recorded in `fake.violations`: the bot sent its token off GitHub)."""
    match = BLOB_PATH.match(path)
    found = fake.blobs.get(match.group("key")) if match else None
    fetch: Json = {"path": path, "method": method, "time": time.time(),
                   "authorization": "authorization" in headers,
                   "kind": match.group("kind") if match else None}  # fmt: skip
    fake.blob_fetches.append(fetch)
    if "authorization" in headers:
        fake.violations.append({"what": "an Authorization header sent to the blob host",
                                "path": path, "time": fetch["time"]})  # fmt: skip
        answer = blob_error(
            400,
            "InvalidAuthenticationInfo",
            "Authentication information is not given in the correct format.",
        )
    elif found is None or found["kind"] != fetch["kind"]:
        answer = blob_error(404, "BlobNotFound", "The specified blob does not exist.")
    elif not secrets.compare_digest(query.get("sig", ""), found["sig"]):
        answer = blob_error(403, "AuthenticationFailed", "Signature did not match.")
    elif found["expires_ts"] <= time.time():
        answer = blob_error(403, "AuthenticationFailed", "Signed expiry time has passed.")
    elif method not in ("GET", "HEAD"):
        answer = blob_error(
            403, "AuthorizationPermissionMismatch", "This request is not authorized."
        )
    else:
        body = found["data"] if method == "GET" else b""
        answer = 200, body, {"content-type": "text/plain", "x-ms-blob-type": "BlockBlob"}
    fetch["status"] = answer[0]
    return answer


# --- reviews ------------------------------------------------------------------------------


def diff_lines(fake: FakeGitHub, pull: Pull, path: str) -> list[str]:
    """The PR's diff of `path` (base...head, as GitHub shows it), without its file header."""
    head_repo = fake.repo(pull.head_repo)
    base_sha = fake.repo(pull.repo).git.branch_sha(pull.base_ref) or ""
    out = head_repo.git.git("diff", "--no-color", "--no-ext-diff", "-U3",
                            f"{base_sha}...{fake.pull_head_sha(pull)}", "--", path)  # fmt: skip
    lines = out.decode(errors="replace").splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))
    return lines[first:]


def locate(lines: list[str], line: int, side: str) -> tuple[str, int] | None:
    """(diff_hunk up to the line, position) of `line` on `side` in a file's diff."""
    start = old = new = 0
    for position, text in enumerate(lines):
        header = HUNK.match(text)
        if header is not None:
            start, old, new = position, int(header.group(1)), int(header.group(2))
            continue
        if text.startswith("\\"):
            continue
        here = {" ": (old, new), "+": (None, new), "-": (old, None)}.get(text[:1], (None, None))
        if (here[1] if side == "RIGHT" else here[0]) == line:
            return "\n".join(lines[start : position + 1]), position
        old += text[:1] in " -"
        new += text[:1] in " +"
    return None


def review_comment_fields(fake: FakeGitHub, pull: Pull, given: Json) -> Json:
    """A review comment as add_review takes it → its diff fields, checked like GitHub."""
    if set(given) - COMMENT_KEYS:
        raise TypeError(f"unknown review comment keys {sorted(set(given) - COMMENT_KEYS)}")
    path, line, body = given.get("path"), given.get("line"), given.get("body")
    if not isinstance(path, str) or not isinstance(line, int) or not isinstance(body, str):
        raise ValueError("a review comment needs path (str), line (int) and body (str)")
    side = given.get("side", "RIGHT")
    if side not in ("LEFT", "RIGHT"):
        raise ValueError("side is LEFT or RIGHT")
    found = locate(diff_lines(fake, pull, path), line, side)
    if found is None:  # GitHub: 422 "Pull request review thread line must be part of the diff"
        raise ValueError(f"{path} line {line} ({side}) is not part of the diff of #{pull.number}")
    hunk, position = found
    start = given.get("start_line")
    fields: Json = {"path": path, "line": line, "original_line": line, "side": side,
                    "diff_hunk": hunk, "position": position, "original_position": position,
                    "start_line": start, "original_start_line": start,
                    "start_side": given.get("start_side", side) if start else None,
                    "body": body}  # fmt: skip
    return fields


def new_review(
    fake: FakeGitHub, repo: Repo, pull: Pull, user: str, *, state: str, body: str
) -> int:
    """Store a submitted review (no comments); returns its id."""
    ident = fake.next_id()
    fake.pull_reviews[ident] = fake.shapes.review(
        repo.full_name,
        pull.number,
        ident,
        user=fake.user_json(user),
        body=body,
        state=state,
        commit=fake.pull_head_sha(pull),
        submitted_at=iso(),
        association=fake.association(repo, user),
    )
    fake.pull_review_where[ident] = (repo.full_name, pull.number)
    return ident


def add_review(
    fake: FakeGitHub, full_name: str, number: int, user: str, state: str, body: str,
    comments: list[Json],
) -> int:  # fmt: skip
    repo = fake.repo(full_name)
    pull = fake.pull_records.get((repo.full_name, number))
    if pull is None:
        raise KeyError(f"no pull request {repo.full_name}#{number} in the fake")
    state = REVIEW_EVENTS.get(state.upper(), state.upper())
    if state not in REVIEW_STATES:
        raise ValueError(f"state must be one of {REVIEW_STATES}")
    if state != "COMMENTED" and user.lower() == pull.user.lower():
        raise ValueError("GitHub refuses to approve or request changes on one's own PR")
    if state != "APPROVED" and not body and not comments:
        raise ValueError("GitHub needs a body (or comments) to comment or request changes")
    fields = [review_comment_fields(fake, pull, c) for c in comments]  # all checked first
    ident = new_review(fake, repo, pull, user, state=state, body=body)
    for given in fields:
        comment = fake.add_review_comment(
            repo.full_name, number, user=user, body=given["body"], path=given["path"],
            line=given["line"], review_id=ident,
        )  # fmt: skip
        fake.review_comments[comment].update(given)
    return ident


def review_of(api: Rest, req: Req, pull: Pull, ident: str) -> Json:
    where = api.fake.pull_review_where.get(int(ident))
    if where != (pull.repo, pull.number):
        raise not_found()
    return api.fake.pull_reviews[int(ident)]


@route("GET", rf"{REPO}/pulls/(\d+)/reviews", "repo", ("pull_requests", "read"))
def list_reviews(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    fake = api.fake
    found = [
        r for i, r in sorted(fake.pull_reviews.items())
        if fake.pull_review_where[i] == (pull.repo, pull.number)
    ]  # fmt: skip
    page, headers = api.paginate(req, found)
    return ok(page, headers=headers)


@route("GET", rf"{REPO}/pulls/(\d+)/reviews/(\d+)", "repo", ("pull_requests", "read"))
def get_review(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    return ok(review_of(api, req, pull, req.params[3]))


@route("GET", rf"{REPO}/pulls/(\d+)/reviews/(\d+)/comments", "repo", ("pull_requests", "read"))
def list_review_comments_of_review(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    review = review_of(api, req, pull, req.params[3])
    found = [
        copy.deepcopy(c) for _, c in sorted(api.fake.review_comments.items())
        if c.get("pull_request_review_id") == review["id"]
    ]  # fmt: skip
    page, headers = api.paginate(req, found)
    return ok(page, headers=headers)


def review_hook(review: Json) -> Json:
    """The review as a pull_request_review webhook carries it: state in lower case,
    an empty body as null."""
    data = copy.deepcopy(review)
    data["state"] = str(review["state"]).lower()
    data["body"] = review["body"] or None
    return data
