"""Check suites and reviews that requested changes, on GitHub's real payloads (pure rules)."""

import json
from typing import Any

import pytest

from bot.models import Delivery, TicketKind, Trigger
from bot.triggers.rules import Ignore, RuleSettings, decide
from tests.paths import PAYLOADS

RULES = RuleSettings(trigger_label="auto-code", app_id="4242")


def suite_delivery(**suite: Any) -> Delivery:
    data = json.loads((PAYLOADS / "check_suite" / "completed.json").read_text())
    data["check_suite"].update(suite)
    data["installation"] = {"id": 7, "node_id": "x"}
    return Delivery("d-1", "check_suite", data["action"], data)


def review_delivery(state: str, body: str | None = None, user_type: str = "User") -> Delivery:
    data = json.loads((PAYLOADS / "pull_request_review" / "submitted.json").read_text())
    data["review"]["state"] = state
    data["review"]["body"] = body
    data["review"]["user"]["type"] = user_type
    return Delivery("d-2", "pull_request_review", "submitted", data)


def test_a_failed_suite_on_a_pull_request_is_a_ci_follow_up() -> None:
    delivery = suite_delivery(conclusion="failure")
    decision = decide(delivery, RULES)
    assert isinstance(decision, Trigger)
    suite = delivery.payload["check_suite"]
    assert decision.kind == TicketKind.CI_FIX
    assert decision.number == suite["pull_requests"][0]["number"]
    assert decision.is_pull_request
    assert decision.installation_id == 7
    assert decision.origin.source == "check_suite"
    assert decision.origin.head_sha == suite["head_sha"]
    assert decision.origin.check_suite_id == suite["id"]
    assert decision.origin.suite_conclusion == "failure"
    assert decision.lane == f"{decision.repository}#{decision.number}"


def test_a_passing_suite_is_a_follow_up_too_it_ends_the_loop() -> None:
    decision = decide(suite_delivery(conclusion="success"), RULES)
    assert isinstance(decision, Trigger)
    assert decision.origin.suite_conclusion == "success"


def test_a_suite_sent_by_a_bot_still_counts() -> None:
    # GitHub names whoever pushed as the sender: after the bot's own push, the bot
    delivery = suite_delivery(conclusion="failure")
    delivery.payload["sender"] = {"login": "autocode[bot]", "type": "Bot"}
    assert isinstance(decide(delivery, RULES), Trigger)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"app": {"id": 4242, "slug": "autocode"}}, "own check suite"),
        ({"pull_requests": []}, "no pull request"),
        ({"conclusion": "cancelled"}, "cancelled"),
        ({"conclusion": "stale"}, "stale"),
        ({"conclusion": None}, "without a conclusion"),
    ],
)
def test_suites_that_make_no_follow_up(change: dict[str, Any], why: str) -> None:
    decision = decide(suite_delivery(**change), RULES)
    assert isinstance(decision, Ignore)
    assert why in decision.reason


def test_only_completed_suites_count() -> None:
    delivery = suite_delivery(conclusion="failure")
    delivery = Delivery("d", "check_suite", "requested", delivery.payload)
    assert isinstance(decide(delivery, RULES), Ignore)


def test_a_review_requesting_changes_is_a_review_follow_up() -> None:
    delivery = review_delivery("changes_requested", "Please rename it.")
    decision = decide(delivery, RULES)
    assert isinstance(decision, Trigger)
    payload = delivery.payload
    assert decision.kind == TicketKind.REVIEW_FIX
    assert decision.number == payload["pull_request"]["number"]
    assert decision.requested_by == payload["review"]["user"]["login"]
    assert decision.origin.review_id == payload["review"]["id"]
    assert decision.origin.head_ref == payload["pull_request"]["head"]["ref"]


def test_a_command_in_a_review_keeps_working_whatever_its_state() -> None:
    decision = decide(review_delivery("changes_requested", "/opencode ask why?"), RULES)
    assert isinstance(decision, Trigger)
    assert decision.kind == TicketKind.ASK


@pytest.mark.parametrize("state", ["commented", "approved", "dismissed"])
def test_other_reviews_without_a_command_make_nothing(state: str) -> None:
    assert isinstance(decide(review_delivery(state, "Looks good"), RULES), Ignore)


def test_a_bots_review_makes_nothing() -> None:
    assert isinstance(decide(review_delivery("changes_requested", "x", "Bot"), RULES), Ignore)


def test_stop_is_a_control_command() -> None:
    data = json.loads((PAYLOADS / "issue_comment" / "created.json").read_text())
    data["comment"]["body"] = "/opencode stop"
    decision = decide(Delivery("d", "issue_comment", "created", data), RULES)
    assert isinstance(decision, Trigger)
    assert decision.kind == TicketKind.STOP
    assert decision.lane is None  # it never waits behind the run it concerns
