"""Read the token usage a provider reports out of the bytes the proxy passes on (pure).

The proxy never changes a response; it only looks at it on the way. A JSON
answer carries `usage` at its top; a stream (SSE) carries it in one or more
`data:` events — OpenAI's chat API in the last chunk, its Responses API in
`response.completed`, Anthropic's in `message_start` (input) and
`message_delta` (output, cumulative), Google's as `usageMetadata`. Within
one answer the largest figure of each kind is the answer's figure, which is
right for all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

MAX_JSON = 8 * 1024 * 1024  # a non-streamed answer larger than this is passed on unread
MAX_LINE = 1024 * 1024  # an SSE line longer than this is skipped


@dataclass
class Tokens:
    """Tokens by kind, as providers report them."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.reasoning

    def add(self, other: Tokens) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def widen(self, other: Tokens) -> None:
        """Keep the larger figure of each kind (events of one answer repeat or grow them)."""
        for f in fields(self):
            setattr(self, f.name, max(getattr(self, f.name), getattr(other, f.name)))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usage_of(obj: Any) -> Tokens | None:
    """The usage one JSON object reports, in any of the known shapes; None if it has none."""
    obj = _dict(obj)
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        usage = _dict(obj.get("message")).get("usage")  # Anthropic's message_start
    if not isinstance(usage, dict):
        usage = _dict(obj.get("response")).get("usage")  # OpenAI Responses' events
    if isinstance(usage, dict):
        return Tokens(
            input=_int(usage.get("prompt_tokens")) or _int(usage.get("input_tokens")),
            output=_int(usage.get("completion_tokens")) or _int(usage.get("output_tokens")),
            reasoning=_int(_dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))
            or _int(_dict(usage.get("output_tokens_details")).get("reasoning_tokens")),
            cache_read=_int(_dict(usage.get("prompt_tokens_details")).get("cached_tokens"))
            or _int(_dict(usage.get("input_tokens_details")).get("cached_tokens"))
            or _int(usage.get("cache_read_input_tokens")),
            cache_write=_int(usage.get("cache_creation_input_tokens")),
        )
    google = obj.get("usageMetadata")
    if isinstance(google, dict):
        return Tokens(
            input=_int(google.get("promptTokenCount")),
            output=_int(google.get("candidatesTokenCount")),
            reasoning=_int(google.get("thoughtsTokenCount")),
            cache_read=_int(google.get("cachedContentTokenCount")),
        )
    return None


class Meter:
    """Fed the raw bytes of one answer as they pass; `tokens` is what that answer used."""

    def __init__(self, content_type: str) -> None:
        self.stream = "event-stream" in content_type.lower()
        self.tokens = Tokens()
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, chunk: bytes) -> None:
        if self._overflow:
            return
        self._buffer += chunk
        if not self.stream:
            if len(self._buffer) > MAX_JSON:
                self._overflow = True
                self._buffer.clear()
            return
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()  # drop the rest of an absurd line
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._line(line)

    def _line(self, line: bytes) -> None:
        # only lines that can carry usage are parsed: the others pass untouched and cheaply
        if not line.startswith(b"data:") or b"sage" not in line:
            return
        self._take(line[5:].strip())

    def _take(self, raw: bytes) -> None:
        try:
            found = usage_of(json.loads(raw))
        except ValueError:
            return
        if found is not None:
            self.tokens.widen(found)

    def finish(self) -> Tokens:
        """The answer is complete: read what is left and return its usage."""
        if self._overflow:
            return self.tokens
        if self.stream:
            if self._buffer:
                self._line(bytes(self._buffer).rstrip(b"\r"))
        elif self._buffer:
            self._take(bytes(self._buffer))
        self._buffer.clear()
        return self.tokens
