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

import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestError, RequestFailed

from ..errors import SetupError
from ..github.client import RUN_PERMISSIONS, TIMEOUT
from ..github.feedback import LOG_PERMISSIONS

log = logging.getLogger("bot.setup")

# The webhooks the bot acts on (labels arrive as `issues`).
EVENTS = [
    "issues",
    "issue_comment",
    "pull_request_review_comment",
    "pull_request_review",
    "check_run",
    "check_suite",  # the checks of the bot's pushes: fixes after failed CI
]
CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")


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
            "default_permissions": {**RUN_PERMISSIONS, **LOG_PERMISSIONS},
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
