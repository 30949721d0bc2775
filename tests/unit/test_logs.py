"""Log lines a flood could repeat: the first at once, then one a minute with what was left out."""

from __future__ import annotations

import logging

import pytest

from bot.logs import Throttled


def test_a_flood_of_one_kind_writes_one_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    quiet = Throttled(logging.getLogger("bot.test"), every=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="bot.test"):
        for n in range(500):
            now[0] = n * 0.1  # 500 in 50 seconds
            quiet.log(logging.WARNING, "webhook refused: bad signature", {"n": n}, "bad")
        quiet.log(logging.INFO, "webhook ignored", {"n": 0}, "issues.opened")  # another kind
        now[0] = 61.0
        quiet.log(logging.WARNING, "webhook refused: bad signature", {"n": 500}, "bad")
    lines = [
        (r.getMessage(), r.__dict__.get("n"), r.__dict__.get("suppressed")) for r in caplog.records
    ]
    assert lines == [
        ("webhook refused: bad signature", 0, None),
        ("webhook ignored", 0, None),
        ("webhook refused: bad signature", 500, 499),  # the 499 left out are counted
    ]
    assert caplog.records[0].levelno == logging.WARNING
