"""Who may ask the bot for what: one pure decision over the facts the worker gathered.

The facts come in two stages, and the same function decides both:

1. Before anything is cloned: the requester's permission on the repository
   (GitHub's `role_name`; the operator's own tickets from the dashboard or
   `/api` count as admin). Write, maintain and admin may ask for anything.
   `cancel` is also allowed to the person who asked for every run it would
   stop.
2. Once the repository's `.github/autocode.yml` is read: `allowed_users` and
   `allowed_teams` narrow who may start runs. A login not listed, with teams
   listed, needs GitHub's word on membership first: the decision then names
   the teams to ask about (`ask_teams`) and the caller decides again with
   the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..repo_settings import RepoSettings, team_ref

WRITE_ROLES = frozenset({"admin", "maintain", "write"})


class Refusal(StrEnum):
    """Why a request was refused: the wording and the check run's conclusion differ."""

    ROLE = "role"  # no write permission: a comment, ticket `rejected`
    SETTINGS = "settings"  # not listed in the settings file: also a `neutral` check run


@dataclass(frozen=True)
class Asker:
    """The facts about who asks."""

    login: str
    role: str  # GitHub's permission name: admin, maintain, write, triage, read, none
    operator: bool = False  # the operator's own ticket (dashboard, /api)


@dataclass(frozen=True)
class Decision:
    """Allowed, refused (with why, in words), or: ask GitHub about these teams first."""

    allowed: bool
    refusal: Refusal | None = None
    reason: str = ""
    ask_teams: tuple[tuple[str, str], ...] = ()  # (org, team slug)

    @property
    def pending(self) -> bool:
        return bool(self.ask_teams)


ALLOWED = Decision(allowed=True)


def authorize(
    asker: Asker,
    *,
    cancel_of: tuple[str, ...] | None = None,
    settings: RepoSettings | None = None,
    repository: str = "",
    team_member: bool | None = None,
) -> Decision:
    """May `asker` have this? Pure: every fact is an argument.

    `cancel_of`: for `cancel`, who asked for each run it would stop. `settings`:
    the repository's settings file once read (None before the clone).
    `team_member`: GitHub's answer after a decision asked about teams.
    """
    if asker.operator:
        return ALLOWED
    if asker.role not in WRITE_ROLES:
        own_runs = cancel_of is not None and bool(cancel_of)
        if own_runs and all(who == asker.login for who in cancel_of or ()):
            return ALLOWED
        return Decision(
            allowed=False,
            refusal=Refusal.ROLE,
            reason=f"{asker.login} has {asker.role} permission",
        )
    if settings is None or cancel_of is not None or not settings.restricts_users:
        return ALLOWED
    if asker.login.lower() in {u.lower() for u in settings.allowed_users}:
        return ALLOWED
    if settings.allowed_teams and team_member is None:
        owner = repository.split("/", 1)[0]
        teams = tuple(team_ref(entry, owner) for entry in settings.allowed_teams)
        return Decision(allowed=False, ask_teams=teams)
    if team_member:
        return ALLOWED
    return Decision(
        allowed=False,
        refusal=Refusal.SETTINGS,
        reason=f"{asker.login} is not allowed by .github/autocode.yml",
    )
