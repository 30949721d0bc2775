"""Where a run works: which branch, from which commit, cloned from where (pure).

An issue gets the bot's own branch `autocode/issue-N` (a Python API
ticket, the branch it names), from the default branch, or from where that
branch already is (a follow-up). A pull request
is worked on in its own branch — only when that branch lives in this
repository, since the App may push nowhere else; an `ask` (nothing pushed)
may read a fork's head from the fork itself on the same host. A closed pull
request gets nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..github import render
from ..models import Ticket, TicketKind


@dataclass(frozen=True)
class Target:
    """Where the work happens: which branch, from which commit, and what to do after."""

    branch: str
    base: str
    start_sha: str
    existing: bool
    pull: Mapping[str, Any] | None = None  # the PR, when working on a pull request's branch
    clone_url: str = ""  # where to clone from when not the ticket's repository (an ask on a fork)


@dataclass(frozen=True)
class NoTarget:
    """Nothing to work on, and why: a fork's branch (refused) or a closed pull request."""

    reason: str
    closed: bool = False  # closed: the run ends `neutral`; a fork: `failed`, no check run


def branch_for(number: int) -> str:
    """The bot's own branch for issue `number`."""
    return f"autocode/issue-{number}"


def work_branch(ticket: Ticket) -> str:
    """The bot's branch for a ticket that is not on a pull request."""
    if ticket.kind == TicketKind.SERVICE and ticket.origin.branch:
        return ticket.origin.branch
    return branch_for(ticket.number)


def issue_target(
    branch: str, default_branch: str, branch_sha: str | None, default_sha: str
) -> Target:
    """The bot's branch: from where it is, or from the default branch's head."""
    return Target(
        branch=branch,
        base=default_branch,
        start_sha=branch_sha or default_sha,
        existing=branch_sha is not None,
    )


def pull_target(
    pull: Mapping[str, Any], *, number: int, repository: str, clone_url: str, ask: bool
) -> Target | NoTarget:
    """A pull request's own branch (GitHub's pull request JSON), or why there is none."""
    head = pull.get("head") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    fork = not head_repo or str(head_repo).lower() != repository.lower()
    fork_url = str((head.get("repo") or {}).get("clone_url") or "")
    same_host = urlsplit(fork_url).netloc == urlsplit(clone_url).netloc
    from_fork = ""
    if fork and ask and head_repo and fork_url and same_host:
        # nothing is pushed in ask mode: the fork's head is cloned read-only on the host
        # from the fork itself (public: no token needed), on the same GitHub only
        fork, from_fork = False, fork_url
    if fork:
        return NoTarget(render.fork_refused(number, head_repo))
    if pull.get("state") != "open":
        return NoTarget(f"pull request #{number} is closed", closed=True)
    return Target(
        branch=str(head["ref"]),
        base=str((pull.get("base") or {}).get("ref") or ""),
        start_sha=str(head["sha"]),
        existing=True,
        pull=pull,
        clone_url=from_fork,
    )
