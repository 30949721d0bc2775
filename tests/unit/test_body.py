"""The intake reads its headers and body straight from the ASGI scope and receive channel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.errors import BodyTooLarge, PayloadError
from bot.webhook.endpoint import ClientGone, read_body, request_headers


class Channel:
    """An ASGI receive channel that hands out the given messages and counts the reads."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.reads = 0

    async def __call__(self) -> dict[str, Any]:
        self.reads += 1
        return self.messages.pop(0)


def chunks(*parts: bytes) -> Channel:
    last = len(parts) - 1
    return Channel(
        *({"type": "http.request", "body": p, "more_body": i < last} for i, p in enumerate(parts))
    )


def read(channel: Channel, headers: dict[str, str], limit: int = 10) -> bytes:
    return asyncio.run(read_body(channel, headers, limit))


def test_the_body_is_read_whole_from_its_chunks() -> None:
    assert read(chunks(b"abc", b"", b"de"), {}) == b"abcde"
    assert read(chunks(b"0123456789"), {"content-length": "10"}) == b"0123456789"
    assert read(Channel({"type": "http.request"}), {}) == b""


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    channel = chunks(b"x" * 11)
    with pytest.raises(BodyTooLarge):
        read(channel, {"content-length": "11"})
    assert channel.reads == 0


def test_an_undeclared_body_over_the_limit_is_refused_once_it_passes_it() -> None:
    channel = chunks(b"x" * 6, b"x" * 6, b"x" * 6, b"x" * 6)
    with pytest.raises(BodyTooLarge):
        read(channel, {})
    assert channel.reads == 2  # the rest is never read


def test_a_malformed_length_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="Content-Length"):
        read(chunks(b"{}"), {"content-length": "ten"})


def test_a_client_that_leaves_mid_body_is_no_answer() -> None:
    with pytest.raises(ClientGone):
        read(
            Channel(
                {"type": "http.request", "body": b"{", "more_body": True},
                {"type": "http.disconnect"},
            ),
            {},
        )


def test_only_the_headers_the_intake_reads_are_taken_the_first_of_repeats() -> None:
    scope = {
        "headers": [
            (b"host", b"example.test"),
            (b"x-github-event", b"issues"),
            (b"x-github-event", b"push"),
            (b"x-hub-signature-256", b"sha256=ab"),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"x-github-delivery", b"d-\xe9"),
        ]
    }
    assert request_headers(scope) == {
        "x-github-event": "issues",
        "x-hub-signature-256": "sha256=ab",
        "content-type": "application/json; charset=utf-8",
        "x-github-delivery": "d-\xe9",
    }
