"""Follow-ups of the bot's own pull requests, decided when claimed, then run like any ticket.

A `ci_fix` ticket (the checks of a commit finished) and a `review_fix`
ticket (a review requested changes) arrive for any pull request of the
repository. When claimed, the facts are gathered — the pull request now,
its earlier tickets, its settings file at the head commit, the commit's
check suites — and `policy.followup` decides. Most end here, quietly (the
ticket's error says why; nothing is posted): not the bot's commit, other
checks still running, follow-ups off. A passing CI puts a ✓ in the progress
comment of the run that pushed. A follow-up that goes ahead takes its task
(the failing checks with their annotations and log tails, or the review's
comments) as its instructions, and the words of why it started; the worker
then runs it as a Run on the pull request's own branch, in its session.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from .. import repo_settings
from ..config import Settings
from ..errors import GitHubError
from ..github.feedback import ACTIONS_APP, NoActionsAccess
from ..github.reporter import Reporter
from ..ledger import Ledger
from ..models import Ticket, TicketKind, TicketState
from ..policy.authz import Asker
from ..policy.followup import (
    FAILED,
    PASSED,
    SKIPPED,
    History,
    Passed,
    Pull,
    Skip,
    Suite,
    ci_decision,
    history,
    review_decision,
)
from ..runner.feedback import (
    MAX_RUNS,
    FailedCheck,
    ci_brief,
    ci_why,
    log_tail,
    review_brief,
    review_why,
)
from ..store.base import TicketStore
from .admission import admission
from .ports import App, Feedback, FeedbackSource, Repository

log = logging.getLogger("bot.worker")

NO_LOGS = "job logs not read: the App lacks the `actions: read` permission"


class FollowUps:
    """Decides a claimed follow-up; the ticket to run, or None once it has ended."""

    def __init__(self, store: TicketStore, ledger: Ledger, settings: Settings, app: App) -> None:
        self.store = store
        self.ledger = ledger
        self.settings = settings
        self.app = app

    async def resolve(
        self, ticket: Ticket, gh: Repository, reporter: Reporter, asker: Asker
    ) -> Ticket | None:
        source = self.app
        if not isinstance(source, FeedbackSource):
            await self._end(ticket, reporter, Skip("this GitHub adapter has no follow-ups"))
            return None
        pull = Pull.of(await gh.pull(ticket.number), ticket.repository)
        tickets = await asyncio.to_thread(self.store.pull_tickets, ticket.repository, ticket.number)
        past = history(tickets, ticket.number, ticket.id)
        reader = await source.feedback(ticket.repository, ticket.installation_id)
        sha = ticket.origin.head_sha if ticket.kind == TicketKind.CI_FIX else pull.head_sha
        repo = await self._repo_settings(reader, sha or pull.head_sha)
        if isinstance(repo, Skip):
            await self._end(ticket, reporter, repo)
            return None
        if ticket.kind == TicketKind.CI_FIX:
            return await self._ci(ticket, gh, reporter, reader, source, pull, past, repo)
        return await self._review(ticket, reader, pull, past, repo, asker, reporter)

    async def _repo_settings(self, reader: Feedback, ref: str) -> repo_settings.RepoSettings | Skip:
        text = await reader.file(repo_settings.PATH, ref, repo_settings.MAX_FILE_BYTES)
        parsed = repo_settings.parse(text, repo_settings.HostLimits.of(self.settings))
        if isinstance(parsed, repo_settings.Invalid):
            return Skip(f"{repo_settings.PATH} is invalid at {ref[:7]}")
        return parsed

    async def _ci(
        self,
        ticket: Ticket,
        gh: Repository,
        reporter: Reporter,
        reader: Feedback,
        source: FeedbackSource,
        pull: Pull,
        past: History,
        repo: repo_settings.RepoSettings,
    ) -> Ticket | None:
        sha = ticket.origin.head_sha
        suites = await reader.suites(sha)
        decision = ci_decision(
            sha=sha,
            pull=pull,
            suites=suites,
            our_app_id=self.settings.app_id or self.settings.client_id,
            past=past,
            settings=repo,
            host_cap=self.settings.max_ci_fix_attempts,
        )
        if isinstance(decision, Passed):
            await self._passed(ticket, gh, reader, past, announce=decision.announce)
            return None
        if isinstance(decision, Skip):
            await self._end(ticket, reporter, decision)
            return None
        failed, no_logs = await self._failures(ticket, suites, reader, source)
        why = ci_why(failed, sha) + (f" · {NO_LOGS}" if no_logs else "")
        return await self._go(ticket, ci_brief(failed, sha, no_logs=no_logs), why, ())

    async def _failures(
        self, ticket: Ticket, suites: list[Suite], reader: Feedback, source: FeedbackSource
    ) -> tuple[list[FailedCheck], bool]:
        """The failing check runs of the commit, each with its annotations and log tail."""
        our_app = self.settings.app_id or self.settings.client_id
        failed: list[FailedCheck] = []
        no_logs = False
        for suite in suites:
            if suite.made_by(our_app) or suite.conclusion not in FAILED or len(failed) >= MAX_RUNS:
                continue
            for run in (await reader.failed_runs(suite))[: MAX_RUNS - len(failed)]:
                check = await reader.failed_check(run)
                if check.app == ACTIONS_APP and not no_logs:
                    try:
                        data = await source.job_log(
                            ticket.repository, ticket.installation_id, int(run["id"])
                        )
                        check = replace(check, log_tail=log_tail(data))
                    except NoActionsAccess:
                        no_logs = True
                    except GitHubError as exc:
                        log.warning("a job's log could not be read",
                                    extra={"ticket": ticket.id, "error": exc.message})  # fmt: skip
                failed.append(check)
        return failed, no_logs

    async def _review(
        self,
        ticket: Ticket,
        reader: Feedback,
        pull: Pull,
        past: History,
        repo: repo_settings.RepoSettings,
        asker: Asker,
        reporter: Reporter,
    ) -> Ticket | None:
        decision = review_decision(
            pull=pull, past=past, settings=repo, host_cap=self.settings.max_ci_fix_attempts
        )
        if isinstance(decision, Skip):
            await self._end(ticket, reporter, decision)
            return None
        allowed = await admission(self.app, ticket, asker, repo)
        if not allowed.allowed:  # a drive-by review: nothing is said, nothing runs
            await self._end(ticket, reporter, Skip(allowed.reason))
            return None
        review_id = ticket.origin.review_id
        if review_id is None:
            await self._end(ticket, reporter, Skip("the review has no id"))
            return None
        review = await reader.review(ticket.number, review_id)
        threads = tuple(c.id for c in review.comments)
        return await self._go(ticket, review_brief(review), review_why(review.author), threads)

    async def _go(self, ticket: Ticket, brief: str, why: str, threads: tuple[int, ...]) -> Ticket:
        """The follow-up runs: its task, why it started and the threads it answers, stored."""
        origin = ticket.origin.but(why=why, reply_to=threads)
        await self.ledger.repeats(ticket.id, instructions=brief, origin=origin)
        log.info("follow-up goes ahead", extra={"ticket": ticket.id, "why": why})
        return replace(ticket, instructions=brief, origin=origin)

    async def _passed(
        self, ticket: Ticket, gh: Repository, reader: Feedback, past: History, *, announce: bool
    ) -> None:
        """Every check of the bot's commit passed: ✓ in the comment of the run that pushed it."""
        pusher = await asyncio.to_thread(self.store.get, past.pusher) if past.pusher else None
        # (a reply in a review thread stays as it is)
        if announce and pusher and pusher.comment_id and pusher.origin.source != "review_comment":
            line = f"✓ The checks of {ticket.origin.head_sha[:7]} passed."
            try:
                body = await reader.comment_body(pusher.comment_id)
                if line not in body:
                    await gh.edit_comment(pusher.comment_id, f"{body}\n\n{line}")
            except GitHubError as exc:
                log.warning("the ✓ of passing checks was not shown",
                            extra={"ticket": ticket.id, "error": exc.message})  # fmt: skip
        await self.ledger.finished(ticket.id, TicketState.SUCCEEDED, conclusion=PASSED)
        log.info("checks of the bot's push passed", extra={"ticket": ticket.id})

    async def _end(self, ticket: Ticket, reporter: Reporter, skip: Skip) -> None:
        """No run: said once when there is something to say, else only in the ticket's error."""
        if skip.say:
            try:
                comment_id = await reporter.post(skip.say)
                await self.ledger.commented(ticket.id, comment_id)
            except GitHubError as exc:
                log.warning("a follow-up's notice failed",
                            extra={"ticket": ticket.id, "error": exc.message})  # fmt: skip
        await self.ledger.finished(
            ticket.id, TicketState.REJECTED, conclusion=SKIPPED, error=skip.reason
        )
        log.info("follow-up skipped", extra={"ticket": ticket.id, "reason": skip.reason})
