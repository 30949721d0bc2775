"""The trigger rules over every real payload example GitHub publishes."""

import json
from pathlib import Path

import pytest

from bot.errors import PayloadError
from bot.models import Delivery, Trigger
from bot.triggers.rules import Ignore, RuleSettings, decide
from tests.paths import PAYLOADS

RULES = RuleSettings(trigger_label="auto-code")
ALL = sorted(PAYLOADS.glob("*/*.json"))


def delivery(path: Path, payload: dict | None = None) -> Delivery:
    data = payload if payload is not None else json.loads(path.read_text())
    return Delivery("d-1", path.parent.name, data.get("action", ""), data)


def relabel(name: str, label: str = "auto-code", **issue: object) -> dict:
    data = json.loads((PAYLOADS / "issues" / name).read_text())
    data["label"]["name"] = label
    data["issue"].update(issue)
    return data


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_is_handled_without_error(path: Path) -> None:
    decision = decide(delivery(path), RULES)
    assert isinstance(decision, Trigger | Ignore)


def test_examples_as_published_make_no_ticket() -> None:
    # none of the published examples carries our label
    made = [p for p in ALL if isinstance(decide(delivery(p), RULES), Trigger)]
    assert made == []


@pytest.mark.parametrize("name", ["labeled.json", "labeled.with-organization.json"])
def test_the_trigger_label_makes_a_ticket(name: str) -> None:
    path = PAYLOADS / "issues" / name
    data = relabel(name)
    decision = decide(delivery(path, data), RULES)
    assert isinstance(decision, Trigger)
    assert decision.kind == "label"
    assert decision.repository == data["repository"]["full_name"]
    assert decision.clone_url == data["repository"]["clone_url"]
    assert decision.number == data["issue"]["number"]
    assert decision.title == data["issue"]["title"]
    assert decision.requested_by == data["sender"]["login"]
    assert decision.is_pull_request is False


def test_label_match_ignores_case_and_follows_the_setting() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    assert isinstance(decide(delivery(path, relabel("labeled.json", "Auto-Code")), RULES), Trigger)
    custom = RuleSettings(trigger_label="bot please")
    assert isinstance(
        decide(delivery(path, relabel("labeled.json", "bot please")), custom), Trigger
    )
    assert isinstance(decide(delivery(path, relabel("labeled.json")), custom), Ignore)


def test_other_labels_bots_and_closed_issues_make_none() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    assert isinstance(decide(delivery(path, relabel("labeled.json", "bug")), RULES), Ignore)
    by_bot = relabel("labeled.json")
    by_bot["sender"].update(login="autocode[bot]", type="Bot")
    assert isinstance(decide(delivery(path, by_bot), RULES), Ignore)
    other_bot = relabel("labeled.json")
    other_bot["sender"]["type"] = "Bot"
    assert isinstance(decide(delivery(path, other_bot), RULES), Ignore)
    closed = relabel("labeled.json", state="closed")
    assert isinstance(decide(delivery(path, closed), RULES), Ignore)


def test_null_body_becomes_empty() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    decision = decide(delivery(path, relabel("labeled.json", body=None)), RULES)
    assert isinstance(decision, Trigger) and decision.body == ""


def test_installation_id_is_read_when_present() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    data = relabel("labeled.json")
    data["installation"] = {"id": 77, "node_id": "x"}
    decision = decide(delivery(path, data), RULES)
    assert isinstance(decision, Trigger) and decision.installation_id == 77


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("issue"),
        lambda d: d["issue"].update(number="1"),
        lambda d: d.pop("repository"),
        lambda d: d["repository"].update(full_name=5),
        lambda d: d["sender"].pop("login"),
    ],
)
def test_a_matching_but_malformed_payload_is_an_error(breakage: object) -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    data = relabel("labeled.json")
    breakage(data)  # type: ignore[operator]
    with pytest.raises(PayloadError):
        decide(delivery(path, data), RULES)
