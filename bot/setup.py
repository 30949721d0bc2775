"""`autocode setup`: create the GitHub App through GitHub's manifest flow, as Probot does.

GitHub creates an App from a manifest only when a signed-in person's browser
POSTs it, so setup serves one local page whose button sends the manifest to
GitHub. GitHub redirects back to `/callback` with a one-time code, which is
exchanged (unauthenticated, once, within the hour) for the App's id, private
key and webhook secret. Those go straight into the env file and a 0600 key
file beside it — never onto the screen, into a page or into a log. A random
`state` ties the redirect to this run, so a forged callback writes nothing.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestError, RequestFailed
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .errors import SetupError
from .github.client import RUN_PERMISSIONS, TIMEOUT

log = logging.getLogger("bot.setup")

# The webhooks the bot acts on (labels arrive as `issues`).
EVENTS = [
    "issues",
    "issue_comment",
    "pull_request_review_comment",
    "pull_request_review",
    "check_run",
]
KEY_PATH = "AUTOCODE_PRIVATE_KEY_PATH"
# Removed from the env file: an inline key would win over the new key file.
INLINE_KEY = "AUTOCODE_PRIVATE_KEY"
# The slug is not a setting the bot reads, so it is kept as a comment.
COMMENT = "# autocode setup: GitHub App"
CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,=-]*")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@dataclass(frozen=True)
class SetupOptions:
    """What the App is called, where it lives and where its credentials go."""

    github_url: str
    api_url: str
    webhook_url: str
    homepage: str
    name: str
    org: str = ""
    env_file: Path = Path(".env")
    host: str = "127.0.0.1"
    port: int = 3000

    @classmethod
    def build(
        cls,
        *,
        github_url: str,
        api_url: str,
        public_url: str,
        webhook_url: str = "",
        name: str = "",
        org: str = "",
        env_file: str = ".env",
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> SetupOptions:
        """Options from the command line and settings; SetupError names what is missing."""
        webhook_url = webhook_url.strip() or (f"{public_url}/webhook" if public_url else "")
        if not webhook_url:
            raise SetupError(
                "setup needs the URL GitHub will send webhooks to: pass --webhook-url "
                "https://bot.example.com/webhook or set AUTOCODE_PUBLIC_URL"
            )
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SetupError(f"the webhook URL must be an http(s) URL, got {webhook_url!r}")
        if org and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", org):
            raise SetupError(f"--org must be an organization's login, got {org!r}")
        name = name.strip() or f"Auto-Code {secrets.token_hex(3)}"
        if len(name) > 34:
            raise SetupError(f"GitHub App names are at most 34 characters, got {len(name)}")
        return cls(
            github_url=github_url.rstrip("/"),
            api_url=api_url.rstrip("/"),
            webhook_url=webhook_url,
            homepage=public_url or f"{parts.scheme}://{parts.netloc}",
            name=name,
            org=org,
            env_file=Path(env_file).expanduser().resolve(),
            host=host,
            port=port,
        )

    def manifest(self, redirect_url: str) -> dict[str, Any]:
        """The App GitHub is asked to create: private, the run permissions, our events."""
        return {
            "name": self.name,
            "url": self.homepage,
            "description": "Auto-Code: turns issues into pull requests with the OpenCode agent.",
            "hook_attributes": {"url": self.webhook_url, "active": True},
            "redirect_url": redirect_url,
            "public": False,
            "default_permissions": dict(RUN_PERMISSIONS),
            "default_events": list(EVENTS),
        }

    def new_app_url(self, state: str) -> str:
        """GitHub's page that takes the manifest, for the person or the organization."""
        where = f"/organizations/{self.org}" if self.org else ""
        return f"{self.github_url}{where}/settings/apps/new?{urlencode({'state': state})}"


@dataclass(frozen=True)
class Credentials:
    """What GitHub hands over once for the new App; secrets stay out of repr."""

    app_id: int
    slug: str
    name: str
    client_id: str
    html_url: str
    webhook_secret: str = field(repr=False)
    pem: str = field(repr=False)

    @property
    def install_url(self) -> str:
        return f"{self.html_url}/installations/new"


@dataclass(frozen=True)
class Written:
    """Where setup put the credentials, and what may shadow them."""

    credentials: Credentials
    env_file: Path
    key_file: Path
    shadowed: tuple[str, ...] = ()


