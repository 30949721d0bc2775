"""The ticket store protocol every backend implements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..models import Ticket, TicketState, Trigger

# Columns a worker may set with `update`. Anything else is refused.
UPDATABLE = frozenset(
    {
        "conclusion",
        "error",
        "branch",
        "head_sha",
        "pr_number",
        "pr_url",
        "check_run_id",
        "comment_id",
        "tokens_input",
        "tokens_output",
        "cost",
        "files_changed",
        "pushed_sha",
        "title",
        "body",
        "instructions",
        "origin",
    }
)


def column_name(name: str) -> str:
    """The column a ticket field lives in (the origin in `context`, its name since 001)."""
    return "context" if name == "origin" else name


def column_value(name: str, value: Any) -> Any:
    """A ticket field as the SQL backends store it (JSON text for the structured ones)."""
    if name == "files_changed":
        return json.dumps(list(value))
    if name == "origin":
        return value.to_json()
    return value


@dataclass(frozen=True)
class LogLine:
    id: int
    ticket_id: int
    at: float
    kind: str
    message: str


@dataclass(frozen=True)
class Notification:
    """One outbox row: an event body for one receiver URL, sent until it is delivered.

    A row its receiver kept refusing for AUTOCODE_NOTIFY_GIVE_UP_HOURS is given up
    (`dead_at`): never sent again, and no longer holding up its ticket's later events.
    """

    id: int
    ticket_id: int
    url: str
    event: str
    body: str
    created_at: float
    attempts: int
    next_attempt_at: float
    delivered_at: float | None = None
    last_error: str | None = None
    dead_at: float | None = None

    @property
    def state(self) -> str:
        """pending (still being sent), delivered, or dead (given up)."""
        if self.delivered_at is not None:
            return "delivered"
        return "pending" if self.dead_at is None else "dead"


# Seconds a notification handed out by `due_notifications` is hidden from other
# notifiers: the longest one delivery attempt may take before it is tried again.
NOTIFY_LEASE = 60.0


class TicketStore(Protocol):
    """Durable tickets: add (deduplicated by delivery), claim with a lease, finish."""

    # True when writes are fast local calls that may run on the event loop.
    inline_writes: bool

    def add(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[int, bool]:
        """Store a ticket for a delivery; return (ticket id, created). Durable on return."""

    def add_many(self, items: Sequence[tuple[str, str, Trigger]]) -> list[tuple[int, bool]]:
        """`add` for several deliveries in one transaction, results in order.

        A bare trigger (`Trigger.bare`) whose lane already has a bare ticket
        queued or running, made less than COALESCE_SECONDS ago, joins it: the
        label and `/opencode` arriving together make one run.
        """

    def get(self, ticket_id: int) -> Ticket | None: ...

    def tickets(
        self,
        *,
        state: TicketState | None = None,
        repository: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[Ticket]:
        """Newest first; `before` (a ticket id) pages on to older ones."""

    def pull_tickets(self, repository: str, number: int, limit: int = 500) -> Sequence[Ticket]:
        """Newest first: the tickets made on pull request `number`, or that pushed to it."""

    def pusher(self, repository: str, sha: str) -> Ticket | None:
        """The ticket whose run pushed commit `sha` (recorded before the push), if any."""

    def claim(self, worker_id: str, lease_seconds: float, now: float) -> Ticket | None:
        """Take the oldest runnable queued ticket (none running for its issue) with a lease."""

    def renew(self, ticket_id: int, worker_id: str, lease_seconds: float, now: float) -> bool:
        """Extend the lease; False when the ticket is no longer this worker's."""

    def update(self, ticket_id: int, **fields: Any) -> None: ...

    def finish(
        self,
        ticket_id: int,
        state: TicketState,
        now: float,
        *,
        conclusion: str | None = None,
        error: str | None = None,
    ) -> None:
        """Put the ticket in a final state and release its lease."""

    def release(self, ticket_id: int, worker_id: str) -> None:
        """Hand a running ticket back to the queue (graceful shutdown)."""

    def requeue_expired(self, now: float, max_attempts: int) -> list[Ticket]:
        """Queue again running tickets whose lease ran out; fail those out of attempts.

        Returns the tickets that were failed, so the caller can report them.
        """

    def request_cancel(self, ticket_id: int, by: str) -> bool:
        """Ask that a ticket stop: now if it runs, as soon as it is claimed if it waits.

        False when the ticket is over already (or unknown).
        """

    def cancel_requests(self, ticket_ids: Sequence[int]) -> dict[int, str]:
        """Of these tickets, the running ones someone asked to cancel, and who asked."""

    def log(self, ticket_id: int, kind: str, message: str, now: float) -> None: ...

    def logs(self, ticket_id: int, after: int = 0, limit: int = 1000) -> list[LogLine]: ...

    def prune_logs(self, finished_before: float) -> int:
        """Delete the log lines of tickets that finished before then; how many went."""

    def prune_notifications(self, settled_before: float) -> int:
        """Delete notifications delivered or given up before then; how many went."""

    def counts(self) -> dict[str, int]: ...

    def oldest_queued(self, now: float) -> float | None:
        """Seconds the oldest queued ticket has waited at `now`; None when none waits."""

    # -- the notification outbox -------------------------------------------
    # Stores made with `notify_urls` also write a `ticket.queued` row per URL
    # inside add_many's transaction: a ticket and its first event commit together.
    def enqueue_notifications(
        self, ticket_id: int, event: str, body: str, urls: Sequence[str], now: float
    ) -> list[int]:
        """One outbox row per URL for this event, due at once; their ids."""

    def due_notifications(
        self, now: float, limit: int, *, lease_seconds: float = NOTIFY_LEASE
    ) -> list[Notification]:
        """Claim up to `limit` rows due at `now`, oldest first, each the first unsettled
        one of its (ticket, URL): a later event never overtakes an earlier one still being
        sent (a delivered or given-up row holds up nothing).

        Claimed rows count an attempt and are hidden for `lease_seconds`, so notifiers
        in several processes never send one row at once; a notifier that dies mid-send
        leaves its rows to be sent again after the lease (at least once).
        """

    def mark_delivered(self, notification_id: int, now: float) -> None: ...

    def mark_failed(self, notification_id: int, now: float, next_at: float, error: str) -> None:
        """Record a failed attempt; the row is due again at `next_at`."""

    def mark_dead(self, notification_id: int, now: float, error: str) -> None:
        """Give a row up after its last failed attempt: it is never sent again."""

    def notifications(self, ticket_id: int) -> list[Notification]:
        """A ticket's outbox rows, oldest first, whatever their state."""

    def close(self) -> None: ...
