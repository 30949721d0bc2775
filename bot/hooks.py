"""The ticket life-cycle hooks the worker calls: a run started, a ticket ended.

The worker and the run call these at one line each and know nothing of who
listens (metrics, notifications). The base class listens to nothing, so a
Worker built without observers — in tests, benches, other tools — works as
before.
"""

from __future__ import annotations

from .models import Ticket


class TicketEvents:
    """Observers of tickets; every hook is a no-op here and must never raise in a subclass.

    A hook that raised would turn a finished run into a crashed one, so
    subclasses log their own failures and return.
    """

    async def started(self, ticket: Ticket) -> None:
        """A worker is about to run `ticket` (again, when a run is resumed)."""

    async def finished(self, ticket_id: int, *, ran: bool = False) -> None:
        """The ticket is in its final state in the store; `ran`: it went through a Run."""
