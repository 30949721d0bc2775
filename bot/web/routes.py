"""The dashboard's routes: ticket list, ticket page, live log stream, cancel, retry, sign-in.

Reads go to the store in threads; the only writes are the operator's cancel
and retry (bot/web/actions.py). Pages are guarded by the admin bearer token
or the session cookie (bot/web/auth.py); a page asked for without either
redirects to /login, the event stream answers 401, and a POST without a
valid session and its CSRF token answers 403.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..config import Settings
from ..models import Ticket, TicketState
from ..store.base import TicketStore
from . import actions, assets, templates
from .auth import COOKIE, SESSION_SECONDS, Guard
from .live_log import log_stream, resume_after
from .responses import local_path, page, read_form

log = logging.getLogger("bot.web")


class Dashboard:
    """The dashboard over one store; `routes()` is mounted by bot/app.py."""

    def __init__(
        self, settings: Settings, store: TicketStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.guard = Guard(settings.admin_token, settings.webhook_secret, clock)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/tickets/{ticket_id:int}", self.ticket, methods=["GET"]),
            Route("/tickets/{ticket_id:int}/events", self.events, methods=["GET"]),
            Route("/tickets/{ticket_id:int}/cancel", self.cancel, methods=["POST"]),
            Route("/tickets/{ticket_id:int}/retry", self.retry, methods=["POST"]),
            Route("/dashboard.css", self.css, methods=["GET"]),
            Route("/dashboard.js", self.js, methods=["GET"]),
        ]

    # -- helpers ---------------------------------------------------------------
    def csrf(self, request: Request) -> str:
        """The CSRF token for this request's session ("" for bearer callers: they need none)."""
        session = self.guard.session(request)
        return self.guard.csrf_for(session) if session else ""

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def get(self, ticket_id: int) -> Ticket | None:
        return await run_in_threadpool(self.store.get, ticket_id)

    async def checked_post(self, request: Request) -> Response | None:
        """403 unless a bearer token, or the session with its CSRF token, came with the POST."""
        form = await read_form(request)
        if form is None:
            return page(templates.layout("Too large", "<h1>Form too large</h1>"), 413)
        if not self.guard.csrf_ok(request, form.get("csrf", "")):
            client = request.client.host if request.client else ""
            log.warning(
                "dashboard POST refused", extra={"path": request.url.path, "client": client}
            )
            body = "<h1>Forbidden</h1><p>Sign in and use the dashboard's own buttons.</p>"
            return page(templates.layout("Forbidden", body), 403)
        return None

    # -- static ----------------------------------------------------------------
    async def css(self, request: Request) -> Response:
        return Response(
            assets.STYLE, media_type="text/css", headers={"Cache-Control": "max-age=300"}
        )

    async def js(self, request: Request) -> Response:
        return Response(
            assets.SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
        )

    # -- signing in --------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        next_path = local_path(request.query_params.get("next", "/"))
        if self.guard.allowed(request):
            return RedirectResponse(next_path, status_code=303)
        error = (
            "" if self.guard.enabled else "AUTOCODE_ADMIN_TOKEN is not set: the dashboard is off."
        )
        note = request.query_params.get("note", "")
        return page(templates.login_page(error=error, next_path=next_path, note=note))

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return page(templates.login_page(error="The form is too large."), 413)
        next_path = local_path(form.get("next", "/"))
        if not self.guard.token_ok(form.get("token", "")):
            client = request.client.host if request.client else ""
            log.warning("dashboard sign-in refused", extra={"client": client})
            error = (
                "That is not the admin token."
                if self.guard.enabled
                else "AUTOCODE_ADMIN_TOKEN is not set: the dashboard is off."
            )
            return page(templates.login_page(error=error, next_path=next_path), 401)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            self.guard.new_session(),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https" or self.settings.public_url.startswith("https:"),
        )
        log.info(
            "dashboard sign-in", extra={"client": request.client.host if request.client else ""}
        )
        return response

    async def logout(self, request: Request) -> Response:
        refused = await self.checked_post(request)
        if refused is not None:
            return refused
        response = RedirectResponse("/login?note=signed-out", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- pages -------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        if not self.guard.allowed(request):
            return self.to_login(request)
        state_arg = request.query_params.get("state", "")
        repository = request.query_params.get("repository", "").strip()
        try:
            state = TicketState(state_arg) if state_arg else None
        except ValueError:
            state, state_arg = None, ""

        def read() -> tuple[list[Ticket], list[str]]:
            tickets = list(
                self.store.tickets(state=state, repository=repository or None, limit=200)
            )
            seen = self.store.tickets(limit=500)
            return tickets, sorted({t.repository for t in seen})

        tickets, repositories = await run_in_threadpool(read)
        return page(
            templates.ticket_list(
                tickets,
                now=self.clock(),
                csrf=self.csrf(request),
                state=state_arg,
                repository=repository,
                repositories=repositories,
            )
        )

    async def ticket(self, request: Request) -> Response:
        if not self.guard.allowed(request):
            return self.to_login(request)
        ticket_id = int(request.path_params["ticket_id"])
        ticket = await self.get(ticket_id)
        if ticket is None:
            body = f"<h1>No ticket {ticket_id}</h1><p><a href='/'>All tickets</a></p>"
            return page(templates.layout("Not found", body), 404)
        logs = await run_in_threadpool(self.store.logs, ticket_id, 0, 5000)
        notifications = await run_in_threadpool(self.store.notifications, ticket_id)
        pull = ticket.pr_number or (ticket.number if ticket.is_pull_request else None)
        chain = (
            await run_in_threadpool(self.store.pull_tickets, ticket.repository, pull)
            if pull
            else []
        )
        return page(
            templates.ticket_page(
                ticket,
                logs,
                notifications=notifications,
                chain=chain,
                now=self.clock(),
                csrf=self.csrf(request),
                note=request.query_params.get("note", ""),
            )
        )

    # -- the live log ------------------------------------------------------------
    async def events(self, request: Request) -> Response:
        """Server-sent events: `log` per new line, then `end` once the ticket is final."""
        if not self.guard.allowed(request):
            return JSONResponse({"error": "sign in or send the admin bearer token"}, 401)
        ticket_id = int(request.path_params["ticket_id"])
        if await self.get(ticket_id) is None:
            return JSONResponse({"error": "not found"}, 404)
        return StreamingResponse(
            log_stream(self.store, ticket_id, resume_after(request)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- actions -------------------------------------------------------------------
    async def cancel(self, request: Request) -> Response:
        refused = await self.checked_post(request)
        if refused is not None:
            return refused
        ticket_id = int(request.path_params["ticket_id"])
        if await self.get(ticket_id) is None:
            return page(templates.layout("Not found", f"<h1>No ticket {ticket_id}</h1>"), 404)
        note = await actions.cancel(self.store, actions.workers_of(request), ticket_id)
        return RedirectResponse(f"/tickets/{ticket_id}?note={note}", status_code=303)

    async def retry(self, request: Request) -> Response:
        refused = await self.checked_post(request)
        if refused is not None:
            return refused
        ticket_id = int(request.path_params["ticket_id"])
        ticket = await self.get(ticket_id)
        if ticket is None:
            return page(templates.layout("Not found", f"<h1>No ticket {ticket_id}</h1>"), 404)
        if not ticket.state.final or not ticket.repeatable:
            body = (
                f"<h1>Ticket {ticket_id} cannot be retried</h1>"
                "<p>Only a finished run can be retried (a follow-up that never ran cannot).</p>"
                f"<p><a href='/tickets/{ticket_id}'>Back</a></p>"
            )
            return page(templates.layout("Conflict", body), 409)
        retry_id = await actions.retry(self.store, actions.workers_of(request), ticket)
        return RedirectResponse(f"/tickets/{retry_id}?note=retry-queued", status_code=303)


def dashboard_routes(settings: Settings, store: TicketStore) -> list[BaseRoute]:
    return Dashboard(settings, store).routes()
