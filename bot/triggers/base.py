"""What every rule shares: the Ignore answer, the settings the rules read, who is a bot (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PayloadError
from ..models import Trigger
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


def repository_of(payload: dict[str, Any]) -> tuple[str, str, int | None]:
    full_name = field(payload, "repository", "full_name")
    clone_url = field(payload, "repository", "clone_url")
    if "/" not in full_name:
        raise PayloadError("repository.full_name must be owner/name")
    installation_id = optional(payload, "installation", "id", kind=int)
    return full_name, clone_url, installation_id
