"""Turn a verified request into a Delivery (pure).

GitHub's payloads drift from githubkit's strict schemas, so the bot reads
only the fields it needs from the raw JSON, checking each for its type.

The body is decoded by msgspec into small typed structs that name just
those fields: the decoder checks the whole body is valid UTF-8 JSON but
builds Python objects only for what the rules read (a 7 KB `issues` payload
costs a tenth of `json.loads`), and a field the rules read that has the
wrong type is refused here, with 400, whatever the action. The structs are
then handed to the rules as plain dicts, the shape the rules and their tests
use. An event the bot does not handle is checked for valid JSON and a
string `action` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..errors import PayloadError
from ..models import Delivery

_EVENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


# -- the fields the rules read, by event ---------------------------------------
# Every field is optional (absent and null are both None, which the dicts then
# leave out): whether a field must be there is the rules' call, per action.
class _Part(msgspec.Struct, omit_defaults=True, gc=False):
    """A JSON object of which only the declared fields are read; the rest is skipped."""


class _Object(_Part):
    """An object whose presence is what counts (an issue's `pull_request`, an App)."""


class _User(_Part):
    login: str | None = None
    type: str | None = None


class _Label(_Part):
    name: str | None = None


class _Repository(_Part):
    full_name: str | None = None
    clone_url: str | None = None


class _Installation(_Part):
    id: int | None = None


class _Ref(_Part):
    ref: str | None = None
    sha: str | None = None
    repo: _Repository | None = None


class _Thread(_Part):
    """An issue or a pull request."""

    number: int | None = None
    title: str | None = None
    body: str | None = None
    state: str | None = None
    pull_request: _Object | None = None
    head: _Ref | None = None
    base: _Ref | None = None


class _Comment(_Part):
    """A comment, a review comment or a review."""

    user: _User | None = None
    performed_via_github_app: _Object | None = None
    body: str | None = None
    id: int | None = None
    html_url: str | None = None
    path: str | None = None
    line: int | None = None
    start_line: int | None = None
    original_line: int | None = None
    side: str | None = None
    diff_hunk: str | None = None
    commit_id: str | None = None
    in_reply_to_id: int | None = None
    state: str | None = None  # a review's


class _App(_Part):
    id: int | None = None
    client_id: str | None = None
    slug: str | None = None


class _Numbered(_Part):
    number: int | None = None


class _CheckRun(_Part):
    id: int | None = None
    name: str | None = None
    app: _App | None = None
    pull_requests: list[_Numbered] | None = None
    external_id: str | None = None
    head_sha: str | None = None


class _CheckSuite(_Part):
    id: int | None = None
    head_sha: str | None = None
    head_branch: str | None = None
    status: str | None = None
    conclusion: str | None = None
    app: _App | None = None
    pull_requests: list[_Numbered] | None = None


class _Action(_Part):
    identifier: str | None = None


class _Envelope(_Part):
    """What every delivery must be: a JSON object with a string `action`, if any."""

    action: str = ""


class _Event(_Envelope):
    sender: _User | None = None
    repository: _Repository | None = None
    installation: _Installation | None = None


class _Issues(_Event):
    label: _Label | None = None
    issue: _Thread | None = None


class _IssueComment(_Event):
    issue: _Thread | None = None
    comment: _Comment | None = None


class _ReviewComment(_Event):
    pull_request: _Thread | None = None
    comment: _Comment | None = None


class _Review(_Event):
    pull_request: _Thread | None = None
    review: _Comment | None = None


class _CheckRunEvent(_Event):
    check_run: _CheckRun | None = None
    requested_action: _Action | None = None


class _CheckSuiteEvent(_Event):
    check_suite: _CheckSuite | None = None


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "issues": msgspec.json.Decoder(_Issues),
    "issue_comment": msgspec.json.Decoder(_IssueComment),
    "pull_request_review_comment": msgspec.json.Decoder(_ReviewComment),
    "pull_request_review": msgspec.json.Decoder(_Review),
    "check_run": msgspec.json.Decoder(_CheckRunEvent),
    "check_suite": msgspec.json.Decoder(_CheckSuiteEvent),
}
_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _invalid(exc: msgspec.ValidationError) -> PayloadError:
    """A PayloadError naming the field msgspec refused (its message ends "- at `$.a.b`")."""
    detail, _, where = str(exc).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    if not path:
        if detail.startswith("Expected `object`"):
            return PayloadError("the payload must be a JSON object")
        return PayloadError(f"malformed payload: {detail}")
    if path == "action":
        return PayloadError("`action` must be a string")
    return PayloadError(f"payload field {path} is invalid: {detail}")


def decode(event: str, raw: bytes | str) -> tuple[str, dict[str, Any]]:
    """The action and the fields of `raw` the rules read for `event`; PayloadError if malformed."""
    try:
        if isinstance(raw, bytes) and not raw.isascii():
            raw.decode()  # msgspec does not check the text it skips: all of it must be UTF-8
        data = _DECODERS.get(event, _ENVELOPE).decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise PayloadError("the body is not valid JSON") from None
    payload: dict[str, Any] = msgspec.to_builtins(data)
    return data.action, payload


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
    action, payload = decode(event, raw)
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
