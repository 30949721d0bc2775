"""The worker: claim tickets, authorize them, and run or act on them.

claim (with a lease) → ask GitHub who the sender is → then by kind:
label/command/ask/retry/rerequest → a Run (bot/run.py); cancel → stop the
runs of that issue; help → the command list. Whatever fails, the ticket
ends in a final state with a comment; no ticket stays `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple

from .config import Settings
from .errors import BotError, DockerUnavailable, GitHubError
from .github import render
from .github.client import GitHubApp, RepoClient
from .github.render import Outcome
from .github.reporter import Reporter
from .hooks import TicketEvents
from .ledger import Ledger
from .models import CONTROL_KINDS, WORK_KINDS, Conclusion, Ticket, TicketKind, TicketState
from .policy.authz import Asker, Decision, authorize
from .run import Deps, Run, effective_kind, session_store
from .runner.docker import DockerRunner, store_key
from .store.base import TicketStore
from .triggers.commands import help_text

log = logging.getLogger("bot.worker")

ANNOUNCE_EVERY = 2.0  # seconds between looks for tickets waiting behind a run
SWEEP_EVERY = 30.0  # seconds between sweeps for containers of dead runs
SESSION_SWEEP_EVERY = 3600.0  # seconds between sweeps for agent sessions past their TTL


class Job(NamedTuple):
    """A claimed ticket with what its handler needs."""

    ticket: Ticket
    gh: RepoClient
    reporter: Reporter
    asker: Asker
    cancel: asyncio.Event


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
        events: TicketEvents | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        # the one writer of ticket state; metrics and notifications hear of it (none by default)
        self.ledger = Ledger(store, events, lambda: self.clock())
        self.github = github
        self.runner = runner
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._cancels: dict[int, asyncio.Event] = {}
        self._cancelled_by: dict[int, str] = {}
        self._announced: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._swept = 0.0
        self._sessions_swept = 0.0
        # names the database on container labels, never revealing its URL
        self.store_key = store_key(settings.database_url)
        self.docker_ok = True
        # the one dispatch table: what each kind of ticket does once it is claimed
        self._handlers: dict[TicketKind, Callable[[Job], Awaitable[None]]] = {
            TicketKind.LABEL: self._run,
            TicketKind.COMMAND: self._run,
            TicketKind.ASK: self._run,
            TicketKind.RETRY: self._retry,
            TicketKind.RERUN: self._retry,
            TicketKind.CANCEL: self._cancel_runs,
            TicketKind.HELP: self._help,
        }

    # -- the loop ------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def cancel(self, ticket_id: int, by: str = "") -> bool:
        """Stop a ticket running in this process (the store carries requests across hosts)."""
        event = self._cancels.get(ticket_id)
        if event is None:
            return False
        if by:
            self._cancelled_by.setdefault(ticket_id, by)
        event.set()
        return True

    @property
    def running(self) -> list[int]:
        return list(self._cancels)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim and run tickets until `stop`; then shut down gracefully.

        Running tickets get `AUTOCODE_SHUTDOWN_GRACE` seconds to finish; those
        still running then are stopped and handed back to the queue (not
        failed, not reported), for this or another worker to run again.
        """
        log.info("worker started", extra={"worker": self.worker_id})
        while not stop.is_set():
            await self._recover()
            await self._poll_cancels()
            await self._sweep()
            await self._sweep_sessions()
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
        await self._shutdown()

    async def _shutdown(self) -> None:
        if not self._tasks:
            return
        log.info(
            "stopping: waiting for running tickets",
            extra={"tickets": self.running, "grace": self.settings.shutdown_grace},
        )
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace)
        for task in pending:
            task.cancel()  # process() hands the ticket back to the queue
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sweep(self) -> None:
        """Remove agent containers of runs that are over or whose worker is gone.

        A container is kept while the store says its ticket runs under the
        worker named on its label (another live worker on the same engine
        included); this worker's own are kept while it runs them.
        """
        now = time.monotonic()
        # a dead run's lease must expire before its container is disowned: look that often
        every = min(SWEEP_EVERY, max(2.0, float(self.settings.lease_seconds)))
        if self._swept and now - self._swept < every:
            return
        self._swept = now

        def keep(ticket_id: int, worker: str) -> bool:
            if worker == self.worker_id:
                return ticket_id in self._cancels
            ticket = self.store.get(ticket_id) if ticket_id else None
            return (
                ticket is not None
                and ticket.state is TicketState.RUNNING
                and ticket.lease_owner == worker
            )

        try:
            removed = await asyncio.to_thread(self.runner.remove_orphans, self.store_key, keep)
        except Exception:  # Docker or the store down: the next sweep retries
            log.warning("orphan sweep failed", exc_info=True)
            return
        if removed:
            log.info("removed containers of dead runs", extra={"tickets": removed})

    async def _sweep_sessions(self) -> None:
        """At start and hourly: remove agent sessions unused for AUTOCODE_SESSION_TTL_DAYS."""
        now = time.monotonic()
        if self._sessions_swept and now - self._sessions_swept < SESSION_SWEEP_EVERY:
            return
        self._sessions_swept = now
        store = session_store(self.settings)
        try:
            await asyncio.to_thread(store.sweep, self.clock(), self.settings.session_ttl_days)
        except OSError:
            log.warning("session sweep failed", exc_info=True)

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

    async def _poll_cancels(self) -> None:
        """Cancel requests made anywhere (another process, another host) reach our runs."""
        if not self._cancels:
            return
        try:
            asked = await asyncio.to_thread(self.store.cancel_requests, list(self._cancels))
        except Exception:
            log.warning("cannot read cancel requests", exc_info=True)
            return
        for ticket_id, by in asked.items():
            self.cancel(ticket_id, by)

    async def _recover(self) -> None:
        for ticket in await self.ledger.recover(self.settings.max_attempts):
            try:
                await self._report_lost(ticket)
            except Exception:
                log.warning("reporting a lost ticket on GitHub failed", exc_info=True,
                            extra={"ticket": ticket.id})  # fmt: skip

    async def _report_lost(self, ticket: Ticket) -> None:
        await self._report_failure(
            ticket, ticket.error or "the run was lost twice; it was not retried again"
        )

    async def _report_failure(self, ticket: Ticket, reason: str) -> None:
        """The failure on GitHub: the ticket's comment and, if it has one, its check run."""
        gh = await self.github.repo(ticket.repository, ticket.installation_id)
        reporter = Reporter(gh, ticket)
        outcome = Outcome(Conclusion.FAILURE, "the run failed", reason=reason)
        await reporter.try_say(render.outcome_comment(ticket.id, outcome))
        await reporter.conclude_check(self.clock(), "failure", render.check_output(outcome))

    # -- one ticket ----------------------------------------------------------
    async def process(self, ticket: Ticket) -> None:
        cancel = asyncio.Event()
        self._cancels[ticket.id] = cancel
        lease = asyncio.create_task(self._keep_lease(ticket.id, cancel))
        context = {"ticket": ticket.id, "repository": ticket.repository, "number": ticket.number}
        log.info("ticket started", extra={**context, "kind": ticket.kind})
        try:
            await self._process(ticket, cancel)
        except asyncio.CancelledError:
            # shutdown past its grace period: the ticket goes back to the queue
            await asyncio.to_thread(self.store.release, ticket.id, self.worker_id)
            log.info("ticket handed back", extra=context)
            raise
        except Exception as exc:
            # outside a Run (authorization, retry resolution, GitHub down): still say so on GitHub
            log.exception("ticket crashed", extra=context)
            reason = (
                exc.message
                if isinstance(exc, BotError)
                else f"internal error ({exc.__class__.__name__}); see the bot's logs"
            )
            await self.ledger.finished(
                ticket.id, TicketState.FAILED, conclusion="failure", error=reason
            )
            current = await asyncio.to_thread(self.store.get, ticket.id)
            try:
                await self._report_failure(current or ticket, reason)
            except Exception:
                log.warning("reporting a failed ticket on GitHub failed", exc_info=True,
                            extra={"ticket": ticket.id})  # fmt: skip
        finally:
            lease.cancel()
            self._cancels.pop(ticket.id, None)
            self._cancelled_by.pop(ticket.id, None)
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

    async def _finish(
        self, ticket: Ticket, state: TicketState, conclusion: str | None, error: str | None
    ) -> None:
        await self.ledger.finished(ticket.id, state, conclusion=conclusion, error=error)

    async def _process(self, ticket: Ticket, cancel: asyncio.Event) -> None:
        try:
            gh = await self.github.repo(ticket.repository, ticket.installation_id)
        except GitHubError as exc:
            await self._finish(ticket, TicketState.FAILED, "failure", exc.message)
            log.error("no installation token", extra={"ticket": ticket.id, "error": exc.message})
            return
        asker = await self._asker(gh, ticket)
        job = Job(ticket, gh, Reporter(gh, ticket), asker, cancel)
        if ticket.kind != TicketKind.CANCEL:  # cancel decides with the runs it would stop
            decision = authorize(asker)
            if not decision.allowed:
                await self._reject(ticket, job.reporter, asker, decision)
                return
        handler = self._handlers.get(ticket.kind)
        if handler is None:
            raise BotError(f"a worker cannot run a ticket of kind {ticket.kind!r}")
        await handler(job)

    async def _help(self, job: Job) -> None:
        """`/opencode help`: the command list (also for an unknown sub-command)."""
        unknown = str(job.ticket.context.get("unknown") or "")
        await job.reporter.post(help_text(self.settings.command, unknown))
        await self._finish(job.ticket, TicketState.SUCCEEDED, "neutral", None)

    async def _retry(self, job: Job) -> None:
        """`retry` and Re-run: the run of a copy of the ticket it repeats, if there is one."""
        resolved = await self._resolve_retry(job.ticket, job.reporter)
        if resolved is not None:
            await self._run(job._replace(ticket=resolved, reporter=Reporter(job.gh, resolved)))

    async def _run(self, job: Job) -> None:
        """A work ticket: 👀, then one Run of it to its concluded check run."""
        ticket, gh, reporter, asker, cancel = job
        await reporter.acknowledge()
        asked = await asyncio.to_thread(self.store.cancel_requests, [ticket.id])
        if ticket.id in asked:  # cancelled while it waited
            self.cancel(ticket.id, asked[ticket.id])
        deps = Deps(
            settings=self.settings,
            store=self.store,
            github=self.github,
            runner=self.runner,
            clock=self.clock,
            announce=self._announce_waiting,
            cancelled_by=self._cancelled_by.get,
            worker_id=self.worker_id,
            store_key=self.store_key,
            ledger=self.ledger,
        )
        await self.ledger.started(ticket)
        await Run(deps, ticket, gh, reporter, cancel, asker).execute()

    async def _asker(self, gh: RepoClient, ticket: Ticket) -> Asker:
        """Who asks, with their role; the operator's own tickets need no GitHub lookup.

        Webhook triggers are built from fixed context keys, so no payload can
        claim to be the operator.
        """
        if ticket.context.get("operator") is True:
            return Asker(ticket.requested_by, "admin", operator=True)
        return Asker(ticket.requested_by, await gh.permission(ticket.requested_by))

    async def _reject(
        self, ticket: Ticket, reporter: Reporter, asker: Asker, decision: Decision
    ) -> None:
        try:
            await reporter.say(
                render.marker(ticket.id) + "\n" + render.rejected_comment(asker.login, asker.role)
            )
        except GitHubError as exc:
            log.warning(
                "rejection comment failed", extra={"ticket": ticket.id, "error": exc.message}
            )
        await self._finish(ticket, TicketState.REJECTED, None, decision.reason)
        log.info("ticket rejected", extra={"ticket": ticket.id, "role": asker.role})

    # -- control tickets -------------------------------------------------------
    async def _lane(self, ticket: Ticket, states: tuple[TicketState, ...]) -> list[Ticket]:
        """The work tickets of the same issue or PR in one of `states`, oldest first."""
        found: list[Ticket] = []
        for state in states:
            found += await asyncio.to_thread(
                lambda s=state: self.store.tickets(  # type: ignore[misc]
                    state=s, repository=ticket.repository, limit=500
                )
            )
        return sorted(
            (
                t
                for t in found
                if t.number == ticket.number and t.kind not in CONTROL_KINDS and t.id != ticket.id
            ),
            key=lambda t: t.id,
        )

    async def _cancel_runs(self, job: Job) -> None:
        """`cancel` (a comment, or the check run's button): stop the runs of that issue."""
        ticket, gh, reporter, asker, _ = job
        target = ticket.context.get("target")
        if isinstance(target, int):
            one = await asyncio.to_thread(self.store.get, target)
            targets = [one] if one is not None and not one.state.final else []
        else:
            targets = await self._lane(ticket, (TicketState.RUNNING, TicketState.QUEUED))
        decision = authorize(asker, cancel_of=tuple(t.requested_by for t in targets))
        if not decision.allowed:
            await self._reject(ticket, reporter, asker, decision)
            return
        if not targets:
            await reporter.post(render.nothing_to_cancel())
            await self._finish(ticket, TicketState.SUCCEEDED, "neutral", "nothing to cancel")
            return
        for victim in targets:
            # queued ones end as soon as they are claimed; running ones within a tick
            await asyncio.to_thread(self.store.request_cancel, victim.id, ticket.requested_by)
            self.cancel(victim.id, ticket.requested_by)
        if reporter.trigger_comment is not None:
            with contextlib.suppress(GitHubError):
                await gh.react_comment(reporter.trigger_comment, "+1")
        await self._finish(ticket, TicketState.SUCCEEDED, "success", None)
        log.info(
            "cancel requested",
            extra={"ticket": ticket.id, "targets": [t.id for t in targets]},
        )

    async def _resolve_retry(self, ticket: Ticket, reporter: Reporter) -> Ticket | None:
        """A retry becomes a copy of the ticket it repeats; None when there is none."""
        source_id = ticket.context.get("retry_of")
        source: Ticket | None = None
        if isinstance(source_id, int):
            source = await asyncio.to_thread(self.store.get, source_id)
        else:
            earlier = [
                t
                for t in await self._lane(ticket, tuple(TicketState))
                if t.id < ticket.id and t.kind in WORK_KINDS and t.state.final
            ]
            source = earlier[-1] if earlier else None
        if source is None or source.repository != ticket.repository:
            await reporter.post(render.nothing_to_retry())
            await self._finish(ticket, TicketState.SUCCEEDED, "neutral", "nothing to retry")
            return None
        own = {
            k: v for k, v in ticket.context.items() if k in ("source", "comment_id", "comment_url")
        }
        context: dict[str, Any] = {
            **{k: v for k, v in source.context.items() if k not in ("comment_id", "comment_url")},
            "source": "retry",
            **own,
            "retry_of": source.id,
            "as_kind": effective_kind(source),
        }
        await self.ledger.repeats(ticket.id, instructions=source.instructions, context=context)
        return replace(
            ticket,
            instructions=source.instructions,
            context=context,
            is_pull_request=source.is_pull_request,
            title=source.title,
        )

    async def _announce_waiting(self, running: Ticket, gh: RepoClient) -> None:
        """Tell requests queued behind `running` that they wait, once each.

        Only the worker running an issue's ticket does this, so two workers
        never both write the same waiting comment.
        """
        now = time.monotonic()
        if now - self._announced.get(running.id, 0.0) < ANNOUNCE_EVERY:
            return
        self._announced[running.id] = now
        for waiting in await self._lane(running, (TicketState.QUEUED,)):
            if waiting.comment_id is not None:
                continue
            reporter = Reporter(gh, waiting)
            asker = await self._asker(gh, waiting)
            decision = authorize(asker)
            if not decision.allowed:
                await self._reject(waiting, reporter, asker, decision)
                continue
            comment_id = await reporter.post(render.waiting_comment(waiting.id, running.id))
            await self.ledger.commented(waiting.id, comment_id)
