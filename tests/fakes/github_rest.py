"""The fake GitHub's REST API: authentication, permissions and the endpoints.

Handlers run in a worker thread with the fake's lock held; they return
(status, JSON, headers) or raise ApiError, rendered as GitHub's error JSON.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt

from .github_shapes import REACTIONS, Installation, Json, Pull, Repo, iso

if TYPE_CHECKING:
    from .github import FakeGitHub

DOCS = "https://docs.github.com/rest"
LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}
NOT_ACCESSIBLE = "Resource not accessible by integration"
BAD_JWT = "A JSON web token could not be decoded"
CHECK_STATUSES = ("queued", "in_progress", "completed")
ACTIONS_ONLY_STATUSES = ("waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")
MAX_TEXT = 65535
TOKEN_CHARS = string.ascii_letters + string.digits


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Json] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> Json:
        data: Json = {
            "message": self.message,
            "documentation_url": DOCS,
            "status": str(self.status),
        }
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def forbidden() -> ApiError:
    return ApiError(403, NOT_ACCESSIBLE)


def invalid(resource: str, field_: str | None, code: str, message: str | None = None) -> ApiError:
    error: Json = {"resource": resource, "code": code}
    if field_ is not None:
        error["field"] = field_
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


def invalid_request(detail: str) -> ApiError:
    return ApiError(422, f"Invalid request.\n\n{detail}")


_TYPE_NAMES = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}


def get(body: Json, key: str, kind: type, *, required: bool = False, nullable: bool = False) -> Any:
    """body[key] checked like GitHub's schema validation (422 "Invalid request")."""
    if key not in body:
        if required:
            raise invalid_request(f'"{key}" wasn\'t supplied.')
        return None
    value = body[key]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        article = "an" if kind in (int, list, dict) else "a"
        raise invalid_request(
            f"For 'properties/{key}', {json.dumps(value)} is not {article}"
            f" {_TYPE_NAMES.get(kind, kind.__name__)}."
        )
    return value


# --- callers ---------------------------------------------------------------


@dataclass
class Caller:
    kind: str  # jwt | installation | basic | none
    token: Json | None = None

    @property
    def permissions(self) -> dict[str, str]:
        return dict(self.token["permissions"]) if self.token else {}


def auth_kind(header: str) -> str:
    scheme, _, cred = header.partition(" ")
    scheme = scheme.lower()
    if not header:
        return "none"
    if scheme == "basic":
        return "basic"
    if scheme in ("bearer", "token") and cred.count(".") == 2 and not cred.startswith("gh"):
        return "jwt"
    return "installation"


def basic_password(header: str) -> str | None:
    scheme, _, cred = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(cred, validate=True).decode()
    except ValueError:
        return None
    return decoded.partition(":")[2]


def verify_jwt(fake: FakeGitHub, token: str) -> None:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "RS256":
            raise ApiError(401, BAD_JWT)
        claims = jwt.decode(
            token,
            fake.public_key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError:
        raise ApiError(401, BAD_JWT) from None
    if str(claims.get("iss")) not in (str(fake.app_id), fake.client_id):
        raise ApiError(401, BAD_JWT)
    exp, iat = claims.get("exp"), claims.get("iat")
    now = time.time()
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future"
            " time at which the assertion expires",
        )
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + 60:
        raise ApiError(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the"
            " assertion was issued",
        )
    if exp - iat > 600 + 5:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")


def lookup_token(fake: FakeGitHub, token: str) -> Json:
    record = fake.token_index.get(token)
    if record is None or record["expires_ts"] <= time.time():
        raise ApiError(401, "Bad credentials")
    if record["installation_id"] not in fake.installations:
        raise ApiError(401, "Bad credentials")
    return record


def authenticate(fake: FakeGitHub, header: str) -> Caller:
    kind = auth_kind(header)
    if kind == "none":
        return Caller("none")
    if kind == "basic":
        password = basic_password(header)
        if not password:
            raise ApiError(401, "Bad credentials")
        return Caller("basic", lookup_token(fake, password))
    cred = header.partition(" ")[2].strip()
    if kind == "jwt":
        verify_jwt(fake, cred)
        return Caller("jwt")
    if header.partition(" ")[0].lower() not in ("bearer", "token"):
        raise ApiError(401, "Bad credentials")
    return Caller("installation", lookup_token(fake, cred))


def covers(fake: FakeGitHub, token: Json, repo: Repo) -> bool:
    """Whether an installation token may act on `repo`."""
    if repo.installation_id != token["installation_id"]:
        return False
    if token["repository_selection"] == "selected":
        return repo.full_name.lower() in {r.lower() for r in token["repositories"]}
    return True


def has(permissions: dict[str, str], name: str, level: str) -> bool:
    return LEVELS.get(permissions.get(name, "none"), 0) >= LEVELS[level]


# --- requests ----------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str  # under /api/v3
    query: dict[str, str]
    body: Json
    caller: Caller
    params: tuple[str, ...]
    repo: Repo | None = None
    headers: dict[str, str] = field(default_factory=dict)


Result = tuple[int, Any, dict[str, str]]
Handler = Callable[["Rest", Req], Result]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    access: str  # jwt | public | repo | org
    permission: tuple[str, str] | None = None  # checked before the handler for repo routes


ROUTES: list[Route] = []
REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


def route(
    method: str, pattern: str, access: str, permission: tuple[str, str] | None = None
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(f"^{pattern}$"), handler, access, permission))
        return handler

    return register


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Result:
    return status, data, headers or {}


