"""The fake GitHub's records, and the JSON shapes GitHub answers with.

Each shape starts from a real example in ``tests/data/github/`` (REST examples
and webhook payloads) with the URLs and fields substituted, so the answers
keep GitHub's keys and githubkit's models parse them.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..paths import PAYLOADS, REST_EXAMPLES
from .github_git import BareRepo

Json = dict[str, Any]

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


@cache
def _load(path: Path) -> str:
    return path.read_text()


def rest_example(name: str) -> Json:
    data: Json = json.loads(_load(REST_EXAMPLES / name))
    return data


def payload_example(name: str) -> Json:
    data: Json = json.loads(_load(PAYLOADS / name))
    return data


def iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


def swap(obj: Any, pairs: list[tuple[str, str]]) -> Any:
    """`obj` with every string's substrings replaced, pair by pair (deep)."""
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, dict):
        return {k: swap(v, pairs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [swap(v, pairs) for v in obj]
    return obj


# --- records -------------------------------------------------------------


@dataclass
class User:
    id: int
    login: str
    type: str  # User | Organization | Bot
    created_at: str


@dataclass
class App:
    id: int
    slug: str
    client_id: str
    name: str
    owner: str
    permissions: dict[str, str]
    events: list[str]
    created_at: str
    description: str | None = "Auto-Code bot (fake GitHub)"
    external_url: str = ""  # the App's homepage; "" means the fake's web root


@dataclass
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    created_at: str
    selection: str = "all"  # all | selected
    repositories: set[str] = field(default_factory=set)  # lower-case full names


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    fork_of: str | None
    installation_id: int
    git: BareRepo
    created_at: str
    next_number: int = 1
    roles: dict[str, str] = field(default_factory=dict)  # lower login -> role
    labels: dict[str, Json] = field(default_factory=dict)  # lower name -> Label
    protected: set[str] = field(default_factory=set)  # branch names

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Pull:
    repo: str  # base repository full name
    number: int
    id: int
    title: str
    body: str | None
    user: str
    head_repo: str
    head_ref: str
    base_ref: str
    head_sha: str
    draft: bool
    created_at: str
    updated_at: str
    state: str = "open"
    closed_at: str | None = None
    maintainer_can_modify: bool = False
    reviewers: list[str] = field(default_factory=list)
    labels: list[Json] = field(default_factory=list)


@dataclass
class Suite:
    """A check suite: one App's check runs on one head commit (github_checks.py)."""

    id: int
    repo: str  # full name
    head_sha: str
    head_branch: str | None  # None: no branch of this repository points at head_sha
    before: str | None  # the head commit's first parent
    app: str | None  # another App's slug; None: the fake's own App (the bot)
    created_at: str
    updated_at: str
    workflow_run: int | None = None  # GitHub Actions: the id of the suite's workflow run


# --- shapes --------------------------------------------------------------


class Shapes:
    """Builds GitHub's JSON for the records, with URLs on the fake's host."""

    def __init__(self, web: str, api: str) -> None:
        self.web = web
        self.api = api
        self.host = urlsplit(web).netloc

    # users
    def user(self, u: User, app: App | None = None) -> Json:
        tpl = rest_example("reaction.json")["user"]
        avatar = f"{self.web}/avatars/u/{u.id}?v=4"
        data: Json = swap(
            tpl,
            [
                ("https://github.com/images/error/octocat_happy.gif", avatar),
                ("https://api.github.com/users/octocat", f"{self.api}/users/{u.login}"),
                ("https://github.com/octocat", f"{self.web}/{u.login}"),
            ],
        )
        data.update(
            login=u.login, id=u.id, node_id=node_id(u.type, u.id), type=u.type, site_admin=False
        )
        if u.type == "Bot" and app is not None:
            data["html_url"] = f"{self.web}/apps/{app.slug}"
        if u.type == "Organization":
            data["url"] = f"{self.api}/orgs/{u.login}"
        data["user_view_type"] = "public"
        return data

    def public_user(self, u: User, app: App | None = None) -> Json:
        data = self.user(u, app)
        data.update(
            name=None,
            company=None,
            blog="",
            location=None,
            email=None,
            hireable=None,
            bio=None,
            twitter_username=None,
            public_repos=0,
            public_gists=0,
            followers=0,
            following=0,
            created_at=u.created_at,
            updated_at=u.created_at,
        )
        return data

    def collaborator_permission(self, u: User, role: str) -> Json:
        permission = {"maintain": "write", "triage": "read"}.get(role, role)
        data = copy.deepcopy(
            rest_example(
                "repository-collaborator-permission-response-if-user-has-admin-permissions.json"
            )
        )
        levels = ["read", "triage", "write", "maintain", "admin"]
        rank = levels.index(role) if role in levels else -1
        user = self.user(u)
        user["role_name"] = role
        user["permissions"] = {
            "pull": rank >= 0,
            "triage": rank >= 1,
            "push": rank >= 2,
            "maintain": rank >= 3,
            "admin": rank >= 4,
        }
        data.update(permission=permission, role_name=role, user=user)
        return data

    # apps
    def integration(self, app: App, owner: User) -> Json:
        data: Json = copy.deepcopy(
            rest_example("check-run-example-of-completed-conclusion.json")["app"]
        )
        data.update(
            id=app.id,
            slug=app.slug,
            client_id=app.client_id,
            node_id=node_id("Integration", app.id),
            owner=self.user(owner),
            name=app.name,
            description=app.description,
            external_url=app.external_url or self.web,
            html_url=f"{self.web}/apps/{app.slug}",
            created_at=app.created_at,
            updated_at=app.created_at,
            permissions=dict(app.permissions),
            events=list(app.events),
            installations_count=1,
        )
        return data

    def installation(self, inst: Installation, account: User, app: App) -> Json:
        data: Json = copy.deepcopy(payload_example("installation/created.json")["installation"])
        settings = (
            f"{self.web}/organizations/{account.login}/settings/installations/{inst.id}"
            if account.type == "Organization"
            else f"{self.web}/settings/installations/{inst.id}"
        )
        data.update(
            id=inst.id,
            client_id=app.client_id,
            account=self.user(account),
            repository_selection=inst.selection,
            access_tokens_url=f"{self.api}/app/installations/{inst.id}/access_tokens",
            repositories_url=f"{self.api}/installation/repositories",
            html_url=settings,
            app_id=app.id,
            app_slug=app.slug,
            target_id=account.id,
            target_type=account.type,
            permissions=dict(inst.permissions),
            events=list(app.events),
            created_at=inst.created_at,
            updated_at=inst.created_at,
            single_file_name=None,
            has_multiple_single_files=False,
            single_file_paths=[],
            suspended_by=None,
            suspended_at=None,
        )
        return data

    # repositories
    def repository(self, repo: Repo, owner: User, permissions: dict[str, bool] | None) -> Json:
        tpl = copy.deepcopy(rest_example("installation-token.json")["repositories"][0])
        full = repo.full_name
        data: Json = swap(
            tpl,
            [
                ("https://api.github.com/repos/octocat/Hello-World", f"{self.api}/repos/{full}"),
                ("https://github.com/octocat/Hello-World", f"{self.web}/{full}"),
                ("git:github.com/octocat/Hello-World.git", f"git://{self.host}/{full}.git"),
                ("git@github.com:octocat/Hello-World.git", f"git@{self.host}:{full}.git"),
                ("https://svn.github.com/octocat/Hello-World", f"{self.web}/{full}"),
            ],
        )
        pushed = repo.created_at
        data.update(
            id=repo.id,
            node_id=node_id("Repository", repo.id),
            name=repo.name,
            full_name=full,
            owner=self.user(owner),
            private=repo.private,
            visibility="private" if repo.private else "public",
            description=None,
            fork=repo.fork_of is not None,
            clone_url=f"{self.web}/{full}.git",
            mirror_url=None,
            homepage=None,
            language=None,
            forks_count=0,
            stargazers_count=0,
            watchers_count=0,
            size=1,
            default_branch=repo.default_branch,
            open_issues_count=0,
            is_template=False,
            topics=[],
            has_issues=True,
            has_projects=True,
            has_wiki=True,
            has_pages=False,
            has_downloads=True,
            has_discussions=False,
            archived=False,
            disabled=False,
            pushed_at=pushed,
            created_at=repo.created_at,
            updated_at=repo.created_at,
            template_repository=None,
            license=None,
            forks=0,
            open_issues=0,
            watchers=0,
            allow_forking=True,
            web_commit_signoff_required=False,
        )
        data.pop("temp_clone_token", None)
        if permissions is None:
            data.pop("permissions", None)
        else:
            data["permissions"] = permissions
        return data

    def full_repository(
        self,
        repo: Repo,
        owner: User,
        permissions: dict[str, bool] | None,
        parent: Json | None,
        organization: Json | None,
    ) -> Json:
        data = self.repository(repo, owner, permissions)
        data.update(subscribers_count=0, network_count=0)
        if parent is not None:
            data["parent"] = parent
            data["source"] = parent
        if organization is not None:
            data["organization"] = organization
        return data

    def label(self, repo: str, name: str, ident: int, color: str = "ededed") -> Json:
        return {
            "id": ident,
            "node_id": node_id("Label", ident),
            "url": f"{self.api}/repos/{repo}/labels/{name}",
            "name": name,
            "description": None,
            "color": color,
            "default": False,
            "archived_at": None,
            "archived_by": None,
        }

    # issues and comments
    def reaction_rollup(self, url: str, counts: dict[str, int] | None = None) -> Json:
        counts = counts or {}
        rollup: Json = {"url": url, "total_count": sum(counts.values())}
        rollup.update({c: counts.get(c, 0) for c in REACTIONS})
        return rollup

    def issue(
        self,
        repo: str,
        number: int,
        ident: int,
        *,
        title: str,
        body: str | None,
        user: Json,
        labels: list[Json],
        created_at: str,
        association: str,
        pull: bool,
        draft: bool = False,
    ) -> Json:
        tpl: Json = copy.deepcopy(payload_example("issues/opened.json")["issue"])
        base = f"{self.api}/repos/{repo}/issues/{number}"
        tpl.update(
            url=base,
            repository_url=f"{self.api}/repos/{repo}",
            labels_url=f"{base}/labels{{/name}}",
            comments_url=f"{base}/comments",
            events_url=f"{base}/events",
            html_url=f"{self.web}/{repo}/issues/{number}",
            id=ident,
            node_id=node_id("Issue", ident),
            number=number,
            title=title,
            user=user,
            labels=labels,
            state="open",
            state_reason=None,
            locked=False,
            assignee=None,
            assignees=[],
            milestone=None,
            comments=0,
            created_at=created_at,
            updated_at=created_at,
            closed_at=None,
            author_association=association,
            active_lock_reason=None,
            body=body,
            reactions=self.reaction_rollup(f"{base}/reactions"),
            timeline_url=f"{base}/timeline",
            performed_via_github_app=None,
        )
        tpl.pop("draft", None)
        if pull:
            tpl["html_url"] = f"{self.web}/{repo}/pull/{number}"
            tpl["draft"] = draft
            tpl["pull_request"] = {
                "url": f"{self.api}/repos/{repo}/pulls/{number}",
                "html_url": f"{self.web}/{repo}/pull/{number}",
                "diff_url": f"{self.web}/{repo}/pull/{number}.diff",
                "patch_url": f"{self.web}/{repo}/pull/{number}.patch",
                "merged_at": None,
            }
        return tpl

    def issue_comment(
        self,
        repo: str,
        number: int,
        ident: int,
        *,
        body: str,
        user: Json,
        association: str,
        created_at: str,
        app: Json | None,
        pull: bool,
    ) -> Json:
        data = copy.deepcopy(rest_example("issue-comment.json"))
        kind = "pull" if pull else "issues"
        data.update(
            id=ident,
            node_id=node_id("IssueComment", ident),
            url=f"{self.api}/repos/{repo}/issues/comments/{ident}",
            html_url=f"{self.web}/{repo}/{kind}/{number}#issuecomment-{ident}",
            body=body,
            user=user,
            created_at=created_at,
            updated_at=created_at,
            issue_url=f"{self.api}/repos/{repo}/issues/{number}",
            author_association=association,
            performed_via_github_app=app,
            reactions=self.reaction_rollup(
                f"{self.api}/repos/{repo}/issues/comments/{ident}/reactions"
            ),
        )
        return data

    def review_comment(
        self,
        repo: str,
        number: int,
        ident: int,
        *,
        body: str,
        user: Json,
        association: str,
        created_at: str,
        path: str,
        line: int,
        commit: str,
        in_reply_to: int | None,
    ) -> Json:
        data: Json = copy.deepcopy(
            payload_example("pull_request_review_comment/created.json")["comment"]
        )
        url = f"{self.api}/repos/{repo}/pulls/comments/{ident}"
        html = f"{self.web}/{repo}/pull/{number}#discussion_r{ident}"
        pull_url = f"{self.api}/repos/{repo}/pulls/{number}"
        data.update(
            url=url,
            pull_request_review_id=ident,
            id=ident,
            node_id=node_id("PullRequestReviewComment", ident),
            diff_hunk=f"@@ -1 +1 @@\n+{path}",
            path=path,
            position=line,
            original_position=line,
            commit_id=commit,
            original_commit_id=commit,
            body=body,
            user=user,
            created_at=created_at,
            updated_at=created_at,
            html_url=html,
            pull_request_url=pull_url,
            author_association=association,
            _links={
                "self": {"href": url},
                "html": {"href": html},
                "pull_request": {"href": pull_url},
            },
            reactions=self.reaction_rollup(f"{url}/reactions"),
            line=line,
            original_line=line,
            side="RIGHT",
            subject_type="line",
        )
        if in_reply_to is not None:
            data["in_reply_to_id"] = in_reply_to
        return data

    def reaction(self, ident: int, user: Json, content: str, created_at: str) -> Json:
        data = copy.deepcopy(rest_example("reaction.json"))
        data.update(
            id=ident,
            node_id=node_id("Reaction", ident),
            user=user,
            content=content,
            created_at=created_at,
        )
        return data

    # checks
    def check_run(
        self,
        repo: str,
        ident: int,
        *,
        name: str,
        head_sha: str,
        status: str,
        conclusion: str | None,
        started_at: str | None,
        completed_at: str | None,
        external_id: str | None,
        details_url: str | None,
        output: Json,
        annotations: int,
        app: Json,
        suite_id: int,
        pulls: list[Json],
    ) -> Json:
        data = copy.deepcopy(rest_example("check-run-example-of-in-progress-conclusion.json"))
        data.update(
            id=ident,
            head_sha=head_sha,
            node_id=node_id("CheckRun", ident),
            external_id=external_id or "",
            url=f"{self.api}/repos/{repo}/check-runs/{ident}",
            html_url=f"{self.web}/{repo}/runs/{ident}",
            details_url=details_url or "",
            status=status,
            conclusion=conclusion,
            started_at=started_at,
            completed_at=completed_at,
            name=name,
            check_suite={"id": suite_id},
            app=app,
            pull_requests=pulls,
            output={
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": annotations,
                "annotations_url": f"{self.api}/repos/{repo}/check-runs/{ident}/annotations",
            },
        )
        return data

    def check_suite(
        self,
        suite: Suite,
        *,
        status: str,
        conclusion: str | None,
        app: Json,
        pulls: list[Json],
        head_commit: Json,
        latest_runs: int,
        repository: Json | None,
    ) -> Json:
        """GET /repos/{o}/{r}/check-suites/{id}; without `repository` the webhook's form."""
        url = f"{self.api}/repos/{suite.repo}/check-suites/{suite.id}"
        data: Json = {
            "id": suite.id,
            "node_id": node_id("CheckSuite", suite.id),
            "head_branch": suite.head_branch,
            "head_sha": suite.head_sha,
            "status": status,
            "conclusion": conclusion,
            "url": url,
            "before": suite.before,
            "after": suite.head_sha,
            "pull_requests": pulls,
            "app": app,
            "created_at": suite.created_at,
            "updated_at": suite.updated_at,
            "rerequestable": True,
            "runs_rerequestable": True,
            "latest_check_runs_count": latest_runs,
            "check_runs_url": f"{url}/check-runs",
            "head_commit": head_commit,
        }
        if repository is not None:
            data["repository"] = repository
        return data

    def annotation(self, repo: str, head_sha: str, given: Json) -> Json:
        """GET /repos/{o}/{r}/check-runs/{id}/annotations: one annotation as given."""
        return {
            "path": given["path"],
            "blob_href": f"{self.web}/{repo}/blob/{head_sha}/{given['path']}",
            "start_line": given["start_line"],
            "end_line": given["end_line"],
            "start_column": given.get("start_column"),
            "end_column": given.get("end_column"),
            "annotation_level": given["annotation_level"],
            "title": given.get("title"),
            "message": given["message"],
            "raw_details": given.get("raw_details"),
        }

    def review(
        self,
        repo: str,
        number: int,
        ident: int,
        *,
        user: Json,
        body: str,
        state: str,
        commit: str,
        submitted_at: str,
        association: str,
    ) -> Json:
        """GET /repos/{o}/{r}/pulls/{n}/reviews/{id} (the webhook's review differs a little)."""
        data: Json = copy.deepcopy(payload_example("pull_request_review/submitted.json")["review"])
        html = f"{self.web}/{repo}/pull/{number}#pullrequestreview-{ident}"
        pull_url = f"{self.api}/repos/{repo}/pulls/{number}"
        data.update(
            id=ident,
            node_id=node_id("PullRequestReview", ident),
            user=user,
            body=body,
            state=state,
            html_url=html,
            pull_request_url=pull_url,
            author_association=association,
            _links={"html": {"href": html}, "pull_request": {"href": pull_url}},
            submitted_at=submitted_at,
            commit_id=commit,
        )
        return data

    # pulls
    def pull_ref(self, repo_json: Json, owner: Json, ref: str, sha: str) -> Json:
        return {
            "label": f"{owner['login']}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": owner,
            "repo": repo_json,
        }

    def pull_request(
        self,
        p: Pull,
        *,
        user: Json,
        head: Json,
        base: Json,
        labels: list[Json],
        reviewers: list[Json],
        association: str,
        stats: tuple[int, int, int, int],
        comments: int,
        review_comments: int,
        mergeable: bool | None,
    ) -> Json:
        data = copy.deepcopy(rest_example("pull-request.json"))
        repo, n = p.repo, p.number
        api = f"{self.api}/repos/{repo}"
        html = f"{self.web}/{repo}/pull/{n}"
        commits, files, additions, deletions = stats
        data.update(
            url=f"{api}/pulls/{n}",
            id=p.id,
            node_id=node_id("PullRequest", p.id),
            html_url=html,
            diff_url=f"{html}.diff",
            patch_url=f"{html}.patch",
            issue_url=f"{api}/issues/{n}",
            commits_url=f"{api}/pulls/{n}/commits",
            review_comments_url=f"{api}/pulls/{n}/comments",
            review_comment_url=f"{api}/pulls/comments{{/number}}",
            comments_url=f"{api}/issues/{n}/comments",
            statuses_url=f"{api}/statuses/{p.head_sha}",
            number=n,
            state=p.state,
            locked=False,
            title=p.title,
            user=user,
            body=p.body,
            labels=labels,
            milestone=None,
            active_lock_reason=None,
            created_at=p.created_at,
            updated_at=p.updated_at,
            closed_at=p.closed_at,
            merged_at=None,
            merge_commit_sha=None,
            assignee=None,
            assignees=[],
            requested_reviewers=reviewers,
            requested_teams=[],
            head=head,
            base=base,
            author_association=association,
            auto_merge=None,
            draft=p.draft,
            merged=False,
            mergeable=mergeable,
            rebaseable=mergeable,
            mergeable_state="clean" if mergeable else "unknown",
            merged_by=None,
            comments=comments,
            review_comments=review_comments,
            maintainer_can_modify=p.maintainer_can_modify,
            commits=commits,
            additions=additions,
            deletions=deletions,
            changed_files=files,
        )
        data["_links"] = {
            "self": {"href": f"{api}/pulls/{n}"},
            "html": {"href": html},
            "issue": {"href": f"{api}/issues/{n}"},
            "comments": {"href": f"{api}/issues/{n}/comments"},
            "review_comments": {"href": f"{api}/pulls/{n}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{n}/commits"},
            "statuses": {"href": f"{api}/statuses/{p.head_sha}"},
        }
        return data

    # contents
    def content_file(self, repo: str, ref: str, path: str, sha: str, content: bytes) -> Json:
        encoded = base64.b64encode(content).decode()
        lines = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(content),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": lines + "\n" if lines else "",
            "sha": sha,
            **self._content_links(repo, ref, path, sha, "blob"),
        }

    def content_entry(self, repo: str, ref: str, path: str, sha: str, kind: str, size: int) -> Json:
        entry: Json = {
            "type": "dir" if kind == "tree" else "file",
            "size": size if kind == "blob" else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
        }
        entry.update(self._content_links(repo, ref, path, sha, kind))
        if kind == "tree":
            entry["download_url"] = None
        return entry

    def _content_links(self, repo: str, ref: str, path: str, sha: str, kind: str) -> Json:
        url = f"{self.api}/repos/{repo}/contents/{path}?ref={ref}"
        git = f"{self.api}/repos/{repo}/git/{'trees' if kind == 'tree' else 'blobs'}/{sha}"
        html = f"{self.web}/{repo}/{'tree' if kind == 'tree' else 'blob'}/{ref}/{path}"
        return {
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": f"{self.web}/{repo}/raw/{ref}/{path}",
            "_links": {"self": url, "git": git, "html": html},
        }

    def git_ref(self, repo: str, ref: str, sha: str) -> Json:
        return {
            "ref": ref,
            "node_id": node_id("Ref", abs(hash((repo, ref))) % 10**9),
            "url": f"{self.api}/repos/{repo}/git/{ref}",
            "object": {
                "type": "commit",
                "sha": sha,
                "url": f"{self.api}/repos/{repo}/git/commits/{sha}",
            },
        }

    def team_membership(self, org: str, team: str, login: str, role: str) -> Json:
        return {
            "url": f"{self.api}/orgs/{org}/teams/{team}/memberships/{login}",
            "role": role,
            "state": "active",
        }
