"""parse: the fields the rules read, decoded from the body; the rest is skipped, never trusted.

The rules see only the fields parse decodes. These tests hold that this
changes no decision: over every example GitHub publishes, and over variants
of them that make tickets, the rules decide on the parsed delivery exactly
as on the whole payload read with `json.loads`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.models import Delivery
from bot.triggers.rules import Decision, RuleSettings, decide
from bot.webhook.parse import parse
from tests.paths import PAYLOADS

RULES = RuleSettings(trigger_label="auto-code", check_name="Auto-Code", app_id="")
ALL = sorted(PAYLOADS.glob("*/*.json"))


def headers(event: str, **more: str) -> dict[str, str]:
    return {"x-github-event": event, "x-github-delivery": "d-1", **more}


def event_of(path: Path) -> str:
    return path.parent.name


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    cur: Any = data
    for key in path[:-1]:
        if not isinstance(cur, dict) or not isinstance(cur.get(key), dict):
            return False
        cur = cur[key]
    cur[path[-1]] = value
    return True


def variants(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The example as published, and changed so that the rules make a ticket of it."""
    yield data
    changes: list[tuple[tuple[str, ...], Any]] = [
        (("label", "name"), "auto-code"),
        (("comment", "body"), "/opencode fix it"),
        (("review", "body"), "/opencode ask why"),
        (("check_run", "name"), "Auto-Code"),
        (("check_run", "external_id"), "12"),
        (("requested_action",), {"identifier": "cancel"}),
    ]
    made = copy.deepcopy(data)
    if any([_set(made, path, value) for path, value in changes]):
        yield made
        # a deleted account, a bare command, a comment on a pull request
        again = copy.deepcopy(made)
        _set(again, ("comment", "user"), None)
        _set(again, ("comment", "body"), "/opencode")
        _set(again, ("issue", "pull_request"), {"url": "https://api.github.com/x"})
        yield again


def outcome(delivery: Delivery) -> Decision | str:
    """What the rules decide, or that they refuse the delivery as malformed."""
    try:
        return decide(delivery, RULES)
    except PayloadError:
        return "PayloadError"


def parsed(event: str, data: dict[str, Any]) -> Delivery:
    return parse(headers(event), json.dumps(data).encode())


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_rules_decide_on_the_parsed_fields_as_on_the_whole_payload(path: Path) -> None:
    event = event_of(path)
    for data in variants(json.loads(path.read_text())):
        whole = Delivery("d-1", event, data.get("action", ""), data)
        delivery = parsed(event, data)
        assert delivery.action == whole.action
        assert outcome(delivery) == outcome(whole)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("issue"),
        lambda d: d["issue"].pop("number"),
        lambda d: d["issue"].update(title=None),
        lambda d: d.pop("repository"),
        lambda d: d["sender"].pop("login"),
    ],
)
def test_a_missing_field_is_still_the_rules_to_refuse(breakage: Callable[[dict], Any]) -> None:
    data = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    data["label"]["name"] = "auto-code"
    breakage(data)
    delivery = parsed("issues", data)
    with pytest.raises(PayloadError):
        decide(delivery, RULES)


@pytest.mark.parametrize(
    ("event", "change"),
    [
        ("issues", lambda d: d["issue"].update(number="1")),
        ("issues", lambda d: d["repository"].update(full_name=5)),
        ("issues", lambda d: d["installation"].update(id=True)),
        ("issues", lambda d: d["sender"].update(type=["Bot"])),
        ("issues", lambda d: d.update(action=None)),
        ("issue_comment", lambda d: d["comment"].update(id="9")),
        ("issue_comment", lambda d: d["comment"].update(performed_via_github_app="yes")),
    ],
)
def test_a_field_the_rules_read_of_the_wrong_type_is_refused_at_parse(
    event: str, change: Callable[[dict], Any]
) -> None:
    name = "labeled.json" if event == "issues" else "created.json"
    data = json.loads((PAYLOADS / event / name).read_text())
    data["installation"] = {"id": 1}
    change(data)
    with pytest.raises(PayloadError):
        parsed(event, data)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"action": 5}',
        b'{"action": "labeled"',
        b'{"action": "labeled", "x": [1,,2]}',
        b'{"title": "\\ud800"}',  # a lone surrogate: no database can store it
        b'{"title": "\xff"}',  # not UTF-8
        b"\xef\xbb\xbf{}",
        b"",
    ],
)
def test_malformed_bodies_are_refused_for_any_event(body: bytes) -> None:
    for event in ("issues", "star", "ping"):
        with pytest.raises(PayloadError):
            parse(headers(event), body)


def test_an_event_the_bot_does_not_handle_needs_only_an_object_with_a_string_action() -> None:
    body = json.dumps({"action": "created", "starred_at": 5, "repository": "anything"}).encode()
    delivery = parse(headers("star"), body)
    assert (delivery.event, delivery.action) == ("star", "created")
    assert delivery.payload == {"action": "created"}
    assert parse(headers("push"), b"{}").action == ""


def test_form_encoded_deliveries_carry_the_json_in_payload() -> None:
    from urllib.parse import urlencode

    data = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    body = urlencode({"payload": json.dumps(data)}).encode()
    form = headers("issues", **{"content-type": "application/x-www-form-urlencoded"})
    delivery = parse(form, body)
    assert delivery.action == "labeled"
    assert delivery.payload["issue"]["number"] == data["issue"]["number"]
    with pytest.raises(PayloadError):
        parse(form, b"other=1")


@pytest.mark.parametrize(
    "change",
    [
        {"x-github-event": ""},
        {"x-github-event": "Issues!"},
        {"x-github-delivery": ""},
        {"x-github-delivery": "x" * 201},
        {"content-type": "text/plain"},
    ],
)
def test_bad_headers_are_refused(change: dict[str, str]) -> None:
    with pytest.raises(PayloadError):
        parse({**headers("issues"), **change}, b"{}")
