"""`autocode serve` before the bot can run: the setup page, then the real app without a restart.

Probot's answer to first contact: with no GitHub App configured the server
starts anyway and serves the App's manifest flow at `/`. `Onboarding` is
the ASGI app uvicorn runs in that case. While something is missing it
serves the setup page (or, once the App exists, a page naming the missing
model or provider key), answers `/webhook` with 503 and stores nothing, and
`/healthz` lists what is missing. Each visit of `/` and the setup's callback
read the settings again (environment over the env file); once nothing is
missing, the full app is built, its lifespan started (workers, LLM proxy,
notifier) and every later request goes to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..errors import BotError
from .manifest import SetupOptions, Written
from .setup_site import SetupSite, page

log = logging.getLogger("bot.onboarding")


@dataclass(frozen=True)
class Missing:
    """One thing the bot needs before it takes webhooks, and how to give it."""

    what: str
    detail: str
    fix: str

    def as_json(self) -> dict[str, str]:
        return {"what": self.what, "detail": self.detail, "fix": self.fix}


def missing(settings: Settings, *, runs_agents: bool) -> list[Missing]:
    """What keeps these settings from taking webhooks (empty: ready).

    A process that runs agents also needs a model and its provider's
    credentials; a web process alone (`--no-workers`) needs only the App.
    """
    app = settings.missing_for_github()
    if app:
        return [
            Missing(
                "GitHub App",
                "not configured: " + "; ".join(app),
                "create it with the button on this page (or `autocode setup`)",
            )
        ]
    if not runs_agents:
        return []
    from .doctor import check_llm

    llm = check_llm(settings)
    if llm.ok:
        return []
    return [Missing("model", llm.detail, llm.fix or "")]


class Onboarding:
    """The ASGI app of an unconfigured `serve`; becomes the full app once configured."""

    def __init__(
        self,
        load: Callable[[], Settings],
        build: Callable[[Settings], Starlette],
        *,
        settings: Settings,
        env_file: Path,
        process_env: Mapping[str, str],
        runs_agents: bool,
        preparing: Callable[[], str] | None = None,
    ) -> None:
        self.load = load
        self.build = build
        self.settings = settings
        self.env_file = env_file
        self.runs_agents = runs_agents
        self.preparing = preparing  # what is still being made (the agent image), or ""
        self.missing = missing(settings, runs_agents=runs_agents)
        self.name = f"Auto-Code {secrets.token_hex(3)}"
        self.site = SetupSite(
            self.options_for,
            process_env,
            self._created,
            env_file=env_file,
            editable=True,
        )
        self.pages = Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                *self.site.routes()[1:],  # the callback
                Route("/webhook", self.webhook, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ]
        )
        self.current: ASGIApp = self.pages
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()
        self._started = False

    # --- ASGI -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.current(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._stack.aclose()
                except Exception as exc:
                    log.exception("stopping the bot failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- the switch ---------------------------------------------------------------

    async def recheck(self) -> list[Missing]:
        """Read the settings again; start the full app when nothing is missing any more."""
        async with self._lock:
            if self._started:
                return []
            try:
                settings = await asyncio.to_thread(self.load)
            except BotError as exc:
                self.missing = [Missing("settings", exc.message, f"correct it in {self.env_file}")]
                return self.missing
            self.settings = settings
            self.missing = await asyncio.to_thread(missing, settings, runs_agents=self.runs_agents)
            busy = self.preparing() if self.preparing and not self.missing else ""
            if busy:
                self.missing = [Missing("agent image", busy, "wait: the bot starts by itself")]
            if self.missing:
                return self.missing
            app = self.build(settings)
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            self.current = app
            self._started = True
            log.info("set up: taking webhooks now", extra={"app_id": settings.app_id})
            return []

    async def _created(self, written: Written) -> None:
        await self.recheck()

    # --- pages ---------------------------------------------------------------------

    def options_for(self, request: Request) -> SetupOptions:
        public = self.settings.public_url or str(request.base_url).rstrip("/")
        return SetupOptions.build(
            github_url=self.settings.github_url,
            api_url=self.settings.github_api_url,
            public_url=self.settings.public_url,
            webhook_url=request.query_params.get("webhook_url", "") or f"{public}/webhook",
            org=request.query_params.get("org", "").strip(),
            name=self.name,
            env_file=str(self.env_file),
        )

    async def index(self, request: Request) -> Response:
        if not await self.recheck():
            return RedirectResponse("/", status_code=303)  # now the dashboard
        if self.missing[0].what == "GitHub App":
            return await self.site.index(request)
        items = "".join(
            f"<dt>{html.escape(m.what)}</dt><dd>{html.escape(m.detail)}<br>"
            f"<strong>Fix:</strong> {html.escape(m.fix)}</dd>"
            for m in self.missing
        )
        app_ready = "" if self.settings.missing_for_github() else "The GitHub App is set up. "
        return page(
            "Auto-Code is almost ready",
            "<h1>Auto-Code is almost ready</h1>"
            f"<p>{app_ready}Before the bot takes webhooks, it needs:</p>"
            f'<dl id="missing">{items}</dl>'
            f"<p>Set it in the environment or in <code>{html.escape(str(self.env_file))}</code>, "
            'then <a id="recheck" href="/">check again</a> — no restart needed. '
            "<code>autocode doctor</code> checks everything.</p>",
            status=503,
        )

    async def webhook(self, request: Request) -> Response:
        return JSONResponse(
            {
                "error": "Auto-Code is not set up yet: nothing was stored. Open the bot's page "
                "(/) to finish setting it up; GitHub can redeliver this event afterwards.",
                "missing": [m.what for m in self.missing],
            },
            status_code=503,
        )

    async def healthz(self, request: Request) -> Response:
        if not await self.recheck():  # probes move it on too, without anyone at the page
            return await _healthz_of(self.current, request)
        return JSONResponse(
            {"status": "setup", "missing": [m.as_json() for m in self.missing]},
            status_code=503,
        )


async def _healthz_of(app: ASGIApp, request: Request) -> Response:
    """The full app's own /healthz answer, for the probe that switched to it."""
    status, body = 500, b""

    async def send(message: Any) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(request.scope, request.receive, send)
    return Response(body, status_code=status, media_type="application/json")
