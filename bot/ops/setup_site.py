"""The setup page: the button that sends the App's manifest to GitHub, and the way back."""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import SetupError
from ..github.client import RUN_PERMISSIONS
from .envfile import write_credentials
from .manifest import EVENTS, SetupOptions, Written, exchange

log = logging.getLogger("bot.setup")

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;"
    "color:#1f2328}h1{font-size:1.6rem}code{background:#f6f8fa;padding:.1rem .3rem;"
    "border-radius:4px}button,.button{background:#1f883d;color:#fff;border:0;border-radius:6px;"
    "padding:.6rem 1.2rem;font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}"
    "dt{font-weight:600}dd{margin:0 0 .6rem 0}.error{color:#cf222e}"
    "input{font:inherit;padding:.3rem}.secondary{background:#6e7781}"
)


def page(title: str, body: str, status: int = 200, **kwargs: Any) -> HTMLResponse:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, **kwargs)


def _error(title: str, message: str, status: int) -> HTMLResponse:
    return page(
        title,
        f'<h1 class="error">{html.escape(title)}</h1><p id="message">{html.escape(message)}</p>'
        '<p><a href="/">Start again</a></p>',
        status,
    )


def _private_host(netloc: str) -> bool:
    """True for an address GitHub cannot send webhooks to (loopback, private, .local)."""
    host = urlsplit(f"//{netloc}").hostname or ""
    if host in ("localhost", "") or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


OptionsFor = Callable[[Request], SetupOptions]


class SetupSite:
    """The setup page with the button, and the callback GitHub redirects to.

    `options_for` gives the App's options for a request: fixed ones for
    `autocode setup`, or ones built from the page's own form (webhook URL,
    organization) for the setup page of `autocode serve`. `redirect_url`
    is where GitHub sends the browser back; when empty, the callback route's
    URL as the browser reached this site.
    """

    def __init__(
        self,
        options_for: OptionsFor,
        process_env: Mapping[str, str],
        on_done: Callable[[Written], Any],
        *,
        redirect_url: str = "",
        env_file: Path,
        editable: bool = False,
    ) -> None:
        self.options_for = options_for
        self.redirect_url = redirect_url
        self.process_env = process_env
        self.on_done = on_done
        self.env_file = env_file
        self.editable = editable
        self.state = secrets.token_urlsafe(32)
        self.written: Written | None = None
        self._lock = asyncio.Lock()
        self.app = Starlette(routes=self.routes())

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/callback", self.callback, methods=["GET"], name="setup_callback"),
        ]

    def _redirect(self, request: Request) -> str:
        return self.redirect_url or str(request.url_for("setup_callback"))

    async def index(self, request: Request) -> Response:
        try:
            options = self.options_for(request)
        except SetupError as exc:
            return _error("This setup cannot start", exc.message, 400)
        manifest = json.dumps(options.manifest(self._redirect(request)))
        action = options.new_app_url(self.state)
        owner = "your personal account"
        if options.org:
            owner = f"the organization <code>{html.escape(options.org)}</code>"
        permissions = ", ".join(f"{k}: {v}" for k, v in RUN_PERMISSIONS.items())
        where = urlsplit(options.webhook_url).netloc
        warning = ""
        if _private_host(where):
            warning = (
                f'<p class="error" id="unreachable">GitHub cannot reach <code>{html.escape(where)}'
                "</code>: webhooks need an address on the internet. Put the bot behind a public "
                "URL (or a tunnel) and enter its webhook URL here, or change it later on the "
                "App's settings page.</p>"
            )
        return page(
            "Create the Auto-Code GitHub App",
            "<h1>Create the Auto-Code GitHub App</h1>"
            f"<p>The button sends this App's manifest to {html.escape(options.github_url)}, "
            f"which creates it for {owner}. GitHub then sends you back here and the App's "
            f"credentials are written to <code>{html.escape(str(self.env_file))}</code>.</p>"
            + (self._form(options) if self.editable else "")
            + warning
            + "<dl>"
            f"<dt>Name</dt><dd>{html.escape(options.name)} (you can change it on GitHub)</dd>"
            f'<dt>Webhook URL</dt><dd><code id="webhook-url">'
            f"{html.escape(options.webhook_url)}</code></dd>"
            f"<dt>Permissions</dt><dd>{html.escape(permissions)}</dd>"
            f"<dt>Events</dt><dd>{html.escape(', '.join(EVENTS))}</dd>"
            "</dl>"
            f'<form id="create" method="post" action="{html.escape(action)}">'
            f'<input type="hidden" name="manifest" value="{html.escape(manifest, quote=True)}">'
            '<button type="submit">Create GitHub App</button></form>',
        )

    @staticmethod
    def _form(options: SetupOptions) -> str:
        """The page's own settings: where GitHub sends webhooks, and for whom the App is."""
        return (
            '<form id="options" method="get" action="">'
            "<p><label>Webhook URL (public: GitHub sends events here)<br>"
            f'<input name="webhook_url" size="50" value="{html.escape(options.webhook_url)}">'
            "</label></p>"
            "<p><label>Organization (empty: your personal account)<br>"
            f'<input name="org" value="{html.escape(options.org)}"></label></p>'
            '<p><button type="submit" class="secondary">Use these</button></p></form>'
        )

    async def callback(self, request: Request) -> Response:
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            log.warning("setup callback with a wrong or missing state")
            return _error(
                "This answer is not for this setup",
                "The callback's state does not match the one this setup sent to GitHub, so "
                "nothing was written. Start again from this page.",
                400,
            )
        if not code:
            return _error("No code from GitHub", "GitHub sent no code; nothing was written.", 400)
        async with self._lock:
            if self.written is not None:
                return _error("Already set up", "This setup has already written its App.", 409)
            try:
                options = self.options_for(request)
                creds = await exchange(options.api_url, code)
            except SetupError as exc:
                log.warning("manifest conversion failed", extra={"error": exc.message})
                return _error("GitHub did not hand over the App", exc.message, 502)
            try:
                written = await asyncio.to_thread(
                    write_credentials, creds, self.env_file, self.process_env
                )
            except (OSError, SetupError) as exc:
                why = exc.message if isinstance(exc, SetupError) else exc.strerror
                return _error(
                    "The credentials could not be written",
                    f"{self.env_file}: {why}. The App exists on GitHub; "
                    "delete it there and start again.",
                    500,
                )
            self.written = written
        log.info("GitHub App created", extra={"app_id": creds.app_id, "slug": creds.slug})
        return page(
            "GitHub App created",
            _created(written),
            background=BackgroundTask(self.on_done, written),
        )


