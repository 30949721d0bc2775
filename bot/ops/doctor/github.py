"""The settings, the webhook secret and the GitHub App (a JWT call to GitHub)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ...config import Settings
from ...errors import BotError, GitHubError, SettingsError
from .check import Check, fail

# --- settings and secrets ---------------------------------------------------------


def check_settings(environ: Mapping[str, str]) -> tuple[Check, Settings | None]:
    """Parse the settings like `serve` does; the other checks need them."""
    try:
        settings = Settings.from_environ(environ)
    except SettingsError as exc:
        return (
            fail(
                "settings",
                exc.message,
                "correct that setting in the environment or in ./.env, then run doctor again",
            ),
            None,
        )
    return Check("settings", True, f"parsed (GitHub API {settings.github_api_url})"), settings


def check_webhook_secret(settings: Settings) -> Check:
    if settings.webhook_secret:
        return Check("webhook secret", True, "AUTOCODE_WEBHOOK_SECRET is set")
    return fail(
        "webhook secret",
        "AUTOCODE_WEBHOOK_SECRET is missing: every webhook would be refused with 401",
        "set AUTOCODE_WEBHOOK_SECRET to the App's webhook secret (`autocode setup` writes it)",
    )


# --- the GitHub App ---------------------------------------------------------------

KEY_FIX = (
    "set AUTOCODE_PRIVATE_KEY_PATH to the private key (.pem) of App {app}; make a new key on "
    "the App's settings page on GitHub if it is lost"
)


def check_app(settings: Settings) -> Check:
    """The key loads and GitHub accepts a JWT signed with it (GET /app)."""
    name = "GitHub App"
    who = settings.app_id or settings.client_id
    if not who:
        return fail(
            name,
            "neither AUTOCODE_APP_ID nor AUTOCODE_CLIENT_ID is set",
            "create the App with `autocode setup`, or set AUTOCODE_APP_ID to its numeric id",
        )
    if not settings.private_key:
        return fail(
            name,
            "no private key: AUTOCODE_PRIVATE_KEY_PATH and AUTOCODE_PRIVATE_KEY are empty",
            KEY_FIX.format(app=who),
        )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(settings.private_key.encode(), password=None)
    except (ValueError, TypeError):
        return fail(name, "the private key is not a readable PEM key", KEY_FIX.format(app=who))
    if not isinstance(key, rsa.RSAPrivateKey):
        return fail(name, "the private key is not an RSA key", KEY_FIX.format(app=who))
    try:
        slug, app_id = asyncio.run(_authenticated_app(settings))
    except _Refused as exc:
        return fail(
            name,
            f"GitHub refused the App's JWT ({exc}) at {settings.github_api_url}",
            KEY_FIX.format(app=who) + "; check that AUTOCODE_APP_ID names that App",
        )
    except BotError as exc:
        return fail(
            name,
            exc.message,
            "check AUTOCODE_GITHUB_API_URL and that this host can reach it",
        )
    return Check(name, True, f"{slug} (id {app_id}) accepts this key at {settings.github_api_url}")


class _Refused(GitHubError):
    """GitHub answered the JWT call with 401/403/404."""


async def _authenticated_app(settings: Settings) -> tuple[str, int]:
    import httpx
    from githubkit import AppAuthStrategy, GitHub
    from githubkit.exception import GitHubException, RequestError, RequestFailed

    from ...github.client import TIMEOUT

    auth = AppAuthStrategy(
        settings.app_id or None, settings.private_key, client_id=settings.client_id or None
    )
    gh = GitHub(
        auth, base_url=settings.github_api_url, timeout=TIMEOUT, http_cache=False, auto_retry=False
    )
    rest: Any = gh.rest
    try:
        response = await rest.apps.async_get_authenticated()
    except RequestFailed as exc:
        status = exc.response.status_code
        try:
            message = str(exc.response.json().get("message", ""))
        except (ValueError, AttributeError):
            message = ""
        text = f"{status}{' ' + message if message else ''}"
        if status in (401, 403, 404):
            raise _Refused(text) from None
        raise GitHubError(f"GitHub answered {text} to GET /app") from None
    except (GitHubException, httpx.HTTPError) as exc:
        origin = exc.exc if isinstance(exc, RequestError) else exc
        raise GitHubError(
            f"cannot reach GitHub at {settings.github_api_url}: {origin.__class__.__name__}"
        ) from None
    data = response.json()
    if not isinstance(data, dict):
        raise GitHubError("GitHub answered GET /app with something that is not an App")
    return str(data.get("slug", "?")), int(data.get("id", 0))
