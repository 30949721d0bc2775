"""Decide, from a delivery alone, whether it makes a ticket (pure).

Every function here takes data and returns data: no I/O, no clock. Whatever
needs GitHub's API (may this sender ask? which branch does this PR use now?)
is left to the worker, so the webhook can answer in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import PayloadError
from ..models import Delivery, Origin, TicketKind, Trigger
from ..webhook.parse import field, optional
from .commands import Command, parse_command


@dataclass(frozen=True)
class Ignore:
    """The delivery makes no ticket; `reason` says why (for logs and the 200 answer)."""

    reason: str


@dataclass(frozen=True)
class RuleSettings:
    """The parts of the settings the rules depend on."""

    trigger_label: str = "auto-code"
    command: str = "/opencode"
    # our App's ID (or client ID): only its check runs are ours; "" trusts the name alone
    app_id: str = ""
    check_name: str = "Auto-Code"


Decision = Trigger | Ignore


def is_bot(user: Any) -> bool:
    """True for any Bot account (the App itself included): bots never trigger runs."""
    if not isinstance(user, dict):
        return False
    login = user.get("login")
    return user.get("type") == "Bot" or (isinstance(login, str) and login.endswith("[bot]"))


def _repository(payload: dict[str, Any]) -> tuple[str, str, int | None]:
    full_name = field(payload, "repository", "full_name")
    clone_url = field(payload, "repository", "clone_url")
    if "/" not in full_name:
        raise PayloadError("repository.full_name must be owner/name")
    installation_id = optional(payload, "installation", "id", kind=int)
    return full_name, clone_url, installation_id


def decide(delivery: Delivery, rules: RuleSettings) -> Decision:
    """Map a delivery to a Trigger or an Ignore. Raise PayloadError if it is malformed."""
    handler = _HANDLERS.get(delivery.event)
    if handler is None:
        return Ignore(f"event {delivery.event} is not handled")
    payload = delivery.payload
    if is_bot(payload.get("sender")):
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
    repository, clone_url, installation_id = _repository(payload)
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
    repository, clone_url, installation_id = _repository(payload)
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
    if command is None:
        return Ignore("the review holds no command")
    pull = field(payload, "pull_request", kind=dict)
    origin = Origin(
        source="review",
        review_id=field(review, "id", kind=int),
        review_url=field(review, "html_url"),
        **_pull_request_code(pull),
    )
    return _command_trigger(payload, command, pull, review, is_pull_request=True, origin=origin)


def _check_run(delivery: Delivery, rules: RuleSettings) -> Decision:
    payload = delivery.payload
    if delivery.action == "rerequested":
        kind = TicketKind.RERUN
    elif delivery.action == "requested_action":
        identifier = optional(payload, "requested_action", "identifier")
        if identifier != "cancel":
            return Ignore(f"check run action {identifier!r} is not handled")
        kind = TicketKind.CANCEL
    else:
        return Ignore(f"check_run.{delivery.action} is not handled")
    check_run = field(payload, "check_run", kind=dict)
    name = field(check_run, "name")
    if name != rules.check_name:
        return Ignore(f"check run {name!r} is not ours")
    if rules.app_id:
        app_id = field(check_run, "app", "id", kind=int)
        client_id = optional(check_run, "app", "client_id")
        if rules.app_id not in (str(app_id), client_id):
            return Ignore(f"check run of app {app_id} is not ours")
    pulls = optional(check_run, "pull_requests", kind=list) or []
    number = field(pulls[0], "number", kind=int) if pulls else 0
    repository, clone_url, installation_id = _repository(payload)
    return Trigger(
        kind=kind,
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=number,
        is_pull_request=bool(pulls),
        title=name,
        body="",
        requested_by=field(payload, "sender", "login"),
        origin=Origin(
            source="check_run",
            check_run_id=field(check_run, "id", kind=int),
            # our ticket id, set when the bot created the check run
            external_id=optional(check_run, "external_id") or "",
            head_sha=field(check_run, "head_sha"),
        ),
    )


_HANDLERS: dict[str, Callable[[Delivery, RuleSettings], Decision]] = {
    "issues": _issues,
    "issue_comment": _issue_comment,
    "pull_request_review_comment": _review_comment,
    "pull_request_review": _review,
    "check_run": _check_run,
}
