"""One run of a work ticket: target → workspace → setup → agent → tests → publish → conclude.

Label or command on an issue: a branch `autocode/issue-N` from the default
branch and a pull request. Command on a pull request: the PR's own branch
(never a fork's), a new commit on it, no new PR. Ask: the agent reads a
read-only workspace and its answer becomes the comment; nothing is pushed.

Each stage returns the `Outcome` that ends the run, or hands on to the
next; `execute` concludes with it (the ticket's one comment, its check run
and its final state) and never raises past a `BotError`. The decisions are
pure (`policy.*`, `pipeline.outcomes`, `pipeline.spec`); the stages
(`agent`, `commands`, `publish`, `report`) carry them out over the ports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from .. import repo_settings, testloop
from ..errors import BotError, GitHubError
from ..github import render
from ..github.render import Outcome
from ..memory import session_key
from ..models import Conclusion, RunResult, Ticket, TicketState
from ..policy.authz import Asker
from ..policy.target import NoTarget, Target, issue_target, pull_target, work_branch
from ..workspace import Workspace
from . import outcomes
from .admission import admitted, load_settings
from .agent import AgentStage
from .brief import gather_prompt
from .commands import Commands
from .environment import EnvironmentStage
from .ports import Repository, Voice
from .publish import Publisher
from .report import RunReport
from .state import CancelSignal, Deps, RunState

log = logging.getLogger("bot.pipeline")

FAILED = "the run failed"


class Run:
    """Everything about one ticket's run; `execute` never raises a `BotError`."""

    def __init__(
        self,
        deps: Deps,
        ticket: Ticket,
        gh: Repository,
        reporter: Voice,
        cancel: CancelSignal,
        asker: Asker,
    ) -> None:
        self.deps = deps
        self.gh = gh
        self.asker = asker
        self.cancel = cancel
        self.state = state = RunState.start(ticket, deps.settings, deps.clock())
        self.report = RunReport(deps, state, reporter, gh)
        self.environment = EnvironmentStage(deps, state, self.report, cancel)
        self.agent = AgentStage(deps, state, self.report, cancel)
        self.commands = Commands(deps, state, self.report, cancel)
        self.publisher = Publisher(deps, state, self.report, gh)
        self.workspace: Workspace | None = None

    async def execute(self) -> None:
        try:
            outcome = await self._execute()
        except BotError as exc:
            outcome = Outcome(Conclusion.FAILURE, FAILED, reason=exc.message)
        except Exception as exc:
            log.exception("run failed", extra={"ticket": self.state.ticket.id})
            reason = f"internal error ({exc.__class__.__name__}); see the bot's logs"
            outcome = Outcome(Conclusion.FAILURE, FAILED, reason=reason)
        try:
            if outcome is not None:
                await self.report.conclude(outcome)
        finally:
            if self.workspace is not None:
                await asyncio.to_thread(self.workspace.remove)

    async def _execute(self) -> Outcome | None:
        state, report, ledger = self.state, self.report, self.deps.ledger
        ticket = state.ticket
        comment_id = await report.reporter.say(
            render.progress_comment(ticket.id, "queued", 0, details_url=report.details_url())
        )
        if comment_id is not None and comment_id != ticket.comment_id:
            await ledger.commented(ticket.id, comment_id)
            state.ticket = ticket = replace(ticket, comment_id=comment_id)
        target = await self._target()
        if not isinstance(target, Target):
            return target
        check_run_id = await report.reporter.open_check(
            target.start_sha, report.details_url(), render.progress_output("queued", 0)
        )
        branch, head_sha = target.branch, target.start_sha
        await ledger.targeted(
            ticket.id, check_run_id=check_run_id, branch=branch, head_sha=head_sha
        )
        state.ticket = replace(
            state.ticket, check_run_id=check_run_id, branch=branch, head_sha=head_sha
        )
        if self.cancel.is_set():
            return outcomes.cancelled(self.cancel.by)
        await report.phase("preparing")
        self.workspace = self.deps.workspace(  # _target may have pointed at a fork (ask)
            Path(self.deps.settings.workdir).resolve() / f"ticket-{ticket.id}",
            state.ticket.clone_url,
        )
        return await self._work(self.workspace, target)

    async def _target(self) -> Target | Outcome | None:
        """The branch to work on; None (after saying why) when there is none we may push to."""
        gh, state = self.gh, self.state
        ticket = state.ticket
        if not ticket.is_pull_request:
            default_branch = await gh.default_branch()
            branch = work_branch(ticket)
            existing_sha = await gh.branch_sha(branch)
            default_sha = existing_sha or await gh.branch_sha(default_branch)
            if default_sha is None:
                raise GitHubError(f"the default branch {default_branch} has no commits")
            return issue_target(branch, default_branch, existing_sha, default_sha)
        pull = await gh.pull(ticket.number)
        state.title = str(pull.get("title") or state.title)
        found = pull_target(
            pull,
            number=ticket.number,
            repository=ticket.repository,
            clone_url=ticket.clone_url,
            ask=state.ask,
        )
        if isinstance(found, NoTarget) and found.closed:
            return Outcome(Conclusion.NEUTRAL, "nothing was done", reason=found.reason)
        if isinstance(found, NoTarget):
            await self.report.reporter.try_say(render.marker(ticket.id) + "\n" + found.reason)
            await self.report.finish(TicketState.FAILED, None, found.reason)  # no check run yet
            return None
        if found.clone_url:  # an ask on a fork: read its head from the fork itself
            state.ticket = replace(ticket, clone_url=found.clone_url)
        return found

    async def _work(self, workspace: Workspace, target: Target) -> Outcome | None:
        deps, state = self.deps, self.state
        ticket, timings = state.ticket, state.progress.timings
        mark = time.monotonic()
        token = await deps.app.token(ticket.repository, ticket.installation_id)
        timings["token"] = time.monotonic() - mark
        mark = time.monotonic()
        await asyncio.to_thread(
            workspace.clone, token.token, target.base, target.branch, target.existing
        )
        await asyncio.to_thread(workspace.hand_to_agent, *deps.placement.owner)
        timings["clone"] = time.monotonic() - mark
        self.report.log("phase", f"cloned {ticket.repository} at {target.branch}")
        invalid = await load_settings(self.deps, self.state, self.report, workspace)
        if invalid is not None:
            return invalid
        if not await admitted(self.deps, self.state, self.report, self.asker):
            return None
        state.deadline = time.monotonic() + state.repo.run_timeout
        unprepared = await self.environment.prepare(workspace)
        if unprepared is not None:
            return unprepared
        sessions = deps.sessions
        if sessions is None:
            return await self._attempts(workspace, target)
        pull_branch = target.branch if target.pull is not None else ""
        key = session_key(ticket.repository, ticket.number, ticket.is_pull_request, pull_branch)
        state.session = await asyncio.to_thread(sessions.open, key, fresh=ticket.origin.fresh)
        how = "continued" if state.session.session_id else "new"
        self.report.log("phase", f"agent session {key}: {how}")
        try:
            return await self._attempts(workspace, target)
        finally:
            session, state.session = state.session, None
            sessions.close(session)  # quick, and must happen even when cancelled

    async def _attempts(self, workspace: Workspace, target: Target) -> Outcome:
        """Setup, the agent, and the test loop; then push, or say why not."""
        state = self.state
        if state.repo.setup and not state.ask:
            failed = await self.commands.setup(workspace)
            if failed is not None:
                return failed
        result = await self.agent.run(workspace, await gather_prompt(self.gh, state))
        stopped = self._stopped(result)
        if stopped is not None:
            return stopped
        if state.ask:
            return outcomes.answered(result, state.common(result, self.report.now()))
        files = await self._changes(workspace)
        if state.repo.test and files:
            looped = await self._test_loop(workspace, result, files)
            if isinstance(looped, Outcome):
                return looped
            result, files = looped
        if not files and target.existing and target.pull is None and not state.dropped:
            # an earlier attempt pushed the branch and was lost before its PR
            pushed = await self.publisher.unreported_branch(target)
            if pushed:
                return await self.publisher.open_pull(target, pushed, result)
        if not files:
            common = state.common(result, self.report.now())
            outcome = outcomes.no_changes(result, state.dropped, common)
        else:
            outcome = await self.publisher.push(workspace, target, files, result)
        if state.ticket.origin.reply_to:
            await self.publisher.answer_review(result, files)
        return outcome

    async def _test_loop(
        self, workspace: Workspace, result: RunResult, files: list[str]
    ) -> tuple[RunResult, list[str]] | Outcome:
        """Test the change; on failure the agent gets the output, up to `max_attempts` times."""
        repo, began = self.state.repo, time.monotonic()
        for number in range(1, repo.max_attempts + 1):
            attempt = await self.commands.test(workspace, number)
            if isinstance(attempt, Outcome):
                return attempt  # cancelled or out of time
            if attempt.passed or number == repo.max_attempts:
                break
            feedback = testloop.feedback_prompt(
                repo.test, attempt, repo.max_attempts, self.state.dropped
            )
            result = await self.agent.run(workspace, feedback, attempt=number + 1)
            stopped = self._stopped(result)
            if stopped is not None:
                return stopped
            files = await self._changes(workspace)
        self.state.progress.timings["test_loop"] = time.monotonic() - began
        return result, files

    def _stopped(self, result: RunResult) -> Outcome | None:
        """The outcome of an agent that did not finish normally; None when it did."""
        state = self.state
        state.budget = state.budget or outcomes.refused_budget(state.repo, result.error)
        return outcomes.agent_stopped(
            result,
            budget=state.budget,
            repo=state.repo,
            idle_timeout=self.deps.settings.idle_timeout,
            cancelled_by=self.cancel.by,
            common=state.common(result, self.report.now()),
        )

    async def _changes(self, workspace: Workspace) -> list[str]:
        """The agent's changed paths, with protected ones undone (and remembered)."""
        state = self.state
        files = await asyncio.to_thread(workspace.changes)
        kept, dropped = repo_settings.split_protected(files, state.repo.protected_paths)
        if dropped:
            await asyncio.to_thread(workspace.discard, dropped)
            await asyncio.to_thread(workspace.hand_to_agent, *self.deps.placement.owner, dropped)
            state.dropped += [p for p in dropped if p not in state.dropped]
            self.report.log("phase", f"undid changes to protected paths: {', '.join(dropped)}")
            log.info("protected paths dropped", extra={"ticket": state.ticket.id, "paths": dropped})
        return kept
