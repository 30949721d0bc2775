"""Decide, from a delivery alone, whether it makes a ticket (pure).

Every function here takes data and returns data: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PayloadError
from ..models import Delivery, Trigger
from ..webhook.parse import field, optional


@dataclass(frozen=True)
class Ignore:
    """The delivery makes no ticket; `reason` says why (for logs and the 200 answer)."""

    reason: str


@dataclass(frozen=True)
class RuleSettings:
    """The parts of the settings the rules depend on."""

    trigger_label: str = "auto-code"
    command: str = "/opencode"


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
        kind="label",
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=field(issue, "number", kind=int),
        is_pull_request=isinstance(issue.get("pull_request"), dict),
        title=field(issue, "title"),
        body=optional(issue, "body") or "",
        requested_by=field(payload, "sender", "login"),
    )


_HANDLERS = {
    "issues": _issues,
}
