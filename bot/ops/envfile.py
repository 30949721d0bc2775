"""The env file: the App's credentials written in place, readable by their owner only."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from ..errors import SetupError
from .manifest import Credentials, Written

KEY_PATH = "AUTOCODE_PRIVATE_KEY_PATH"
# Removed from the env file: an inline key would win over the new key file.
INLINE_KEY = "AUTOCODE_PRIVATE_KEY"
# The slug is not a setting the bot reads, so it is kept as a comment.
COMMENT = "# autocode setup: GitHub App"
_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,=-]*")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _quote(value: str) -> str:
    """A value python-dotenv reads back unchanged."""
    if _PLAIN.fullmatch(value):
        return value
    if "${" in value:  # python-dotenv expands ${NAME} even inside quotes
        raise SetupError("GitHub sent a value holding '${', which an env file cannot keep")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _open_private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT
    return fd


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically when replacing."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = _open_private(tmp)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _drop_quoted(lines: list[str], start: int, rest: str) -> int:
    """The index after an assignment whose quoted value may span several lines."""
    quote = rest[:1]
    if quote not in ('"', "'"):
        return start + 1
    body = rest[1:]
    index = start
    while True:
        if re.search(r"(?<!\\)" + re.escape(quote), body):
            return index + 1
        index += 1
        if index >= len(lines):
            return index
        body = lines[index]


def update_env(text: str, values: Mapping[str, str], drop: tuple[str, ...], comment: str) -> str:
    """`text` with `values` set in place (or appended), `drop` keys removed, other lines kept."""
    lines = text.splitlines()
    out: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _ASSIGN.match(line)
        if line.startswith(COMMENT):
            if COMMENT not in seen:
                out.append(comment)
                seen.add(COMMENT)
            index += 1
            continue
        if match is not None and (match.group(1) in values or match.group(1) in drop):
            key = match.group(1)
            if key in values and key not in seen:
                out.append(f"{key}={_quote(values[key])}")
                seen.add(key)
            index = _drop_quoted(lines, index, match.group(2))
            continue
        out.append(line)
        index += 1
    missing = [k for k in values if k not in seen]
    if missing or COMMENT not in seen:
        if out and out[-1].strip():
            out.append("")
        if COMMENT not in seen:
            out.append(comment)
        out.extend(f"{k}={_quote(values[k])}" for k in missing)
    return "\n".join(out) + "\n"


def write_credentials(
    creds: Credentials, env_file: Path, process_env: Mapping[str, str] | None = None
) -> Written:
    """The key into `<slug>.private-key.pem` beside the env file, the rest into the env file.

    Both end up mode 0600. Settings set in `process_env` (the process environment,
    not the env file) win over the env file (see config.load_environ); their names
    are returned as `shadowed`.
    """
    env_file = env_file.resolve()
    env_file.parent.mkdir(parents=True, exist_ok=True)
    key_file = env_file.parent / f"{creds.slug}.private-key.pem"
    old = env_file.read_text() if env_file.exists() else ""
    values = {
        "AUTOCODE_APP_ID": str(creds.app_id),
        "AUTOCODE_CLIENT_ID": creds.client_id,
        "AUTOCODE_WEBHOOK_SECRET": creds.webhook_secret,
        KEY_PATH: str(key_file),
    }
    comment = f"{COMMENT} {creds.slug} ({creds.html_url})"
    new = update_env(old, values, (INLINE_KEY,), comment)
    _write_private(key_file, creds.pem if creds.pem.endswith("\n") else creds.pem + "\n")
    try:
        _write_private(env_file, new)
    except BaseException:
        key_file.unlink(missing_ok=True)
        raise
    env = process_env if process_env is not None else {}
    shadowed = tuple(k for k in (*values, INLINE_KEY) if env.get(k, "").strip())
    return Written(creds, env_file, key_file, shadowed)
