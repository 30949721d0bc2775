"""One run of a work ticket: workspace → agent container → push → report.

Label or command on an issue: a branch `autocode/issue-N` from the default
branch and a pull request. Command on a pull request: the PR's own branch
(never a fork's), a new commit on it, no new PR. Ask: the agent reads a
read-only workspace and its answer becomes the comment; nothing is pushed.
Whatever happens, the run ends in `conclude`: the ticket's one comment shows
the outcome, the check run is completed, and the store holds the final state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import repo_settings, testloop
from .config import Settings
from .errors import BotError, GitHubError, WorkspaceError
from .github import render
from .github.client import GitHubApp, RepoClient
from .github.render import Outcome
from .github.reporter import Reporter
from .ledger import Ledger
from .llm.access import prepare as prepare_llm
from .llm.host import relay_target, require_started
from .memory import Session, SessionStore, session_key
from .models import Conclusion, RunResult, Ticket, TicketKind, TicketState, Usage
from .policy.authz import Asker, authorize
from .policy.target import NoTarget, Target, branch_for, issue_target, pull_target
from .repo_settings import HostLimits, RepoSettings
from .runner.docker import ContainerExit, ContainerSpec, DockerRunner, Mount, container_user
from .runner.egress import RELAY_HOST, RELAY_PORT
from .runner.events import Transcript
from .runner.prompt import CodeLocation, ThreadComment, build_prompt
from .store.base import TicketStore
from .testloop import TestAttempt
from .triggers.rules import is_bot
from .workspace import Author, Workspace

log = logging.getLogger("bot.run")

PROGRESS_INTERVAL = 8.0  # seconds between edits of the progress comment and check run
TICK = 1.0  # seconds between looks at cancel requests and waiting tickets

STATE_OF = {
    Conclusion.SUCCESS: TicketState.SUCCEEDED,
    Conclusion.NEUTRAL: TicketState.SUCCEEDED,
    Conclusion.FAILURE: TicketState.FAILED,
    Conclusion.TIMED_OUT: TicketState.TIMED_OUT,
    Conclusion.CANCELLED: TicketState.CANCELLED,
}


def session_store(settings: Settings) -> SessionStore:
    """This host's agent sessions: beside the clones, owned by the agent's user."""
    uid, _, gid = container_user().partition(":")
    return SessionStore(Path(settings.workdir).resolve() / "sessions", int(uid), int(gid))


def _plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        input=a.input + b.input,
        output=a.output + b.output,
        reasoning=a.reasoning + b.reasoning,
        cache_read=a.cache_read + b.cache_read,
        cache_write=a.cache_write + b.cache_write,
        cost=a.cost + b.cost,
    )


def agent_config(providers: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the bot itself asks of opencode in every run.

    Nobody is there to approve a tool call, and the container is the sandbox
    (no credential, read-only git directory, limits), so every tool is allowed
    inside it; without this opencode's `run` silently refuses commands that
    touch paths outside the work tree (e.g. `ls ~`). `providers` points the
    proxied providers at the LLM proxy; given inline, it outranks any
    `opencode.json` in the repository, which could otherwise send the
    capability elsewhere.
    """
    config: dict[str, Any] = {"autoupdate": False, "share": "disabled", "permission": "allow"}
    if providers:
        config["provider"] = providers
    return config


def effective_kind(ticket: Ticket) -> TicketKind:
    """What a ticket does: a retry does what the ticket it repeats did."""
    return TicketKind(str(ticket.context.get("as_kind") or ticket.kind))


@dataclass
class Progress:
    """The run's live state, shown in its comment and check run."""

    started: float
    phase: str = "queued"
    last_step: str = ""
    dirty: bool = True
    shown_at: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Deps:
    """What a run needs from the worker."""

    settings: Settings
    store: TicketStore
    github: GitHubApp
    runner: DockerRunner
    clock: Callable[[], float]
    announce: Callable[[Ticket, RepoClient], Any]  # tell tickets queued behind this one
    cancelled_by: Callable[[int], str | None]
    worker_id: str = ""
    store_key: str = ""
    ledger: Ledger | None = None  # the one writer of ticket state (default: on `store`)