def _message(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


async def exchange(api_url: str, code: str) -> Credentials:
    """Trade the one-time code for the App's credentials (no auth: the code is the proof)."""
    if not CODE.fullmatch(code):
        raise SetupError("GitHub's answer carries no valid code: start again from the setup page")
    gh = GitHub(base_url=api_url, timeout=TIMEOUT, http_cache=False, auto_retry=False)
    rest: Any = gh.rest
    try:
        response = await rest.apps.async_create_from_manifest(code)
    except RequestFailed as exc:
        status = exc.response.status_code
        message = _message(exc.response)
        hint = " (the code is used or expired)" if status == 404 else ""
        raise SetupError(
            f"GitHub refused to hand over the new App's credentials: {status}"
            + (f" {message}" if message else "")
            + f"{hint}. Nothing was written; start again from the setup page."
        ) from None
    except (GitHubException, httpx.HTTPError) as exc:
        origin = exc.exc if isinstance(exc, RequestError) else exc
        raise SetupError(
            f"cannot reach GitHub at {api_url}: {origin.__class__.__name__}. Nothing was "
            "written; start again from the setup page."
        ) from None
    data = response.json()
    if not isinstance(data, dict):
        raise SetupError("GitHub answered the conversion with something that is not an App")
    try:
        creds = Credentials(
            app_id=int(data["id"]),
            slug=str(data["slug"]),
            name=str(data.get("name") or data["slug"]),
            client_id=str(data["client_id"]),
            html_url=str(data["html_url"]).rstrip("/"),
            webhook_secret=str(data["webhook_secret"] or ""),
            pem=str(data["pem"]),
        )
    except (KeyError, TypeError, ValueError):
        raise SetupError("GitHub's answer lacks the App's id, slug, client id or key") from None
    if not creds.webhook_secret:
        raise SetupError("GitHub returned no webhook secret for the App")
    if "PRIVATE KEY-----" not in creds.pem or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", creds.slug):
        raise SetupError("GitHub's answer holds no usable private key or slug")
    return creds


# --- writing ------------------------------------------------------------------


def _quote(value: str) -> str:
    """A value python-dotenv reads back unchanged."""
    if _PLAIN.fullmatch(value):
        return value
    if "${" in value:  # python-dotenv expands ${NAME} even inside quotes
        raise SetupError("GitHub sent a value holding '${', which an env file cannot keep")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _open_private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT
    return fd


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically when replacing."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = _open_private(tmp)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _drop_quoted(lines: list[str], start: int, rest: str) -> int:
    """The index after an assignment whose quoted value may span several lines."""
    quote = rest[:1]
    if quote not in ('"', "'"):
        return start + 1
    body = rest[1:]
    index = start
    while True:
        if re.search(r"(?<!\\)" + re.escape(quote), body):
            return index + 1
        index += 1
        if index >= len(lines):
            return index
        body = lines[index]


def update_env(text: str, values: Mapping[str, str], drop: tuple[str, ...], comment: str) -> str:
    """`text` with `values` set in place (or appended), `drop` keys removed, other lines kept."""
    lines = text.splitlines()
    out: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _ASSIGN.match(line)
        if line.startswith(COMMENT):
            if COMMENT not in seen:
                out.append(comment)
                seen.add(COMMENT)
            index += 1
            continue
        if match is not None and (match.group(1) in values or match.group(1) in drop):
            key = match.group(1)
            if key in values and key not in seen:
                out.append(f"{key}={_quote(values[key])}")
                seen.add(key)
            index = _drop_quoted(lines, index, match.group(2))
            continue
        out.append(line)
        index += 1
    missing = [k for k in values if k not in seen]
    if missing or COMMENT not in seen:
        if out and out[-1].strip():
            out.append("")
        if COMMENT not in seen:
            out.append(comment)
        out.extend(f"{k}={_quote(values[k])}" for k in missing)
    return "\n".join(out) + "\n"


def write_credentials(
    creds: Credentials, env_file: Path, process_env: Mapping[str, str] | None = None
) -> Written:
    """The key into `<slug>.private-key.pem` beside the env file, the rest into the env file.

    Both end up mode 0600. Settings set in `process_env` (the process environment,
    not the env file) win over the env file (see config.load_environ); their names
    are returned as `shadowed`.
    """
    env_file = env_file.resolve()
    env_file.parent.mkdir(parents=True, exist_ok=True)
    key_file = env_file.parent / f"{creds.slug}.private-key.pem"
    old = env_file.read_text() if env_file.exists() else ""
    values = {
        "AUTOCODE_APP_ID": str(creds.app_id),
        "AUTOCODE_CLIENT_ID": creds.client_id,
        "AUTOCODE_WEBHOOK_SECRET": creds.webhook_secret,
        KEY_PATH: str(key_file),
    }
    comment = f"{COMMENT} {creds.slug} ({creds.html_url})"
    new = update_env(old, values, (INLINE_KEY,), comment)
    _write_private(key_file, creds.pem if creds.pem.endswith("\n") else creds.pem + "\n")
    try:
        _write_private(env_file, new)
    except BaseException:
        key_file.unlink(missing_ok=True)
        raise
    env = process_env if process_env is not None else {}
    shadowed = tuple(k for k in (*values, INLINE_KEY) if env.get(k, "").strip())
    return Written(creds, env_file, key_file, shadowed)


# --- the local pages -------------------------------------------------------------

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