def _created(written: Written) -> str:
    """The page after the App was written: where it went, and the install button."""
    creds = written.credentials
    shadow = ""
    if written.shadowed:
        shadow = (
            '<p class="error">These are set in the environment and win over the env file; '
            f"unset them: {html.escape(', '.join(written.shadowed))}</p>"
        )
    return (
        f"<h1>GitHub App {html.escape(creds.name)} created</h1>"
        f"<p>App id {creds.app_id}, slug <code>{html.escape(creds.slug)}</code>. Its "
        f"credentials are in <code>{html.escape(str(written.env_file))}</code> and its "
        f"private key in <code>{html.escape(str(written.key_file))}</code> (both readable "
        "by you only).</p>"
        f"{shadow}"
        f'<p><a id="install" class="button" href="{html.escape(creds.install_url)}">'
        "Install it on your repositories</a></p>"
        "<p>Then check everything with <code>autocode doctor</code>.</p>"
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # the URL is printed before uvicorn starts: connections wait here
    except OSError as exc:
        sock.close()
        raise SetupError(f"cannot listen on {host}:{port}: {exc.strerror}; try --port") from None
    return sock


def run_setup(
    options: SetupOptions, process_env: Mapping[str, str], on_ready: Callable[[str], None]
) -> Written:
    """Serve the setup page until GitHub's callback wrote the App; return what was written.

    `on_ready` gets the local URL to open once the server listens; `process_env` is
    the process environment, whose settings would shadow what is written.
    """
    import uvicorn

    sock = _bind(options.host, options.port)
    port = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(options.host, options.host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    local = f"http://{shown}:{port}"
    server: uvicorn.Server | None = None

    def done(written: Written) -> None:
        assert server is not None
        server.should_exit = True

    site = SetupSite(
        lambda _request: options,
        process_env,
        done,
        redirect_url=f"{local}/callback",
        env_file=options.env_file,
    )
    config = uvicorn.Config(
        site.app,
        log_level="warning",
        access_log=False,  # the callback's query holds the one-time code
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    on_ready(f"{local}/")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if site.written is None:
        raise SetupError("setup stopped before GitHub sent the App back; nothing was written")
    return site.written
