"""What the bot writes into git and pull requests: bodies, intros, commit messages (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from ...testloop import summary
from .outcome import DROPPED, Outcome, usage_line
from .text import CHECK_NAME, file_list, quote


def pr_intro(number: int) -> list[str]:
    """The opening of an issue's pull request."""
    return [
        f"Closes #{number}",
        "",
        f"This pull request was written by the OpenCode agent run by **{CHECK_NAME}**.",
    ]


def ticket_intro(ticket_type: str, priority: str) -> list[str]:
    """The opening of a Python API ticket's pull request (no issue behind it)."""
    return [
        f"A {ticket_type} ticket (priority: {priority}), "
        f"written by the OpenCode agent run by **{CHECK_NAME}**."
    ]


def pr_body(intro: Sequence[str], outcome: Outcome, answer: str) -> str:
    lines = [*intro, ""]
    if outcome.tests:
        final = outcome.tests[-1]
        verdict = summary(outcome.tests, outcome.max_attempts)
        lines += ["### Tests", "", f"{'✅' if final.passed else '❌'} `{outcome.test_command}`: "
                  f"{verdict}."]  # fmt: skip
        if not final.passed:
            lines += [
                "",
                "This pull request is a draft until they pass. The end of the last run:",
                "",
                "~~~~",
                quote(final.output, 3000) or "(no output)",
                "~~~~",
            ]
        lines.append("")
    if answer.strip():
        lines += ["### Summary from the agent", "", quote(answer, 6000), ""]
    if outcome.files:
        lines += ["### Changed files", *file_list(outcome.files), ""]
    if outcome.dropped:
        lines += [f"### {DROPPED}", *file_list(outcome.dropped), ""]
    lines.append(usage_line(outcome))
    return "\n".join(lines)


def ticket_commit_message(title: str, ticket_type: str, priority: str) -> str:
    """A Python API ticket's commit: its title, and what kind of ticket it was."""
    subject = f"Auto-Code: {' '.join(title.split())}"[:72]
    return (
        f"{subject}\n\nA {ticket_type} ticket (priority: {priority}), "
        "written by the OpenCode agent.\n"
    )


def commit_message(number: int, title: str, *, pull_request: bool = False) -> str:
    title = " ".join(title.split())
    subject = f"Auto-Code: {title}"[:72]
    kind = "pull request" if pull_request else "issue"
    return (
        f"{subject}\n\nWork on {kind} #{number}, written by the OpenCode agent.\n\nRefs #{number}\n"
    )
