"""Whether the bot follows up its own pull request, and why (pure).

After the bot pushes to a pull request, two things can send it back to work:
the checks of its commit fail (a `check_suite` completed), or a reviewer
requests changes. Each arrives as a follow-up ticket; when a worker claims
it, these functions decide from the facts it gathered — the pull request as
GitHub has it now, the PR's earlier tickets, the repository's settings
file, the check suites of the commit — whether a run goes ahead.

The bounds a maintainer sets: `ci_fix_attempts` in `.github/autocode.yml`
(0 = no fixes after failed checks) counts every follow-up of a pull request,
CI and review alike, under the host's AUTOCODE_MAX_CI_FIX_ATTEMPTS; when the
file leaves it at 0, reviews are bounded by the host's cap alone.
`on_review: off` turns review follow-ups off; `/opencode stop` ends both
for one pull request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import FOLLOW_UP_KINDS, Ticket, TicketKind, TicketState
from ..repo_settings import RepoSettings

# How a check suite may end (GitHub's `conclusion`): the first kind asks for a fix.
FAILED = frozenset({"failure", "timed_out", "startup_failure", "action_required"})
PASSING = frozenset({"success", "neutral", "skipped"})
# How a skipped follow-up and a passed CI end in the store (the ticket's `conclusion`).
SKIPPED = "skipped"
PASSED = "passed"
CAP_REACHED = "the pull request has had all the follow-ups its settings allow"


@dataclass(frozen=True)
class Pull:
    """A pull request as GitHub has it now."""

    open: bool
    fork: bool  # its head is in another repository: the bot never pushes there
    head_sha: str

    @classmethod
    def of(cls, pull: dict[str, Any], repository: str) -> Pull:
        """From GitHub's pull request JSON (a deleted fork's head has no repository)."""
        head = pull.get("head") or {}
        full_name = str((head.get("repo") or {}).get("full_name") or "")
        return cls(
            open=pull.get("state") == "open",
            fork=full_name.lower() != repository.lower(),
            head_sha=str(head.get("sha") or ""),
        )


@dataclass(frozen=True)
class Suite:
    """One check suite of a commit: its App, and how far it got."""

    id: int
    app_id: int | None
    app: str  # the App's slug
    status: str  # queued, in_progress, completed
    conclusion: str  # success, failure, …; "" while it runs
    client_id: str = ""  # the App's client ID (AUTOCODE_APP_ID may be either)

    def made_by(self, app: str) -> bool:
        """True when the App with this ID or client ID made the suite."""
        return bool(app) and app in (str(self.app_id), self.client_id)


@dataclass(frozen=True)
class History:
    """What the pull request's earlier tickets tell (`history`)."""

    last_push: str | None  # the commit the bot pushed to it last; None: never pushed
    pusher: int | None  # the ticket that pushed it
    used: int  # follow-ups that ran on it
    stopped: bool  # `/opencode stop` was said on it
    followed: frozenset[str]  # commits whose checks already had their follow-up (or ✓)
    cap_said: bool  # the comment saying the cap is reached was posted


def history(tickets: Sequence[Ticket], number: int, me: int) -> History:
    """The facts of a pull request's tickets (those of PR `number`, or that opened it)."""
    pushes = [t for t in tickets if t.pushed_sha and (t.pr_number == number or t.number == number)]
    last = max(pushes, key=lambda t: t.id, default=None)
    others = [t for t in tickets if t.id != me and t.number == number]
    follow_ups = [t for t in others if t.kind in FOLLOW_UP_KINDS]
    return History(
        last_push=last.pushed_sha if last else None,
        pusher=last.id if last else None,
        used=sum(1 for t in follow_ups if t.check_run_id is not None),
        stopped=any(t.kind == TicketKind.STOP and t.state == TicketState.SUCCEEDED for t in others),
        followed=frozenset(
            t.origin.head_sha
            for t in follow_ups
            if t.kind == TicketKind.CI_FIX
            and (t.check_run_id is not None or t.conclusion == PASSED)
            and t.origin.head_sha
        ),
        cap_said=any(t.error == CAP_REACHED and t.comment_id is not None for t in follow_ups),
    )


