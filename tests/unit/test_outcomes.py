"""The pipeline's pure decisions: how a stage ends, in which words, and the containers' specs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bot.config import Settings
from bot.github.render import Outcome
from bot.models import Conclusion, RunResult, Usage
from bot.pipeline import outcomes
from bot.pipeline.spec import LLMAccess, Site, agent_command, agent_spec, command_spec
from bot.repo_settings import HostLimits, Invalid, RepoSettings, parse
from bot.runner.spec import ContainerExit
from bot.testloop import TestAttempt

HOST = Settings.from_environ({})


def repo(text: str = "") -> RepoSettings:
    parsed = parse(text.encode() if text else None, HostLimits.of(HOST))
    assert not isinstance(parsed, Invalid), parsed
    return parsed


def stopped(result: RunResult, budget: str = "", by: str = "") -> Outcome | None:
    return outcomes.agent_stopped(
        result, budget=budget, repo=repo(), idle_timeout=300, cancelled_by=by, common={}
    )


def reason(result: RunResult) -> str:
    outcome = stopped(result)
    assert outcome is not None
    return outcome.reason


def test_an_agent_that_finished_normally_goes_on() -> None:
    assert stopped(RunResult(exit_code=0)) is None


def test_a_budget_outranks_how_the_container_ended() -> None:
    """Past the budget the container is stopped like a cancel: the budget is the reason."""
    outcome = stopped(RunResult(exit_code=None, cancelled=True), budget="the budget")
    assert outcome is not None and outcome.conclusion is Conclusion.FAILURE
    assert outcome.reason == "the budget"


def test_a_cancel_names_who_asked() -> None:
    outcome = outcomes.cancelled("octocat")
    assert outcome.conclusion is Conclusion.CANCELLED and "octocat" in outcome.reason
    assert outcomes.cancelled("").reason == ""


def test_silence_and_overtime_are_told_apart() -> None:
    silent = reason(RunResult(exit_code=None, timed_out=True, idle=True, last_step="[bash] ls"))
    assert "went silent" in silent and "[bash] ls" in silent
    over = reason(RunResult(exit_code=None, timed_out=True))
    assert "longer than 1800s" in over and "AUTOCODE_RUN_TIMEOUT" in over


def test_a_failed_agent_gives_its_error_or_its_exit_code() -> None:
    assert reason(RunResult(exit_code=1, error="401 Unauthorized")) == "401 Unauthorized"
    assert "code 137" in reason(RunResult(exit_code=137))


def test_the_proxys_refusal_is_read_as_the_budget_only_with_one_set() -> None:
    limited = repo("max_tokens_per_run: 5000\n")
    assert "5,000 tokens" in outcomes.refused_budget(limited, "token budget exhausted")
    assert outcomes.refused_budget(repo(), "token budget exhausted") == ""
    assert outcomes.refused_budget(limited, "rate limited") == ""


def test_a_failed_setup_names_the_command_that_failed() -> None:
    settings = repo("setup:\n  - pip install -e .\n  - make build\n")
    output = "$ pip install -e .\nok\n$ make build\nmake: *** Error 2\n"
    outcome = outcomes.setup_failed(ContainerExit(2), output, settings, out_of_time=False)
    assert outcome.conclusion is Conclusion.FAILURE
    assert outcome.reason == "setup `make build` exited with code 2"
    assert outcome.output_tail[-1] == "make: *** Error 2"
    late = outcomes.setup_failed(ContainerExit(None, timed_out=True), output, settings,
                                 out_of_time=True)  # fmt: skip
    assert late.conclusion is Conclusion.TIMED_OUT


def test_no_changes_says_whether_protected_paths_were_the_reason() -> None:
    result = RunResult(exit_code=0, final_text="Nothing to do.")
    assert outcomes.no_changes(result, [], {}).headline == "the agent made no changes"
    dropped = outcomes.no_changes(result, [".github/workflows/ci.yml"], {"output_tail": ["x"]})
    assert "only protected paths" in dropped.headline and not dropped.output_tail


def test_tests_that_still_fail_make_the_published_outcome_a_failure() -> None:
    failed = [TestAttempt(1, False, 1), TestAttempt(2, False, 1)]
    settings = repo("test: make test\nmax_attempts: 2\n")
    reason = outcomes.test_reason(failed, settings)
    assert reason.startswith("`make test`: ")
    outcome = outcomes.published(
        headline="opened pull request #3", failing=True, branch="b", pr_url="u", pr_number=3,
        files=["a.py"], reason=reason, common={"output_tail": ["x"], "usage": Usage()},
    )  # fmt: skip
    assert outcome.conclusion is Conclusion.FAILURE
    assert outcome.headline == "opened pull request #3; the tests still fail"
    assert outcomes.test_reason([*failed, TestAttempt(3, True, 0)], settings) == ""


def test_the_progress_shows_the_attempt_under_way() -> None:
    settings = repo("test: make test\nmax_attempts: 3\n")
    first = [TestAttempt(1, False, 1)]
    assert outcomes.attempt_lines(first, settings, testing=2, phase="testing")[-1] == (
        "attempt 2 of 3: running `make test` ⏳"
    )
    fixing = outcomes.attempt_lines(first, settings, testing=0, phase="agent")
    assert fixing[-1] == "attempt 2 of 3: the agent is fixing it ⏳"


SITE = Site(Path("/w/ticket-1/work"), Path("/w/ticket-1/git"), 1, "1000:1000", "w1", "s1")


def test_the_agents_container_holds_no_credential_and_reads_git_only() -> None:
    access = LLMAccess(
        env={"OPENAI_BASE_URL": "http://llm-proxy:8080"},
        providers={"openai": {"options": {"apiKey": "cap"}}},
        relay="10.0.0.1:9",
    )
    spec = agent_spec(HOST, SITE, agent_command("m/x", "ses_1", "Do it."), access, timeout=0.2)
    assert spec.command == ["opencode", "run", "--format", "json", "--model", "m/x",
                            "--session", "ses_1", "Do it."]  # fmt: skip
    (git,) = spec.mounts
    assert (git.source, git.target, git.read_only) == (SITE.git_dir, "/workspace/.git", True)
    config = json.loads(spec.environment["OPENCODE_CONFIG_CONTENT"])
    assert config["permission"] == "allow" and config["provider"]["openai"]
    assert not any("TOKEN" in k or "GITHUB" in k for k in spec.environment)
    assert spec.timeout == 1.0  # never less than a second
    assert (spec.network, spec.user, spec.llm_relay) == ("internal", "1000:1000", "10.0.0.1:9")
    assert (spec.worker, spec.store, spec.role) == ("w1", "s1", "agent")


def test_setup_and_tests_run_without_the_agents_access_on_the_settings_network() -> None:
    settings = repo("test: make test\ncommand_timeout: 600\n")
    spec = command_spec(HOST, settings, SITE, ["make test"], "test", remaining=42.0)
    assert spec.network == "none" and spec.role == "test"
    assert spec.timeout == spec.idle_timeout == 42.0  # what is left of the run
    assert "OPENCODE_CONFIG_CONTENT" not in spec.environment
    assert spec.environment["CI"] == "true" and spec.command[:2] == ["sh", "-c"]
    roomy = command_spec(HOST, replace(settings), SITE, ["make test"], "test", remaining=9999.0)
    assert roomy.timeout == 600.0
