"""A strict fake GitHub: REST (GitHub Enterprise Server layout) and git smart HTTP on loopback.

    with FakeGitHub(tmp_path) as gh:
        gh.add_repo("octo/hello", {"README.md": "hi\\n"})
        gh.add_issue("octo/hello", 1, title="Fix it", body="...", user="alice")
        ...point the bot at gh.api_url with gh.private_key_pem and gh.app_id...
        assert gh.issue_comments("octo/hello", 1)[-1]["user"]["login"] == gh.bot_login

The REST routes, their auth and permission checks live in `github_rest.py`,
the HTTP server (fault injection, rate-limit headers, git http-backend) in
`github_http.py`, the JSON shapes in `github_shapes.py` and the bare
repositories in `github_git.py`. All state is guarded by one lock: the
server answers from its own thread.
"""

from __future__ import annotations

import copy
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .github_git import BareRepo
from .github_shapes import (
    App,
    Installation,
    Json,
    Pull,
    Repo,
    Shapes,
    Suite,
    User,
    iso,
    payload_example,
)
from .github_web import ManifestFlow
from .server import ServerThread

__all__ = ["DEFAULT_PERMISSIONS", "DROP", "FakeGitHub", "Injection"]

DEFAULT_PERMISSIONS: dict[str, str] = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
APP_EVENTS = ["check_run", "issue_comment", "issues", "pull_request", "pull_request_review_comment"]
ROLES = ("admin", "maintain", "write", "triage", "read", "none")
# What a reply shares with the first comment of its thread.
THREAD_KEYS = (
    "path", "line", "original_line", "side", "start_line", "original_start_line",
    "start_side", "diff_hunk", "position", "original_position", "commit_id",
    "original_commit_id", "subject_type",
)  # fmt: skip

# Ids are unique in the process: githubkit caches JWTs and installation tokens
# process-wide by app id / installation id, so two fakes must not share them.
_IDS = itertools.count(1001)
_KEY_LOCK = threading.Lock()
_KEY: list[tuple[bytes, Any]] = []


def _app_key() -> tuple[bytes, Any]:
    """One RSA-2048 App key per process (PKCS8 PEM, public key).

    githubkit keeps a signed JWT for 8 minutes per issuer in a process-wide
    cache; a fresh key per fake would make its cached JWTs fail on the next fake.
    """
    with _KEY_LOCK:
        if not _KEY:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _KEY.append((pem, key.public_key()))
        return _KEY[0]


@dataclass
class Injection:
    """One planned fault: the next `times` requests matching answer this instead."""

    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    delay: float
    after: bool = False  # the request is carried out first; only its answer is replaced


DROP = -1  # an injected status: the answer breaks off (the connection drops mid-answer)


@dataclass
class CheckMeta:
    repo: str
    annotations: list[Json] = field(default_factory=list)
    history: list[Json] = field(default_factory=list)