def cap(settings: RepoSettings, host_cap: int) -> int:
    """How many follow-ups one pull request may get."""
    wanted = settings.ci_fix_attempts or host_cap
    return min(wanted, host_cap)


@dataclass(frozen=True)
class Skip:
    """No run: why (the ticket's error), and a comment to post once, if any."""

    reason: str
    say: str = ""


@dataclass(frozen=True)
class Fix:
    """A run goes ahead."""


@dataclass(frozen=True)
class Passed:
    """Every other check of the bot's commit passed: the loop ends there."""

    announce: bool  # the loop is on: say ✓ in the progress comment of the push


FIX = Fix()


def _not_the_bots(pull: Pull, past: History) -> Skip | None:
    """Why the bot may not work on this pull request on its own, if it may not."""
    if not pull.open:
        return Skip("the pull request is closed")
    if pull.fork:
        return Skip("the pull request's branch is in a fork")
    if past.last_push is None:
        return Skip("not a pull request of the bot: it never pushed to it")
    return None


def _bounds(settings: RepoSettings, host_cap: int, past: History, *, ci: bool) -> Skip | None:
    """The stop, the switch and the cap, shared by both kinds of follow-up."""
    if past.stopped:
        return Skip("follow-ups were stopped on this pull request (`stop`)")
    if ci and settings.ci_fix_attempts == 0:
        return Skip("fixes after failed checks are off (`ci_fix_attempts` is 0)")
    if not ci and settings.on_review == "off":
        return Skip("follow-ups of reviews are off (`on_review: off`)")
    limit = cap(settings, host_cap)
    if limit == 0:
        return Skip("follow-ups are off on this host (AUTOCODE_MAX_CI_FIX_ATTEMPTS is 0)")
    if past.used >= limit:
        say = "" if past.cap_said else cap_reached_comment(limit)
        return Skip(CAP_REACHED, say)
    return None


def ci_decision(
    *,
    sha: str,
    pull: Pull,
    suites: Sequence[Suite],
    our_app_id: str,
    past: History,
    settings: RepoSettings,
    host_cap: int,
) -> Skip | Fix | Passed:
    """After a check suite of `sha` completed on the pull request: fix, ✓, or nothing."""
    not_ours = _not_the_bots(pull, past)
    if not_ours is not None:
        return not_ours
    if pull.head_sha != sha:
        return Skip("the pull request has moved on to a newer commit")
    if past.last_push != sha:
        return Skip("the commit is not the bot's last push (someone pushed after it)")
    theirs = [s for s in suites if not s.made_by(our_app_id)]
    if any(s.status != "completed" for s in theirs):
        return Skip("other checks of the commit are still running")
    if sha in past.followed:
        return Skip("the checks of this commit were followed up already")
    if not any(s.conclusion in FAILED for s in theirs):
        on = settings.ci_fix_attempts > 0 and cap(settings, host_cap) > 0 and not past.stopped
        return Passed(announce=on)
    return _bounds(settings, host_cap, past, ci=True) or FIX


def review_decision(
    *, pull: Pull, past: History, settings: RepoSettings, host_cap: int
) -> Skip | Fix:
    """After a review requested changes on the pull request: a run, or nothing."""
    return _not_the_bots(pull, past) or _bounds(settings, host_cap, past, ci=False) or FIX


def cap_reached_comment(limit: int) -> str:
    times = "once" if limit == 1 else f"{limit} times"
    return (
        f"The bot has followed up this pull request {times} (failed checks and reviews), "
        "which is all its settings allow (`ci_fix_attempts` in `.github/autocode.yml`). "
        "It will not push here again on its own; `/opencode <instructions>` still works."
    )
