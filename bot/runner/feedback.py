"""What the agent is told when it goes back to its own pull request (pure).

Failed checks: each failing check run's name, its output, its annotations
and, for GitHub Actions jobs, the tail of the job's log. A review that
requested changes: its body and each of its comments with the file, the
line and the diff hunk, numbered, so the agent can say per comment what it
did; `replies` reads that back for the answers in the review threads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

LOG_TAIL_BYTES = 64 * 1024  # of a job's log, at most, to the agent
LOG_BUDGET = 24 * 1024  # of all the failing jobs' logs together, in one brief
MAX_OUTPUT = 3000  # characters of one check run's output text
MAX_BRIEF = 50_000  # characters of a follow-up's task (the prompt's own cap is 60,000)
MAX_ANNOTATIONS = 50
MAX_RUNS = 5  # failing check runs described in full

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Annotation:
    path: str
    start_line: int | None
    end_line: int | None
    level: str
    message: str
    title: str = ""

    def describe(self) -> str:
        where = self.path or "(no file)"
        if self.start_line:
            where += f":{self.start_line}"
            if self.end_line and self.end_line != self.start_line:
                where += f"-{self.end_line}"
        title = f" {self.title}:" if self.title else ""
        return f"- {where} ({self.level}){title} {_one_line(self.message, 500)}"


@dataclass(frozen=True)
class FailedCheck:
    """One failing check run, with what GitHub tells of it."""

    name: str
    app: str  # the App's slug, e.g. github-actions
    conclusion: str
    title: str = ""
    summary: str = ""
    text: str = ""
    annotations: Sequence[Annotation] = ()
    log_tail: str = ""  # the job log's last lines (GitHub Actions, with `actions: read`)


@dataclass(frozen=True)
class ReviewComment:
    id: int
    path: str
    line: int | None
    diff_hunk: str
    body: str
    start_line: int | None = None


@dataclass(frozen=True)
class Review:
    id: int
    author: str
    body: str
    comments: Sequence[ReviewComment] = field(default_factory=tuple)


def log_tail(data: bytes, limit: int = LOG_TAIL_BYTES) -> str:
    """The end of a job's log, at most `limit` bytes, from the start of a line.

    Colour codes, timestamps and control bytes go (a binary log keeps its
    readable text only): the agent gets lines it can read.
    """
    if len(data) > limit:
        data = data[-limit:]
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline != -1 else b""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    text = _STAMP.sub("", _ANSI.sub("", text))
    text = _CONTROL.sub("", text).replace("\ufffd", "")
    return text.strip("\n")


def ci_why(failed: Sequence[FailedCheck], sha: str) -> str:
    """What started a CI follow-up, in a line: "CI `test (3.12)` failed on abc1234"."""
    if not failed:
        return f"CI failed on {sha[:7]}"
    names = f"`{_one_line(failed[0].name, 80)}`"
    if len(failed) > 1:
        names += f" and {len(failed) - 1} more"
    return f"CI {names} failed on {sha[:7]}"


def review_why(author: str) -> str:
    return f"review by @{author} requested changes"


def ci_brief(failed: Sequence[FailedCheck], sha: str, *, no_logs: bool) -> str:
    """The agent's task after the checks of its commit failed."""
    parts = [
        f"The checks of your last commit ({sha[:7]}) on this pull request failed. "
        "Find the cause and fix the code so that they pass. Change the code or the "
        "tests only where they are wrong; do not weaken or skip a test to make it pass.",
        "",
    ]
    shown = failed[:MAX_RUNS]
    logs = sum(1 for check in shown if check.log_tail) or 1
    for check in shown:
        parts += _check_section(check, LOG_BUDGET // logs)
    if len(failed) > MAX_RUNS:
        parts.append(f"({len(failed) - MAX_RUNS} more failing checks are not shown.)")
    if no_logs:
        parts.append(
            "(The job logs could not be read: the bot's GitHub App lacks the "
            "`actions: read` permission. Only the checks' output and annotations are shown.)"
        )
    return "\n".join(parts).strip()


def _check_section(check: FailedCheck, log_limit: int) -> list[str]:
    lines = [
        f"## Check `{_one_line(check.name, 200)}` ({check.app or 'an app'}): {check.conclusion}"
    ]
    output = "\n\n".join(p.strip() for p in (check.title, check.summary, check.text) if p.strip())
    if output:
        lines += ["", "Its output:", "", _fenced(_clip(output, MAX_OUTPUT))]
    if check.annotations:
        lines += ["", "Its annotations:"]
        lines += [a.describe() for a in check.annotations[:MAX_ANNOTATIONS]]
    if check.log_tail:
        tail = log_tail(check.log_tail.encode(), log_limit)
        lines += ["", "The end of its job's log:", "", _fenced(tail)]
    return [*lines, ""]


def review_brief(review: Review) -> str:
    """The agent's task after a review requested changes: every comment, numbered."""
    parts = [
        f"@{review.author} reviewed this pull request and requested changes. "
        "Make the changes asked for.",
    ]
    if review.body.strip():
        parts += ["", "The review:", "", _quoted(review.body)]
    for number, comment in enumerate(review.comments, start=1):
        parts += ["", f"[{number}] On {_where(comment)}:", "", _quoted(comment.body)]
        if comment.diff_hunk.strip():
            parts += [
                "",
                "The diff hunk it refers to:",
                _fenced(_clip(comment.diff_hunk, 3000), "diff"),
            ]
    if review.comments:
        parts += [
            "",
            "End your final answer with one line per comment, starting with its number "
            "in brackets, saying what you did about it, e.g. `[1] Renamed the function.`",
        ]
    return "\n".join(parts)


_REPLY = re.compile(r"^\s*(?:[-*]\s*)?\[(\d{1,3})\]\s*[:.-]?\s*(\S.*)$", re.MULTILINE)


def replies(answer: str, count: int) -> dict[int, str]:
    """The agent's line per review comment (numbered from 1), read from its final answer."""
    found: dict[int, str] = {}
    for match in _REPLY.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= count and number not in found:
            found[number] = _one_line(match.group(2), 1000)
    return found


def thread_reply(said: str | None, sha: str | None, *, changed: bool) -> str:
    """What the bot writes in a review thread once its follow-up ended."""
    if sha and changed:
        head = f"Addressed in {sha[:7]}."
    elif changed:
        head = "Changed, but the commit could not be pushed."
    else:
        head = "No change was made for this comment."
    return f"{head} {said}" if said else head


def _where(comment: ReviewComment) -> str:
    if comment.line is None:
        return f"`{comment.path}` (a line no longer in the diff)"
    if comment.start_line and comment.start_line != comment.line:
        return f"`{comment.path}`, lines {comment.start_line}-{comment.line}"
    return f"`{comment.path}`, line {comment.line}"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "\n[… cut]"


def _fenced(text: str, info: str = "") -> str:
    fence = "~~~~"
    while fence in text:
        fence += "~"
    return f"{fence}{info}\n{text}\n{fence}"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in _clip(text, 4000).splitlines())