class FakeGitHub:
    """The fake server and its state. See the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        app_id: int = 4242,
        app_slug: str = "autocode-test",
        token_ttl: float = 3600.0,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.app_id = app_id
        self.app_slug = app_slug
        self.client_id = f"Iv1.{secrets.token_hex(8)}"
        self.token_ttl = token_ttl
        self.private_key_pem, self.public_key = _app_key()
        self.bot_login = f"{app_slug}[bot]"
        self.allow_anonymous_git = False  # GitHub lets anyone clone a public repo; we don't
        self._lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.installations: dict[int, Installation] = {}
        self.repos: dict[str, Repo] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}
        self.issues: dict[tuple[str, int], Json] = {}
        self.pull_records: dict[tuple[str, int], Pull] = {}
        self._pull_json: dict[tuple[str, int], Json] = {}
        self.comments: dict[int, Json] = {}
        self.comment_where: dict[int, tuple[str, int]] = {}
        self.review_comments: dict[int, Json] = {}
        self.review_where: dict[int, tuple[str, int]] = {}
        self.check_runs: dict[int, Json] = {}
        self.check_meta: dict[int, CheckMeta] = {}
        self.check_state: dict[int, Json] = {}
        self.reactions: list[Json] = []
        self.tokens: list[Json] = []
        self.token_index: dict[str, Json] = {}
        self.requests: list[Json] = []
        self.injections: list[Injection] = []
        self.rate_used: dict[str, tuple[float, int]] = {}
        now = iso()
        owner = self.add_user("autocode-maintainers", type="Organization")
        del owner
        self.bot_user_id = self.add_user(self.bot_login, type="Bot")
        self.app = App(
            id=app_id,
            slug=app_slug,
            client_id=self.client_id,
            name=f"Auto-Code ({app_slug})",
            owner="autocode-maintainers",
            permissions=dict(DEFAULT_PERMISSIONS),
            events=list(APP_EVENTS),
            created_at=now,
        )
        self.manifests = ManifestFlow(self)  # the App manifest flow (github_web.py)
        from .github_http import build_app  # the server module imports this one

        self._server = ServerThread(build_app(self))
        self.url = self._server.url
        self.api_url = self.url + "/api/v3"
        self._init_checks(self._server.port)
        self.shapes = Shapes(self.url, self.api_url)
        self._started = False

    def _init_checks(self, port: int) -> None:
        """Check suites, other Apps, Actions job logs, the blob host, reviews (github_checks)."""
        # The blob host is another origin than the API (as GitHub's storage is): following
        # the 302, httpx drops the Authorization header, as it does between origins.
        self.blob_url = f"http://localhost:{port}"
        self.check_suites: dict[int, Suite] = {}
        self.other_apps: dict[str, App] = {}  # by slug: "github-actions", "circleci", ...
        self.job_logs: dict[int, bytes] = {}  # by GitHub Actions job id (= check run id)
        self.blobs: dict[str, Json] = {}  # signed blob URLs handed out, by key
        self.blob_fetches: list[Json] = []  # every request to the blob host
        self.blob_ttl = 60.0  # seconds a signed blob URL is good for
        self.violations: list[Json] = []  # what a client did that GitHub would not take
        self.pull_reviews: dict[int, Json] = {}  # by review id
        self.pull_review_where: dict[int, tuple[str, int]] = {}  # review id → (repo, number)

    # --- lifecycle -------------------------------------------------------
    def start(self) -> FakeGitHub:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/{self.repo(full_name).full_name}.git"

    # --- lookups (callers hold the lock or accept a snapshot) -------------
    @staticmethod
    def next_id() -> int:
        return next(_IDS)

    def user(self, login: str) -> User | None:
        return self.users.get(login.lower())

    def ensure_user(self, login: str) -> User:
        found = self.user(login)
        if found is None:
            self.add_user(login)
            found = self.users[login.lower()]
        return found

    def repo(self, full_name: str) -> Repo:
        found = self.repos.get(full_name.lower())
        if found is None:
            raise KeyError(f"no repository {full_name!r} in the fake")
        return found

    def find_repo(self, full_name: str) -> Repo | None:
        return self.repos.get(full_name.lower())

    def role(self, repo: Repo, login: str) -> str:
        """admin | maintain | write | triage | read | none, as GitHub computes it."""
        explicit = repo.roles.get(login.lower())
        if explicit is not None:
            return explicit
        if login.lower() == repo.owner.lower():
            return "admin"
        return "none" if repo.private else "read"

    def association(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "OWNER"
        if repo.roles.get(login.lower(), "none") != "none":
            return "COLLABORATOR"
        return "NONE"

    def user_json(self, login: str) -> Json:
        return self.shapes.user(self.ensure_user(login), self.app)

    def app_json(self, slug: str | None = None) -> Json:
        """The fake's own App (slug None), or another App: "github-actions", "circleci"..."""
        from .github_checks import app_key, other_app

        key = app_key(self, slug)
        app = self.app if key is None else other_app(self, key)
        return self.shapes.integration(app, self.ensure_user(app.owner))

    # --- setup ------------------------------------------------------------
    def adopt_app(self, app: App, private_key_pem: bytes, public_key: Any) -> None:
        """Play `app` from now on (the manifest flow registered it).

        JWTs must then be signed with its key and name its id or client id;
        installations and repositories stay as they are.
        """
        with self._lock:
            self.app = app
            self.app_id = app.id
            self.app_slug = app.slug
            self.client_id = app.client_id
            self.private_key_pem = private_key_pem
            self.public_key = public_key
            self.bot_login = f"{app.slug}[bot]"
            self.bot_user_id = self.add_user(self.bot_login, type="Bot")

    def add_user(self, login: str, *, type: str = "User") -> int:
        """Add (or retype) an account: User, Organization or Bot. Returns its id."""
        if type not in ("User", "Organization", "Bot"):
            raise ValueError(f"unknown account type {type!r}")
        with self._lock:
            found = self.users.get(login.lower())
            if found is not None:
                found.type = type
                return found.id
            user = User(id=self.next_id(), login=login, type=type, created_at=iso())
            self.users[login.lower()] = user
            return user.id

    def add_installation(self, account: str, *, permissions: dict[str, str] | None = None) -> int:
        """Install the App on `account`; returns the installation id."""
        with self._lock:
            self.ensure_user(account)
            inst = Installation(
                id=self.next_id(),
                account=account,
                permissions=dict(permissions or DEFAULT_PERMISSIONS),
                created_at=iso(),
            )
            inst.permissions.setdefault("metadata", "read")
            self.installations[inst.id] = inst
            return inst.id

    def installation_for(self, account: str) -> Installation | None:
        for inst in self.installations.values():
            if inst.account.lower() == account.lower():
                return inst
        return None

    def add_repo(
        self,
        full_name: str,
        files: dict[str, str | bytes],
        *,
        default_branch: str = "main",
        installation_id: int | None = None,
        private: bool = False,
        fork_of: str | None = None,
    ) -> None:
        """A bare repo with one commit holding `files`.

        installation_id None: the owner's installation (created if missing);
        0: the App is not installed on this repository. A fork starts with
        the parent's branches (objects shared through git alternates); its
        `files`, if any, are committed on top of the default branch.
        """
        owner, name = full_name.split("/", 1)
        with self._lock:
            if full_name.lower() in self.repos:
                raise ValueError(f"repository {full_name} exists")
            self.ensure_user(owner)
            if installation_id is None:
                inst = self.installation_for(owner)
                installation_id = inst.id if inst else self.add_installation(owner)
            elif installation_id and installation_id not in self.installations:
                raise ValueError(f"no installation {installation_id}")
            path = self.root / owner / f"{name}.git"
            parent = self.repo(fork_of) if fork_of else None
            git = BareRepo.create(
                path, default_branch, alternate=parent.git.path if parent else None
            )
            blobs = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
            if parent is not None:
                for branch, sha in parent.git.branches().items():
                    git.set_ref(f"refs/heads/{branch}", sha)
                if blobs:
                    tip = git.branch_sha(default_branch)
                    git.commit(default_branch, dict(blobs), "Fork changes", parent=tip)
            else:
                git.commit(default_branch, dict(blobs), "Initial commit")
            self.repos[full_name.lower()] = Repo(
                id=self.next_id(),
                owner=owner,
                name=name,
                default_branch=default_branch,
                private=private,
                fork_of=parent.full_name if parent else None,
                installation_id=installation_id,
                git=git,
                created_at=iso(),
            )

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        if permission not in ROLES:
            raise ValueError(f"permission must be one of {ROLES}")
        with self._lock:
            self.ensure_user(login)
            self.repo(full_name).roles[login.lower()] = permission

    def add_team_member(self, org: str, team: str, login: str, *, role: str = "member") -> None:
        with self._lock:
            if self.user(org) is None:
                self.add_user(org, type="Organization")
            self.ensure_user(login)
            self.teams.setdefault((org.lower(), team.lower()), {})[login.lower()] = role

    def protect_branch(self, full_name: str, branch: str) -> None:
        """Pushes that update `branch` are refused (GH006), as branch protection does."""
        with self._lock:
            repo = self.repo(full_name)
            repo.protected.add(branch)
            repo.git.set_protected({f"refs/heads/{b}" for b in repo.protected})

    def label(self, repo: Repo, name: str) -> Json:
        found = repo.labels.get(name.lower())
        if found is None:
            found = self.shapes.label(repo.full_name, name, self.next_id())
            repo.labels[name.lower()] = found
        return copy.deepcopy(found)

    def _claim_number(self, repo: Repo, number: int | None) -> int:
        if number is None:
            number = repo.next_number
        if (repo.full_name, number) in self.issues:
            raise ValueError(f"{repo.full_name}#{number} exists")
        repo.next_number = max(repo.next_number, number + 1)
        return number

    def add_issue(
        self,
        full_name: str,
        number: int,
        *,
        title: str,
        body: str | None,
        user: str,
        labels: list[str] | tuple[str, ...] = (),
        comments: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    ) -> None:
        """An open issue; `comments` are (author login, body) pairs, oldest first."""
        with self._lock:
            repo = self.repo(full_name)
            number = self._claim_number(repo, number)
            self.issues[(repo.full_name, number)] = self.shapes.issue(
                repo.full_name,
                number,
                self.next_id(),
                title=title,
                body=body,
                user=self.user_json(user),
                labels=[self.label(repo, n) for n in labels],
                created_at=iso(),
                association=self.association(repo, user),
                pull=False,
            )
            for author, text in comments:
                self.add_comment(full_name, number, author, text)

    def add_comment(self, full_name: str, number: int, user: str, body: str) -> int:
        """An issue (or PR conversation) comment by `user`; returns its id."""
        with self._lock:
            repo = self.repo(full_name)
            issue = self.issues[(repo.full_name, number)]
            ident = self.next_id()
            app = self.app_json() if user.lower() == self.bot_login.lower() else None
            self.comments[ident] = self.shapes.issue_comment(
                repo.full_name,
                number,
                ident,
                body=body,
                user=self.user_json(user),
                association=self.association(repo, user),
                created_at=iso(),
                app=app,
                pull="pull_request" in issue,
            )
            self.comment_where[ident] = (repo.full_name, number)
            issue["comments"] += 1
            issue["updated_at"] = iso()
            return ident

    def add_pull(
        self,
        full_name: str,
        number: int,
        *,
        title: str,
        body: str | None,
        user: str,
        head: str,
        base: str = "main",
        head_repo: str | None = None,
    ) -> None:
        """An open PR from `head` (a branch of head_repo, default this repo) into `base`."""
        with self._lock:
            repo = self.repo(full_name)
            source = self.repo(head_repo) if head_repo else repo
            sha = source.git.branch_sha(head)
            if sha is None:
                raise ValueError(f"branch {head} does not exist in {source.full_name}")
            if repo.git.branch_sha(base) is None:
                raise ValueError(f"branch {base} does not exist in {repo.full_name}")
            self.create_pull(
                repo,
                source,
                number,
                title=title,
                body=body,
                user=user,
                head=head,
                base=base,
                sha=sha,
                draft=False,
            )

    def create_pull(
        self,
        repo: Repo,
        source: Repo,
        number: int | None,
        *,
        title: str,
        body: str | None,
        user: str,
        head: str,
        base: str,
        sha: str,
        draft: bool,
        maintainer_can_modify: bool = False,
    ) -> Pull:
        number = self._claim_number(repo, number)
        now = iso()
        pull = Pull(
            repo=repo.full_name,
            number=number,
            id=self.next_id(),
            title=title,
            body=body,
            user=user,
            head_repo=source.full_name,
            head_ref=head,
            base_ref=base,
            head_sha=sha,
            draft=draft,
            created_at=now,
            updated_at=now,
            maintainer_can_modify=maintainer_can_modify,
        )
        self.pull_records[(repo.full_name, number)] = pull
        self.issues[(repo.full_name, number)] = self.shapes.issue(
            repo.full_name,
            number,
            self.next_id(),
            title=title,
            body=body,
            user=self.user_json(user),
            labels=[],
            created_at=now,
            association=self.association(repo, user),
            pull=True,
            draft=draft,
        )
        return pull

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        *,
        user: str,
        body: str,
        path: str = "README.md",
        line: int = 1,
        in_reply_to: int | None = None,
        review_id: int | None = None,
    ) -> int:
        """A PR review (diff) comment; returns its id.

        It belongs to review `review_id`, else to a review of its own (state
        COMMENTED, empty body), as a single comment or a reply does on GitHub. A
        reply (`in_reply_to` the thread's first comment) takes that comment's
        path, line, side, diff_hunk and commits.
        """
        from .github_checks import new_review

        with self._lock:
            repo = self.repo(full_name)
            pull = self.pull_records[(repo.full_name, number)]
            if review_id is None:
                review_id = new_review(self, repo, pull, user, state="COMMENTED", body="")
            ident = self.next_id()
            self.review_comments[ident] = self.shapes.review_comment(
                repo.full_name,
                number,
                ident,
                body=body,
                user=self.user_json(user),
                association=self.association(repo, user),
                created_at=iso(),
                path=path,
                line=line,
                commit=self.pull_head_sha(pull),
                in_reply_to=in_reply_to,
            )
            comment = self.review_comments[ident]
            comment["pull_request_review_id"] = review_id
            root = self.review_comments.get(in_reply_to) if in_reply_to is not None else None
            if root is not None:
                comment.update({k: root[k] for k in THREAD_KEYS if k in root})
            self.review_where[ident] = (repo.full_name, number)
            return ident

    def grant(self, account: str, **permissions: str) -> None:
        """The App asks for more (e.g. actions="read") and `account`'s installation accepts.

        Installations start with DEFAULT_PERMISSIONS (no `actions`): a token asking
        for what the installation lacks is refused with 422, as on GitHub.
        """
        with self._lock:
            inst = self.installation_for(account)
            if inst is None:
                raise KeyError(f"the App is not installed on {account!r}")
            self.app.permissions.update(permissions)
            inst.permissions.update(permissions)

    # --- checks: suites of other Apps, their runs, job logs (github_checks.py) ---
    def add_check_suite(
        self,
        full_name: str,
        head_sha: str,
        *,
        app: str = "github-actions",
        status: str = "completed",
        runs: list[Json] | tuple[Json, ...] = (),
    ) -> int:
        """Another App's check suite on `head_sha` (a sha or a branch); returns its id.

        `runs`: dicts with name, conclusion, status (default `status`), output
        {title, summary, text}, annotations [{path, start_line, end_line,
        annotation_level, message, title?, raw_details?, start/end_column?}], log
        (str or bytes: the Actions job log), started_at, completed_at, details_url,
        external_id. A completed run needs a conclusion. The suite's status and
        conclusion follow its runs (no runs: queued). GitHub Actions makes a suite per
        workflow run, so each call with app="github-actions" adds a suite; another App
        (app="circleci", or the fake's own slug) has one per commit: runs are added to it.
        """
        from .github_checks import ACTIONS, add_run, app_key, new_suite, suite_for

        with self._lock:
            repo = self.repo(full_name)
            sha = self.resolve_commit(repo, head_sha)
            key = app_key(self, app)
            if key is not None:
                self.app_json(key)  # the App exists from now on
            suite = (new_suite if key == ACTIONS else suite_for)(self, repo, sha, key)
            for run in runs:
                add_run(self, suite, dict(run), status)
            return suite.id

    def add_check_run(self, full_name: str, suite_id: int, run: Json) -> int:
        """One more run (same keys as add_check_suite's) in another App's suite."""
        from .github_checks import add_run

        with self._lock:
            suite = self.check_suites[suite_id]
            if suite.repo != self.repo(full_name).full_name or suite.app is None:
                raise KeyError(f"no suite {suite_id} of another App in {full_name}")
            return add_run(self, suite, dict(run), str(run.get("status", "completed")))

    def complete_check_run(
        self, full_name: str, run_id: int, conclusion: str | None = "success", **changes: Any
    ) -> Json:
        """Another App's run changes: completed with `conclusion` (None: keep the status
        and pass status=...), plus output, annotations (added), log. Returns its JSON."""
        from .github_checks import change_run

        with self._lock:
            if self.check_meta[run_id].repo != self.repo(full_name).full_name:
                raise KeyError(f"no check run {run_id} in {full_name}")
            if conclusion is not None:
                changes.update(status="completed", conclusion=conclusion)
            return copy.deepcopy(change_run(self, run_id, changes))

    def resolve_commit(self, repo: Repo, ref: str) -> str:
        """A sha of the repository's network (forks too) or a branch / tag → the sha."""
        from .github_checks import holder

        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return holder(self, repo, ref).git.resolve(ref) or ref
        sha = repo.git.resolve_ref_name(ref)
        if sha is None:
            raise ValueError(f"no commit or branch {ref!r} in {repo.full_name}")
        return sha

    def add_review(
        self,
        full_name: str,
        number: int,
        user: str,
        *,
        state: str = "CHANGES_REQUESTED",
        body: str = "",
        comments: list[Json] | tuple[Json, ...] = (),
    ) -> int:
        """A submitted review of PR `number` by `user`; returns the review's id.

        state: APPROVED, CHANGES_REQUESTED or COMMENTED (or the events APPROVE,
        REQUEST_CHANGES, COMMENT). comments: [{path, line, body, side="RIGHT",
        start_line?, start_side?}] on lines of the PR's diff (base...head; side LEFT:
        the base's line numbers); each becomes a review comment whose diff_hunk and
        position are taken from that diff. A line outside it raises ValueError (GitHub
        answers 422). The reviewer gets a role in the repository only if set_permission
        gave them one (author_association follows).
        """
        from .github_checks import add_review

        with self._lock:
            given = [dict(c) for c in comments]
            return add_review(self, full_name, number, user, state, body, given)

    # --- git ----------------------------------------------------------------
    def commit_file(
        self,
        full_name: str,
        branch: str,
        path: str,
        content: str,
        message: str = "Update file",
        *,
        author: tuple[str, str] | None = None,
    ) -> str:
        """Commit one file on `branch` (created from the default branch if missing)."""
        with self._lock:
            repo = self.repo(full_name)
            parent = repo.git.branch_sha(branch) or repo.git.branch_sha(repo.default_branch)
            kwargs = {"author": author} if author else {}
            return repo.git.commit(
                branch, {path: content.encode()}, message, parent=parent, **kwargs
            )

    def branch_sha(self, full_name: str, branch: str) -> str | None:
        return self.repo(full_name).git.branch_sha(branch)

    def read_file(self, full_name: str, ref: str, path: str) -> str | None:
        git = self.repo(full_name).git
        sha = git.resolve_ref_name(ref)
        data = git.read(sha, path) if sha else None
        return data.decode() if data is not None else None

    def commit_log(self, full_name: str, ref: str) -> list[dict[str, Any]]:
        """Newest first: sha, parents, message, author_name/email, committer_name/email,
        and author/committer dicts with name, email, date."""
        git = self.repo(full_name).git
        sha = git.resolve_ref_name(ref)
        return git.log(sha) if sha else []

    def pull_head_sha(self, pull: Pull) -> str:
        """The live head sha: the branch tip while the branch exists."""
        live = self.repo(pull.head_repo).git.branch_sha(pull.head_ref)
        if live is not None and pull.state == "open":
            pull.head_sha = live
        return pull.head_sha

    # --- inspection ---------------------------------------------------------
    @property
    def pulls(self) -> dict[tuple[str, int], Json]:
        """Every PR as GET /pulls/{n} would answer now (head sha live)."""
        with self._lock:
            for key in self.pull_records:
                self.pull_json(key)
            return self._pull_json

    def pull_record(self, full_name: str, number: int) -> Pull | None:
        return self.pull_records.get((full_name, number))

    def pull_json(self, key: tuple[str, int]) -> Json:
        from .github_rest import render_pull  # rendering needs the REST helpers

        self._pull_json[key] = render_pull(self, self.pull_records[key])
        return self._pull_json[key]

    def issue_comments(self, full_name: str, number: int) -> list[Json]:
        with self._lock:
            name = self.repo(full_name).full_name
            return [
                c
                for i, c in sorted(self.comments.items())
                if self.comment_where[i] == (name, number)
            ]

    def check_run_history(self, check_run_id: int) -> list[Json]:
        """Snapshots after each create/update: status, conclusion, output, name, time."""
        with self._lock:
            return copy.deepcopy(self.check_meta[check_run_id].history)

    def find_check_runs(self, full_name: str, name: str | None = None) -> list[Json]:
        with self._lock:
            repo = self.repo(full_name).full_name
            return [
                run
                for i, run in sorted(self.check_runs.items())
                if self.check_meta[i].repo == repo and (name is None or run["name"] == name)
            ]

    def check_suite(self, suite_id: int) -> Json:
        """The suite as GET /check-suites/{id} answers now (status, conclusion derived)."""
        from .github_checks import render_suite
        from .github_rest import Rest

        with self._lock:
            return copy.deepcopy(render_suite(Rest(self), self.check_suites[suite_id]))

    def find_check_suites(
        self, full_name: str, head_sha: str | None = None, *, app: str | None = None
    ) -> list[Json]:
        """The repository's suites (on `head_sha`, of App slug `app`), oldest first."""
        with self._lock:
            repo = self.repo(full_name)
            sha = self.resolve_commit(repo, head_sha) if head_sha else None
            return [
                self.check_suite(s.id)
                for s in sorted(self.check_suites.values(), key=lambda s: s.id)
                if s.repo == repo.full_name
                and sha in (None, s.head_sha)
                and (app is None or (s.app or self.app_slug) == app)
            ]

    def suite_check_runs(self, suite_id: int, *, latest: bool = False) -> list[Json]:
        """The suite's check runs, oldest first (latest: only the newest of each name)."""
        from .github_checks import suite_run_ids
        from .github_rest import Rest, render_check

        with self._lock:
            suite = self.check_suites[suite_id]
            ids = sorted(suite_run_ids(self, suite, latest=latest))
            repo = self.repo(suite.repo)
            return [render_check(Rest(self), repo, i, self.check_state[i]) for i in ids]

    def check_annotations(self, check_run_id: int) -> list[Json]:
        """The annotations given for a check run (any App's), in order."""
        with self._lock:
            return copy.deepcopy(self.check_meta[check_run_id].annotations)

    def reviews(self, full_name: str, number: int) -> list[Json]:
        """PR `number`'s reviews, oldest first, as GET /pulls/{n}/reviews answers."""
        with self._lock:
            where = (self.repo(full_name).full_name, number)
            return [
                copy.deepcopy(r)
                for i, r in sorted(self.pull_reviews.items())
                if self.pull_review_where[i] == where
            ]

    def review_comments_of(self, review_id: int) -> list[Json]:
        with self._lock:
            return [
                copy.deepcopy(c)
                for _, c in sorted(self.review_comments.items())
                if c.get("pull_request_review_id") == review_id
            ]

    def expire_blobs(self) -> None:
        """Every signed blob URL handed out so far (job logs) expires now."""
        with self._lock:
            for blob in self.blobs.values():
                blob["expires_ts"] = time.time() - 1

    def expire_tokens(self, token: str | None = None) -> None:
        """Make one installation token (or all) expire now."""
        with self._lock:
            for record in self.tokens:
                if token is None or record["token"] == token:
                    record["expires_ts"] = time.time() - 1

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        delay: float = 0.0,
        after: bool = False,
    ) -> None:
        """The next `times` requests whose method matches (`*` for any) and whose path
        matches `path_regex` (re.search on the full path, e.g. r"/check-runs$" or
        r"\\.git/git-upload-pack") answer `status` with `headers` and `body` instead.

        Default bodies: 403/429 → GitHub's secondary rate limit message; others →
        {"message": <reason>}. Rate-limit headers are added unless given in `headers`
        (pass {"retry-after": "1"} or {"x-ratelimit-remaining": "0"} for githubkit to
        treat it as a rate limit). `delay` seconds pass before the answer; status 0
        means: after the delay, serve the request normally (a slow server). `after`:
        the request is carried out (a write is made) and only then answered with
        `status` — as when GitHub did the work but the answer was lost. Status `DROP`
        (-1): the answer starts and then the connection drops.
        """
        with self._lock:
            self.injections.append(
                Injection(
                    method.upper(),
                    re.compile(path_regex),
                    status,
                    times,
                    dict(headers or {}),
                    body,
                    delay,
                    after,
                )
            )

    # --- webhook payloads ---------------------------------------------------
    def payload(self, path: str, **rewrite: Any) -> Json:
        """A real payload from tests/data/github/payloads/<path>, pointed at this fake.

        Always: the repository object's URLs point at the fake (clone_url is
        `clone_url(repo)`). Keyword arguments:
          repo: "owner/name" of a fake repository: the repository object (ids, owner,
                private, default_branch, URLs) and the issue/PR URLs follow it; its
                installation id is set as `installation` unless given.
          installation: int id, or None to drop the `installation` key.
          sender: login of the sender (an unknown login is added as a User).
          number: the issue / PR number; an issue or PR of the fake with that number
                  fills the issue / pull_request object (title, body, user, labels,
                  state, head/base refs and shas).
          title, body, author (issue/PR author login), state: override those fields.
          label: the label name (`label.name`, also added to issue.labels).
          comment: a comment body: the comment is created in the fake (by sender) and
                   the payload's comment object describes it (issue or review comment).
          comment_id: an existing comment of the fake to describe instead.
          action: the `action`.
          fields: {"dotted.path": value} set last, e.g. {"issue.locked": True}.
        """
        from .github_payloads import build_payload

        with self._lock:
            return build_payload(self, payload_example(path), dict(rewrite))

    def check_suite_payload(
        self,
        full_name: str,
        suite_id: int,
        *,
        action: str = "completed",
        sender: str | None = None,
    ) -> Json:
        """A `check_suite` webhook (from check_suite/completed.json) for a suite of the fake.

        check_suite: the suite now (status and conclusion derived; pull_requests: the
        open PRs of this repository whose head is its head sha and branch, none for a
        fork's), with its App; installation: the repository's (the bot's); sender: the
        one who pushed the head commit, by default the fake's bot (the bot pushed it).
        action "completed" needs a completed suite.
        """
        from .github_payloads import check_suite_payload

        with self._lock:
            return check_suite_payload(self, full_name, suite_id, action, sender or self.bot_login)

    def review_payload(
        self, full_name: str, number: int, review_id: int, *, action: str = "submitted"
    ) -> Json:
        """A `pull_request_review` webhook (from pull_request_review/submitted.json):
        the review as webhooks carry it (state in lower case, e.g. "changes_requested";
        an empty body null), the PR now, the reviewer as sender."""
        from .github_payloads import review_payload

        with self._lock:
            return review_payload(self, full_name, number, review_id, action)
