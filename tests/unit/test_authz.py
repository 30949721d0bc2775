"""Who may ask: the one authorization decision, on GitHub's own payloads and answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.policy.authz import Asker, Refusal, authorize
from bot.repo_settings import RepoSettings
from tests.paths import PAYLOADS, REST_EXAMPLES


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def asker_of(event: dict[str, Any], role: str) -> Asker:
    """The sender of a real delivery, with the role GitHub's permission API gives."""
    return Asker(event["sender"]["login"], role)


ADMIN_ANSWER = json.loads(
    (
        REST_EXAMPLES
        / "repository-collaborator-permission-response-if-user-has-admin-permissions.json"
    ).read_text()
)
COMMENT = payload("issue_comment/created.json")
LABELED = payload("issues/labeled.json")


def test_the_permission_apis_role_name_is_what_decides() -> None:
    asker = asker_of(COMMENT, ADMIN_ANSWER["role_name"])
    assert authorize(asker).allowed


@pytest.mark.parametrize("role", ["admin", "maintain", "write"])
def test_write_maintain_and_admin_may_ask(role: str) -> None:
    assert authorize(asker_of(LABELED, role)).allowed


@pytest.mark.parametrize("role", ["triage", "read", "none"])
def test_anyone_else_is_refused_with_their_role_in_words(role: str) -> None:
    asker = asker_of(COMMENT, role)
    decision = authorize(asker)
    assert not decision.allowed and decision.refusal is Refusal.ROLE
    assert decision.reason == f"{COMMENT['sender']['login']} has {role} permission"


def test_the_operators_tickets_need_no_role() -> None:
    assert authorize(Asker("dashboard", "none", operator=True)).allowed


def test_cancel_is_also_allowed_to_whoever_asked_for_every_run_it_stops() -> None:
    login = COMMENT["sender"]["login"]
    reader = Asker(login, "read")
    assert authorize(reader, cancel_of=(login, login)).allowed
    refused = authorize(reader, cancel_of=(login, "someone-else"))
    assert not refused.allowed and refused.refusal is Refusal.ROLE
    assert not authorize(reader, cancel_of=()).allowed  # nothing of theirs to stop
    assert authorize(Asker(login, "write"), cancel_of=()).allowed  # "nothing to cancel" then


def test_the_settings_file_narrows_who_may_start_runs() -> None:
    login = LABELED["sender"]["login"]
    writer = Asker(login, "write")
    assert authorize(writer, settings=RepoSettings()).allowed  # no lists: everyone with write
    listed = RepoSettings(allowed_users=(login.upper(),))  # logins are case-insensitive
    assert authorize(writer, settings=listed).allowed
    others = RepoSettings(allowed_users=("alice",))
    refused = authorize(writer, settings=others)
    assert not refused.allowed and refused.refusal is Refusal.SETTINGS
    assert refused.reason == f"{login} is not allowed by .github/autocode.yml"
    # cancel is never narrowed by the file
    assert authorize(writer, settings=others, cancel_of=(login,)).allowed
    # nor can the file let in someone without write permission
    assert not authorize(Asker(login, "read"), settings=listed).allowed


def test_teams_need_githubs_word_first() -> None:
    login = LABELED["sender"]["login"]
    owner = LABELED["repository"]["owner"]["login"]
    teams = RepoSettings(allowed_users=("alice",), allowed_teams=("core", "other-org/ops"))
    writer = Asker(login, "write")
    first = authorize(writer, settings=teams, repository=f"{owner}/x")
    assert not first.allowed and first.pending and first.refusal is None
    assert first.ask_teams == ((owner, "core"), ("other-org", "ops"))
    member = authorize(writer, settings=teams, repository=f"{owner}/x", team_member=True)
    assert member.allowed
    stranger = authorize(writer, settings=teams, repository=f"{owner}/x", team_member=False)
    assert not stranger.allowed and stranger.refusal is Refusal.SETTINGS
    assert not stranger.pending
