"""Markdown the bot writes on GitHub: comments, check-run output, PR bodies (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import Conclusion, Usage
from ..testloop import TestAttempt, summary

CHECK_NAME = "Auto-Code"
PHASES = ("queued", "preparing", "agent", "testing", "pushing", "done")
PHASE_LABELS = {
    "queued": "Queued",
    "preparing": "Preparing the workspace",
    "agent": "Agent working",
    "testing": "Running the tests",
    "pushing": "Pushing the branch",
    "done": "Done",
}
MAX_SUMMARY = 60000


def marker(ticket_id: int) -> str:
    """A hidden tag that lets a resumed run find its own comment."""
    return f"<!-- autocode:ticket={ticket_id} -->"


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def money(cost: float) -> str:
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def _quote(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) > limit:
        text = "…" + text[-limit:]
    return text


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
    errors: Sequence[str] = ()  # one line each, e.g. the problems of the settings file
    dropped: Sequence[str] = ()  # protected paths the agent changed, undone before commit
    tests: Sequence[TestAttempt] = ()  # the test loop's attempts, oldest first
    proxied: str = ""  # the LLM proxy's count of the run's requests and usage
    test_command: str = ""
    max_attempts: int = 0
    draft: bool = False  # the pull request was opened as a draft
    notes: Sequence[str] = ()  # things that went wrong on the side (a reviewer not requested)
    annotations: Sequence[dict[str, Any]] = ()  # check-run annotations of the final tests


def progress_comment(
    ticket_id: int,
    phase: str,
    elapsed: float,
    last_step: str = "",
    details_url: str = "",
    *,
    attempts: Sequence[str] = (),
    with_tests: bool = False,
) -> str:
    """The run's one comment while it runs; with tests, each attempt under their step."""
    lines = [marker(ticket_id), f"**{CHECK_NAME}** is working on this · {duration(elapsed)}", ""]
    reached = PHASES.index(phase) if phase in PHASES else 0
    for index, name in enumerate(PHASES[:-1]):
        if name == "testing" and not with_tests:
            continue
        if index < reached:
            lines.append(f"- [x] {PHASE_LABELS[name]}")
        elif index == reached:
            step = f" — {last_step}" if last_step and name == "agent" else ""
            lines.append(f"- [ ] **{PHASE_LABELS[name]}**{step} ⏳")
        else:
            lines.append(f"- [ ] {PHASE_LABELS[name]}")
        if name == "testing":
            lines += [f"  - {a}" for a in attempts]
    if details_url:
        lines += ["", f"[Details]({details_url})"]
    return "\n".join(lines)


def _usage_line(outcome: Outcome) -> str:
    usage = outcome.usage
    return (
        f"{usage.input:,} input + {usage.output:,} output tokens · "
        f"{money(usage.cost)} · {duration(outcome.seconds)}"
    )


def _files(files: Sequence[str], limit: int = 50) -> list[str]:
    shown = [f"- `{path}`" for path in files[:limit]]
    if len(files) > limit:
        shown.append(f"- … and {len(files) - limit} more")
    return shown


def outcome_comment(ticket_id: int, outcome: Outcome) -> str:
    icon = {
        Conclusion.SUCCESS: "✅",
        Conclusion.NEUTRAL: "⚪",
        Conclusion.FAILURE: "❌",
        Conclusion.TIMED_OUT: "⏱️",
        Conclusion.CANCELLED: "🛑",
    }[outcome.conclusion]
    lines = [marker(ticket_id), f"{icon} **{CHECK_NAME}**: {outcome.headline}", ""]
    if outcome.errors:
        lines += [*(f"- {e}" for e in outcome.errors[:50]), ""]
    if outcome.pr_url:
        draft = " (draft)" if outcome.draft else ""
        lines += [f"Pull request{draft}: {outcome.pr_url}", ""]
    if outcome.files:
        lines += ["Changed files:", *_files(outcome.files), ""]
    if outcome.dropped:
        lines += [_DROPPED, *_files(outcome.dropped), ""]
    if outcome.tests:
        lines += _tests(outcome)
    if outcome.reason:
        lines += [f"Reason: {outcome.reason}", ""]
    if outcome.notes:
        lines += [*(f"Note: {n}" for n in outcome.notes), ""]
    if outcome.output_tail:
        lines += [
            "<details><summary>Last lines of the agent's output</summary>",
            "",
            "~~~~",
            _quote("\n".join(outcome.output_tail), 3000),
            "~~~~",
            "</details>",
            "",
        ]
    lines.append(_usage_line(outcome))
    return "\n".join(lines)


_DROPPED = "Protected paths the agent changed (undone, not committed):"


def _tests(outcome: Outcome) -> list[str]:
    verdict = summary(outcome.tests, outcome.max_attempts)
    icon = "✅" if outcome.tests[-1].passed else "❌"
    lines = [f"{icon} Tests (`{outcome.test_command}`): {verdict}"]
    lines += [f"- {a.describe(outcome.max_attempts or None)}" for a in outcome.tests]
    return [*lines, ""]


