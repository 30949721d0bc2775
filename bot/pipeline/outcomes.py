"""How each stage of a run ends, and in which words: pure decisions, no I/O.

Every function takes what a stage saw (an agent's result, a command's exit,
the test attempts) and returns the `Outcome` the run concludes with, or
None when the run goes on. The wording lives here and in `github.render`;
the stages only carry it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..github import render
from ..github.render import Outcome
from ..models import Conclusion, RunResult, TicketState, Usage
from ..repo_settings import PATH as SETTINGS_PATH
from ..repo_settings import RepoSettings
from ..runner.spec import ContainerExit
from ..testloop import TestAttempt, summary

STATE_OF = {
    Conclusion.SUCCESS: TicketState.SUCCEEDED,
    Conclusion.NEUTRAL: TicketState.SUCCEEDED,
    Conclusion.FAILURE: TicketState.FAILED,
    Conclusion.TIMED_OUT: TicketState.TIMED_OUT,
    Conclusion.CANCELLED: TicketState.CANCELLED,
}


def plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        input=a.input + b.input,
        output=a.output + b.output,
        reasoning=a.reasoning + b.reasoning,
        cache_read=a.cache_read + b.cache_read,
        cache_write=a.cache_write + b.cache_write,
        cost=a.cost + b.cost,
    )


def refused_budget(repo: RepoSettings, error: str) -> str:
    """The budget in words when the LLM proxy refused a request past it; "" otherwise.

    The proxy counts what the provider billed (titles included) and refuses
    the request past the budget before opencode's own report gets there.
    """
    limit = repo.max_tokens_per_run
    if not limit or "token budget" not in error:
        return ""
    return (
        f"the token budget of {limit:,} tokens per run was reached "
        "(the LLM proxy refused the agent's next request)"
    )


def spent_budget(repo: RepoSettings, billed: int) -> str:
    """The budget in words when the LLM proxy counted `billed` tokens and refused more."""
    return (
        f"the token budget of {repo.max_tokens_per_run or 0:,} tokens per run was reached "
        f"({billed:,} tokens billed by the provider; the LLM proxy refused the agent's "
        "next request)"
    )


def cancelled(by: str, **common: Any) -> Outcome:
    reason = render.cancelled_by(by) if by else ""
    return Outcome(Conclusion.CANCELLED, "the run was cancelled", reason=reason, **common)


def agent_stopped(
    result: RunResult,
    *,
    budget: str,
    repo: RepoSettings,
    idle_timeout: int,
    cancelled_by: str,
    common: dict[str, Any],
) -> Outcome | None:
    """The outcome of an agent that did not finish normally; None when it did."""
    if budget:  # also when the agent ended on the very step that passed it
        return Outcome(
            Conclusion.FAILURE, "the run was stopped: budget reached", reason=budget, **common
        )
    if result.cancelled:
        return cancelled(cancelled_by, **common)
    if result.timed_out:
        return Outcome(
            Conclusion.TIMED_OUT,
            "the run timed out",
            reason=_timeout_reason(result, repo, idle_timeout),
            **common,
        )
    if result.exit_code != 0 or result.error:
        reason = result.error or f"the agent exited with code {result.exit_code}"
        return Outcome(Conclusion.FAILURE, "the agent failed", reason=reason, **common)
    return None


def _timeout_reason(result: RunResult, repo: RepoSettings, idle_timeout: int) -> str:
    if not result.idle:
        return (
            f"the run took longer than {repo.run_timeout}s "
            "(AUTOCODE_RUN_TIMEOUT, or `timeout` in .github/autocode.yml) and was stopped"
        )
    last = (
        f"the last thing it did: {result.last_step}"
        if result.last_step
        else "it had not taken a step yet"
    )
    return (
        f"the agent went silent: nothing from it for {idle_timeout}s "
        f"(AUTOCODE_IDLE_TIMEOUT), so it was stopped; {last}"
    )


def invalid_settings(problems: Sequence[str]) -> Outcome:
    return Outcome(
        Conclusion.FAILURE,
        f"`{SETTINGS_PATH}` is not valid, so nothing was run",
        errors=list(problems),
        reason=f"invalid {SETTINGS_PATH}: {problems[0]}",
    )


def environment_failed(reason: str, lines: Sequence[str] = ()) -> Outcome:
    """The run's image could not be made: why, the fix, and the build's last lines."""
    return Outcome(
        Conclusion.FAILURE,
        "the environment could not be prepared",
        reason=reason,
        output_tail=list(lines)[-15:],
    )


def setup_failed(
    exit_: ContainerExit, output: str, repo: RepoSettings, *, out_of_time: bool
) -> Outcome:
    """The outcome of setup commands that did not succeed (`exit_` did not pass)."""
    tail = output.splitlines()[-15:]
    if exit_.timed_out and out_of_time:
        reason = f"the run took longer than {repo.run_timeout}s (in setup)"
        return Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, output_tail=tail)
    ran = [line[2:] for line in output.splitlines() if line.startswith("$ ")]
    failed = ran[-1] if ran else repo.setup[0]
    if exit_.timed_out:
        reason = f"setup `{failed}` took longer than {repo.command_timeout}s"
    else:
        reason = f"setup `{failed}` exited with code {exit_.exit_code}"
    return Outcome(
        Conclusion.FAILURE,
        "the setup failed, so the agent was not run",
        reason=reason,
        output_tail=tail,
    )


def tests_stopped(
    exit_: ContainerExit, repo: RepoSettings, *, out_of_time: bool, cancelled_by: str, **common: Any
) -> Outcome | None:
    """A test run that ends the whole run (cancelled, or the run's time is up); else None."""
    if exit_.cancelled:
        return cancelled(cancelled_by, **common)
    if exit_.timed_out and out_of_time:
        reason = f"the run took longer than {repo.run_timeout}s (in the tests)"
        return Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, **common)
    return None


