"""What a notification says: the JSON body of a ticket event, and its Slack text (pure).

The store builds `ticket.queued` bodies inside the transaction that makes
the ticket, the notifier builds the others; both use `event_body`, so every
event of a ticket has the same shape. Bodies are stored as JSON text and
sent byte for byte, so the signature a receiver checks covers exactly what
it parses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ..models import Ticket, TicketState, Trigger

EVENTS = ("ticket.queued", "ticket.started", "ticket.finished")


def queued_ticket(
    ticket_id: int, delivery_id: str, event: str, trigger: Trigger, now: float
) -> Ticket:
    """The ticket a store has just inserted, without reading it back."""
    return Ticket(
        id=ticket_id,
        delivery_id=delivery_id,
        event=event,
        kind=trigger.kind,
        repository=trigger.repository,
        clone_url=trigger.clone_url,
        installation_id=trigger.installation_id,
        number=trigger.number,
        is_pull_request=trigger.is_pull_request,
        title=trigger.title,
        body=trigger.body,
        requested_by=trigger.requested_by,
        instructions=trigger.instructions,
        origin=trigger.origin,
        state=TicketState.QUEUED,
        created_at=now,
    )


def event_body(event: str, ticket: Ticket, now: float) -> str:
    """The JSON text POSTed for `event` about `ticket`.

    Only what a receiver needs to route and display the event: no issue
    body, no instructions, no context (they may hold anything a user typed).
    """
    data: dict[str, Any] = {
        "event": event,
        "at": now,
        "ticket": {
            "id": ticket.id,
            "repository": ticket.repository,
            "number": ticket.number,
            "is_pull_request": ticket.is_pull_request,
            "title": ticket.title,
            "kind": ticket.kind,
            "requested_by": ticket.requested_by,
            "state": str(ticket.state),
            "created_at": ticket.created_at,
            "started_at": ticket.started_at,
            "finished_at": ticket.finished_at,
        },
    }
    if event == "ticket.finished":
        duration = None
        if ticket.started_at is not None and ticket.finished_at is not None:
            duration = round(ticket.finished_at - ticket.started_at, 3)
        data["ticket"].update(
            conclusion=ticket.conclusion,
            error=ticket.error,
            pr_url=ticket.pr_url,
            branch=ticket.branch,
            tokens={"input": ticket.tokens_input, "output": ticket.tokens_output},
            cost=ticket.cost,
            duration_seconds=duration,
        )
    return json.dumps(data, separators=(",", ":"))


def is_slack(url: str) -> bool:
    """Slack's incoming-webhook URLs (https://hooks.slack.com/services/…) want `{"text": …}`."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and (parts.hostname or "").lower() == "hooks.slack.com"
        and parts.path.startswith("/services/")
    )


def _escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def slack_text(body: str) -> str:
    """One line for a Slack channel from an event body made by `event_body`."""
    data = json.loads(body)
    ticket = data["ticket"]
    where = f"{ticket['repository']}#{ticket['number']}"
    head = (
        f"Auto-Code ticket {ticket['id']} on {_escape(where)} "
        f"({_escape(str(ticket['kind']))} by @{_escape(str(ticket['requested_by']))})"
    )
    event = data["event"]
    if event == "ticket.queued":
        return f"{head}: queued"
    if event == "ticket.started":
        return f"{head}: started"
    parts = [f"{head}: {_escape(str(ticket['state']))}"]
    if ticket.get("conclusion"):
        parts[0] += f" ({_escape(str(ticket['conclusion']))})"
    if ticket.get("pr_url"):
        parts.append(f"<{ticket['pr_url']}|pull request>")
    tokens = ticket.get("tokens") or {}
    total = int(tokens.get("input", 0)) + int(tokens.get("output", 0))
    if total:
        parts.append(f"{total} tokens")
    if ticket.get("cost"):
        parts.append(f"${float(ticket['cost']):.4f}")
    if ticket.get("duration_seconds") is not None:
        parts.append(_duration(float(ticket["duration_seconds"])))
    if ticket.get("error") and ticket.get("state") != "succeeded":
        parts.append(_escape(str(ticket["error"])[:300]))
    return " · ".join(parts)


def slack_body(body: str) -> str:
    """The JSON Slack's incoming webhooks accept, for an event body."""
    return json.dumps({"text": slack_text(body)}, separators=(",", ":"))