def answer_comment(ticket_id: int, outcome: Outcome) -> str:
    """An `ask` run's answer: the agent's text itself, then the usage line."""
    return "\n".join(
        [
            marker(ticket_id),
            f"💬 **{CHECK_NAME}** answered:",
            "",
            _quote(outcome.answer, 30000),
            "",
            _usage_line(outcome),
        ]
    )


def check_output(outcome: Outcome) -> dict[str, Any]:
    """The `output` object of the completed check run."""
    lines = [outcome.headline, ""]
    if outcome.errors:
        lines += [*(f"- {e}" for e in outcome.errors[:50]), ""]
    if outcome.pr_url:
        lines += [f"Pull request: {outcome.pr_url}", ""]
    if outcome.files:
        lines += ["**Changed files**", *_files(outcome.files, 100), ""]
    if outcome.dropped:
        lines += [f"**{_DROPPED}**", *_files(outcome.dropped, 100), ""]
    if outcome.tests:
        lines += _tests(outcome)
    if outcome.reason:
        lines += [f"**Reason:** {outcome.reason}", ""]
    lines += [f"**Usage:** {_usage_line(outcome)}"]
    if outcome.proxied:
        lines += ["", f"**LLM proxy:** {outcome.proxied}"]
    text_parts = []
    if outcome.tests:
        final = outcome.tests[-1]
        text_parts += [
            f"### Test output (attempt {final.number}, `{outcome.test_command}`)",
            "",
            "~~~~",
            _quote(final.output, 30000) or "(no output)",
            "~~~~",
            "",
        ]
    if outcome.answer:
        text_parts += ["### The agent's answer", "", _quote(outcome.answer, 20000), ""]
    if outcome.output_tail:
        text_parts += [
            "### Last lines of the agent's output",
            "",
            "~~~~",
            _quote("\n".join(outcome.output_tail), 20000),
            "~~~~",
        ]
    output: dict[str, Any] = {
        "title": outcome.headline[:250],
        "summary": "\n".join(lines)[:MAX_SUMMARY],
    }
    if text_parts:
        output["text"] = "\n".join(text_parts)[:MAX_SUMMARY]
    if outcome.annotations:
        output["annotations"] = list(outcome.annotations)[:50]
    return output


def progress_output(
    phase: str, elapsed: float, last_step: str = "", *, attempts: Sequence[str] = ()
) -> dict[str, str]:
    """The `output` of the check run while it runs: the same steps as the comment."""
    label = PHASE_LABELS.get(phase, phase)
    text = f"{label} · {duration(elapsed)}"
    if last_step:
        text += f"\n\nLatest step: {last_step}"
    if attempts:
        text += "\n\n**Tests**\n" + "\n".join(f"- {a}" for a in attempts)
    return {"title": label, "summary": text}


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
                _quote(final.output, 3000) or "(no output)",
                "~~~~",
            ]
        lines.append("")
    if answer.strip():
        lines += ["### Summary from the agent", "", _quote(answer, 6000), ""]
    if outcome.files:
        lines += ["### Changed files", *_files(outcome.files), ""]
    if outcome.dropped:
        lines += [f"### {_DROPPED}", *_files(outcome.dropped), ""]
    lines.append(_usage_line(outcome))
    return "\n".join(lines)


def rejected_comment(user: str, role: str) -> str:
    return (
        f"@{user} {CHECK_NAME} only runs for people with write, maintain or admin permission "
        f"on this repository (yours: {role}). Ask a maintainer to add the label or the command."
    )


def not_allowed_comment(user: str) -> str:
    """A sender with write permission whom `.github/autocode.yml` does not list."""
    return (
        f"@{user} {CHECK_NAME} runs here only for the people and teams that "
        "`.github/autocode.yml` lists in `allowed_users` / `allowed_teams`. "
        "Ask one of them to add the label or the command."
    )


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


def waiting_comment(ticket_id: int, ahead: int) -> str:
    """The comment of a request that waits behind the run already going on its issue."""
    return "\n".join(
        [
            marker(ticket_id),
            f"⏳ **{CHECK_NAME}**: queued behind the run already going here (ticket {ahead}); "
            "it starts when that one ends.",
        ]
    )


def fork_refused(number: int, head_repo: str | None) -> str:
    where = f"the fork `{head_repo}`" if head_repo else "a fork that no longer exists"
    return (
        f"{CHECK_NAME} cannot push to pull request #{number}: its branch lives in {where}, "
        "and the App may only push to branches of this repository. "
        "Push the branch to this repository, or ask on a pull request from a branch here."
    )


def nothing_to_cancel() -> str:
    return f"{CHECK_NAME}: nothing is running or queued here, so there is nothing to cancel."


def nothing_to_retry() -> str:
    return f"{CHECK_NAME}: there is no earlier run here to retry."


OPERATOR_NAMES = frozenset({"dashboard", "api"})  # never @-mention: they are real logins


def cancelled_by(user: str) -> str:
    if user in OPERATOR_NAMES:
        return f"cancelled from the {'dashboard' if user == 'dashboard' else 'API'}"
    return f"cancelled by @{user}"
