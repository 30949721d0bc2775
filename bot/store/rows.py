"""What every SQL backend shares: the column list, the schema files, row → Ticket.

One place for these keeps the backends returning identical tickets: a
backend only decides how its driver hands over a row, never how a row reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from ..models import Origin, Ticket, TicketKind, TicketState

COLUMNS = (
    "id, delivery_id, event, kind, repository, clone_url, installation_id, number, "
    "is_pull_request, title, body, requested_by, instructions, context, state, created_at, "
    "conclusion, error, branch, head_sha, pr_number, pr_url, check_run_id, comment_id, "
    "attempts, started_at, finished_at, lease_owner, lease_expires_at, tokens_input, "
    "tokens_output, cost, files_changed, pushed_sha"
)


# The claim order: the repository with the fewest runs going first, then the oldest
# ticket. One busy repository cannot take every slot while others wait.
FAIR_ORDER = (
    "ORDER BY (SELECT count(*) FROM tickets b "
    "WHERE b.state = 'running' AND b.repository = t.repository), t.id"
)


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered schema files of a dialect, in order."""
    folder = resources.files("bot.store") / "schema" / dialect
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), entry.read_text()))
    return sorted(found)


def ticket_from_row(row: Sequence[Any]) -> Ticket:
    """A Ticket from a row in `COLUMNS` order, whatever types the driver used."""
    (
        id_, delivery_id, event, kind, repository, clone_url, installation_id, number,
        is_pr, title, body, requested_by, instructions, context, state, created_at,
        conclusion, error, branch, head_sha, pr_number, pr_url, check_run_id, comment_id,
        attempts, started_at, finished_at, lease_owner, lease_expires_at, tokens_input,
        tokens_output, cost, files_changed, pushed_sha,
    ) = row  # fmt: skip
    return Ticket(
        id=int(id_),
        delivery_id=delivery_id,
        event=event,
        kind=TicketKind(kind),
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=int(number),
        is_pull_request=bool(is_pr),
        title=title,
        body=body,
        requested_by=requested_by,
        instructions=instructions,
        origin=Origin.of(context),
        state=TicketState(state),
        created_at=float(created_at),
        conclusion=conclusion,
        error=error,
        branch=branch,
        head_sha=head_sha,
        pr_number=pr_number,
        pr_url=pr_url,
        check_run_id=check_run_id,
        comment_id=comment_id,
        attempts=int(attempts),
        started_at=started_at,
        finished_at=finished_at,
        lease_owner=lease_owner,
        lease_expires_at=lease_expires_at,
        tokens_input=int(tokens_input),
        tokens_output=int(tokens_output),
        cost=float(cost),
        files_changed=tuple(
            json.loads(files_changed) if isinstance(files_changed, str) else files_changed or ()
        ),
        pushed_sha=pushed_sha,
    )
