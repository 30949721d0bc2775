"""The worker: claim a ticket, run it end to end, report every outcome.

claim → authorize → 👀 → check run queued → clone → container (agent)
→ commit/push → pull request → check run completed → outcome comment.
Whatever fails, the ticket ends in a final state with a comment and a
concluded check run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BotError, DockerUnavailable, GitHubError
from .github import render
from .github.client import GitHubApp, RepoClient
from .github.render import Outcome
from .models import Conclusion, RunResult, Ticket, TicketState
from .runner.docker import ContainerSpec, DockerRunner, Mount, container_user
from .runner.events import Transcript
from .runner.prompt import ThreadComment, build_prompt
from .store.base import TicketStore
from .triggers.rules import is_bot
from .workspace import Author, Workspace

log = logging.getLogger("bot.worker")

ALLOWED_ROLES = frozenset({"admin", "maintain", "write"})
PROGRESS_INTERVAL = 8.0

_STATE_OF = {
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


@dataclass
class Progress:
    """The run's live state, shown in its comment and check run."""

    ticket_id: int
    started: float
    phase: str = "queued"
    last_step: str = ""
    dirty: bool = True
    timings: dict[str, float] = field(default_factory=dict)


class Worker:
    """Runs tickets from the store, at most `max_parallel` at once on this host."""

    def __init__(
        self,
        settings: Settings,
        store: TicketStore,
        github: GitHubApp,
        runner: DockerRunner,
        *,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.github = github
        self.runner = runner
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.workdir = Path(settings.workdir).resolve()
        self._wake = asyncio.Event()
        self._cancels: dict[int, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.docker_ok = True

    # -- the loop ------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def cancel(self, ticket_id: int) -> bool:
        event = self._cancels.get(ticket_id)
        if event is None:
            return False
        event.set()
        return True

    @property
    def running(self) -> list[int]:
        return list(self._cancels)

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("worker started", extra={"worker": self.worker_id})
        while not stop.is_set():
            await self._recover()
            while len(self._tasks) < self.settings.max_parallel and not stop.is_set():
                if not await self._docker_ready():
                    break
                ticket = await asyncio.to_thread(
                    self.store.claim, self.worker_id, self.settings.lease_seconds, self.clock()
                )
                if ticket is None:
                    break
                task = asyncio.create_task(self.process(ticket), name=f"ticket-{ticket.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(lambda _t: self._wake.set())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _docker_ready(self) -> bool:
        try:
            await asyncio.to_thread(self.runner.ping)
        except DockerUnavailable:
            if self.docker_ok:
                log.error(
                    "Docker engine unreachable; tickets wait", extra={"worker": self.worker_id}
                )
            self.docker_ok = False
            return False
        self.docker_ok = True
        return True

    async def _recover(self) -> None:
        failed = await asyncio.to_thread(
            self.store.requeue_expired, self.clock(), self.settings.max_attempts
        )
        for ticket in failed:
            with contextlib.suppress(Exception):
                await self._report_lost(ticket)

    async def _report_lost(self, ticket: Ticket) -> None:
        gh = await self.github.repo(ticket.repository, ticket.installation_id)
        outcome = Outcome(
            Conclusion.FAILURE,
            "the run failed",
            reason=ticket.error or "the run was lost twice; it was not retried again",
        )
        await self._publish(gh, ticket, outcome, self.clock() - ticket.created_at)

    # -- one ticket ----------------------------------------------------------
    async def process(self, ticket: Ticket) -> None:
        cancel = asyncio.Event()
        self._cancels[ticket.id] = cancel
        lease = asyncio.create_task(self._keep_lease(ticket.id, cancel))
        context = {"ticket": ticket.id, "repository": ticket.repository, "number": ticket.number}
        log.info("ticket started", extra=context)
        try:
            await self._process(ticket, cancel)
        except Exception:
            log.exception("ticket crashed", extra=context)
            await asyncio.to_thread(
                self.store.finish,
                ticket.id,
                TicketState.FAILED,
                self.clock(),
                conclusion="failure",
                error="internal error",
            )
        finally:
            lease.cancel()
            self._cancels.pop(ticket.id, None)
            log.info("ticket ended", extra=context)

    async def _keep_lease(self, ticket_id: int, cancel: asyncio.Event) -> None:
        interval = max(1.0, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            ok = await asyncio.to_thread(
                self.store.renew,
                ticket_id,
                self.worker_id,
                self.settings.lease_seconds,
                self.clock(),
            )
            if not ok:
                log.warning("lease lost; stopping the run", extra={"ticket": ticket_id})
                cancel.set()
                return

    def _log(self, ticket_id: int, kind: str, message: str) -> None:
        self.store.log(ticket_id, kind, message, self.clock())

    async def _process(self, ticket: Ticket, cancel: asyncio.Event) -> None:
        started = self.clock()
        progress = Progress(ticket.id, started)
        try:
            gh = await self.github.repo(ticket.repository, ticket.installation_id)
        except GitHubError as exc:
            await asyncio.to_thread(
                self.store.finish,
                ticket.id,
                TicketState.FAILED,
                self.clock(),
                conclusion="failure",
                error=exc.message,
            )
            log.error("no installation token", extra={"ticket": ticket.id, "error": exc.message})
            return

        role = await gh.permission(ticket.requested_by)
        if role not in ALLOWED_ROLES:
            await gh.comment(ticket.number, render.rejected_comment(ticket.requested_by, role))
            await asyncio.to_thread(
                self.store.finish,
                ticket.id,
                TicketState.REJECTED,
                self.clock(),
                error=f"{ticket.requested_by} has {role} permission",
            )
            log.info("ticket rejected", extra={"ticket": ticket.id, "role": role})
            return

        try:
            await gh.react(ticket.number, "eyes")
        except GitHubError as exc:
            log.warning("reaction failed", extra={"ticket": ticket.id, "error": exc.message})

        try:
            await self._run(ticket, gh, progress, cancel)
        except BotError as exc:
            outcome = Outcome(Conclusion.FAILURE, "the run failed", reason=exc.message)
            await self._conclude(gh, ticket, outcome, progress)
        except Exception as exc:
            log.exception("run failed", extra={"ticket": ticket.id})
            outcome = Outcome(
                Conclusion.FAILURE,
                "the run failed",
                reason=f"internal error ({exc.__class__.__name__}); see the bot's logs",
            )
            await self._conclude(gh, ticket, outcome, progress)

    async def _run(
        self, ticket: Ticket, gh: RepoClient, progress: Progress, cancel: asyncio.Event
    ) -> None:
        fresh = await asyncio.to_thread(self.store.get, ticket.id)
        ticket = fresh or ticket
        # one progress comment per run, edited in place
        comment_id = ticket.comment_id
        body = render.progress_comment(ticket.id, "queued", 0, details_url=self._details(ticket))
        if comment_id is None:
            comment_id = await gh.comment(ticket.number, body)
            await asyncio.to_thread(self.store.update, ticket.id, comment_id=comment_id)
        ticket = _with(ticket, comment_id=comment_id)

        default_branch = await gh.default_branch()
        branch = branch_for(ticket)
        existing_sha = await gh.branch_sha(branch)
        start_sha = existing_sha or await gh.branch_sha(default_branch)
        if start_sha is None:
            raise GitHubError(f"the default branch {default_branch} has no commits")

        check_run_id = ticket.check_run_id
        if check_run_id is None:
            check_run_id = await gh.create_check_run(
                {
                    "name": render.CHECK_NAME,
                    "head_sha": start_sha,
                    "status": "queued",
                    "external_id": str(ticket.id),
                    **({"details_url": self._details(ticket)} if self._details(ticket) else {}),
                    "output": render.progress_output("queued", 0),
                }
            )
        await asyncio.to_thread(
            self.store.update,
            ticket.id,
            check_run_id=check_run_id,
            branch=branch,
            head_sha=start_sha,
        )
        ticket = _with(ticket, check_run_id=check_run_id, branch=branch, head_sha=start_sha)

        await self._phase(gh, ticket, progress, "preparing")
        workspace = Workspace(self.workdir / f"ticket-{ticket.id}", ticket.clone_url)
        try:
            await self._work(
                ticket,
                gh,
                workspace,
                default_branch,
                branch,
                existing_sha is not None,
                progress,
                cancel,
            )
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _work(
        self,
        ticket: Ticket,
        gh: RepoClient,
        workspace: Workspace,
        default_branch: str,
        branch: str,
        existing: bool,
        progress: Progress,
        cancel: asyncio.Event,
    ) -> None:
        mark = time.monotonic()
        token = await self.github.token(ticket.repository, ticket.installation_id)
        progress.timings["token"] = time.monotonic() - mark
        mark = time.monotonic()
        await asyncio.to_thread(workspace.clone, token.token, default_branch, branch, existing)
        uid, _, gid = container_user().partition(":")
        await asyncio.to_thread(workspace.hand_to_agent, int(uid), int(gid))
        progress.timings["clone"] = time.monotonic() - mark
        self._log(ticket.id, "phase", f"cloned {ticket.repository} at {default_branch}")

        issue = await gh.issue(ticket.number)
        comments = await gh.comments(ticket.number)
        thread = [
            ThreadComment(str(c.get("user", {}).get("login", "?")), str(c.get("body") or ""))
            for c in comments
            if not is_bot(c.get("user")) and c.get("id") != ticket.comment_id
        ]
        title = str(issue.get("title") or ticket.title)
        prompt = build_prompt(
            repository=ticket.repository,
            number=ticket.number,
            title=title,
            body=str(issue.get("body") or ""),
            comments=thread,
            instructions=ticket.instructions,
            is_pull_request=ticket.is_pull_request,
        )

        result = await self._agent(ticket, gh, workspace, prompt, progress, cancel)
        usage = result.usage
        await asyncio.to_thread(
            self.store.update,
            ticket.id,
            tokens_input=usage.input,
            tokens_output=usage.output,
            cost=usage.cost,
        )
        elapsed = self.clock() - progress.started
        common: dict[str, Any] = {
            "usage": usage,
            "seconds": elapsed,
            "output_tail": result.output_tail[-15:],
            "answer": result.final_text,
        }
        if result.cancelled:
            await self._conclude(
                gh,
                ticket,
                Outcome(Conclusion.CANCELLED, "the run was cancelled", **common),
                progress,
            )
            return
        if result.timed_out:
            reason = (
                f"the agent went silent for {self.settings.idle_timeout}s"
                + (f"; its last step: {result.last_step}" if result.last_step else "")
                if result.idle
                else f"the run took longer than {self.settings.run_timeout}s"
            )
            await self._conclude(
                gh,
                ticket,
                Outcome(Conclusion.TIMED_OUT, "the run timed out", reason=reason, **common),
                progress,
            )
            return
        if result.exit_code != 0 or result.error:
            reason = result.error or f"the agent exited with code {result.exit_code}"
            await self._conclude(
                gh,
                ticket,
                Outcome(Conclusion.FAILURE, "the agent failed", reason=reason, **common),
                progress,
            )
            return

        files = await asyncio.to_thread(workspace.changes)
        if not files:
            outcome = Outcome(
                Conclusion.NEUTRAL,
                "the agent made no changes",
                reason=result.final_text[:1000],
                **{k: v for k, v in common.items() if k != "output_tail"},
            )
            await self._conclude(gh, ticket, outcome, progress)
            return

        await self._phase(gh, ticket, progress, "pushing")
        mark = time.monotonic()
        identity = await self.github.identity(gh)
        await asyncio.to_thread(
            workspace.commit,
            render.commit_message(ticket.number, title),
            Author(identity.name, identity.email),
        )
        token = await self.github.token(ticket.repository, ticket.installation_id)
        await asyncio.to_thread(workspace.push, token.token, branch)
        progress.timings["commit_push"] = time.monotonic() - mark
        self._log(ticket.id, "phase", f"pushed {len(files)} changed files to {branch}")

        mark = time.monotonic()
        draft = Outcome(Conclusion.SUCCESS, "", files=files, usage=usage, seconds=elapsed)
        pr_body = render.pr_body(ticket.number, draft, result.final_text)
        found = await gh.find_pull(branch)
        if found is None:
            pr_number, pr_url = await gh.create_pull(
                title=title, head=branch, base=default_branch, body=pr_body
            )
        else:
            pr_number, pr_url = found
            await gh.update_pull(pr_number, body=pr_body)
        progress.timings["pull_request"] = time.monotonic() - mark
        await asyncio.to_thread(
            self.store.update, ticket.id, pr_number=pr_number, pr_url=pr_url, files_changed=files
        )
        outcome = Outcome(
            Conclusion.SUCCESS,
            f"opened pull request #{pr_number}"
            if found is None
            else f"updated pull request #{pr_number}",
            branch=branch,
            pr_url=pr_url,
            pr_number=pr_number,
            files=files,
            usage=usage,
            seconds=self.clock() - progress.started,
            answer=result.final_text,
        )
        await self._conclude(gh, ticket, outcome, progress)

    async def _agent(
        self,
        ticket: Ticket,
        gh: RepoClient,
        workspace: Workspace,
        prompt: str,
        progress: Progress,
        cancel: asyncio.Event,
    ) -> RunResult:
        spec = self.container_spec(ticket, workspace, prompt)
        transcript = Transcript()

        def on_line(line: str) -> None:
            event = transcript.feed(line)
            if event is not None and event.kind in ("tool", "text", "error"):
                progress.last_step = transcript.last_step
                progress.dirty = True
                with contextlib.suppress(Exception):
                    self._log(ticket.id, event.kind, event.describe())

        await self._phase(gh, ticket, progress, "agent", status="in_progress")
        reporter = asyncio.create_task(self._report_progress(gh, ticket, progress))
        try:
            exit_ = await self.runner.run(spec, on_line, cancel)
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

    def container_spec(self, ticket: Ticket, workspace: Workspace, prompt: str) -> ContainerSpec:
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
            ticket_id=ticket.id,
            environment=env,
            mounts=mounts,
            network=settings.agent_network,
            memory=settings.agent_memory,
            cpus=settings.agent_cpus,
            pids=settings.agent_pids,
            timeout=settings.run_timeout,
            idle_timeout=settings.idle_timeout,
            user=container_user(),
        )

    # -- reporting -------------------------------------------------------------
    def _details(self, ticket: Ticket) -> str:
        return f"{self.settings.public_url}/tickets/{ticket.id}" if self.settings.public_url else ""

    async def _phase(
        self,
        gh: RepoClient,
        ticket: Ticket,
        progress: Progress,
        phase: str,
        status: str | None = None,
    ) -> None:
        progress.phase = phase
        self._log(ticket.id, "phase", phase)
        await self._show_progress(gh, ticket, progress, status=status)

    async def _show_progress(
        self, gh: RepoClient, ticket: Ticket, progress: Progress, status: str | None = None
    ) -> None:
        elapsed = self.clock() - progress.started
        progress.dirty = False
        try:
            if ticket.comment_id is not None:
                await gh.edit_comment(
                    ticket.comment_id,
                    render.progress_comment(
                        ticket.id,
                        progress.phase,
                        elapsed,
                        progress.last_step,
                        self._details(ticket),
                    ),
                )
            if ticket.check_run_id is not None:
                data: dict[str, Any] = {
                    "output": render.progress_output(progress.phase, elapsed, progress.last_step)
                }
                if status == "in_progress":
                    data["status"] = "in_progress"
                    data["started_at"] = _iso(self.clock())
                await gh.update_check_run(ticket.check_run_id, data)
        except GitHubError as exc:
            log.warning("progress update failed", extra={"ticket": ticket.id, "error": exc.message})

    async def _report_progress(self, gh: RepoClient, ticket: Ticket, progress: Progress) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            if progress.dirty:
                await self._show_progress(gh, ticket, progress)

    async def _conclude(
        self, gh: RepoClient, ticket: Ticket, outcome: Outcome, progress: Progress
    ) -> None:
        state = _STATE_OF[outcome.conclusion]
        current = await asyncio.to_thread(self.store.get, ticket.id)
        ticket = current or ticket
        elapsed = self.clock() - progress.started
        await self._publish(gh, ticket, outcome, elapsed)
        await asyncio.to_thread(
            self.store.finish,
            ticket.id,
            state,
            self.clock(),
            conclusion=str(outcome.conclusion),
            error=outcome.reason or None,
        )
        self._log(ticket.id, "done", f"{state}: {outcome.headline}")
        log.info(
            "ticket finished",
            extra={"ticket": ticket.id, "state": str(state), "timings": progress.timings},
        )

    async def _publish(
        self, gh: RepoClient, ticket: Ticket, outcome: Outcome, elapsed: float
    ) -> None:
        """Conclude the check run and write the outcome comment; tolerate GitHub failing."""
        body = render.outcome_comment(ticket.id, outcome)
        try:
            if ticket.comment_id is not None:
                await gh.edit_comment(ticket.comment_id, body)
            else:
                comment_id = await gh.comment(ticket.number, body)
                await asyncio.to_thread(self.store.update, ticket.id, comment_id=comment_id)
        except GitHubError as exc:
            log.error("outcome comment failed", extra={"ticket": ticket.id, "error": exc.message})
        if ticket.check_run_id is not None:
            try:
                await gh.update_check_run(
                    ticket.check_run_id,
                    {
                        "status": "completed",
                        "conclusion": str(outcome.conclusion),
                        "completed_at": _iso(self.clock()),
                        "output": render.check_output(outcome),
                    },
                )
            except GitHubError as exc:
                log.error(
                    "check run not concluded", extra={"ticket": ticket.id, "error": exc.message}
                )


def _with(ticket: Ticket, **changes: Any) -> Ticket:
    from dataclasses import replace

    return replace(ticket, **changes)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
