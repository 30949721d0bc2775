"""The only writer of a ticket's state: typed transitions, each telling the ticket's observers.

The worker and the run say what happened ("the comment is there", "the pull
request is open", "it ended `failed`") and the ledger writes it to the store
(in a thread: the store's calls block) and fires the ticket events the
metrics and notifications listen to. Claiming, lease renewal and handing a
ticket back are the queue's business (the store's own calls, in the worker);
everything a ticket *is* goes through here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from .hooks import TicketEvents
from .models import Origin, Ticket, TicketState, Usage
from .store.base import TicketStore


class Ledger:
    """Typed writes of one store's tickets; `events` hears of starts and ends."""

    def __init__(
        self,
        store: TicketStore,
        events: TicketEvents | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.events = events or TicketEvents()
        self.clock = clock or time.time

    async def _write(self, ticket_id: int, **fields: Any) -> None:
        await asyncio.to_thread(self.store.update, ticket_id, **fields)

    async def started(self, ticket: Ticket) -> None:
        """A worker is about to run `ticket` (again, when resumed)."""
        await self.events.started(ticket)

    async def commented(self, ticket_id: int, comment_id: int) -> None:
        """The ticket's one comment on GitHub (edited in place from now on)."""
        await self._write(ticket_id, comment_id=comment_id)

    async def targeted(
        self, ticket_id: int, *, check_run_id: int | None, branch: str, head_sha: str
    ) -> None:
        """Where the run works, and its check run on the commit it starts from."""
        await self._write(ticket_id, check_run_id=check_run_id, branch=branch, head_sha=head_sha)

    async def published(
        self, ticket_id: int, *, pr_number: int, pr_url: str, files: Sequence[str]
    ) -> None:
        """The work is on GitHub: pushed to a pull request, which changed these files."""
        await self._write(ticket_id, pr_number=pr_number, pr_url=pr_url, files_changed=list(files))

    async def pushing(self, ticket_id: int, sha: str) -> None:
        """The run is about to push commit `sha`: recorded first, so that the commit's checks,
        however fast, find the bot's own push (the follow-ups after failed checks)."""
        await self._write(ticket_id, pushed_sha=sha)

    async def used(self, ticket_id: int, usage: Usage) -> None:
        """What the agent reported using, for the dashboard, the API and the metrics."""
        if usage.input or usage.output or usage.cost:
            await self._write(
                ticket_id, tokens_input=usage.input, tokens_output=usage.output, cost=usage.cost
            )

    async def repeats(self, ticket_id: int, *, instructions: str, origin: Origin) -> None:
        """A retry takes the instructions and origin of the ticket it repeats."""
        await self._write(ticket_id, instructions=instructions, origin=origin)

    async def finished(
        self,
        ticket_id: int,
        state: TicketState,
        *,
        conclusion: str | None = None,
        error: str | None = None,
        ran: bool = False,
    ) -> None:
        """The ticket's final state (its lease released); `ran`: it went through a run."""
        await asyncio.to_thread(
            self.store.finish, ticket_id, state, self.clock(), conclusion=conclusion, error=error
        )
        await self.events.finished(ticket_id, ran=ran)

    async def recover(self, max_attempts: int) -> list[Ticket]:
        """Tickets whose lease expired go back to the queue; those lost too often end failed."""
        failed = await asyncio.to_thread(self.store.requeue_expired, self.clock(), max_attempts)
        for ticket in failed:
            await self.events.finished(ticket.id)
        return list(failed)