class Rest:
    """Dispatches one REST request against the fake's state (lock held by the caller)."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> tuple[Result, Caller | None]:
        caller: Caller | None = None
        try:
            caller = authenticate(self.fake, headers.get("authorization", ""))
            for r in ROUTES:
                match = r.pattern.match(path)
                if match is None or r.method != method:
                    continue
                body = self._body(method, raw)
                req = Req(method, path, query, body, caller, match.groups(), headers=headers)
                self._authorize(r, req, match)
                return r.handler(self, req), caller
            raise not_found()
        except ApiError as exc:
            return (exc.status, exc.body(), exc.headers), caller

    @staticmethod
    def _body(method: str, raw: bytes) -> Json:
        if method in ("GET", "DELETE") or not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def _authorize(self, r: Route, req: Req, match: re.Match[str]) -> None:
        caller = req.caller
        if r.access == "jwt":
            if caller.kind != "jwt":
                raise ApiError(401, BAD_JWT)
            return
        if r.access == "public":
            return
        if caller.kind == "jwt":
            raise forbidden()
        if r.access == "org":
            if caller.token is None:
                raise ApiError(401, "Requires authentication")
            return
        repo = self.fake.find_repo(f"{match.group('owner')}/{match.group('name')}")
        if caller.token is None:  # anonymous
            if repo is None or repo.private:
                raise not_found()
            if req.method != "GET":
                raise ApiError(401, "Requires authentication")
        elif repo is None:
            raise not_found()
        elif not covers(self.fake, caller.token, repo):
            if repo.private:
                raise not_found()
            raise forbidden()
        req.repo = repo
        if r.permission is not None:
            self.need(req, *r.permission)

    def need(self, req: Req, name: str, level: str, *, or_pulls: bool = False) -> None:
        """403 unless the token has `name` at `level` (or pull_requests, for a PR)."""
        if req.caller.token is None:
            if level != "read":
                raise ApiError(401, "Requires authentication")
            return
        perms = req.caller.permissions
        if has(perms, name, level) or (or_pulls and has(perms, "pull_requests", level)):
            return
        raise forbidden()

    # --- helpers ------------------------------------------------------------
    def repo(self, req: Req) -> Repo:
        assert req.repo is not None
        return req.repo

    def issue(self, req: Req, number: str) -> Json:
        found = self.fake.issues.get((self.repo(req).full_name, int(number)))
        if found is None:
            raise not_found()
        return found

    def paginate(self, req: Req, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        def number(key: str, default: int) -> int:
            try:
                return int(req.query.get(key, default))
            except ValueError:
                return default

        per_page = min(max(number("per_page", 30), 1), 100)
        page = max(number("page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))
        links = []

        def link(n: int, rel: str) -> str:
            query = dict(req.query, per_page=str(per_page), page=str(n))
            return f'<{self.fake.api_url}{req.path}?{urlencode(query)}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links = [link(page + 1, "next"), link(last, "last"), *links]
        headers = {"link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    def issue_token(
        self, inst: Installation, repos: list[Repo] | None, permissions: dict[str, str]
    ) -> Json:
        fake = self.fake
        token = "ghs_" + "".join(secrets.choice(TOKEN_CHARS) for _ in range(36))
        expires = time.time() + fake.token_ttl
        all_repos = [r for r in fake.repos.values() if r.installation_id == inst.id]
        record: Json = {
            "token": token,
            "installation_id": inst.id,
            "repositories": [r.full_name for r in (repos if repos is not None else all_repos)],
            "repository_selection": "selected" if repos is not None else "all",
            "permissions": permissions,
            "expires_at": iso(expires),
            "expires_ts": expires,
            "created_at": time.time(),
        }
        fake.tokens.append(record)
        fake.token_index[token] = record
        return record

    def repo_json(self, repo: Repo, *, full: bool = False, caller: Caller | None = None) -> Json:
        fake = self.fake
        owner = fake.ensure_user(repo.owner)
        perms = None
        if caller is not None and caller.token is not None:
            p = caller.permissions
            perms = {
                "admin": False,
                "maintain": False,
                "push": has(p, "contents", "write"),
                "triage": False,
                "pull": True,
            }
        if not full:
            return fake.shapes.repository(repo, owner, perms)
        parent = None
        if repo.fork_of:
            up = fake.repo(repo.fork_of)
            parent = fake.shapes.repository(up, fake.ensure_user(up.owner), None)
        org = fake.shapes.user(owner) if owner.type == "Organization" else None
        return fake.shapes.full_repository(repo, owner, perms, parent, org)


def render_pull(fake: FakeGitHub, p: Pull, *, simple: bool = False) -> Json:
    base_repo, head_repo = fake.repo(p.repo), fake.repo(p.head_repo)
    rest = Rest(fake)
    head_sha = fake.pull_head_sha(p)
    base_sha = base_repo.git.branch_sha(p.base_ref) or head_sha
    commits = head_repo.git.count_commits(base_sha, head_sha)
    files, additions, deletions = head_repo.git.diffstat(base_sha, head_sha)
    head_owner = fake.user_json(head_repo.owner)
    base_owner = fake.user_json(base_repo.owner)
    issue = fake.issues[(p.repo, p.number)]
    data = fake.shapes.pull_request(
        p,
        user=fake.user_json(p.user),
        head=fake.shapes.pull_ref(rest.repo_json(head_repo), head_owner, p.head_ref, head_sha),
        base=fake.shapes.pull_ref(rest.repo_json(base_repo), base_owner, p.base_ref, base_sha),
        labels=issue["labels"],
        reviewers=[fake.user_json(r) for r in p.reviewers],
        association=fake.association(base_repo, p.user),
        stats=(commits, files, additions, deletions),
        comments=issue["comments"],
        review_comments=sum(1 for w in fake.review_where.values() if w == (p.repo, p.number)),
        mergeable=True if p.state == "open" else None,
    )
    if simple:
        for key in (
            "merged",
            "mergeable",
            "rebaseable",
            "mergeable_state",
            "merged_by",
            "comments",
            "review_comments",
            "maintainer_can_modify",
            "commits",
            "additions",
            "deletions",
            "changed_files",
        ):
            data.pop(key, None)
    return data


# --- apps and installations ----------------------------------------------------


@route("GET", "/app", "jwt")
def get_app(api: Rest, req: Req) -> Result:
    return ok(api.fake.app_json())


def installation_json(api: Rest, inst: Installation) -> Json:
    fake = api.fake
    return fake.shapes.installation(inst, fake.ensure_user(inst.account), fake.app)


@route("GET", "/app/installations", "jwt")
def list_installations(api: Rest, req: Req) -> Result:
    items = [installation_json(api, i) for i in api.fake.installations.values()]
    page, headers = api.paginate(req, items)
    return ok(page, headers=headers)


@route("GET", r"/app/installations/(\d+)", "jwt")
def get_installation(api: Rest, req: Req) -> Result:
    inst = api.fake.installations.get(int(req.params[0]))
    if inst is None:
        raise not_found()
    return ok(installation_json(api, inst))


@route("POST", r"/app/installations/(\d+)/access_tokens", "jwt")
def create_token(api: Rest, req: Req) -> Result:
    fake = api.fake
    inst = fake.installations.get(int(req.params[0]))
    if inst is None:
        raise not_found()
    installed = [r for r in fake.repos.values() if r.installation_id == inst.id]
    names = get(req.body, "repositories", list)
    ids = get(req.body, "repository_ids", list)
    wanted = get(req.body, "permissions", dict)
    repos: list[Repo] | None = None
    if names is not None or ids is not None:
        repos = []
        for name in names or []:
            if not isinstance(name, str):
                raise invalid_request(f"For 'items', {json.dumps(name)} is not a string.")
            match = [
                r
                for r in installed
                if r.name.lower() == name.lower() or r.full_name.lower() == name.lower()
            ]
            if not match:
                raise ApiError(
                    422,
                    "There is at least one repository that does not exist or is"
                    " not accessible to the parent installation.",
                )
            repos.extend(m for m in match if m not in repos)
        for ident in ids or []:
            match = [r for r in installed if r.id == ident]
            if not match:
                raise ApiError(
                    422,
                    "There is at least one repository that does not exist or is"
                    " not accessible to the parent installation.",
                )
            repos.extend(m for m in match if m not in repos)
    if wanted is not None:
        for name, level in wanted.items():
            if level not in ("read", "write", "admin") or not has(inst.permissions, name, level):
                raise ApiError(
                    422, "The permissions requested are not granted to this installation."
                )
        permissions = {k: str(v) for k, v in wanted.items()}
        permissions.setdefault("metadata", "read")
    else:
        permissions = dict(inst.permissions)
    record = api.issue_token(inst, repos, permissions)
    data: Json = {
        "token": record["token"],
        "expires_at": record["expires_at"],
        "permissions": permissions,
        "repository_selection": record["repository_selection"],
    }
    if repos is not None:
        data["repositories"] = [api.repo_json(r) for r in repos]
    return ok(data, 201)


@route("POST", r"/app-manifests/([^/]+)/conversions", "public")
def convert_manifest(api: Rest, req: Req) -> Result:
    """The App manifest flow's last step (github_web.py): the code, once, within its hour."""
    data = api.fake.manifests.convert(req.params[0])
    if data is None:
        raise not_found()
    return ok(data, 201)


