"""The slash-command grammar: find `/opencode …` in a comment's markdown (pure).

A command counts only where a reader sees it as typed by the commenter: at the
start of a line, outside quotes, code blocks, code spans and HTML comments.
Quoting someone's command in a reply, or showing one in an example, must never
start a run.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SUBCOMMANDS = ("fresh", "ask", "retry", "cancel", "stop", "help")
NAMES = ("run", *SUBCOMMANDS)

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_HTML_BLOCK = re.compile(r" {0,3}<(!--|pre\b|script\b|style\b|textarea\b)", re.IGNORECASE)
_HTML_END = {
    "!--": "-->",
    "pre": "</pre>",
    "script": "</script>",
    "style": "</style>",
    "textarea": "</textarea>",
}
_LONE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_TRAILING_PUNCTUATION = ".,:;!?"


@dataclass(frozen=True)
class Command:
    """One slash command: `name` is in NAMES; `unknown` keeps a sub-command we did not know."""

    name: str
    instructions: str = ""
    unknown: str = ""


def parse_command(body: str, command: str = "/opencode") -> Command | None:
    """The first command in a comment body, or None when it addresses no command to us."""
    word = command.strip()
    if not word:
        raise ValueError("the command word must not be empty")
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = re.compile(rf"[ \t]*{re.escape(word)}(?=\s|$)", re.IGNORECASE)
    for index in _prose_lines(lines):
        match = start.match(lines[index])
        if match is not None:
            rest = lines[index][match.end() :].strip()
            return _command(rest, "\n".join(lines[index + 1 :]))
    return None


def _command(rest: str, following: str) -> Command:
    """Split what follows the command word into a sub-command and its instructions."""
    first, after = [*rest.split(maxsplit=1), "", ""][:2]
    bare = first.rstrip(_TRAILING_PUNCTUATION)
    if bare.casefold() in SUBCOMMANDS:
        return Command(bare.casefold(), _join(after, following))
    if not after and not following.strip() and _LONE_WORD.fullmatch(bare):
        # `/opencode frobnicate`: a mistyped sub-command is likelier than a one-word request
        return Command("help", unknown=bare)
    return Command("run", _join(rest, following))


def _join(line: str, following: str) -> str:
    return f"{line.strip()}\n{following}".strip()


def _prose_lines(lines: Sequence[str]) -> Iterator[int]:
    """Indexes of lines that start as ordinary text, in order (a CommonMark block scan).

    Fenced and indented code, HTML comments and <pre>-like blocks, block quotes
    with their lazy continuation lines, and lines that begin inside a
    multi-line code span are left out.
    """
    fence: tuple[str, int] | None = None
    html_end: str | None = None
    in_quote = False
    paragraph: list[int] = []
    for index, raw in enumerate(lines):
        line = raw.expandtabs(4)
        if fence is not None:
            if _closes(line, fence):
                fence = None
            continue
        if html_end is not None:
            if html_end in line.casefold():
                html_end = None
            continue
        if not line.strip():
            yield from _outside_code_spans(lines, paragraph)
            paragraph, in_quote = [], False
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent >= 4 and not paragraph and not in_quote:
            continue  # indented code: a paragraph cannot continue here
        opened = _FENCE.fullmatch(line)
        if opened is not None and not (opened[1][0] == "`" and "`" in opened[2]):
            yield from _outside_code_spans(lines, paragraph)
            paragraph, in_quote = [], False
            fence = (opened[1][0], len(opened[1]))
            continue
        html = _HTML_BLOCK.match(line)
        if html is not None:
            yield from _outside_code_spans(lines, paragraph)
            paragraph, in_quote = [], False
            end = _HTML_END[html[1].casefold()]
            if end not in line[html.end() :].casefold():
                html_end = end
            continue
        if line.lstrip().startswith(">"):
            yield from _outside_code_spans(lines, paragraph)
            paragraph, in_quote = [], True
            continue
        if in_quote:
            continue  # a lazy continuation line renders inside the quote
        paragraph.append(index)
    yield from _outside_code_spans(lines, paragraph)


def _closes(line: str, fence: tuple[str, int]) -> bool:
    char, length = fence
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and len(stripped) >= length
        and set(stripped) == {char}
    )


def _outside_code_spans(lines: Sequence[str], paragraph: list[int]) -> Iterator[int]:
    """The paragraph's lines whose start is not inside a code span opened on an earlier line."""
    if len(paragraph) < 2:
        yield from paragraph
        return
    spans = iter(_code_spans("\n".join(lines[index] for index in paragraph)))
    span = next(spans, None)
    offset = 0
    for index in paragraph:
        while span is not None and span[1] <= offset:
            span = next(spans, None)
        if span is None or not span[0] < offset:
            yield index
        offset += len(lines[index]) + 1


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each code span, in order: a backtick run closed by the next equal run.

    Linear-logarithmic on purpose: a comment is untrusted input of up to 65 kB.
    """
    runs = [(m.start(), m.end()) for m in re.finditer(r"`+", text)]
    by_length: dict[int, list[int]] = {}
    for k, (begin, end) in enumerate(runs):
        by_length.setdefault(end - begin, []).append(k)
    spans: list[tuple[int, int]] = []
    k = 0
    while k < len(runs):
        begin, end = runs[k]
        k += 1
        slash = begin
        while slash > 0 and text[slash - 1] == "\\":
            slash -= 1
        if (begin - slash) % 2:
            begin += 1  # an escaped backtick is literal; the rest of the run may still open
        if begin == end:
            continue
        same = by_length.get(end - begin, [])
        at = bisect.bisect_left(same, k)
        if at < len(same):
            spans.append((begin, runs[same[at]][1]))
            k = same[at] + 1
    return spans


def help_text(command: str, unknown: str = "") -> str:
    """The markdown answer to `<command> help`, and to a sub-command the bot does not know."""
    lines = []
    if unknown:
        lines += [f"`{command} {unknown.replace('`', '')}` is not a command I know.", ""]
    lines += [
        "Write one of these at the start of a line in a comment:",
        "",
        f"- `{command} <instructions>` — work on this issue or pull request,"
        " following your instructions (continues the previous session).",
        f"- `{command} fresh <instructions>` — the same, in a new agent session"
        " that forgets earlier runs.",
        f"- `{command} ask <question>` — answer a question about the code; nothing is pushed.",
        f"- `{command} retry` — run the last request again.",
        f"- `{command} cancel` — stop the queued or running request.",
        f"- `{command} stop` — on a pull request: no more fixes after failed checks"
        " or reviews that request changes.",
        f"- `{command} help` — show this list.",
    ]
    return "\n".join(lines)
