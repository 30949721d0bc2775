"""Protected paths: gitignore-style globs over the paths a run changed (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def _translate(pattern: str) -> str:
    """A gitignore-style glob → a regular expression over a path from the repository root."""
    pattern = pattern.strip()
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # a pattern that names a directory covers everything in it
    return prefix + "".join(out) + "(?:/.*)?"


def _literal_dirs(pattern: str) -> list[str]:
    """The directories a pattern's fixed beginning names: `.github/workflows/**` → both."""
    if "/" not in pattern.strip("/"):
        return []
    parts: list[str] = []
    for segment in pattern.strip().strip("/").split("/"):
        if any(ch in segment for ch in "*?["):
            break
        parts.append(segment)
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def protected(path: str, patterns: Sequence[str]) -> bool:
    """Whether a changed path falls under one of the protected globs.

    A path that *is* one of the directories a pattern starts with counts too:
    an agent that turns `.github` into a file or a symlink would otherwise
    replace the workflows without touching a path under them.
    """
    path = path.strip("/")
    for pattern in patterns:
        if re.fullmatch(_translate(pattern), path):
            return True
        if path in _literal_dirs(pattern):
            return True
    return False


def split_protected(paths: Iterable[str], patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(paths that may be committed, protected paths to drop)."""
    kept: list[str] = []
    dropped: list[str] = []
    for path in paths:
        (dropped if protected(path, patterns) else kept).append(path)
    return kept, dropped