class Run:
    """Everything about one ticket's run; `execute` never raises."""

    def __init__(
        self,
        deps: Deps,
        ticket: Ticket,
        gh: RepoClient,
        reporter: Reporter,
        cancel: asyncio.Event,
        asker: Asker,
    ) -> None:
        self.deps = deps
        self.asker = asker
        self.ledger = deps.ledger or Ledger(deps.store, clock=deps.clock)
        self.settings = deps.settings
        self.store = deps.store
        self.ticket = ticket
        self.gh = gh
        self.reporter = reporter
        self.cancel = cancel
        self.progress = Progress(started=deps.clock())
        self.ask = effective_kind(ticket) == TicketKind.ASK
        self.title = ticket.title
        # the repository's settings: the host's defaults until `.github/autocode.yml` is read
        self.repo = RepoSettings.defaults(HostLimits.of(self.settings))
        self.deadline = time.monotonic() + self.repo.run_timeout
        self.sessions = session_store(self.settings)
        self.session: Session | None = None
        self.attempts: list[TestAttempt] = []  # the test loop's, oldest first
        self.testing = 0  # the attempt whose tests run right now
        self.dropped: list[str] = []  # protected paths whose changes were undone
        self.usage = Usage()  # over every agent container of the run
        self.budget = ""  # the budget that stopped the run, in words
        self.proxied = [0, 0, 0, 0]  # through the LLM proxy: requests, failed, input, output

    # -- helpers ---------------------------------------------------------------
    def _now(self) -> float:
        return self.deps.clock()

    def _log(self, kind: str, message: str) -> None:
        try:
            self.store.log(self.ticket.id, kind, message, self._now())
        except Exception:
            log.warning("the ticket's log line was not stored", exc_info=True,
                        extra={"ticket": self.ticket.id, "kind": kind})  # fmt: skip

    def _details(self) -> str:
        base = self.settings.public_url
        return f"{base}/tickets/{self.ticket.id}" if base else ""

    # -- the run -----------------------------------------------------------------
    async def execute(self) -> None:
        try:
            await self._execute()
        except BotError as exc:
            await self.conclude(Outcome(Conclusion.FAILURE, "the run failed", reason=exc.message))
        except Exception as exc:
            log.exception("run failed", extra={"ticket": self.ticket.id})
            reason = f"internal error ({exc.__class__.__name__}); see the bot's logs"
            await self.conclude(Outcome(Conclusion.FAILURE, "the run failed", reason=reason))

    async def _execute(self) -> None:
        ticket = self.ticket
        comment_id = await self.reporter.say(
            render.progress_comment(ticket.id, "queued", 0, details_url=self._details())
        )
        if comment_id != ticket.comment_id:
            await self.ledger.commented(ticket.id, comment_id)
            self.ticket = ticket = replace(ticket, comment_id=comment_id)
        target = await self._target()
        if target is None:
            return
        check_run_id = await self.reporter.open_check(
            target.start_sha, self._details(), render.progress_output("queued", 0)
        )
        await self.ledger.targeted(
            ticket.id, check_run_id=check_run_id, branch=target.branch, head_sha=target.start_sha
        )
        self.ticket = replace(
            self.ticket, check_run_id=check_run_id, branch=target.branch, head_sha=target.start_sha
        )
        if self.cancel.is_set():
            await self.conclude(self._cancelled_outcome(RunResult(exit_code=None)))
            return
        await self._phase("preparing")
        workspace = Workspace(  # _target may have pointed the clone at a fork (ask)
            Path(self.settings.workdir).resolve() / f"ticket-{ticket.id}", self.ticket.clone_url
        )
        try:
            await self._work(workspace, target)
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _target(self) -> Target | None:
        """The branch to work on; None (after saying why) when there is none we may push to."""
        gh, ticket = self.gh, self.ticket
        if ticket.is_pull_request:
            pull = await gh.pull(ticket.number)
            self.title = str(pull.get("title") or self.title)
            found = pull_target(
                pull,
                number=ticket.number,
                repository=ticket.repository,
                clone_url=ticket.clone_url,
                ask=self.ask,
            )
            if isinstance(found, NoTarget) and found.closed:
                outcome = Outcome(Conclusion.NEUTRAL, "nothing was done", reason=found.reason)
                await self.conclude(outcome)
                return None
            if isinstance(found, NoTarget):
                await self.reporter.try_say(render.marker(ticket.id) + "\n" + found.reason)
                await self._finish(TicketState.FAILED, None, found.reason)  # no check run yet
                return None
            if found.clone_url:  # an ask on a fork: read its head from the fork itself
                self.ticket = replace(ticket, clone_url=found.clone_url)
            return found
        default_branch = await gh.default_branch()
        existing_sha = await gh.branch_sha(branch_for(ticket.number))
        default_sha = existing_sha or await gh.branch_sha(default_branch)
        if default_sha is None:
            raise GitHubError(f"the default branch {default_branch} has no commits")
        return issue_target(ticket.number, default_branch, existing_sha, default_sha)

    async def _work(self, workspace: Workspace, target: Target) -> None:
        ticket, progress = self.ticket, self.progress
        mark = time.monotonic()
        token = await self.deps.github.token(ticket.repository, ticket.installation_id)
        progress.timings["token"] = time.monotonic() - mark
        mark = time.monotonic()
        await asyncio.to_thread(
            workspace.clone, token.token, target.base, target.branch, target.existing
        )
        uid, _, gid = container_user().partition(":")
        await asyncio.to_thread(workspace.hand_to_agent, int(uid), int(gid))
        progress.timings["clone"] = time.monotonic() - mark
        self._log("phase", f"cloned {ticket.repository} at {target.branch}")

        if not await self._load_repo_settings(workspace):
            return
        if not await self._authorized():
            return
        self.deadline = time.monotonic() + self.repo.run_timeout
        key = session_key(
            ticket.repository,
            ticket.number,
            ticket.is_pull_request,
            target.branch if target.pull is not None else "",
        )
        fresh = bool(ticket.context.get("fresh"))
        self.session = await asyncio.to_thread(self.sessions.open, key, fresh=fresh)
        how = "continued" if self.session.session_id else "new"
        self._log("phase", f"agent session {key}: {how}")
        try:
            await self._attempts(workspace, target)
        finally:
            session, self.session = self.session, None
            self.sessions.close(session)  # quick, and must happen even when cancelled

    async def _load_repo_settings(self, workspace: Workspace) -> bool:
        """Read `.github/autocode.yml` from the start commit; False (reported) when invalid."""
        text: bytes | None = None
        try:
            text = await asyncio.to_thread(
                workspace.read_committed, repo_settings.PATH, repo_settings.MAX_FILE_BYTES
            )
        except WorkspaceError as exc:
            parsed: RepoSettings | repo_settings.Invalid = repo_settings.Invalid(
                (repo_settings.Problem(None, exc.message),)
            )
        else:
            parsed = repo_settings.parse(text, HostLimits.of(self.settings))
        if isinstance(parsed, repo_settings.Invalid):
            problems = [str(p) for p in parsed.problems]
            self._log("error", f"invalid {repo_settings.PATH}: {'; '.join(problems)}")
            await self.conclude(
                Outcome(
                    Conclusion.FAILURE,
                    f"`{repo_settings.PATH}` is not valid, so nothing was run",
                    errors=problems,
                    reason=f"invalid {repo_settings.PATH}: {problems[0]}",
                )
            )
            return False
        self.repo = parsed
        if parsed.found:
            self._log("phase", f"settings from {repo_settings.PATH}")
        return True

    async def _authorized(self) -> bool:
        """The settings file may narrow who may trigger runs; False (reported) when refused."""
        ticket = self.ticket
        decision = authorize(self.asker, settings=self.repo, repository=ticket.repository)
        if decision.pending:
            member = False
            for org, slug in decision.ask_teams:
                member = await self.deps.github.team_member(
                    ticket.repository, ticket.installation_id, org, slug, ticket.requested_by
                )
                if member:
                    break
            decision = authorize(
                self.asker, settings=self.repo, repository=ticket.repository, team_member=member
            )
        if decision.allowed:
            return True
        reason = render.not_allowed_comment(ticket.requested_by)
        await self.reporter.try_say(render.marker(ticket.id) + "\n" + reason)
        outcome = Outcome(Conclusion.NEUTRAL, "not allowed by the repository's settings")
        await self.reporter.conclude_check(self._now(), "neutral", render.check_output(outcome))
        await self._finish(TicketState.REJECTED, None, decision.reason)
        log.info("ticket rejected by the repository's settings", extra={"ticket": ticket.id})
        return False

    async def _attempts(self, workspace: Workspace, target: Target) -> None:
        """Setup, the agent, and the test loop; then push, or say why not."""
        repo = self.repo
        if repo.setup and not self.ask and not await self._setup(workspace):
            return
        prompt = await self._prompt()
        result = await self._agent(workspace, prompt)
        if await self._stopped(result):
            return
        if self.ask:
            common = self._common(result)
            common["answer"] = result.final_text or "The agent gave no answer."
            await self.conclude(Outcome(Conclusion.NEUTRAL, "the agent answered", **common))
            return

        files = await self._changes(workspace)
        if repo.test and files:
            began = time.monotonic()
            for number in range(1, repo.max_attempts + 1):
                attempt = await self._test(workspace, number)
                if attempt is None:
                    return  # cancelled or out of time: concluded
                if attempt.passed or number == repo.max_attempts:
                    break
                feedback = testloop.feedback_prompt(
                    repo.test, attempt, repo.max_attempts, self.dropped
                )
                result = await self._agent(workspace, feedback, attempt=number + 1)
                if await self._stopped(result):
                    return
                files = await self._changes(workspace)
            self.progress.timings["test_loop"] = time.monotonic() - began
        if not files and target.existing and target.pull is None and not self.dropped:
            # an earlier attempt pushed the branch and was lost before its PR
            pushed = await self._unreported_branch(target)
            if pushed:
                await self._open_pull(target, pushed, result)
                return
        if not files:
            common = self._common(result)
            common.pop("output_tail")
            headline = "the agent made no changes"
            if self.dropped:
                headline = "the agent changed only protected paths, so nothing was pushed"
            outcome = Outcome(
                Conclusion.NEUTRAL, headline, reason=result.final_text[:1000], **common
            )
            await self.conclude(outcome)
            return
        await self._push(workspace, target, files, result)

    def _common(self, result: RunResult) -> dict[str, Any]:
        """What every outcome of a run that reached the agent reports."""
        return {
            "usage": result.usage,
            "seconds": self._now() - self.progress.started,
            "output_tail": result.output_tail[-15:],
            "answer": result.final_text,
            "dropped": list(self.dropped),
            "tests": list(self.attempts),
            "test_command": self.repo.test,
            "max_attempts": self.repo.max_attempts,
        }

    async def _stopped(self, result: RunResult) -> bool:
        """Conclude a run whose agent did not finish normally; True when it did so."""
        common = self._common(result)
        limit = self.repo.max_tokens_per_run
        if not self.budget and limit and "token budget" in result.error:
            # the LLM proxy counts what the provider billed (titles included) and refuses
            # the request past the budget before opencode's own report gets there
            self.budget = (
                f"the token budget of {limit:,} tokens per run was reached "
                "(the LLM proxy refused the agent's next request)"
            )
        if self.budget:  # also when the agent ended on the very step that passed it
            outcome = Outcome(
                Conclusion.FAILURE,
                "the run was stopped: budget reached",
                reason=self.budget,
                **common,
            )
            await self.conclude(outcome)
            return True
        if result.cancelled:
            await self.conclude(self._cancelled_outcome(result, **common))
            return True
        if result.timed_out:
            if result.idle:
                reason = (
                    f"the agent went silent: nothing from it for {self.settings.idle_timeout}s "
                    "(AUTOCODE_IDLE_TIMEOUT), so it was stopped; "
                    + (
                        f"the last thing it did: {result.last_step}"
                        if result.last_step
                        else "it had not taken a step yet"
                    )
                )
            else:
                reason = (
                    f"the run took longer than {self.repo.run_timeout}s "
                    "(AUTOCODE_RUN_TIMEOUT, or `timeout` in .github/autocode.yml) and was stopped"
                )
            await self.conclude(
                Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, **common)
            )
            return True
        if result.exit_code != 0 or result.error:
            reason = result.error or f"the agent exited with code {result.exit_code}"
            await self.conclude(
                Outcome(Conclusion.FAILURE, "the agent failed", reason=reason, **common)
            )
            return True
        return False

    async def _changes(self, workspace: Workspace) -> list[str]:
        """The agent's changed paths, with protected ones undone (and remembered)."""
        files = await asyncio.to_thread(workspace.changes)
        kept, dropped = repo_settings.split_protected(files, self.repo.protected_paths)
        if dropped:
            await asyncio.to_thread(workspace.discard, dropped)
            uid, _, gid = container_user().partition(":")
            await asyncio.to_thread(workspace.hand_to_agent, int(uid), int(gid), dropped)
            self.dropped += [p for p in dropped if p not in self.dropped]
            self._log("phase", f"undid changes to protected paths: {', '.join(dropped)}")
            log.info("protected paths dropped", extra={"ticket": self.ticket.id, "paths": dropped})
        return kept

    # -- setup and tests ---------------------------------------------------------
    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def _command(
        self, workspace: Workspace, commands: list[str], role: str
    ) -> tuple[ContainerExit, str]:
        """Run shell commands in a fresh container like the agent's, minus the agent.

        The same image, user, limits and read-only root; the same workspace and
        read-only git directory; no LLM credentials, no opencode config, no
        session; the network of the settings file (`none` unless it says
        `bridge`). Returns the exit and the end of the combined output.
        """
        settings, repo = self.settings, self.repo
        limit = max(1.0, min(float(repo.command_timeout), self._remaining()))
        spec = ContainerSpec(
            image=settings.runner_image,
            command=["sh", "-c", testloop.script(commands)],
            workspace=workspace.work_tree,
            ticket_id=self.ticket.id,
            environment={"PWD": "/workspace", "CI": "true"},
            mounts=[Mount(workspace.git_dir, "/workspace/.git", read_only=True)],
            network=repo.network,
            memory=settings.agent_memory,
            cpus=settings.agent_cpus,
            pids=settings.agent_pids,
            timeout=limit,
            idle_timeout=limit,
            user=container_user(),
            worker=self.deps.worker_id,
            store=self.deps.store_key,
            role=role,
        )
        lines: deque[str] = deque(maxlen=400)
        reporter = asyncio.create_task(self._keep_reporting())
        try:
            exit_ = await self.deps.runner.run(
                spec, lambda line: lines.append(line[:2000]), self.cancel
            )
        finally:
            reporter.cancel()
        return exit_, testloop.tail("\n".join(lines), lines=400, chars=60000)

    async def _setup(self, workspace: Workspace) -> bool:
        """The settings' setup commands, before the agent; False (reported) when they fail."""
        repo = self.repo
        self.progress.last_step = f"setup: {repo.setup[0]}"
        await self._show()
        mark = time.monotonic()
        exit_, output = await self._command(workspace, list(repo.setup), "setup")
        self.progress.timings["setup"] = time.monotonic() - mark
        self.progress.last_step = ""
        if exit_.cancelled:
            await self.conclude(self._cancelled_outcome(RunResult(exit_code=None)))
            return False
        if exit_.exit_code == 0 and not exit_.timed_out:
            kept_out = await asyncio.to_thread(workspace.exclude_untracked)
            self._log(
                "phase",
                f"setup done in {exit_.agent_seconds:.1f}s; "
                f"{len(kept_out)} new paths kept out of commits",
            )
            return True
        ran = [line[2:] for line in output.splitlines() if line.startswith("$ ")]
        failed = ran[-1] if ran else repo.setup[0]
        if exit_.timed_out and self._remaining() <= 0:
            await self.conclude(
                Outcome(
                    Conclusion.TIMED_OUT,
                    "the run timed out",
                    reason=f"the run took longer than {repo.run_timeout}s (in setup)",
                    output_tail=output.splitlines()[-15:],
                )
            )
            return False
        if exit_.timed_out:
            reason = f"setup `{failed}` took longer than {repo.command_timeout}s"
        else:
            reason = f"setup `{failed}` exited with code {exit_.exit_code}"
        outcome = Outcome(
            Conclusion.FAILURE,
            "the setup failed, so the agent was not run",
            reason=reason,
            output_tail=output.splitlines()[-15:],
        )
        await self.conclude(outcome)
        return False

    async def _test(self, workspace: Workspace, number: int) -> TestAttempt | None:
        """One run of the test command on the agent's change; None (reported) if the run ends."""
        repo, progress = self.repo, self.progress
        self.testing = number
        await self._phase("testing")
        mark = time.monotonic()
        exit_, output = await self._command(workspace, [repo.test], "test")
        restored = await asyncio.to_thread(workspace.reset_to_index)  # tests' files stay out
        if restored:
            uid, _, gid = container_user().partition(":")
            await asyncio.to_thread(workspace.hand_to_agent, int(uid), int(gid), restored)
        attempt = TestAttempt(
            number=number,
            passed=exit_.exit_code == 0 and not exit_.timed_out and not exit_.cancelled,
            exit_code=exit_.exit_code,
            timed_out=exit_.timed_out,
            seconds=exit_.agent_seconds,
            overhead=exit_.seconds - exit_.agent_seconds,
            output=output,
        )
        progress.timings[f"test_{number}"] = exit_.agent_seconds
        progress.timings[f"test_{number}_overhead"] = exit_.seconds - exit_.agent_seconds
        self.attempts.append(attempt)
        self.testing = 0
        self._log("test", attempt.describe(repo.max_attempts))
        log.info(
            "test attempt",
            extra={
                "ticket": self.ticket.id,
                "attempt": number,
                "passed": attempt.passed,
                "exit_code": exit_.exit_code,
                "seconds": round(exit_.agent_seconds, 3),
            },
        )
        common = self._common(RunResult(exit_code=0, usage=self.usage))
        if exit_.cancelled:
            await self.conclude(self._cancelled_outcome(RunResult(exit_code=None), **common))
            return None
        if exit_.timed_out and self._remaining() <= 0:
            reason = f"the run took longer than {repo.run_timeout}s (in the tests)"
            await self.conclude(
                Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, **common)
            )
            return None
        progress.timings[f"test_{number}_wall"] = time.monotonic() - mark
        await self._show()
        return attempt

    # -- push and pull request -------------------------------------------------------
    def _tests_fail(self) -> bool:
        return bool(self.attempts) and not self.attempts[-1].passed

    async def _push(
        self, workspace: Workspace, target: Target, files: list[str], result: RunResult
    ) -> None:
        ticket, progress = self.ticket, self.progress
        await self._phase("pushing")
        mark = time.monotonic()
        identity = await self.deps.github.identity(self.gh)
        message = render.commit_message(
            ticket.number, self.title, pull_request=target.pull is not None
        )
        await asyncio.to_thread(workspace.commit, message, Author(identity.name, identity.email))
        token = await self.deps.github.token(ticket.repository, ticket.installation_id)
        await asyncio.to_thread(workspace.push, token.token, target.branch)
        progress.timings["commit_push"] = time.monotonic() - mark
        self._log("phase", f"pushed {len(files)} changed files to {target.branch}")

        if target.pull is not None:
            number = int(target.pull["number"])
            url = str(target.pull.get("html_url") or "")
            await self.ledger.published(ticket.id, pr_number=number, pr_url=url, files=files)
            headline = f"pushed a commit to pull request #{number} ({target.branch})"
            if self._tests_fail():
                headline += "; the tests still fail"
            common = self._common(result)
            common.pop("output_tail")
            outcome = Outcome(
                Conclusion.FAILURE if self._tests_fail() else Conclusion.SUCCESS,
                headline,
                branch=target.branch,
                pr_url=url,
                pr_number=number,
                files=files,
                reason=self._test_reason(),
                annotations=await self._annotations(workspace),
                **common,
            )
            await self.conclude(outcome)
            return

        await self._open_pull(target, files, result, workspace)

    def _test_reason(self) -> str:
        if not self._tests_fail():
            return ""
        return f"`{self.repo.test}`: " + testloop.summary(self.attempts, self.repo.max_attempts)

    async def _annotations(self, workspace: Workspace | None) -> list[dict[str, Any]]:
        """Check-run annotations for the failures the final test output names."""
        if not self._tests_fail() or workspace is None:
            return []
        root = workspace.work_tree

        def exists(path: str) -> bool:
            target = root / path
            return target.is_file() and not target.is_symlink()

        return await asyncio.to_thread(testloop.find_annotations, self.attempts[-1].output, exists)

    async def _unreported_branch(self, target: Target) -> list[str]:
        """The files an earlier attempt pushed to the branch when no pull request shows them."""
        if await self.gh.find_pull(target.branch) is not None:
            return []
        base_sha = await self.gh.branch_sha(target.base)
        if base_sha is None or base_sha == target.start_sha:
            return []
        files = self.ticket.files_changed
        return list(files) if files else [f"(changes already on {target.branch})"]

    async def _open_pull(
        self,
        target: Target,
        files: list[str],
        result: RunResult,
        workspace: Workspace | None = None,
    ) -> None:
        ticket, progress, repo = self.ticket, self.progress, self.repo
        failing = self._tests_fail()
        draft = repo.draft or failing
        common = self._common(result)
        common.pop("output_tail")
        mark = time.monotonic()
        preview = Outcome(Conclusion.SUCCESS, "", files=files, draft=draft, **common)
        pr_body = render.pr_body(ticket.number, preview, result.final_text)
        found = await self.gh.find_pull(target.branch)
        notes: list[str] = []
        if found is None:
            pr_number, pr_url = await self.gh.create_pull(
                title=self.title, head=target.branch, base=target.base, body=pr_body, draft=draft
            )
            notes = await self._decorate_pull(pr_number)
        else:
            pr_number, pr_url = found
            await self.gh.update_pull(pr_number, body=pr_body)
        progress.timings["pull_request"] = time.monotonic() - mark
        await self.ledger.published(ticket.id, pr_number=pr_number, pr_url=pr_url, files=files)
        verb = "opened" if found is None else "updated"
        kind = "draft pull request" if draft and found is None else "pull request"
        headline = f"{verb} {kind} #{pr_number}"
        if failing:
            headline += "; the tests still fail"
        common["seconds"] = self._now() - progress.started
        outcome = Outcome(
            Conclusion.FAILURE if failing else Conclusion.SUCCESS,
            headline,
            branch=target.branch,
            pr_url=pr_url,
            pr_number=pr_number,
            files=files,
            reason=self._test_reason(),
            draft=draft and found is None,
            notes=notes,
            annotations=await self._annotations(workspace),
            **common,
        )
        await self.conclude(outcome)

    async def _decorate_pull(self, number: int) -> list[str]:
        """Labels and reviewers from the settings; what could not be done, as notes."""
        notes: list[str] = []
        repo = self.repo
        if repo.pr_labels:
            try:
                await self.gh.add_labels(number, list(repo.pr_labels))
            except GitHubError as exc:
                notes.append(f"the labels could not be added ({exc.message})")
        users = [r for r in repo.reviewers if "/" not in r]
        teams = [r.rpartition("/")[2] for r in repo.reviewers if "/" in r]
        if users or teams:
            try:
                await self.gh.request_reviewers(number, users=users, teams=teams)
            except GitHubError as exc:
                notes.append(f"review could not be requested ({exc.message})")
        for note in notes:
            log.warning("pull request settings", extra={"ticket": self.ticket.id, "note": note})
        return notes

    def _cancelled_outcome(self, result: RunResult, **common: Any) -> Outcome:
        by = self.deps.cancelled_by(self.ticket.id)
        reason = render.cancelled_by(by) if by else ""
        return Outcome(Conclusion.CANCELLED, "the run was cancelled", reason=reason, **common)

    async def _prompt(self) -> str:
        ticket = self.ticket
        issue = await self.gh.issue(ticket.number)
        comments = await self.gh.comments(ticket.number)
        thread = [
            ThreadComment(str(c.get("user", {}).get("login", "?")), str(c.get("body") or ""))
            for c in comments
            if not is_bot(c.get("user")) and c.get("id") != ticket.comment_id
        ]
        self.title = str(issue.get("title") or self.title)
        context = ticket.context
        location = None
        if isinstance(context.get("path"), str) and isinstance(context.get("diff_hunk"), str):
            line = context.get("line") if isinstance(context.get("line"), int) else None
            start = context.get("start_line")
            location = CodeLocation(
                path=context["path"],
                start_line=start if isinstance(start, int) else None,
                line=line,
                diff_hunk=context["diff_hunk"],
            )
        return build_prompt(
            repository=ticket.repository,
            number=ticket.number,
            title=self.title,
            body=str(issue.get("body") or ""),
            comments=thread,
            instructions=ticket.instructions,
            is_pull_request=ticket.is_pull_request,
            location=location,
            repo_instructions=self.repo.instructions,
            test_command="" if self.ask else self.repo.test,
            protected=() if self.ask else self.repo.protected_paths,
            ask=self.ask,
        )

    async def _agent(self, workspace: Workspace, prompt: str, *, attempt: int = 1) -> RunResult:
        """One agent container on the run's session; usage adds up over the attempts.

        The budget is checked at every step the agent reports: past it, the
        container is stopped like a cancel and `self.budget` says why.
        """
        progress, session = self.progress, self.session
        before = self.usage
        spec = self.container_spec(workspace, prompt)
        transcript = Transcript()
        stop = asyncio.Event()

        def on_line(line: str) -> None:
            event = transcript.feed(line)
            if event is None:
                return
            if event.kind in ("tool", "text", "error"):
                progress.last_step = transcript.last_step
                progress.dirty = True
                self._log(event.kind, event.describe())
            if event.kind == "finish" and not self.budget:
                reached = repo_settings.budget_reached(self.repo, _plus(before, transcript.usage))
                if reached:
                    self.budget = reached
                    self._log("error", reached)
                    stop.set()

        async def relay_cancel() -> None:
            await self.cancel.wait()
            stop.set()

        await self._phase("agent", start=attempt == 1)
        reporter = asyncio.create_task(self._keep_reporting())
        relay = asyncio.create_task(relay_cancel())
        try:
            exit_ = await self.deps.runner.run(spec, on_line, stop)
        finally:
            reporter.cancel()
            relay.cancel()
            if session is not None:
                await asyncio.to_thread(self.sessions.scrub, session)
        self.usage = _plus(before, transcript.usage)
        if session is not None and transcript.session_id:
            await asyncio.to_thread(self.sessions.save, session, transcript.session_id)
        elif (
            session is not None
            and session.session_id
            and exit_.exit_code not in (0, None)
            and "Session not found" in exit_.stderr_tail
        ):
            log.warning("agent session gone; starting a new one", extra={"ticket": self.ticket.id})
            session.session_id = ""
            return await self._agent(workspace, prompt, attempt=attempt)
        suffix = "" if attempt == 1 else f"_{attempt}"
        progress.timings["container_start" + suffix] = exit_.start_seconds
        progress.timings["agent" + suffix] = exit_.agent_seconds
        progress.timings["container_remove" + suffix] = (
            exit_.seconds - exit_.start_seconds - exit_.agent_seconds
        )
        errors = transcript.errors
        tail = list(transcript.tail)
        if exit_.stderr_tail.strip() and (exit_.exit_code not in (0, None) or errors):
            tail += exit_.stderr_tail.strip().splitlines()[-10:]
        return RunResult(
            exit_code=exit_.exit_code,
            timed_out=exit_.timed_out,
            cancelled=exit_.cancelled,
            idle=exit_.idle,
            final_text=transcript.final_text,
            error=errors[-1] if errors else "",
            files_touched=transcript.files,
            usage=self.usage,
            output_tail=tail,
            last_step=transcript.last_step,
            session_id=transcript.session_id,
            seconds=exit_.seconds,
        )

    def container_spec(self, workspace: Workspace, prompt: str) -> ContainerSpec:
        settings = self.settings
        command = ["opencode", "run", "--format", "json"]
        model = self.repo.model or settings.model  # .github/autocode.yml may pick another
        if model:
            command += ["--model", model]
        if self.session is not None and self.session.session_id:
            command += ["--session", self.session.session_id]  # memory across runs
        command.append(prompt)
        # provider keys stay on the host: the container gets the proxy and a capability
        proxy = self.deps.runner.llm_proxy
        if proxy is not None:
            require_started(proxy)
        internal = settings.agent_network == "internal"
        agent_url = f"http://{RELAY_HOST}:{RELAY_PORT}" if internal else proxy.url if proxy else ""
        uid, _, gid = container_user().partition(":")
        limit = self.repo.max_tokens_per_run
        llm = prepare_llm(
            ticket_id=self.ticket.id,
            agent_env=dict(settings.agent_env),
            auth_path=settings.opencode_auth,
            config_path=settings.opencode_config,
            proxy=proxy,
            agent_url=agent_url,
            folder=workspace.root / "llm",
            owner=(int(uid), int(gid or uid)),
            lifetime=max(1.0, self._remaining()) + 120,
            token_budget=max(0, limit - self.usage.total) if limit else None,
        )

        def llm_done() -> None:
            """The container is gone: its capability dies; the proxy's count goes to the log."""
            used = llm.close()
            if used is not None:
                for index, count in enumerate(
                    (used.requests, used.failed, used.tokens.input, used.tokens.output)
                ):
                    self.proxied[index] += count
                self._log(
                    "llm",
                    f"{used.requests} LLM requests through the proxy ({used.failed} failed), "
                    f"{used.tokens.input} input + {used.tokens.output} output tokens",
                )

        env = {
            "PWD": "/workspace",
            "OPENCODE_CONFIG_CONTENT": json.dumps(agent_config(llm.providers)),
            **llm.env,
        }
        mounts = [Mount(workspace.git_dir, "/workspace/.git", read_only=True)]
        if llm.config_file is not None:
            mounts.append(Mount(llm.config_file, "/run/autocode/opencode.json"))
            env["OPENCODE_CONFIG"] = "/run/autocode/opencode.json"
        if llm.auth_file is not None:
            mounts.append(Mount(llm.auth_file, "/run/autocode/auth.json"))
        return ContainerSpec(
            llm_relay=relay_target(proxy) if internal and proxy and llm.grant else "",
            on_removed=llm_done,
            image=settings.runner_image,
            command=command,
            workspace=workspace.work_tree,
            ticket_id=self.ticket.id,
            environment=env,
            mounts=mounts,
            network=settings.agent_network,
            memory=settings.agent_memory,
            cpus=settings.agent_cpus,
            pids=settings.agent_pids,
            timeout=max(1.0, self._remaining()),  # what is left of the run's time
            idle_timeout=settings.idle_timeout,
            user=container_user(),
            workspace_read_only=self.ask,
            worker=self.deps.worker_id,
            store=self.deps.store_key,
            session_dir=self.session.data_dir if self.session is not None else None,
        )

    # -- reporting -------------------------------------------------------------
    async def _phase(self, phase: str, *, start: bool = False) -> None:
        self.progress.phase = phase
        self._log("phase", phase)
        await self._show(start=start)

    async def _show(self, *, start: bool = False) -> None:
        progress = self.progress
        elapsed = self._now() - progress.started
        progress.dirty = False
        progress.shown_at = time.monotonic()
        attempts = self._attempt_lines()
        comment = render.progress_comment(
            self.ticket.id,
            progress.phase,
            elapsed,
            progress.last_step,
            self._details(),
            attempts=attempts,
            with_tests=bool(self.repo.test) and not self.ask,
        )
        await self.reporter.try_say(comment)
        output = render.progress_output(
            progress.phase, elapsed, progress.last_step, attempts=attempts
        )
        if start:
            await self.reporter.start_check(self._now(), output)
        else:
            await self.reporter.update_check({"output": output})

    def _attempt_lines(self) -> list[str]:
        """The test loop so far, one line per attempt, for the progress."""
        limit = self.repo.max_attempts
        lines = [a.describe(limit) for a in self.attempts]
        if self.testing:
            lines.append(f"attempt {self.testing} of {limit}: running `{self.repo.test}` ⏳")
        elif self.attempts and not self.attempts[-1].passed and self.progress.phase == "agent":
            lines.append(f"attempt {len(self.attempts) + 1} of {limit}: the agent is fixing it ⏳")
        return lines

    async def _keep_reporting(self) -> None:
        """While the agent works: progress every few seconds, and tell who waits behind."""
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.deps.announce(self.ticket, self.gh)
            except Exception:
                log.warning("telling waiting requests failed", exc_info=True,
                            extra={"ticket": self.ticket.id})  # fmt: skip
            stale = time.monotonic() - self.progress.shown_at >= PROGRESS_INTERVAL
            if self.progress.dirty and stale:
                await self._show()

    async def _finish(self, state: TicketState, conclusion: str | None, error: str | None) -> None:
        await self.ledger.finished(
            self.ticket.id, state, conclusion=conclusion, error=error, ran=True
        )

    async def conclude(self, outcome: Outcome) -> None:
        """Publish the outcome (comment and check run) and put the ticket in its final state."""
        state = STATE_OF[outcome.conclusion]
        requests, failed, tokens_in, tokens_out = self.proxied
        if requests:  # what the provider itself reported, counted on the host
            outcome = replace(
                outcome,
                proxied=f"{requests} LLM requests through the proxy ({failed} failed), "
                f"{tokens_in:,} input + {tokens_out:,} output tokens reported by the provider",
            )
        body = (
            render.answer_comment(self.ticket.id, outcome)
            if self.ask and outcome.conclusion is Conclusion.NEUTRAL
            else render.outcome_comment(self.ticket.id, outcome)
        )
        await self.reporter.try_say(body)
        await self.reporter.conclude_check(
            self._now(), str(outcome.conclusion), render.check_output(outcome)
        )
        await self.ledger.used(self.ticket.id, outcome.usage)
        await self._finish(state, str(outcome.conclusion), outcome.reason or None)
        self._log("done", f"{state}: {outcome.headline}")
        log.info(
            "ticket finished",
            extra={
                "ticket": self.ticket.id,
                "state": str(state),
                "timings": self.progress.timings,
            },
        )
