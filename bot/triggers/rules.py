"""Decide, from a delivery alone, whether it makes a ticket (pure).

Every function here takes data and returns data: no I/O, no clock. Whatever
needs GitHub's API (may this sender ask? which branch does this PR use now?)
is left to the worker, so the webhook can answer in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models import Delivery, Origin, TicketKind, Trigger
from ..webhook.parse import field, optional
from .base import Decision, Ignore, RuleSettings, is_bot, repository_of
from .checks import check_run, check_suite
from .commands import Command, parse_command

__all__ = ["Decision", "Ignore", "RuleSettings", "decide", "is_bot"]


def decide(delivery: Delivery, rules: RuleSettings) -> Decision:
    """Map a delivery to a Trigger or an Ignore. Raise PayloadError if it is malformed."""
    handler = _HANDLERS.get(delivery.event)
    if handler is None:
        return Ignore(f"event {delivery.event} is not handled")
    payload = delivery.payload
    # a check suite's sender is whoever pushed, often a bot (this one, after its own push)
    if delivery.event != "check_suite" and is_bot(payload.get("sender")):
        return Ignore("sent by a bot")
    return handler(delivery, rules)


def _issues(delivery: Delivery, rules: RuleSettings) -> Decision:
    if delivery.action != "labeled":
        return Ignore(f"issues.{delivery.action} is not handled")
    payload = delivery.payload
    label = optional(payload, "label", "name")
    if label is None or label.casefold() != rules.trigger_label.casefold():
        return Ignore(f"label {label!r} is not the trigger label")
    issue = field(payload, "issue", kind=dict)
    if optional(issue, "state") == "closed":
        return Ignore("the issue is closed")
    repository, clone_url, installation_id = repository_of(payload)
    return Trigger(
        kind=TicketKind.LABEL,
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=field(issue, "number", kind=int),
        is_pull_request=isinstance(issue.get("pull_request"), dict),
        title=field(issue, "title"),
        body=optional(issue, "body") or "",
        requested_by=field(payload, "sender", "login"),
    )


# A command's name → the Trigger kind the worker acts on.
_COMMAND_KINDS = {
    "run": TicketKind.COMMAND,
    "fresh": TicketKind.COMMAND,
    "ask": TicketKind.ASK,
    "retry": TicketKind.RETRY,
    "cancel": TicketKind.CANCEL,
    "stop": TicketKind.STOP,
    "help": TicketKind.HELP,
}


def _by_an_app(item: dict[str, Any]) -> bool:
    """True for text a bot wrote, or an App wrote on someone's behalf: it never triggers us."""
    return is_bot(item.get("user")) or item.get("performed_via_github_app") is not None


def _command_trigger(
    payload: dict[str, Any],
    command: Command,
    thread: dict[str, Any],
    author: dict[str, Any],
    *,
    is_pull_request: bool,
    origin: Origin,
) -> Trigger:
    """The Trigger for a command written in a comment or review on `thread` (issue or PR)."""
    repository, clone_url, installation_id = repository_of(payload)
    return Trigger(
        kind=_COMMAND_KINDS[command.name],
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=field(thread, "number", kind=int),
        is_pull_request=is_pull_request,
        title=field(thread, "title"),
        body=optional(thread, "body") or "",
        requested_by=optional(author, "user", "login") or field(payload, "sender", "login"),
        instructions=command.instructions,
        origin=origin.but(fresh=command.name == "fresh", unknown=command.unknown or ""),
    )


def _pull_request_code(pull: dict[str, Any]) -> dict[str, Any]:
    """Where a PR's code lives, as the event saw it (the worker re-reads it before pushing)."""
    return {
        "head_ref": field(pull, "head", "ref"),
        "head_repo": optional(pull, "head", "repo", "full_name"),
        "base_ref": field(pull, "base", "ref"),
        "head_sha": field(pull, "head", "sha"),
    }


def _issue_comment(delivery: Delivery, rules: RuleSettings) -> Decision:
    if delivery.action != "created":
        return Ignore(f"issue_comment.{delivery.action} is not handled")
    payload = delivery.payload
    comment = field(payload, "comment", kind=dict)
    if _by_an_app(comment):
        return Ignore("comment written by a bot or an app")
    command = parse_command(optional(comment, "body") or "", rules.command)
    if command is None:
        return Ignore("the comment holds no command")
    issue = field(payload, "issue", kind=dict)
    origin = Origin(
        source="issue_comment",
        comment_id=field(comment, "id", kind=int),
        comment_url=field(comment, "html_url"),
    )
    is_pull_request = isinstance(issue.get("pull_request"), dict)
    return _command_trigger(
        payload, command, issue, comment, is_pull_request=is_pull_request, origin=origin
    )


def _review_comment(delivery: Delivery, rules: RuleSettings) -> Decision:
    if delivery.action != "created":
        return Ignore(f"pull_request_review_comment.{delivery.action} is not handled")
    payload = delivery.payload
    comment = field(payload, "comment", kind=dict)
    if _by_an_app(comment):
        return Ignore("review comment written by a bot or an app")
    command = parse_command(optional(comment, "body") or "", rules.command)
    if command is None:
        return Ignore("the review comment holds no command")
    pull = field(payload, "pull_request", kind=dict)
    origin = Origin(
        source="review_comment",
        comment_id=field(comment, "id", kind=int),
        comment_url=field(comment, "html_url"),
        path=field(comment, "path"),
        line=optional(comment, "line", kind=int),
        start_line=optional(comment, "start_line", kind=int),
        original_line=optional(comment, "original_line", kind=int),
        side=optional(comment, "side"),
        diff_hunk=field(comment, "diff_hunk"),
        commit_id=field(comment, "commit_id"),
        in_reply_to_id=optional(comment, "in_reply_to_id", kind=int),
        **_pull_request_code(pull),
    )
    return _command_trigger(payload, command, pull, comment, is_pull_request=True, origin=origin)


def _review(delivery: Delivery, rules: RuleSettings) -> Decision:
    if delivery.action != "submitted":
        return Ignore(f"pull_request_review.{delivery.action} is not handled")
    payload = delivery.payload
    review = field(payload, "review", kind=dict)
    if _by_an_app(review):
        return Ignore("review written by a bot or an app")
    body = optional(review, "body")
    command = parse_command(body, rules.command) if body else None
    pull = field(payload, "pull_request", kind=dict)
    origin = Origin(
        source="review",
        review_id=field(review, "id", kind=int),
        review_url=field(review, "html_url"),
        **_pull_request_code(pull),
    )
    if command is not None:
        return _command_trigger(payload, command, pull, review, is_pull_request=True, origin=origin)
    if str(optional(review, "state") or "").lower() != "changes_requested":
        return Ignore("the review holds no command")
    # changes requested on a pull request: the worker decides whether it is the bot's own,
    # and whether its settings (`on_review`) and its follow-up cap let it go on
    repository, clone_url, installation_id = repository_of(payload)
    return Trigger(
        kind=TicketKind.REVIEW_FIX,
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=field(pull, "number", kind=int),
        is_pull_request=True,
        title=field(pull, "title"),
        body=optional(pull, "body") or "",
        requested_by=field(review, "user", "login"),
        origin=origin,
    )


_HANDLERS: dict[str, Callable[[Delivery, RuleSettings], Decision]] = {
    "issues": _issues,
    "issue_comment": _issue_comment,
    "pull_request_review_comment": _review_comment,
    "pull_request_review": _review,
    "check_run": check_run,
    "check_suite": check_suite,
}
