"""The test loop's decisions and words (pure).

After the agent, the repository's `test` command runs in its own container;
when it fails, the agent is told the command and the end of its output in
the same opencode session and tries again, up to `max_attempts`. This module
holds what that needs without any I/O: the shell scripts the containers run,
the prompt that hands a failure back, the short lines the progress shows,
and the `path:line` locations in test output that become check-run
annotations.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FEEDBACK_LINES = 80  # lines of test output handed back to the agent
FEEDBACK_CHARS = 6000
MAX_ANNOTATIONS = 50  # GitHub's limit per check-run request


@dataclass(frozen=True)
class TestAttempt:
    """One run of the test command."""

    __test__ = False  # not a pytest class, whatever its name says

    number: int
    passed: bool
    exit_code: int | None
    timed_out: bool = False
    seconds: float = 0.0  # the container's own time: the command, as the engine saw it
    overhead: float = 0.0  # creating, starting and removing the container
    output: str = ""  # the end of the combined stdout and stderr

    def describe(self, limit: int | None = None) -> str:
        """`attempt 2 of 3: tests failed (exit 1, 4s)`."""
        of = f" of {limit}" if limit else ""
        if self.passed:
            verdict = "tests passed"
        elif self.timed_out:
            verdict = "tests timed out"
        else:
            verdict = f"tests failed (exit {self.exit_code})"
        return f"attempt {self.number}{of}: {verdict} in {self.seconds:.0f}s"


def script(commands: Sequence[str]) -> str:
    """A POSIX shell script that runs each command in turn and stops at the first failure.

    Each command is echoed first (like `set -x`, but readable) and runs in its
    own `sh -c`, so a command's `cd` or `set` cannot change the next one.
    stderr goes to stdout: the bot shows one interleaved output.
    """
    lines = ["exec 2>&1"]
    for command in commands:
        lines.append(f"printf '%s\\n' {shlex.quote('$ ' + command)}")
        lines.append(f"sh -c {shlex.quote(command)} || exit $?")
    return "\n".join(lines) + "\n"


def tail(text: str, lines: int = FEEDBACK_LINES, chars: int = FEEDBACK_CHARS) -> str:
    """The end of an output: at most `lines` lines and `chars` characters."""
    kept = text.rstrip("\n").splitlines()[-lines:]
    out = "\n".join(kept)
    if len(out) > chars:
        out = "…" + out[-chars:]
    return out


def feedback_prompt(
    command: str, attempt: TestAttempt, max_attempts: int, dropped: Sequence[str] = ()
) -> str:
    """What the agent is told when its change does not pass the tests."""
    if attempt.timed_out:
        what = "did not finish in time"
    else:
        what = f"failed with exit code {attempt.exit_code}"
    parts = [
        f"The repository's test command `{command}` {what} after your change "
        f"(attempt {attempt.number} of {max_attempts}).",
        "The end of its output:",
        "~~~~",
        tail(attempt.output) or "(no output)",
        "~~~~",
        "",
        "Fix the code so that this command passes. Do not weaken or delete the tests "
        "to make them pass, and do not change the test command. When you are done, "
        "finish with a short summary of what you changed.",
    ]
    if dropped:
        parts += [
            "",
            "These paths are protected and your changes to them were undone: "
            + ", ".join(f"`{p}`" for p in dropped[:20]),
        ]
    return "\n".join(parts)


# -- annotations -------------------------------------------------------------------

# `path:line: message` (pytest's tracebacks, mypy, Go's `t.Errorf`) and
# `path:line:col: message` (ruff, flake8, gcc, clang, eslint's unix format)
_COLON = re.compile(
    r"^\s*(?P<path>[^\s:()\"'<>][^:\"'<>]*?\.[A-Za-z0-9_+-]+):(?P<line>\d+)(?::(?P<col>\d+))?"
    r"(?::\s*(?P<message>.*))?\s*$"
)
# `path(line,col): message` (tsc, MSBuild)
_PAREN = re.compile(
    r"^\s*(?P<path>[^\s:()\"'<>][^:()\"'<>]*?\.[A-Za-z0-9_+-]+)\((?P<line>\d+)(?:,(?P<col>\d+))?\)"
    r":\s*(?P<message>.*)$"
)
_PREFIXES = ("/workspace/", "./")


def _relative(path: str) -> str | None:
    """A path inside the repository, or None (absolute elsewhere, or climbing out)."""
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
    if path.startswith("/") or not path:
        return None
    parts = path.split("/")
    if ".." in parts or "" in parts:
        return None
    return path


def find_annotations(
    output: str, exists: Callable[[str], bool] | None = None, *, title: str = "Test failure"
) -> list[dict[str, Any]]:
    """Check-run annotations for the `path:line` failures an output names.

    Only paths inside the repository (and, with `exists`, paths that are
    files of it) count: stack frames of the standard library or of installed
    packages would only add noise. pytest's `E   ` lines just above a
    location become its message. At most MAX_ANNOTATIONS, first seen first.
    """
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    context: list[str] = []
    for raw in output.splitlines():
        line = raw.rstrip()
        if line.startswith("E ") or line == "E":
            context.append(line[1:].strip())
            continue
        match = _COLON.match(line) or _PAREN.match(line)
        if match is None:
            if line.strip():
                context = []
            continue
        path = _relative(match["path"])
        number = int(match["line"])
        if path is None or number < 1 or (path, number) in seen:
            context = []
            continue
        if exists is not None and not exists(path):
            context = []
            continue
        message = (match["message"] or "").strip()
        details = [c for c in context if c][-10:]
        if details:
            message = (message + "\n" if message else "") + "\n".join(details)
        seen.add((path, number))
        found.append(
            {
                "path": path,
                "start_line": number,
                "end_line": number,
                "annotation_level": "failure",
                "title": title,
                "message": (message or "failed here")[:2000],
            }
        )
        context = []
        if len(found) >= MAX_ANNOTATIONS:
            break
    return found


def summary(attempts: Iterable[TestAttempt], max_attempts: int) -> str:
    """One sentence for the PR body and the outcome: do the tests pass, after how many tries."""
    attempts = list(attempts)
    if not attempts:
        return ""
    last = attempts[-1]
    if last.passed:
        if len(attempts) == 1:
            return "the tests pass"
        return f"the tests pass (on attempt {last.number} of {max_attempts})"
    plural = "s" if len(attempts) > 1 else ""
    return f"the tests still fail after {len(attempts)} attempt{plural}"
