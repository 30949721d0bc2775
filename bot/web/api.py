"""/api: the tickets as JSON, and POST /api/tickets to queue one as the label would.

`GET /api/tickets` pages newest first: `?limit=` (1-500, default 100) and
`?before=<id>` (the `next` cursor of the previous page); `state` and
`repository` filter. `GET /api/tickets/{id}` gives one, with its
`notifications` (each event per receiver: pending, delivered or dead). Both,
like the POST, need the admin bearer token.

The body is `{"repository": "owner/name", "issue": N, "instructions": "…"}`
(instructions optional). A request without an issue is refused: the bot
reports on the issue it works on, and opening one would be a GitHub write in
the request path, which stays free of slow work. Callers with only a title
and a description open the issue first, or use the Python API
(`bot.OpenCodeService.develop_ticket`). An `Idempotency-Key` header makes a
retried request return the ticket it made the first time.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Settings
from ..errors import RequestError, StoreError
from ..models import Ticket, TicketState
from ..notify.publisher import receiver
from ..store.base import Notification, TicketStore
from . import actions
from .auth import Guard

log = logging.getLogger("bot.web")

MAX_BODY = 64 * 1024
MAX_INSTRUCTIONS = 20_000
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
FIELDS = frozenset({"repository", "issue", "instructions"})
PAGE = 100
MAX_PAGE = 500
PRIVATE = ("lease_owner", "lease_expires_at", "clone_url", "origin", "body")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A ticket as the API shows it: no lease, clone URL, origin or issue body."""
    data = asdict(ticket)
    for private in PRIVATE:
        data.pop(private, None)
    data["state"] = str(ticket.state)
    data["trigger"] = ticket.kind
    data["files_changed"] = list(ticket.files_changed)
    return data


def notification_json(row: Notification) -> dict[str, Any]:
    """An outbox row as the API shows it: the receiver's scheme and host, never its URL."""
    return {
        "id": row.id,
        "event": row.event,
        "receiver": receiver(row.url),
        "state": row.state,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
        "dead_at": row.dead_at,
    }


def _positive(
    raw: str | None, name: str, default: int | None, top: int | None = None
) -> int | None:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1 or (top is not None and int(raw) > top):
        limit = f"1-{top}" if top else "a positive whole number"
        raise RequestError(f"{name} must be {limit}, got {raw!r}")
    return int(raw)


def parse_request(data: Any) -> tuple[str, int, str]:
    """(repository, issue, instructions) from the JSON body; RequestError says what is wrong."""
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object")
    if "issue" not in data and ("title" in data or "description" in data):
        raise RequestError(
            "a ticket needs an existing issue: send {repository, issue, instructions?}; "
            "open the issue first (title and description alone are not accepted), "
            "or use the Python API OpenCodeService.develop_ticket"
        )
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise RequestError(
            f"unknown field(s) {', '.join(unknown)}; allowed: repository, issue, instructions"
        )
    repository = data.get("repository")
    if not isinstance(repository, str) or not REPOSITORY.match(repository):
        raise RequestError('repository must be "owner/name"')
    issue = data.get("issue")
    if not isinstance(issue, int) or isinstance(issue, bool) or issue <= 0:
        raise RequestError("issue must be a positive whole number (the issue's number)")
    instructions = data.get("instructions", "")
    if instructions is None:
        instructions = ""
    if not isinstance(instructions, str):
        raise RequestError("instructions must be a string")
    if len(instructions) > MAX_INSTRUCTIONS:
        raise RequestError(f"instructions must be at most {MAX_INSTRUCTIONS} characters")
    return repository, issue, instructions


class TicketsApi:
    """The write side of /api: one route, guarded by the admin bearer token."""

    def __init__(self, settings: Settings, store: TicketStore) -> None:
        self.settings = settings
        self.store = store
        self.guard = Guard(settings.admin_token, settings.webhook_secret)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/tickets", self.create, methods=["POST"]),
            Route("/api/tickets", self.list, methods=["GET"]),
            Route("/api/tickets/{ticket_id}", self.get, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        if not self.guard.bearer_ok(request):
            return _error(401, "a valid admin bearer token is required")
        query = request.query_params
        try:
            state = TicketState(query["state"]) if query.get("state") else None
        except ValueError:
            return _error(400, f"unknown state {query['state']!r}")
        try:
            limit = _positive(query.get("limit"), "limit", PAGE, MAX_PAGE) or PAGE
            before = _positive(query.get("before"), "before", None)
        except RequestError as exc:
            return _error(400, exc.message)
        tickets = await run_in_threadpool(
            lambda: self.store.tickets(
                state=state, repository=query.get("repository"), limit=limit + 1, before=before
            )
        )
        page = list(tickets[:limit])
        following = page[-1].id if len(tickets) > limit else None
        return JSONResponse({"tickets": [ticket_json(t) for t in page], "next": following})

    async def get(self, request: Request) -> Response:
        if not self.guard.bearer_ok(request):
            return _error(401, "a valid admin bearer token is required")
        raw = request.path_params["ticket_id"]
        ticket = await run_in_threadpool(self.store.get, int(raw)) if raw.isdigit() else None
        if ticket is None:
            return _error(404, "not found")
        rows = await run_in_threadpool(self.store.notifications, ticket.id)
        return JSONResponse(
            {**ticket_json(ticket), "notifications": [notification_json(n) for n in rows]}
        )

    async def create(self, request: Request) -> Response:
        if not self.guard.bearer_ok(request):
            return _error(401, "a valid admin bearer token is required")
        key = request.headers.get("idempotency-key", "").strip()
        if key and not IDEMPOTENCY_KEY.match(key):
            return _error(400, "Idempotency-Key must be 1-128 letters, digits or ._:-")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, f"the body is larger than {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "the body is not valid JSON")
        try:
            repository, number, instructions = parse_request(data)
        except RequestError as exc:
            return _error(400, exc.message)
        clone_url = f"{self.settings.github_url}/{repository}.git"
        try:
            ticket_id, created = await actions.queue_issue(
                self.store,
                actions.workers_of(request),
                repository=repository,
                number=number,
                clone_url=clone_url,
                instructions=instructions,
                delivery_id=f"api-{key}" if key else "",
            )
        except StoreError as exc:
            log.error("API ticket not stored", extra={"reason": exc.message})
            return _error(503, "the ticket store is unavailable; try again")
        if not created:
            return JSONResponse({"ticket": ticket_id, "duplicate": True}, status_code=200)
        return JSONResponse({"ticket": ticket_id}, status_code=202)


def api_routes(settings: Settings, store: TicketStore) -> list[BaseRoute]:
    return TicketsApi(settings, store).routes()
