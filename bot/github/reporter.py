"""Where a ticket talks on GitHub: its one comment, its reactions, its check run.

A run started from a review comment answers in that review thread; anything
else answers on the issue or pull request conversation. Each ticket has one
comment (`Ticket.comment_id`) that is edited in place from "queued" to the
outcome, and one `Auto-Code` check run. GitHub failing while reporting is
logged and tolerated: the ticket's state in the store is what must not be lost.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import GitHubError
from ..models import Ticket
from . import render

if TYPE_CHECKING:
    from ..pipeline.ports import Repository

log = logging.getLogger("bot.reporter")

CANCEL_ACTION = {"label": "Cancel", "description": "Stop this run", "identifier": "cancel"}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Reporter:
    """One ticket's voice on GitHub."""

    def __init__(self, gh: Repository, ticket: Ticket) -> None:
        self.gh = gh
        self.ticket = ticket
        origin = ticket.origin
        self.trigger_comment = origin.comment_id
        self.in_review_thread = origin.source == "review_comment" and origin.comment_id is not None
        self.comment_id = ticket.comment_id
        self.check_run_id = ticket.check_run_id

    # -- the conversation ------------------------------------------------------
    async def acknowledge(self) -> None:
        """👀 on what asked: the comment with the command, or the labeled issue."""
        try:
            if self.trigger_comment is None or self.ticket.origin.source == "check_run":
                await self.gh.react(self.ticket.number, "eyes")
            elif self.in_review_thread:
                await self.gh.react_review_comment(self.trigger_comment, "eyes")
            elif self.ticket.origin.source == "issue_comment":
                await self.gh.react_comment(self.trigger_comment, "eyes")
            else:
                await self.gh.react(self.ticket.number, "eyes")
        except GitHubError as exc:
            log.warning("reaction failed", extra={"ticket": self.ticket.id, "error": exc.message})

    async def post(self, body: str) -> int:
        """A new comment where the request was made; returns its id."""
        if self.in_review_thread and self.trigger_comment is not None:
            return await self.gh.reply_review(self.ticket.number, self.trigger_comment, body)
        return await self.gh.comment(self.ticket.number, body)

    async def say(self, body: str) -> int:
        """Write the ticket's one comment: create it the first time, edit it after."""
        if self.comment_id is None:
            self.comment_id = await self.post(body)
        elif self.in_review_thread:
            await self.gh.edit_review_comment(self.comment_id, body)
        else:
            await self.gh.edit_comment(self.comment_id, body)
        return self.comment_id

    async def try_say(self, body: str) -> None:
        try:
            await self.say(body)
        except GitHubError as exc:
            log.warning("comment failed", extra={"ticket": self.ticket.id, "error": exc.message})

    # -- the check run -----------------------------------------------------------
    async def open_check(self, head_sha: str, details_url: str, output: dict[str, str]) -> int:
        if self.check_run_id is None:
            data: dict[str, Any] = {
                "name": render.CHECK_NAME,
                "head_sha": head_sha,
                "status": "queued",
                "external_id": str(self.ticket.id),
                "output": output,
            }
            if details_url:
                data["details_url"] = details_url
            self.check_run_id = await self.gh.create_check_run(data)
        return self.check_run_id

    async def update_check(self, data: dict[str, Any]) -> None:
        if self.check_run_id is None:
            return
        try:
            await self.gh.update_check_run(self.check_run_id, data)
        except GitHubError as exc:
            log.warning(
                "check run update failed", extra={"ticket": self.ticket.id, "error": exc.message}
            )

    async def start_check(self, now: float, output: dict[str, str]) -> None:
        """in_progress, with a Cancel button for as long as the run lasts."""
        await self.update_check(
            {
                "status": "in_progress",
                "started_at": iso(now),
                "output": output,
                "actions": [CANCEL_ACTION],
            }
        )

    async def conclude_check(self, now: float, conclusion: str, output: dict[str, str]) -> None:
        await self.update_check(
            {
                "status": "completed",
                "conclusion": conclusion,
                "completed_at": iso(now),
                "output": output,
                "actions": [],
            }
        )
