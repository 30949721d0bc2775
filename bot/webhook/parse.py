"""Turn a verified request into a Delivery (pure).

GitHub's payloads drift from githubkit's strict schemas, so the bot reads
only the fields it needs from the raw JSON, checking each for its type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import PayloadError
from ..models import Delivery

_EVENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Parse a delivery; raise PayloadError for anything malformed."""
    event = headers.get("x-github-event", "").strip()
    if not event or not set(event) <= _EVENT_CHARS:
        raise PayloadError("missing or invalid X-GitHub-Event header")
    delivery_id = headers.get("x-github-delivery", "").strip()
    if not delivery_id or len(delivery_id) > 200:
        raise PayloadError("missing or invalid X-GitHub-Delivery header")
    content_type = headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        form = parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in form:
            raise PayloadError("form-encoded delivery without a payload field")
        raw: bytes | str = form["payload"][0]
    elif content_type in ("application/json", ""):
        raw = body
    else:
        raise PayloadError(f"unsupported content type {content_type!r}")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError("the payload must be a JSON object")
    action = payload.get("action", "")
    if not isinstance(action, str):
        raise PayloadError("`action` must be a string")
    return Delivery(delivery_id=delivery_id, event=event, action=action, payload=payload)


def field(obj: Any, *path: str, kind: type | tuple[type, ...] = str) -> Any:
    """`obj[path…]` checked to be of `kind`; PayloadError naming the path otherwise."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            raise PayloadError(f"payload lacks {'.'.join(path)}")
        cur = cur[key]
    if not isinstance(cur, kind) or (kind is int and isinstance(cur, bool)):
        raise PayloadError(f"payload field {'.'.join(path)} has the wrong type")
    return cur


def optional(obj: Any, *path: str, kind: type | tuple[type, ...] = str) -> Any:
    """Like `field`, but None when absent or null."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict) or cur.get(key) is None:
            return None
        cur = cur[key]
    if not isinstance(cur, kind) or (kind is int and isinstance(cur, bool)):
        raise PayloadError(f"payload field {'.'.join(path)} has the wrong type")
    return cur