def answered(result: RunResult, common: dict[str, Any]) -> Outcome:
    common = {**common, "answer": result.final_text or "The agent gave no answer."}
    return Outcome(Conclusion.NEUTRAL, "the agent answered", **common)


def no_changes(result: RunResult, dropped: Sequence[str], common: dict[str, Any]) -> Outcome:
    common = {k: v for k, v in common.items() if k != "output_tail"}
    headline = "the agent made no changes"
    if dropped:
        headline = "the agent changed only protected paths, so nothing was pushed"
    return Outcome(Conclusion.NEUTRAL, headline, reason=result.final_text[:1000], **common)


def test_reason(attempts: Sequence[TestAttempt], repo: RepoSettings) -> str:
    if not attempts or attempts[-1].passed:
        return ""
    return f"`{repo.test}`: " + summary(list(attempts), repo.max_attempts)


def published(
    *,
    headline: str,
    failing: bool,
    branch: str,
    pr_url: str,
    pr_number: int,
    files: Sequence[str],
    reason: str,
    common: dict[str, Any],
    **extra: Any,
) -> Outcome:
    """The work is on a pull request (a new one, or a commit on an existing one)."""
    common = {k: v for k, v in common.items() if k != "output_tail"}
    if failing:
        headline += "; the tests still fail"
    return Outcome(
        Conclusion.FAILURE if failing else Conclusion.SUCCESS,
        headline,
        branch=branch,
        pr_url=pr_url,
        pr_number=pr_number,
        files=list(files),
        reason=reason,
        **extra,
        **common,
    )


def attempt_lines(
    attempts: Sequence[TestAttempt], repo: RepoSettings, *, testing: int, phase: str
) -> list[str]:
    """The test loop so far, one line per attempt, for the progress display."""
    limit = repo.max_attempts
    lines = [a.describe(limit) for a in attempts]
    if testing:
        lines.append(f"attempt {testing} of {limit}: running `{repo.test}` ⏳")
    elif attempts and not attempts[-1].passed and phase == "agent":
        lines.append(f"attempt {len(attempts) + 1} of {limit}: the agent is fixing it ⏳")
    return lines


def proxied_line(proxied: Sequence[int]) -> str:
    """What the provider itself reported through the proxy, counted on the host; "" if nothing."""
    requests, failed, tokens_in, tokens_out = proxied
    if not requests:
        return ""
    return (
        f"{requests} LLM requests through the proxy ({failed} failed), "
        f"{tokens_in:,} input + {tokens_out:,} output tokens reported by the provider"
    )
