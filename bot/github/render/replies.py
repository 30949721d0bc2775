"""The bot's short answers: refusals, waiting, nothing to cancel or retry, who cancelled (pure)."""

from __future__ import annotations

from .text import CHECK_NAME, marker


def rejected_comment(user: str, role: str) -> str:
    return (
        f"@{user} {CHECK_NAME} only runs for people with write, maintain or admin permission "
        f"on this repository (yours: {role}). Ask a maintainer to add the label or the command."
    )


def not_allowed_comment(user: str) -> str:
    """A sender with write permission whom `.github/autocode.yml` does not list."""
    return (
        f"@{user} {CHECK_NAME} runs here only for the people and teams that "
        "`.github/autocode.yml` lists in `allowed_users` / `allowed_teams`. "
        "Ask one of them to add the label or the command."
    )


def waiting_comment(ticket_id: int, ahead: int) -> str:
    """The comment of a request that waits behind the run already going on its issue."""
    return "\n".join(
        [
            marker(ticket_id),
            f"⏳ **{CHECK_NAME}**: queued behind the run already going here (ticket {ahead}); "
            "it starts when that one ends.",
        ]
    )


def fork_refused(number: int, head_repo: str | None) -> str:
    where = f"the fork `{head_repo}`" if head_repo else "a fork that no longer exists"
    return (
        f"{CHECK_NAME} cannot push to pull request #{number}: its branch lives in {where}, "
        "and the App may only push to branches of this repository. "
        "Push the branch to this repository, or ask on a pull request from a branch here."
    )


def nothing_to_cancel() -> str:
    return f"{CHECK_NAME}: nothing is running or queued here, so there is nothing to cancel."


def follow_ups_stopped(command: str) -> str:
    return (
        f"{CHECK_NAME}: no more follow-ups on this pull request — failed checks and reviews "
        f"that request changes will not start a run. `{command} <instructions>` still works."
    )


def stop_needs_a_pull_request(command: str) -> str:
    return f"{CHECK_NAME}: `{command} stop` ends the follow-ups of a pull request; write it there."


def nothing_to_retry() -> str:
    return f"{CHECK_NAME}: there is no earlier run here to retry."


OPERATOR_NAMES = frozenset({"dashboard", "api"})  # never @-mention: they are real logins


def cancelled_by(user: str) -> str:
    if user in OPERATOR_NAMES:
        return f"cancelled from the {'dashboard' if user == 'dashboard' else 'API'}"
    return f"cancelled by @{user}"
