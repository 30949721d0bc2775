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
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BotError, GitHubError
from .github import render
from .github.client import GitHubApp, RepoClient
from .github.render import Outcome
from .github.reporter import Reporter
from .models import Conclusion, RunResult, Ticket, TicketState
from .runner.docker import ContainerSpec, DockerRunner, Mount, container_user
from .runner.events import Transcript
from .runner.prompt import CodeLocation, ThreadComment, build_prompt
from .store.base import TicketStore
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


def branch_for(ticket: Ticket) -> str:
    return f"autocode/issue-{ticket.number}"


def agent_config() -> dict[str, Any]:
    """What the bot itself asks of opencode in every run.

    Nobody is there to approve a tool call, and the container is the sandbox
    (no credential, read-only git directory, limits), so every tool is allowed
    inside it; without this opencode's `run` silently refuses commands that
    touch paths outside the work tree (e.g. `ls ~`).
    """
    return {"autoupdate": False, "share": "disabled", "permission": "allow"}


def effective_kind(ticket: Ticket) -> str:
    """What a ticket does: a retry does what the ticket it repeats did."""
    return str(ticket.context.get("as_kind") or ticket.kind)


@dataclass
class Progress:
    """The run's live state, shown in its comment and check run."""

    started: float
    phase: str = "queued"
    last_step: str = ""
    dirty: bool = True
    shown_at: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where the work happens: which branch, from which commit, and what to do after."""

    branch: str
    base: str
    start_sha: str
    existing: bool
    pull: dict[str, Any] | None = None  # the PR, when working on a pull request's branch


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


class Run:
    """Everything about one ticket's run; `execute` never raises."""

    def __init__(
        self,
        deps: Deps,
        ticket: Ticket,
        gh: RepoClient,
        reporter: Reporter,
        cancel: asyncio.Event,
    ) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.store = deps.store
        self.ticket = ticket
        self.gh = gh
        self.reporter = reporter
        self.cancel = cancel
        self.progress = Progress(started=deps.clock())
        self.ask = effective_kind(ticket) == "ask"
        self.title = ticket.title

    # -- helpers ---------------------------------------------------------------
    def _now(self) -> float:
        return self.deps.clock()

    def _log(self, kind: str, message: str) -> None:
        with contextlib.suppress(Exception):
            self.store.log(self.ticket.id, kind, message, self._now())

    async def _update(self, **fields: Any) -> None:
        await asyncio.to_thread(self.store.update, self.ticket.id, **fields)
        self.ticket = replace(
            self.ticket, **{k: v for k, v in fields.items() if k != "files_changed"}
        )

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
            await self._update(comment_id=comment_id)
        target = await self._target()
        if target is None:
            return
        check_run_id = await self.reporter.open_check(
            target.start_sha, self._details(), render.progress_output("queued", 0)
        )
        await self._update(
            check_run_id=check_run_id, branch=target.branch, head_sha=target.start_sha
        )
        if self.cancel.is_set():
            await self.conclude(self._cancelled_outcome(RunResult(exit_code=None)))
            return
        await self._phase("preparing")
        workspace = Workspace(
            Path(self.settings.workdir).resolve() / f"ticket-{ticket.id}", ticket.clone_url
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
            head = pull.get("head") or {}
            head_repo = (head.get("repo") or {}).get("full_name")
            self.title = str(pull.get("title") or self.title)
            if not head_repo or str(head_repo).lower() != ticket.repository.lower():
                reason = render.fork_refused(ticket.number, head_repo)
                await self.reporter.try_say(render.marker(ticket.id) + "\n" + reason)
                await self._finish(TicketState.FAILED, "neutral", reason)
                return None
            if pull.get("state") != "open":
                reason = f"pull request #{ticket.number} is closed"
                await self.conclude(Outcome(Conclusion.NEUTRAL, "nothing was done", reason=reason))
                return None
            return Target(
                branch=str(head["ref"]),
                base=str((pull.get("base") or {}).get("ref") or ""),
                start_sha=str(head["sha"]),
                existing=True,
                pull=pull,
            )
        default_branch = await gh.default_branch()
        branch = branch_for(ticket)
        existing_sha = await gh.branch_sha(branch)
        start_sha = existing_sha or await gh.branch_sha(default_branch)
        if start_sha is None:
            raise GitHubError(f"the default branch {default_branch} has no commits")
        return Target(branch, default_branch, start_sha, existing_sha is not None)

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

        prompt = await self._prompt()
        result = await self._agent(workspace, prompt)
        usage = result.usage
        await asyncio.to_thread(
            self.store.update,
            ticket.id,
            tokens_input=usage.input,
            tokens_output=usage.output,
            cost=usage.cost,
        )
        common: dict[str, Any] = {
            "usage": usage,
            "seconds": self._now() - progress.started,
            "output_tail": result.output_tail[-15:],
            "answer": result.final_text,
        }
        if result.cancelled:
            await self.conclude(self._cancelled_outcome(result, **common))
            return
        if result.timed_out:
            if result.idle:
                reason = f"the agent went silent for {self.settings.idle_timeout}s" + (
                    f"; its last step: {result.last_step}" if result.last_step else ""
                )
            else:
                reason = f"the run took longer than {self.settings.run_timeout}s"
            await self.conclude(
                Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, **common)
            )
            return
        if result.exit_code != 0 or result.error:
            reason = result.error or f"the agent exited with code {result.exit_code}"
            await self.conclude(
                Outcome(Conclusion.FAILURE, "the agent failed", reason=reason, **common)
            )
            return
        if self.ask:
            answer = result.final_text or "The agent gave no answer."
            common["answer"] = answer
            await self.conclude(Outcome(Conclusion.NEUTRAL, "the agent answered", **common))
            return

        files = await asyncio.to_thread(workspace.changes)
        if not files and target.existing and target.pull is None:
            # an earlier attempt pushed the branch and was lost before its PR
            pushed = await self._unreported_branch(target)
            if pushed:
                await self._open_pull(target, pushed, result)
                return
        if not files:
            common.pop("output_tail")
            outcome = Outcome(
                Conclusion.NEUTRAL,
                "the agent made no changes",
                reason=result.final_text[:1000],
                **common,
            )
            await self.conclude(outcome)
            return
        await self._push(workspace, target, files, result)

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
        elapsed = self._now() - progress.started
        usage = result.usage

        if target.pull is not None:
            number = int(target.pull["number"])
            url = str(target.pull.get("html_url") or "")
            await asyncio.to_thread(
                self.store.update, ticket.id, pr_number=number, pr_url=url, files_changed=files
            )
            outcome = Outcome(
                Conclusion.SUCCESS,
                f"pushed a commit to pull request #{number} ({target.branch})",
                branch=target.branch,
                pr_url=url,
                pr_number=number,
                files=files,
                usage=usage,
                seconds=elapsed,
                answer=result.final_text,
            )
            await self.conclude(outcome)
            return

        await self._open_pull(target, files, result)

    async def _unreported_branch(self, target: Target) -> list[str]:
        """The files an earlier attempt pushed to the branch when no pull request shows them."""
        if await self.gh.find_pull(target.branch) is not None:
            return []
        base_sha = await self.gh.branch_sha(target.base)
        if base_sha is None or base_sha == target.start_sha:
            return []
        files = self.ticket.files_changed
        return list(files) if files else [f"(changes already on {target.branch})"]

    async def _open_pull(self, target: Target, files: list[str], result: RunResult) -> None:
        ticket, progress = self.ticket, self.progress
        usage = result.usage
        elapsed = self._now() - progress.started
        mark = time.monotonic()
        draft = Outcome(Conclusion.SUCCESS, "", files=files, usage=usage, seconds=elapsed)
        pr_body = render.pr_body(ticket.number, draft, result.final_text)
        found = await self.gh.find_pull(target.branch)
        if found is None:
            pr_number, pr_url = await self.gh.create_pull(
                title=self.title, head=target.branch, base=target.base, body=pr_body
            )
        else:
            pr_number, pr_url = found
            await self.gh.update_pull(pr_number, body=pr_body)
        progress.timings["pull_request"] = time.monotonic() - mark
        await asyncio.to_thread(
            self.store.update, ticket.id, pr_number=pr_number, pr_url=pr_url, files_changed=files
        )
        verb = "opened" if found is None else "updated"
        outcome = Outcome(
            Conclusion.SUCCESS,
            f"{verb} pull request #{pr_number}",
            branch=target.branch,
            pr_url=pr_url,
            pr_number=pr_number,
            files=files,
            usage=usage,
            seconds=self._now() - progress.started,
            answer=result.final_text,
        )
        await self.conclude(outcome)

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
        prompt = build_prompt(
            repository=ticket.repository,
            number=ticket.number,
            title=self.title,
            body=str(issue.get("body") or ""),
            comments=thread,
            instructions=ticket.instructions,
            is_pull_request=ticket.is_pull_request,
            location=location,
        )
        if self.ask:
            prompt = (
                "Answer the question below about this repository. Do not change any file: "
                "the workspace is read-only. Your final answer is posted as a comment.\n\n" + prompt
            )
        return prompt

    async def _agent(self, workspace: Workspace, prompt: str) -> RunResult:
        progress = self.progress
        spec = self.container_spec(workspace, prompt)
        transcript = Transcript()

        def on_line(line: str) -> None:
            event = transcript.feed(line)
            if event is not None and event.kind in ("tool", "text", "error"):
                progress.last_step = transcript.last_step
                progress.dirty = True
                self._log(event.kind, event.describe())

        await self._phase("agent", start=True)
        reporter = asyncio.create_task(self._keep_reporting())
        try:
            exit_ = await self.deps.runner.run(spec, on_line, self.cancel)
        finally:
            reporter.cancel()
        progress.timings["container_start"] = exit_.start_seconds
        progress.timings["agent"] = exit_.agent_seconds
        progress.timings["container_remove"] = (
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
            usage=transcript.usage,
            output_tail=tail,
            last_step=transcript.last_step,
            session_id=transcript.session_id,
            seconds=exit_.seconds,
        )

    def container_spec(self, workspace: Workspace, prompt: str) -> ContainerSpec:
        settings = self.settings
        command = ["opencode", "run", "--format", "json"]
        if settings.model:
            command += ["--model", settings.model]
        command.append(prompt)
        env = {
            "PWD": "/workspace",
            "OPENCODE_CONFIG_CONTENT": json.dumps(agent_config()),
            **settings.agent_env,
        }
        mounts = [Mount(workspace.git_dir, "/workspace/.git", read_only=True)]
        if settings.opencode_config:
            path = Path(settings.opencode_config).expanduser().resolve()
            if not path.is_file():
                raise BotError(f"AUTOCODE_OPENCODE_CONFIG {path} does not exist")
            mounts.append(Mount(path, "/run/autocode/opencode.json"))
            env["OPENCODE_CONFIG"] = "/run/autocode/opencode.json"
        auth = Path(settings.opencode_auth).expanduser()
        if settings.opencode_auth and auth.is_file():
            mounts.append(Mount(auth.resolve(), "/run/autocode/auth.json"))
        return ContainerSpec(
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
            timeout=settings.run_timeout,
            idle_timeout=settings.idle_timeout,
            user=container_user(),
            workspace_read_only=self.ask,
            worker=self.deps.worker_id,
            store=self.deps.store_key,
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
        await self.reporter.try_say(
            render.progress_comment(
                self.ticket.id, progress.phase, elapsed, progress.last_step, self._details()
            )
        )
        output = render.progress_output(progress.phase, elapsed, progress.last_step)
        if start:
            await self.reporter.start_check(self._now(), output)
        else:
            await self.reporter.update_check({"output": output})

    async def _keep_reporting(self) -> None:
        """While the agent works: progress every few seconds, and tell who waits behind."""
        while True:
            await asyncio.sleep(TICK)
            with contextlib.suppress(Exception):
                await self.deps.announce(self.ticket, self.gh)
            stale = time.monotonic() - self.progress.shown_at >= PROGRESS_INTERVAL
            if self.progress.dirty and stale:
                await self._show()

    async def _finish(self, state: TicketState, conclusion: str | None, error: str | None) -> None:
        await asyncio.to_thread(
            self.store.finish, self.ticket.id, state, self._now(),
            conclusion=conclusion, error=error,
        )  # fmt: skip

    async def conclude(self, outcome: Outcome) -> None:
        """Publish the outcome (comment and check run) and put the ticket in its final state."""
        state = STATE_OF[outcome.conclusion]
        body = (
            render.answer_comment(self.ticket.id, outcome)
            if self.ask and outcome.conclusion is Conclusion.NEUTRAL
            else render.outcome_comment(self.ticket.id, outcome)
        )
        await self.reporter.try_say(body)
        await self.reporter.conclude_check(
            self._now(), str(outcome.conclusion), render.check_output(outcome)
        )
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
