"""Webhook payloads from tests/data/github/payloads, pointed at a FakeGitHub.

See FakeGitHub.payload for the keyword arguments.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .github_shapes import Json, Repo, node_id, payload_example, swap

if TYPE_CHECKING:
    from .github import FakeGitHub

KEYS = {
    "repo",
    "installation",
    "sender",
    "number",
    "title",
    "body",
    "author",
    "state",
    "label",
    "comment",
    "comment_id",
    "action",
    "fields",
}


def build_payload(fake: FakeGitHub, data: Json, rw: dict[str, Any]) -> Json:
    unknown = set(rw) - KEYS
    if unknown:
        raise TypeError(f"payload() got unknown rewrites {sorted(unknown)}; known: {sorted(KEYS)}")
    old = data.get("repository", {}).get("full_name")
    repo: Repo | None = None
    if rw.get("repo") is not None:
        repo = fake.repo(rw["repo"])
    elif old:
        repo = fake.find_repo(old)
    host = urlsplit(fake.url).netloc
    pairs = []
    if repo is not None and old:
        pairs += [
            (f"/repos/{old}/", f"/repos/{repo.full_name}/"),
            (f'/repos/{old}"', f'/repos/{repo.full_name}"'),
            (f"github.com/{old}/", f"github.com/{repo.full_name}/"),
            (f"github.com/{old}.git", f"github.com/{repo.full_name}.git"),
            (f"github.com:{old}.git", f"github.com:{repo.full_name}.git"),
        ]
    pairs += [
        ("https://api.github.com", fake.api_url),
        ("https://github.com", fake.url),
        ("git://github.com", f"git://{host}"),
        ("git@github.com:", f"git@{host}:"),
    ]
    data = swap(data, pairs)
    _retarget(data, old, repo, fake)
    full = repo.full_name if repo else old
    if "repository" in data and full:
        _repository(fake, data["repository"], repo, full)

    # installation
    if "installation" in rw:
        if rw["installation"] is None:
            data.pop("installation", None)
        else:
            ident = int(rw["installation"])
            data["installation"] = {"id": ident, "node_id": node_id("Installation", ident)}
    elif repo is not None and repo.installation_id in fake.installations:
        ident = repo.installation_id
        data["installation"] = {"id": ident, "node_id": node_id("Installation", ident)}

    if rw.get("sender"):
        data["sender"] = fake.user_json(rw["sender"])
    sender = data.get("sender", {}).get("login", "")

    # the issue / pull request
    number = rw.get("number")
    subject_key = "issue" if "issue" in data else "pull_request" if "pull_request" in data else None
    if number is None and subject_key:
        number = data[subject_key].get("number")
    if repo is not None and number is not None:
        key = (repo.full_name, int(number))
        if "issue" in data and key in fake.issues:
            data["issue"] = copy.deepcopy(fake.issues[key])
        if "pull_request" in data and key in fake.pull_records:
            data["pull_request"] = copy.deepcopy(fake.pull_json(key))
    if number is not None:
        for k in ("issue", "pull_request"):
            if k in data and isinstance(data[k], dict):
                _renumber(data[k], int(number))
        if "number" in data:
            data["number"] = int(number)
    target = data.get(subject_key) if subject_key else None
    if isinstance(target, dict):
        for k in ("title", "body", "state"):
            if k in rw:
                target[k] = rw[k]
        if rw.get("author"):
            target["user"] = fake.user_json(rw["author"])

    if rw.get("label"):
        name = rw["label"]
        label = fake.label(repo, name) if repo else {**data.get("label", {}), "name": name}
        data["label"] = label
        if isinstance(target, dict) and all(
            lb.get("name", "").lower() != name.lower() for lb in target.get("labels", [])
        ):
            target.setdefault("labels", []).append(copy.deepcopy(label))
        if repo is not None and number is not None and (repo.full_name, int(number)) in fake.issues:
            issue = fake.issues[(repo.full_name, int(number))]
            if all(lb["name"].lower() != name.lower() for lb in issue["labels"]):
                issue["labels"].append(copy.deepcopy(label))

    if rw.get("comment") is not None or rw.get("comment_id") is not None:
        data["comment"] = _comment(fake, data, repo, number, sender, rw)

    if rw.get("action"):
        data["action"] = rw["action"]
    for dotted, value in (rw.get("fields") or {}).items():
        cur = data
        *parents, last = dotted.split(".")
        for part in parents:
            cur = cur.setdefault(part, {})
        cur[last] = value
    return data


def _retarget(data: Json, old: str | None, repo: Repo | None, fake: FakeGitHub) -> None:
    """Exact repository API URLs (no path after the name) follow `repo`."""
    if repo is None or not old:
        return
    old_url = f"{fake.api_url}/repos/{old}"
    new_url = f"{fake.api_url}/repos/{repo.full_name}"

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return new_url if obj == old_url else obj

    data.update(walk(data))


def _repository(fake: FakeGitHub, obj: Json, repo: Repo | None, full: str) -> None:
    obj["clone_url"] = f"{fake.url}/{full}.git"
    obj["html_url"] = f"{fake.url}/{full}"
    obj["url"] = f"{fake.api_url}/repos/{full}"
    if repo is None:
        return
    owner = fake.ensure_user(repo.owner)
    owner_json = fake.shapes.user(owner)
    obj.update(
        id=repo.id,
        node_id=node_id("Repository", repo.id),
        name=repo.name,
        full_name=full,
        private=repo.private,
        visibility="private" if repo.private else "public",
        default_branch=repo.default_branch,
        fork=repo.fork_of is not None,
        owner={**obj.get("owner", {}), **owner_json},
    )
    if "master_branch" in obj:
        obj["master_branch"] = repo.default_branch


def _renumber(obj: Json, number: int) -> None:
    old = obj.get("number")
    obj["number"] = number
    if old is None or old == number:
        return
    for key, value in list(obj.items()):
        if isinstance(value, str):
            for seg in ("issues", "pull", "pulls"):
                value = value.replace(f"/{seg}/{old}/", f"/{seg}/{number}/")
                if value.endswith(f"/{seg}/{old}"):
                    value = value[: -len(str(old))] + str(number)
            obj[key] = value


def _comment(
    fake: FakeGitHub, data: Json, repo: Repo | None, number: Any, sender: str, rw: dict[str, Any]
) -> Json:
    if repo is None:
        raise ValueError("comment/comment_id need a repository of the fake (repo=...)")
    review = "issue" not in data and "pull_request" in data
    ident = rw.get("comment_id")
    if ident is None:
        if number is None:
            raise ValueError("comment needs the issue or PR number")
        author = sender or "octocat"
        if review:
            ident = fake.add_review_comment(
                repo.full_name, int(number), user=author, body=rw["comment"]
            )
        else:
            ident = fake.add_comment(repo.full_name, int(number), author, rw["comment"])
        if "issue" in data and (repo.full_name, int(number)) in fake.issues:
            data["issue"] = copy.deepcopy(fake.issues[(repo.full_name, int(number))])
    store = fake.review_comments if review else fake.comments
    if int(ident) not in store:
        raise KeyError(f"no {'review ' if review else ''}comment {ident} in the fake")
    return copy.deepcopy(store[int(ident)])


def check_suite_payload(
    fake: FakeGitHub, full_name: str, suite_id: int, action: str, sender: str
) -> Json:
    """See FakeGitHub.check_suite_payload."""
    from .github_checks import render_suite
    from .github_rest import Rest

    repo = fake.repo(full_name)
    suite = fake.check_suites.get(suite_id)
    if suite is None or suite.repo != repo.full_name:
        raise KeyError(f"no check suite {suite_id} in {repo.full_name}")
    data = build_payload(
        fake,
        payload_example("check_suite/completed.json"),
        {"repo": repo.full_name, "action": action, "sender": sender},
    )
    data["check_suite"] = render_suite(Rest(fake), suite, repository=False)
    if action == "completed" and data["check_suite"]["status"] != "completed":
        raise ValueError(f"suite {suite_id} is {data['check_suite']['status']}, not completed")
    return data


def review_payload(
    fake: FakeGitHub, full_name: str, number: int, review_id: int, action: str
) -> Json:
    """See FakeGitHub.review_payload."""
    from .github_checks import review_hook
    from .github_rest import render_pull

    repo = fake.repo(full_name)
    if fake.pull_review_where.get(review_id) != (repo.full_name, number):
        raise KeyError(f"no review {review_id} on {repo.full_name}#{number}")
    review = fake.pull_reviews[review_id]
    data = build_payload(
        fake,
        payload_example("pull_request_review/submitted.json"),
        {"repo": repo.full_name, "number": number, "sender": review["user"]["login"],
         "action": action},
    )  # fmt: skip
    pull = fake.pull_records[(repo.full_name, number)]
    data["pull_request"] = render_pull(fake, pull, simple=True)
    data["review"] = review_hook(review)
    return data
