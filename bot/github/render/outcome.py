"""What a finished run reports (`Outcome`), and the lines every report of it shares (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...models import Conclusion, Usage
from ...testloop import TestAttempt, summary
from .text import CHECK_NAME, duration, file_list, marker, money, quote

DROPPED = "Protected paths the agent changed (undone, not committed):"


@dataclass(frozen=True)
class Outcome:
    """Everything a finished run reports."""

    conclusion: Conclusion
    headline: str
    branch: str = ""
    pr_url: str = ""
    pr_number: int | None = None
    files: Sequence[str] = ()
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    reason: str = ""
    answer: str = ""
    output_tail: Sequence[str] = ()
    environment: str = ""  # which image ran, and whether it was built or cached
    errors: Sequence[str] = ()  # one line each, e.g. the problems of the settings file
    dropped: Sequence[str] = ()  # protected paths the agent changed, undone before commit
    tests: Sequence[TestAttempt] = ()  # the test loop's attempts, oldest first
    proxied: str = ""  # the LLM proxy's count of the run's requests and usage
    test_command: str = ""
    max_attempts: int = 0
    draft: bool = False  # the pull request was opened as a draft
    notes: Sequence[str] = ()  # things that went wrong on the side (a reviewer not requested)
    annotations: Sequence[dict[str, Any]] = ()  # check-run annotations of the final tests
    why: str = ""  # a follow-up: what started it ("CI `test` failed on abc1234")


def usage_line(outcome: Outcome) -> str:
    usage = outcome.usage
    return (
        f"{usage.input:,} input + {usage.output:,} output tokens · "
        f"{money(usage.cost)} · {duration(outcome.seconds)}"
    )


def tests_section(outcome: Outcome) -> list[str]:
    """The tests' verdict, then one line per attempt."""
    verdict = summary(outcome.tests, outcome.max_attempts)
    icon = "✅" if outcome.tests[-1].passed else "❌"
    lines = [f"{icon} Tests (`{outcome.test_command}`): {verdict}"]
    lines += [f"- {a.describe(outcome.max_attempts or None)}" for a in outcome.tests]
    return [*lines, ""]


# -- the reports of a finished run -------------------------------------------------

MAX_SUMMARY = 60000


def outcome_comment(ticket_id: int, outcome: Outcome) -> str:
    icon = {
        Conclusion.SUCCESS: "✅",
        Conclusion.NEUTRAL: "⚪",
        Conclusion.FAILURE: "❌",
        Conclusion.TIMED_OUT: "⏱️",
        Conclusion.CANCELLED: "🛑",
    }[outcome.conclusion]
    lines = [marker(ticket_id), f"{icon} **{CHECK_NAME}**: {outcome.headline}", ""]
    if outcome.why:
        lines += [f"Started because {outcome.why}.", ""]
    if outcome.errors:
        lines += [*(f"- {e}" for e in outcome.errors[:50]), ""]
    if outcome.pr_url:
        draft = " (draft)" if outcome.draft else ""
        lines += [f"Pull request{draft}: {outcome.pr_url}", ""]
    if outcome.files:
        lines += ["Changed files:", *file_list(outcome.files), ""]
    if outcome.dropped:
        lines += [DROPPED, *file_list(outcome.dropped), ""]
    if outcome.tests:
        lines += tests_section(outcome)
    if outcome.reason:
        lines += [f"Reason: {outcome.reason}", ""]
    if outcome.notes:
        lines += [*(f"Note: {n}" for n in outcome.notes), ""]
    if outcome.output_tail:
        lines += [
            "<details><summary>Last lines of the agent's output</summary>",
            "",
            "~~~~",
            quote("\n".join(outcome.output_tail), 3000),
            "~~~~",
            "</details>",
            "",
        ]
    lines.append(usage_line(outcome))
    return "\n".join(lines)


def answer_comment(ticket_id: int, outcome: Outcome) -> str:
    """An `ask` run's answer: the agent's text itself, then the usage line."""
    return "\n".join(
        [
            marker(ticket_id),
            f"💬 **{CHECK_NAME}** answered:",
            "",
            quote(outcome.answer, 30000),
            "",
            usage_line(outcome),
        ]
    )


def check_output(outcome: Outcome) -> dict[str, Any]:
    """The `output` object of the completed check run."""
    lines = _check_summary(outcome)
    text_parts = _check_text(outcome)
    output: dict[str, Any] = {
        "title": outcome.headline[:250],
        "summary": "\n".join(lines)[:MAX_SUMMARY],
    }
    if text_parts:
        output["text"] = "\n".join(text_parts)[:MAX_SUMMARY]
    if outcome.annotations:
        output["annotations"] = list(outcome.annotations)[:50]
    return output


def _check_summary(outcome: Outcome) -> list[str]:
    """The check run's summary: what came of the run, and its usage."""
    lines = [outcome.headline, ""]
    if outcome.why:
        lines += [f"Started because {outcome.why}.", ""]
    if outcome.errors:
        lines += [*(f"- {e}" for e in outcome.errors[:50]), ""]
    if outcome.pr_url:
        lines += [f"Pull request: {outcome.pr_url}", ""]
    if outcome.files:
        lines += ["**Changed files**", *file_list(outcome.files, 100), ""]
    if outcome.dropped:
        lines += [f"**{DROPPED}**", *file_list(outcome.dropped, 100), ""]
    if outcome.tests:
        lines += tests_section(outcome)
    if outcome.reason:
        lines += [f"**Reason:** {outcome.reason}", ""]
    lines += [f"**Usage:** {usage_line(outcome)}"]
    if outcome.environment:
        lines += ["", f"**Environment:** {outcome.environment}"]
    if outcome.proxied:
        lines += ["", f"**LLM proxy:** {outcome.proxied}"]
    return lines


def _check_text(outcome: Outcome) -> list[str]:
    """The check run's text: the last test output, the answer, the agent's last lines."""
    text_parts = []
    if outcome.tests:
        final = outcome.tests[-1]
        text_parts += [
            f"### Test output (attempt {final.number}, `{outcome.test_command}`)",
            "",
            "~~~~",
            quote(final.output, 30000) or "(no output)",
            "~~~~",
            "",
        ]
    if outcome.answer:
        text_parts += ["### The agent's answer", "", quote(outcome.answer, 20000), ""]
    if outcome.output_tail:
        text_parts += [
            "### Last lines of the agent's output",
            "",
            "~~~~",
            quote("\n".join(outcome.output_tail), 20000),
            "~~~~",
        ]
    return text_parts
