"""Read opencode's `--format json` event stream (pure).

Each stdout line is one JSON object with a `type` (`step_start`, `tool_use`,
`text`, `step_finish`, `error`) and a `part`. Lines that are not JSON are
kept as plain output for failure reports.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..models import AgentEvent, Usage

_FILE_KEYS = ("filePath", "file_path", "path", "filepath")


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def parse_line(line: str) -> tuple[AgentEvent | None, dict[str, Any] | None]:
    """One stdout line → (condensed event, the raw object) or (None, None) for non-JSON."""
    line = line.strip()
    if not line.startswith("{"):
        return None, None
    try:
        raw = json.loads(line)
    except ValueError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    kind = raw.get("type")
    part = _as_dict(raw.get("part"))
    if kind == "tool_use":
        state = _as_dict(part.get("state"))
        tool_input = _as_dict(state.get("input"))
        target = ""
        for key in _FILE_KEYS:
            if isinstance(tool_input.get(key), str):
                target = tool_input[key]
                break
        else:
            for key in ("command", "pattern", "url", "description"):
                if isinstance(tool_input.get(key), str):
                    target = tool_input[key].splitlines()[0][:200] if tool_input[key] else ""
                    break
        return (
            AgentEvent(
                kind="tool",
                tool=str(part.get("tool", "")),
                target=target,
                status=str(state.get("status", "")),
                # a failed or refused tool carries its reason in `error`, not `output`
                text=str(state.get("output") or state.get("error") or "")[-2000:],
            ),
            raw,
        )
    if kind == "text":
        return AgentEvent(kind="text", text=str(part.get("text", ""))), raw
    if kind == "step_finish":
        tokens = _as_dict(part.get("tokens"))
        total = int(_num(tokens.get("input")) + _num(tokens.get("output")))
        return AgentEvent(kind="finish", tokens=total, cost=_num(part.get("cost"))), raw
    if kind == "step_start":
        return AgentEvent(kind="step"), raw
    if kind == "error":
        return AgentEvent(kind="error", text=error_message(raw)), raw
    return AgentEvent(kind="other"), raw


def error_message(raw: dict[str, Any]) -> str:
    error = raw.get("error")
    if isinstance(error, str):
        return error
    error = _as_dict(error)
    data = _as_dict(error.get("data"))
    message = data.get("message") or error.get("message") or error.get("name") or "agent error"
    return str(message)[:2000]


@dataclass
class Transcript:
    """Accumulates a run's events into what the bot reports."""

    usage: Usage = field(default_factory=Usage)
    files: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    session_id: str = ""
    last_step: str = ""
    steps: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    def feed(self, line: str) -> AgentEvent | None:
        """Take one stdout line; return the condensed event, if it was one."""
        event, raw = parse_line(line)
        if event is None or raw is None:
            if line.strip():
                self.tail.append(line.rstrip()[:500])
            return None
        session = raw.get("sessionID") or _as_dict(raw.get("part")).get("sessionID")
        if isinstance(session, str) and session:
            self.session_id = session
        if event.kind == "tool":
            self.steps += 1
            self.last_step = event.describe()
            self.tail.append(f"[{event.tool}] {event.target} ({event.status})")
            if event.status == "error" and event.text:
                self.tail.append(f"  {event.text.strip()[:300]}")
            edits = (
                event.tool in ("write", "edit", "patch", "multiedit") and event.status != "error"
            )
            if edits and event.target and event.target not in self.files:
                self.files.append(event.target)
        elif event.kind == "text":
            if event.text.strip():
                self.texts.append(event.text)
                self.last_step = event.describe()
                self.tail.append(event.text.strip()[-500:])
        elif event.kind == "finish":
            part = _as_dict(raw.get("part"))
            tokens = _as_dict(part.get("tokens"))
            cache = _as_dict(tokens.get("cache"))
            self.usage.input += int(_num(tokens.get("input")))
            self.usage.output += int(_num(tokens.get("output")))
            self.usage.reasoning += int(_num(tokens.get("reasoning")))
            self.usage.cache_read += int(_num(cache.get("read")))
            self.usage.cache_write += int(_num(cache.get("write")))
            self.usage.cost += event.cost
        elif event.kind == "error":
            self.errors.append(event.text)
            self.last_step = event.describe()
            self.tail.append(f"error: {event.text}")
        return event

    @property
    def final_text(self) -> str:
        return self.texts[-1].strip() if self.texts else ""
