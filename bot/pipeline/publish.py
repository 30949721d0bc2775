"""The publish stage: commit and push the agent's change, then open or update the pull request.

On an issue the work goes to `autocode/issue-N` and a pull request (a
draft when the settings say so or the tests still fail); on a pull request
it is a new commit on the PR's own branch. The installation token is used
on the host only, in git's environment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..errors import GitHubError
from ..github import render
from ..github.render import Outcome
from ..models import Conclusion, RunResult, Ticket, TicketKind
from ..policy.target import Target
from ..runner.feedback import replies, thread_reply
from ..testloop import find_annotations
from ..workspace import Author, Workspace
from .outcomes import published, test_reason
from .ports import Repository
from .report import RunReport
from .state import Deps, RunState, ticket_kind_and_priority

log = logging.getLogger("bot.pipeline")


def commit_message(ticket: Ticket, title: str, *, pull_request: bool) -> str:
    if ticket.kind == TicketKind.SERVICE:
        kind, priority = ticket_kind_and_priority(ticket)
        return render.ticket_commit_message(title, kind, priority)
    return render.commit_message(ticket.number, title, pull_request=pull_request)


def pr_intro(ticket: Ticket) -> list[str]:
    if ticket.kind == TicketKind.SERVICE:
        return render.ticket_intro(*ticket_kind_and_priority(ticket))
    return render.pr_intro(ticket.number)


class Publisher:
    """Pushes one run's work and opens or updates its pull request."""

    def __init__(self, deps: Deps, state: RunState, report: RunReport, gh: Repository) -> None:
        self.deps = deps
        self.state = state
        self.report = report
        self.gh = gh

    async def push(
        self, workspace: Workspace, target: Target, files: list[str], result: RunResult
    ) -> Outcome:
        state, deps = self.state, self.deps
        ticket = state.ticket
        await self.report.phase("pushing")
        mark = time.monotonic()
        identity = await deps.app.identity(self.gh)
        message = commit_message(ticket, state.title, pull_request=target.pull is not None)
        sha = await asyncio.to_thread(
            workspace.commit, message, Author(identity.name, identity.email)
        )
        await deps.ledger.pushing(ticket.id, sha)
        state.pushed = sha
        token = await deps.app.token(ticket.repository, ticket.installation_id)
        await asyncio.to_thread(workspace.push, token.token, target.branch)
        state.progress.timings["commit_push"] = time.monotonic() - mark
        self.report.log("phase", f"pushed {len(files)} changed files to {target.branch}")
        if target.pull is None:
            return await self.open_pull(target, files, result, workspace)
        number = int(target.pull["number"])
        url = str(target.pull.get("html_url") or "")
        await deps.ledger.published(ticket.id, pr_number=number, pr_url=url, files=files)
        return published(
            headline=f"pushed a commit to pull request #{number} ({target.branch})",
            failing=state.tests_fail(),
            branch=target.branch,
            pr_url=url,
            pr_number=number,
            files=files,
            reason=test_reason(state.attempts, state.repo),
            common=state.common(result, self.report.now()),
            annotations=await self._annotations(workspace),
        )

    async def open_pull(
        self,
        target: Target,
        files: Sequence[str],
        result: RunResult,
        workspace: Workspace | None = None,
    ) -> Outcome:
        state = self.state
        failing = state.tests_fail()
        draft = state.repo.draft or failing
        mark = time.monotonic()
        common = state.common(result, self.report.now())
        preview = Outcome(
            Conclusion.SUCCESS,
            "",
            files=list(files),
            draft=draft,
            **{k: v for k, v in common.items() if k != "output_tail"},
        )
        body = render.pr_body(pr_intro(state.ticket), preview, result.final_text)
        found = await self.gh.find_pull(target.branch)
        notes: list[str] = []
        if found is None:
            number, url = await self.gh.create_pull(
                title=state.title, head=target.branch, base=target.base, body=body, draft=draft
            )
            notes = await self._decorate(number)
        else:
            number, url = found
            await self.gh.update_pull(number, body=body)
        state.progress.timings["pull_request"] = time.monotonic() - mark
        await self.deps.ledger.published(state.ticket.id, pr_number=number, pr_url=url, files=files)
        verb = "opened" if found is None else "updated"
        kind = "draft pull request" if draft and found is None else "pull request"
        return published(
            headline=f"{verb} {kind} #{number}",
            failing=failing,
            branch=target.branch,
            pr_url=url,
            pr_number=number,
            files=files,
            reason=test_reason(state.attempts, state.repo),
            common=state.common(result, self.report.now()),
            draft=draft and found is None,
            notes=notes,
            annotations=await self._annotations(workspace),
        )

    async def answer_review(self, result: RunResult, files: Sequence[str]) -> None:
        """A review's follow-up: in each of its threads, what was done (the agent's line)."""
        state = self.state
        threads = state.ticket.origin.reply_to
        said = replies(result.final_text, len(threads))
        for number, comment_id in enumerate(threads, start=1):
            body = thread_reply(said.get(number), state.pushed or None, changed=bool(files))
            try:
                await self.gh.reply_review(state.ticket.number, comment_id, body)
            except GitHubError as exc:
                log.warning("a review thread was not answered",
                            extra={"ticket": state.ticket.id, "error": exc.message})  # fmt: skip

    async def unreported_branch(self, target: Target) -> list[str]:
        """The files an earlier attempt pushed to the branch when no pull request shows them."""
        if await self.gh.find_pull(target.branch) is not None:
            return []
        base_sha = await self.gh.branch_sha(target.base)
        if base_sha is None or base_sha == target.start_sha:
            return []
        files = self.state.ticket.files_changed
        return list(files) if files else [f"(changes already on {target.branch})"]

    async def _decorate(self, number: int) -> list[str]:
        """Labels and reviewers from the settings; what could not be done, as notes."""
        notes: list[str] = []
        repo = self.state.repo
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
            log.warning("pull request settings", extra={"ticket": self.state.ticket.id,
                                                       "note": note})  # fmt: skip
        return notes

    async def _annotations(self, workspace: Workspace | None) -> list[dict[str, Any]]:
        """Check-run annotations for the failures the final test output names."""
        if not self.state.tests_fail() or workspace is None:
            return []
        root = workspace.work_tree

        def exists(path: str) -> bool:
            target = root / path
            return target.is_file() and not target.is_symlink()

        output = self.state.attempts[-1].output
        return await asyncio.to_thread(find_annotations, output, exists)
