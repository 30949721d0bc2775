"""JSON with comments and trailing commas (JSONC), as dev container files are written (pure).

`strip_jsonc` turns such text into plain JSON for `json.loads`, keeping every
line and column where it was, so an error in the file is reported where the
maintainer sees it.
"""

from __future__ import annotations

import json


def strip_jsonc(text: str) -> str:
    """JSON with comments (`//`, `/* */`) and trailing commas → plain JSON.

    Comments and trailing commas become spaces (newlines are kept), so the
    line and column of any JSON error stay those of the original text. Text
    inside string literals, escapes included, is never touched.
    """
    out: list[str] = []
    comma = -1  # where in `out` a comma is that a `}` or `]` would make trailing
    last = ""  # the last character of the JSON itself (not a space or a comment)
    i = 0
    while i < len(text):
        if text[i] == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            comma, last, i = -1, '"', end
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise json.JSONDecodeError("unterminated /* comment", text, i)
            end += 2
        else:
            char = text[i]
            if char in "}]" and comma >= 0:
                out[comma] = " "
            if not char.isspace():
                # `[,]` or `{"a": 1,,}` stay invalid: only a comma after a value is trailing.
                comma = len(out) if char == "," and last not in ("", "{", "[", ",") else -1
                last = char
            out.append(char)
            i += 1
            continue
        out.append("".join(c if c in "\r\n" else " " for c in text[i:end]))
        i = end
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Where the string literal opening at `start` ends (past its quote), or the text's end."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return len(text)