@route("GET", f"{REPO}/installation", "jwt")
def repo_installation(api: Rest, req: Req) -> Result:
    repo = api.fake.find_repo(f"{req.params[0]}/{req.params[1]}")
    if repo is None or repo.installation_id not in api.fake.installations:
        raise not_found()
    return ok(installation_json(api, api.fake.installations[repo.installation_id]))


@route("GET", r"/users/([^/]+)", "public")
def get_user(api: Rest, req: Req) -> Result:
    user = api.fake.user(req.params[0])
    if user is None:
        raise not_found()
    return ok(api.fake.shapes.public_user(user, api.fake.app))


@route("GET", r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", "org")
def team_membership(api: Rest, req: Req) -> Result:
    fake = api.fake
    org_login, team, login = req.params
    org = fake.user(org_login)
    if org is None or org.type != "Organization":
        raise not_found()
    token = req.caller.token
    assert token is not None
    inst = fake.installations[token["installation_id"]]
    if inst.account.lower() != org.login.lower():
        raise not_found()
    if not has(req.caller.permissions, "members", "read"):
        raise forbidden()
    members = fake.teams.get((org.login.lower(), team.lower()))
    if members is None or login.lower() not in members:
        raise not_found()
    return ok(fake.shapes.team_membership(org.login, team, login, members[login.lower()]))


# --- repositories ------------------------------------------------------------


@route("GET", REPO, "repo", ("metadata", "read"))
def get_repo(api: Rest, req: Req) -> Result:
    return ok(api.repo_json(api.repo(req), full=True, caller=req.caller))


@route("GET", f"{REPO}/collaborators/([^/]+)/permission", "repo", ("metadata", "read"))
def collaborator_permission(api: Rest, req: Req) -> Result:
    fake = api.fake
    user = fake.user(req.params[2])
    if user is None:
        raise not_found()
    role = fake.role(api.repo(req), user.login)
    return ok(fake.shapes.collaborator_permission(user, role))


@route("GET", f"{REPO}/contents(?:/(.*))?", "repo", ("contents", "read"))
def get_contents(api: Rest, req: Req) -> Result:
    repo = api.repo(req)
    path = (req.params[2] or "").strip("/")
    ref = req.query.get("ref") or repo.default_branch
    sha = repo.git.resolve_ref_name(ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    entry = repo.git.entry(sha, path)
    if entry is None:
        raise not_found()
    shapes = api.fake.shapes
    if entry.type == "tree":
        items = [
            shapes.content_entry(repo.full_name, ref, e.path, e.sha, e.type, e.size)
            for e in repo.git.list_dir(sha, path)
        ]
        return ok(items)
    return ok(shapes.content_file(repo.full_name, ref, path, entry.sha, repo.git.blob(entry.sha)))


@route("GET", f"{REPO}/git/ref/(.+)", "repo", ("contents", "read"))
def get_git_ref(api: Rest, req: Req) -> Result:
    repo = api.repo(req)
    ref = "refs/" + req.params[2]
    sha = repo.git.ref_sha(ref) if re.fullmatch(r"refs/(heads|tags)/.+", ref) else None
    if sha is None:
        raise not_found()
    return ok(api.fake.shapes.git_ref(repo.full_name, ref, sha))


# --- issues, comments, reactions, labels ---------------------------------------------


@route("GET", rf"{REPO}/issues/(\d+)", "repo")
def get_issue(api: Rest, req: Req) -> Result:
    issue = api.issue(req, req.params[2])
    api.need(req, "issues", "read", or_pulls="pull_request" in issue)
    return ok(issue)


@route("GET", rf"{REPO}/issues/(\d+)/comments", "repo")
def list_comments(api: Rest, req: Req) -> Result:
    issue = api.issue(req, req.params[2])
    api.need(req, "issues", "read", or_pulls="pull_request" in issue)
    comments = api.fake.issue_comments(api.repo(req).full_name, int(req.params[2]))
    page, headers = api.paginate(req, updated_since(req, comments))
    return ok(page, headers=headers)


ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def updated_since(req: Req, items: list[Json]) -> list[Json]:
    """`?since=`: only what was updated at or after that ISO 8601 time, as GitHub filters."""
    when = req.query.get("since")
    if when is None:
        return items
    if not ISO_TIME.match(when):  # GitHub's form: YYYY-MM-DDTHH:MM:SSZ
        raise invalid_request(f"Invalid value for `since`: {when!r}")
    moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return [
        i for i in items if datetime.fromisoformat(i["updated_at"].replace("Z", "+00:00")) >= moment
    ]


def check_body(body: Json) -> str:
    text = get(body, "body", str, required=True)
    if len(text) > 65536:
        raise invalid(
            "IssueComment", "body", "custom", "Body is too long (maximum is 65536 characters)"
        )
    return str(text)


@route("POST", rf"{REPO}/issues/(\d+)/comments", "repo")
def create_comment(api: Rest, req: Req) -> Result:
    issue = api.issue(req, req.params[2])
    api.need(req, "issues", "write", or_pulls="pull_request" in issue)
    text = check_body(req.body)
    ident = api.fake.add_comment(api.repo(req).full_name, issue["number"], api.fake.bot_login, text)
    data = api.fake.comments[ident]
    return ok(data, 201, {"location": data["url"]})


def comment_of(api: Rest, req: Req) -> Json:
    ident = int(req.params[2])
    where = api.fake.comment_where.get(ident)
    if where is None or where[0] != api.repo(req).full_name:
        raise not_found()
    return api.fake.comments[ident]


@route("GET", rf"{REPO}/issues/comments/(\d+)", "repo")
def get_comment(api: Rest, req: Req) -> Result:
    comment = comment_of(api, req)
    issue = api.fake.issues[api.fake.comment_where[comment["id"]]]
    api.need(req, "issues", "read", or_pulls="pull_request" in issue)
    return ok(comment)


@route("PATCH", rf"{REPO}/issues/comments/(\d+)", "repo")
def update_comment(api: Rest, req: Req) -> Result:
    comment = comment_of(api, req)
    issue = api.fake.issues[api.fake.comment_where[comment["id"]]]
    api.need(req, "issues", "write", or_pulls="pull_request" in issue)
    if comment["user"]["login"].lower() != api.fake.bot_login.lower():
        raise forbidden()
    comment["body"] = check_body(req.body)
    comment["updated_at"] = iso()
    return ok(comment)


def react(
    api: Rest, req: Req, subject: Json, kind: str, number: int | None, comment_id: int | None
) -> Result:
    content = get(req.body, "content", str, required=True)
    if content not in REACTIONS:
        raise invalid_request(
            f"For 'properties/content', {json.dumps(content)} is not one of {', '.join(REACTIONS)}."
        )
    fake = api.fake
    repo = api.repo(req).full_name
    for r in fake.reactions:
        if (
            r["repository"],
            r["subject"],
            r["number"],
            r["comment_id"],
            r["user"],
            r["content"],
        ) == (repo, kind, number, comment_id, fake.bot_login, content):
            return ok(r["json"], 200)
    ident = fake.next_id()
    now = iso()
    data = fake.shapes.reaction(ident, fake.user_json(fake.bot_login), content, now)
    fake.reactions.append(
        {
            "id": ident,
            "content": content,
            "user": fake.bot_login,
            "repository": repo,
            "subject": kind,
            "number": number,
            "comment_id": comment_id,
            "created_at": now,
            "json": data,
        }
    )
    rollup = subject.get("reactions")
    if isinstance(rollup, dict):
        rollup[content] += 1
        rollup["total_count"] += 1
    return ok(data, 201)


@route("POST", rf"{REPO}/issues/(\d+)/reactions", "repo")
def react_issue(api: Rest, req: Req) -> Result:
    issue = api.issue(req, req.params[2])
    api.need(req, "issues", "write", or_pulls="pull_request" in issue)
    return react(api, req, issue, "issue", issue["number"], None)


@route("POST", rf"{REPO}/issues/comments/(\d+)/reactions", "repo")
def react_comment(api: Rest, req: Req) -> Result:
    comment = comment_of(api, req)
    where = api.fake.comment_where[comment["id"]]
    api.need(req, "issues", "write", or_pulls="pull_request" in api.fake.issues[where])
    return react(api, req, comment, "issue_comment", where[1], comment["id"])


@route("POST", rf"{REPO}/pulls/comments/(\d+)/reactions", "repo", ("pull_requests", "write"))
def react_review_comment(api: Rest, req: Req) -> Result:
    comment = review_comment_of(api, req, req.params[2])
    where = api.fake.review_where[comment["id"]]
    return react(api, req, comment, "pull_request_review_comment", where[1], comment["id"])


@route("POST", rf"{REPO}/issues/(\d+)/labels", "repo")
def add_labels(api: Rest, req: Req) -> Result:
    issue = api.issue(req, req.params[2])
    api.need(req, "issues", "write", or_pulls="pull_request" in issue)
    names = get(req.body, "labels", list, required=True)
    repo = api.repo(req)
    for name in names:
        label_name = name.get("name") if isinstance(name, dict) else name
        if not isinstance(label_name, str) or not label_name.strip():
            raise invalid("Label", "name", "invalid")
        if all(lb["name"].lower() != label_name.lower() for lb in issue["labels"]):
            issue["labels"].append(api.fake.label(repo, label_name))
    return ok(issue["labels"])


# --- check runs ----------------------------------------------------------------


def validate_check(api: Rest, req: Req, current: Json | None) -> Json:
    """The check run fields of a create (current None) or update request, validated."""
    body = req.body
    fields: Json = {}
    name = get(body, "name", str, required=current is None)
    if name is not None:
        if not name.strip():
            raise invalid("CheckRun", "name", "missing_field")
        fields["name"] = name
    for key in ("details_url", "external_id", "started_at", "completed_at"):
        value = get(body, key, str, nullable=True)
        if key in body:
            fields[key] = value
    status = get(body, "status", str)
    conclusion = get(body, "conclusion", str, nullable=True)
    if status is not None:
        if status in ACTIONS_ONLY_STATUSES:
            raise invalid(
                "CheckRun",
                "status",
                "custom",
                "Only GitHub Actions can set a status of waiting, pending, or requested.",
            )
        if status not in CHECK_STATUSES:
            raise invalid_request(
                f"For 'properties/status', {json.dumps(status)} is not one of "
                f"{', '.join(CHECK_STATUSES + ACTIONS_ONLY_STATUSES)}."
            )
    if conclusion is not None:
        if conclusion not in CONCLUSIONS:
            raise invalid_request(
                f"For 'properties/conclusion', {json.dumps(conclusion)} is not"
                f" one of {', '.join(CONCLUSIONS)}."
            )
        if status not in (None, "completed"):
            raise invalid(
                "CheckRun",
                "status",
                "custom",
                "Conclusion can only be set when status is completed.",
            )
        status = "completed"
    if (
        status == "completed"
        and conclusion is None
        and (current is None or current["conclusion"] is None)
    ):
        raise invalid(
            "CheckRun",
            "conclusion",
            "missing_field",
            "Conclusion is required when status is completed.",
        )
    if status is not None:
        fields["status"] = status
    if conclusion is not None:
        fields["conclusion"] = conclusion
    output = get(body, "output", dict)
    if output is not None:
        title = get(output, "title", str, required=True)
        summary = get(output, "summary", str, required=True)
        text = get(output, "text", str, nullable=True)
        if len(summary) > MAX_TEXT:
            raise invalid(
                "CheckRun",
                "output.summary",
                "too_long",
                f"Output summary exceeds a maximum bytesize of {MAX_TEXT}",
            )
        if text is not None and len(text) > MAX_TEXT:
            raise invalid(
                "CheckRun",
                "output.text",
                "too_long",
                f"Output text exceeds a maximum bytesize of {MAX_TEXT}",
            )
        annotations = get(output, "annotations", list) or []
        if len(annotations) > 50:
            raise invalid(
                "CheckRun",
                "output.annotations",
                "too_long",
                "Only 50 annotations are allowed per request",
            )
        for a in annotations:
            if not isinstance(a, dict):
                raise invalid_request("For 'items', annotations must be objects.")
            for key, kind in (
                ("path", str),
                ("start_line", int),
                ("end_line", int),
                ("annotation_level", str),
                ("message", str),
            ):
                get(a, key, kind, required=True)
            if a["annotation_level"] not in ANNOTATION_LEVELS:
                raise invalid_request(
                    f"For 'properties/annotation_level', "
                    f"{json.dumps(a['annotation_level'])} is not one of "
                    f"{', '.join(ANNOTATION_LEVELS)}."
                )
            if a["end_line"] < a["start_line"]:
                raise invalid("CheckRun", "output.annotations", "invalid")
            if ("start_column" in a or "end_column" in a) and a["start_line"] != a["end_line"]:
                raise invalid(
                    "CheckRun",
                    "output.annotations",
                    "invalid",
                    "start_column and end_column need start_line == end_line",
                )
        fields["output"] = {"title": title, "summary": summary, "text": text}
        fields["annotations"] = annotations
    actions = get(body, "actions", list)
    if actions is not None:
        if len(actions) > 3:
            raise invalid("CheckRun", "actions", "too_long", "Only 3 actions are allowed")
        for a in actions:
            if not isinstance(a, dict):
                raise invalid_request("For 'items', actions must be objects.")
            for key, limit in (("label", 20), ("description", 40), ("identifier", 20)):
                value = get(a, key, str, required=True)
                if len(value) > limit:
                    raise invalid(
                        "CheckRun",
                        f"actions.{key}",
                        "too_long",
                        f"{key} is too long (maximum is {limit} characters)",
                    )
        fields["actions"] = actions
    return fields


def check_pulls(api: Rest, repo: Repo, sha: str) -> list[Json]:
    fake = api.fake
    found = []
    for p in fake.pull_records.values():
        # GitHub lists only PRs whose head is in this repository (not forks).
        if (
            p.repo == p.head_repo == repo.full_name
            and p.state == "open"
            and fake.pull_head_sha(p) == sha
        ):
            base_sha = repo.git.branch_sha(p.base_ref) or ""
            head_repo = fake.repo(p.head_repo)

            def mini(r: Repo) -> Json:
                return {"id": r.id, "url": f"{fake.api_url}/repos/{r.full_name}", "name": r.name}

            found.append(
                {
                    "url": f"{fake.api_url}/repos/{repo.full_name}/pulls/{p.number}",
                    "id": p.id,
                    "number": p.number,
                    "head": {"ref": p.head_ref, "sha": sha, "repo": mini(head_repo)},
                    "base": {"ref": p.base_ref, "sha": base_sha, "repo": mini(repo)},
                }
            )
    return found


def commit_known(api: Rest, repo: Repo, sha: str) -> bool:
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        return False
    network = [repo] + [r for r in api.fake.repos.values() if r.fork_of == repo.full_name]
    return any(r.git.resolve(sha) == sha for r in network)


def render_check(api: Rest, repo: Repo, ident: int, state: Json) -> Json:
    fake = api.fake
    meta = fake.check_meta[ident]
    data = fake.shapes.check_run(
        repo.full_name,
        ident,
        name=state["name"],
        head_sha=state["head_sha"],
        status=state["status"],
        conclusion=state["conclusion"],
        started_at=state["started_at"],
        completed_at=state["completed_at"],
        external_id=state["external_id"],
        details_url=state["details_url"],
        output=state["output"] or {},
        annotations=len(meta.annotations),
        app=fake.app_json(state.get("app")),
        suite_id=state["suite_id"],
        pulls=check_pulls(api, repo, state["head_sha"]),
    )
    if state.get("html_url"):  # GitHub Actions: the job's page
        data["html_url"] = state["html_url"]
    return data


def snapshot(api: Rest, ident: int, event: str, state: Json) -> None:
    meta = api.fake.check_meta[ident]
    meta.history.append(
        {
            "event": event,
            "time": time.time(),
            **{
                k: json.loads(json.dumps(state[k]))
                for k in (
                    "name",
                    "status",
                    "conclusion",
                    "output",
                    "started_at",
                    "completed_at",
                    "details_url",
                    "external_id",
                    "actions",
                )
            },
            "annotations": len(meta.annotations),
        }
    )


@route("POST", f"{REPO}/check-runs", "repo", ("checks", "write"))
def create_check_run(api: Rest, req: Req) -> Result:
    from .github import CheckMeta

    repo = api.repo(req)
    head_sha = get(req.body, "head_sha", str, required=True)
    fields = validate_check(api, req, None)
    if not commit_known(api, repo, head_sha):
        raise ApiError(422, f"No commit found for SHA: {head_sha}")
    fake = api.fake
    ident = fake.next_id()
    now = iso()
    status = fields.get("status", "queued")
    state: Json = {
        "name": fields["name"],
        "head_sha": head_sha,
        "status": status,
        "conclusion": fields.get("conclusion"),
        "started_at": fields.get("started_at") or now,
        "completed_at": fields.get("completed_at") or (now if status == "completed" else None),
        "external_id": fields.get("external_id"),
        "details_url": fields.get("details_url"),
        "output": fields.get("output"),
        "actions": fields.get("actions", []),
        "suite_id": suite_id(api, repo, head_sha),
        "app": None,  # the fake's own App (github_checks.py adds other Apps' runs)
    }
    fake.check_meta[ident] = CheckMeta(
        repo=repo.full_name, annotations=list(fields.get("annotations", []))
    )
    fake.check_state[ident] = state
    snapshot(api, ident, "created", state)
    fake.check_runs[ident] = render_check(api, repo, ident, state)
    return ok(fake.check_runs[ident], 201, {"location": fake.check_runs[ident]["url"]})


def suite_id(api: Rest, repo: Repo, sha: str) -> int:
    """The App's check suite on `sha` (made with its first check run), as on GitHub."""
    from .github_checks import suite_for

    return suite_for(api.fake, repo, sha, None).id


def check_of(api: Rest, req: Req) -> tuple[int, Json]:
    ident = int(req.params[2])
    meta = api.fake.check_meta.get(ident)
    if meta is None or meta.repo != api.repo(req).full_name:
        raise not_found()
    return ident, api.fake.check_state[ident]


@route("GET", rf"{REPO}/check-runs/(\d+)", "repo", ("checks", "read"))
def get_check_run(api: Rest, req: Req) -> Result:
    ident, state = check_of(api, req)
    api.fake.check_runs[ident] = render_check(api, api.repo(req), ident, state)
    return ok(api.fake.check_runs[ident])


@route("PATCH", rf"{REPO}/check-runs/(\d+)", "repo", ("checks", "write"))
def update_check_run(api: Rest, req: Req) -> Result:
    ident, state = check_of(api, req)
    if state.get("app") is not None:
        raise forbidden()  # an App updates only its own check runs
    fields = validate_check(api, req, state)
    meta = api.fake.check_meta[ident]
    meta.annotations.extend(fields.pop("annotations", []))
    if fields.get("status") in ("queued", "in_progress") and "conclusion" not in fields:
        state["conclusion"] = None
        state["completed_at"] = None
    state.update(fields)
    if state["status"] == "completed" and not state["completed_at"]:
        state["completed_at"] = iso()
    snapshot(api, ident, "updated", state)
    api.fake.check_suites[state["suite_id"]].updated_at = iso()
    api.fake.check_runs[ident] = render_check(api, api.repo(req), ident, state)
    return ok(api.fake.check_runs[ident])


def commit_for_ref(api: Rest, repo: Repo, ref: str) -> str:
    """A commit sha (of the repository's network) or a branch / tag name → the sha."""
    sha = ref if commit_known(api, repo, ref) else repo.git.resolve_ref_name(ref)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    return sha


@route("GET", f"{REPO}/commits/(.+)/check-runs", "repo", ("checks", "read"))
def list_check_runs(api: Rest, req: Req) -> Result:
    repo = api.repo(req)
    sha = commit_for_ref(api, repo, req.params[2])
    app_id = req.query.get("app_id")
    if app_id is not None and not app_id.isdigit():
        raise invalid_request(f"For 'properties/app_id', {json.dumps(app_id)} is not an integer.")
    name = req.query.get("check_name")
    status = req.query.get("status")
    if status is not None and status not in CHECK_STATUSES + ACTIONS_ONLY_STATUSES:
        raise invalid_request(f"For 'properties/status', {json.dumps(status)} is not valid.")
    latest = req.query.get("filter", "latest") == "latest"
    fake = api.fake
    runs: list[Json] = []
    for ident in sorted(fake.check_state, reverse=True):
        state = fake.check_state[ident]
        if fake.check_meta[ident].repo != repo.full_name or state["head_sha"] != sha:
            continue
        if name is not None and state["name"] != name:
            continue
        if status is not None and state["status"] != status:
            continue
        run = render_check(api, repo, ident, state)
        if app_id is not None and run["app"]["id"] != int(app_id):
            continue
        mine = (run["name"], run["app"]["id"])
        if latest and any((r["name"], r["app"]["id"]) == mine for r in runs):
            continue
        fake.check_runs[ident] = run
        runs.append(run)
    page, headers = api.paginate(req, runs)
    return ok({"total_count": len(runs), "check_runs": page}, headers=headers)


# --- pull requests ------------------------------------------------------------------


def pull_of(api: Rest, req: Req, number: str) -> Pull:
    pull = api.fake.pull_record(api.repo(req).full_name, int(number))
    if pull is None:
        raise not_found()
    return pull


def head_repo_for(api: Rest, repo: Repo, owner: str) -> Repo | None:
    if owner.lower() == repo.owner.lower():
        return repo
    for r in api.fake.repos.values():
        if r.owner.lower() == owner.lower() and r.fork_of == repo.full_name:
            return r
    return None


@route("GET", f"{REPO}/pulls", "repo", ("pull_requests", "read"))
def list_pulls(api: Rest, req: Req) -> Result:
    repo = api.repo(req)
    state = req.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise invalid_request(
            f"For 'properties/state', {json.dumps(state)} is not one of open, closed, all."
        )
    head = req.query.get("head")
    base = req.query.get("base")
    pulls = []
    for p in sorted(api.fake.pull_records.values(), key=lambda p: p.number, reverse=True):
        if p.repo != repo.full_name or (state != "all" and p.state != state):
            continue
        if head and ":" in head:
            owner, _, ref = head.partition(":")
            if p.head_ref != ref or api.fake.repo(p.head_repo).owner.lower() != owner.lower():
                continue
        if base and p.base_ref != base:
            continue
        pulls.append(p)
    page, headers = api.paginate(req, pulls)
    return ok([render_pull(api.fake, p, simple=True) for p in page], headers=headers)


@route("POST", f"{REPO}/pulls", "repo", ("pull_requests", "write"))
def create_pull(api: Rest, req: Req) -> Result:
    repo = api.repo(req)
    title = get(req.body, "title", str)
    head = get(req.body, "head", str, required=True)
    base = get(req.body, "base", str, required=True)
    body = get(req.body, "body", str, nullable=True)
    draft = get(req.body, "draft", bool) or False
    modify = get(req.body, "maintainer_can_modify", bool)
    if title is None:
        raise invalid("PullRequest", "title", "missing_field")
    owner, _, ref = head.rpartition(":")
    source = head_repo_for(api, repo, owner or repo.owner)
    base_sha = repo.git.branch_sha(base)
    if base_sha is None:
        raise invalid("PullRequest", "base", "invalid")
    head_sha = source.git.branch_sha(ref) if source else None
    if source is None or head_sha is None:
        raise invalid("PullRequest", "head", "invalid")
    for p in api.fake.pull_records.values():
        if (p.repo, p.head_repo, p.head_ref, p.base_ref, p.state) == (
            repo.full_name,
            source.full_name,
            ref,
            base,
            "open",
        ):
            raise invalid(
                "PullRequest",
                None,
                "custom",
                f"A pull request already exists for {source.owner}:{ref}.",
            )
    if source.git.count_commits(base_sha, head_sha) == 0:
        raise invalid("PullRequest", None, "custom", f"No commits between {base} and {head}")
    pull = api.fake.create_pull(
        repo,
        source,
        None,
        title=title,
        body=body,
        user=api.fake.bot_login,
        head=ref,
        base=base,
        sha=head_sha,
        draft=draft,
        maintainer_can_modify=bool(modify) if source is not repo else False,
    )
    data = api.fake.pull_json((repo.full_name, pull.number))
    return ok(data, 201, {"location": data["url"]})


@route("GET", rf"{REPO}/pulls/(\d+)", "repo", ("pull_requests", "read"))
def get_pull(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    return ok(api.fake.pull_json((pull.repo, pull.number)))


@route("PATCH", rf"{REPO}/pulls/(\d+)", "repo", ("pull_requests", "write"))
def update_pull(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    issue = api.fake.issues[(pull.repo, pull.number)]
    title = get(req.body, "title", str)
    body = get(req.body, "body", str, nullable=True)
    state = get(req.body, "state", str)
    base = get(req.body, "base", str)
    modify = get(req.body, "maintainer_can_modify", bool)
    if state is not None and state not in ("open", "closed"):
        raise invalid_request(
            f"For 'properties/state', {json.dumps(state)} is not one of open, closed."
        )
    if base is not None and api.repo(req).git.branch_sha(base) is None:
        raise invalid("PullRequest", "base", "invalid")
    now = iso()
    if title is not None:
        pull.title = issue["title"] = title
    if "body" in req.body:
        pull.body = issue["body"] = body
    if state is not None and state != pull.state:
        pull.state = issue["state"] = state
        pull.closed_at = issue["closed_at"] = now if state == "closed" else None
    if base is not None:
        pull.base_ref = base
    if modify is not None:
        pull.maintainer_can_modify = modify
    pull.updated_at = issue["updated_at"] = now
    return ok(api.fake.pull_json((pull.repo, pull.number)))


@route("POST", rf"{REPO}/pulls/(\d+)/requested_reviewers", "repo", ("pull_requests", "write"))
def request_reviewers(api: Rest, req: Req) -> Result:
    fake = api.fake
    repo = api.repo(req)
    pull = pull_of(api, req, req.params[2])
    reviewers = get(req.body, "reviewers", list) or []
    teams = get(req.body, "team_reviewers", list) or []
    if not reviewers and not teams:
        raise invalid_request('"reviewers" wasn\'t supplied.')
    for login in reviewers:
        if not isinstance(login, str):
            raise invalid_request(f"For 'items', {json.dumps(login)} is not a string.")
        if login.lower() == pull.user.lower():
            raise invalid(
                "PullRequest",
                None,
                "custom",
                "Review cannot be requested from pull request author.",
            )
        user = fake.user(login)
        if (
            user is None
            or fake.role(repo, login) == "none"
            or (login.lower() not in repo.roles and login.lower() != repo.owner.lower())
        ):
            raise invalid(
                "PullRequest",
                None,
                "custom",
                "Reviews may only be requested from collaborators. One or more of the"
                " users or teams you specified is not a collaborator of the"
                f" {repo.full_name} repository.",
            )
    for login in reviewers:
        canonical = fake.ensure_user(login).login
        if canonical not in pull.reviewers:
            pull.reviewers.append(canonical)
    return ok(render_pull(fake, pull, simple=True), 201)


def review_comment_of(api: Rest, req: Req, ident: str) -> Json:
    where = api.fake.review_where.get(int(ident))
    if where is None or where[0] != api.repo(req).full_name:
        raise not_found()
    return api.fake.review_comments[int(ident)]


@route("GET", rf"{REPO}/pulls/(\d+)/comments", "repo", ("pull_requests", "read"))
def list_review_comments(api: Rest, req: Req) -> Result:
    pull = pull_of(api, req, req.params[2])
    fake = api.fake
    with fake._lock:
        found = [
            c for i, c in sorted(fake.review_comments.items())
            if fake.review_where[i] == (pull.repo, pull.number)
        ]  # fmt: skip
    page, headers = api.paginate(req, updated_since(req, found))
    return ok(page, headers=headers)


@route("GET", rf"{REPO}/pulls/comments/(\d+)", "repo", ("pull_requests", "read"))
def get_review_comment(api: Rest, req: Req) -> Result:
    return ok(review_comment_of(api, req, req.params[2]))


@route("PATCH", rf"{REPO}/pulls/comments/(\d+)", "repo", ("pull_requests", "write"))
def update_review_comment(api: Rest, req: Req) -> Result:
    comment = review_comment_of(api, req, req.params[2])
    if comment["user"]["login"].lower() != api.fake.bot_login.lower():
        raise forbidden()  # an App may edit only what it wrote
    comment["body"] = get(req.body, "body", str, required=True)
    comment["updated_at"] = iso()
    return ok(comment)


@route("POST", rf"{REPO}/pulls/(\d+)/comments/(\d+)/replies", "repo", ("pull_requests", "write"))
def reply_review_comment(api: Rest, req: Req) -> Result:
    fake = api.fake
    pull = pull_of(api, req, req.params[2])
    parent = review_comment_of(api, req, req.params[3])
    if fake.review_where[parent["id"]] != (pull.repo, pull.number):
        raise not_found()
    text = get(req.body, "body", str, required=True)
    root = parent.get("in_reply_to_id") or parent["id"]
    ident = fake.add_review_comment(
        pull.repo,
        pull.number,
        user=fake.bot_login,
        body=text,
        path=parent["path"],
        line=parent.get("line") or 1,
        in_reply_to=root,
    )
    data = fake.review_comments[ident]
    return ok(data, 201, {"location": data["url"]})
