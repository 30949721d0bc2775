"""A ticket's origin: typed, stored as JSON with only what is set, read back whatever its age."""

from __future__ import annotations

import json

import msgspec
import pytest

from bot.models import EMPTY_ORIGIN, Origin, TicketKind


def test_only_what_is_set_is_stored() -> None:
    origin = Origin(source="issue_comment", comment_id=7, fresh=True)
    assert json.loads(origin.to_json()) == {
        "source": "issue_comment",
        "comment_id": 7,
        "fresh": True,
    }
    assert EMPTY_ORIGIN.to_json() == "{}"


def test_it_reads_back_from_text_and_from_a_json_column() -> None:
    origin = Origin(source="retry", retry_of=3, as_kind=TicketKind.ASK, path="é.py", line=4)
    assert Origin.of(origin.to_json()) == origin
    assert Origin.of(json.loads(origin.to_json())) == origin  # PostgreSQL's jsonb: a dict
    assert Origin.of(origin.to_json()).as_kind is TicketKind.ASK
    assert Origin.of(None) == Origin.of("") == Origin.of({}) == EMPTY_ORIGIN


def test_keys_it_does_not_know_are_left_out() -> None:
    """A row written by another version of the bot still loads."""
    assert Origin.of('{"source": "review", "review_id": 5, "later": [1, {"x": 2}]}') == Origin(
        source="review", review_id=5
    )


def test_a_wrong_type_is_an_error_not_a_guess() -> None:
    with pytest.raises(msgspec.ValidationError):
        Origin.of('{"comment_id": "not a number"}')


def test_but_changes_a_copy() -> None:
    origin = Origin(source="check_run", external_id="12")
    changed = origin.but(target=12)
    assert (changed.target, origin.target) == (12, None)
    assert changed.external_id == "12"
