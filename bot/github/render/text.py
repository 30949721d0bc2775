"""Pieces every message is built from: the check's name, the hidden marker, numbers, quotes."""

from __future__ import annotations

from collections.abc import Sequence

CHECK_NAME = "Auto-Code"


def marker(ticket_id: int) -> str:
    """A hidden tag that lets a resumed run find its own comment."""
    return f"<!-- autocode:ticket={ticket_id} -->"


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def money(cost: float) -> str:
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def quote(text: str, limit: int) -> str:
    """The end of `text`, at most `limit` characters of it."""
    text = text.strip()
    if len(text) > limit:
        text = "…" + text[-limit:]
    return text


def file_list(files: Sequence[str], limit: int = 50) -> list[str]:
    shown = [f"- `{path}`" for path in files[:limit]]
    if len(files) > limit:
        shown.append(f"- … and {len(files) - limit} more")
    return shown
