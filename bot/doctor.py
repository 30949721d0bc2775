"""`autocode doctor`: check each thing a run needs, and say how to fix what is wrong.

Each check is a function returning a Check, so the CLI, tests and a future
health page share them. A check reports *where* it looked (a path, a URL, an
image tag) but never a secret's value: a doctor report gets pasted into
issues and chat.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BotError, SettingsError


@dataclass(frozen=True)
class Check:
    """One line of the report: ok or not, what was found, and the fix when wrong."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        head = f"{'ok' if self.ok else 'FAIL':<4}  {self.name}: {self.detail}"
        return [head] if self.ok or not self.fix else [head, f"      fix: {self.fix}"]


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


# --- settings and secrets ---------------------------------------------------------


def check_settings(environ: Mapping[str, str]) -> tuple[Check, Settings | None]:
    """Parse the settings like `serve` does; the other checks need them."""
    try:
        settings = Settings.from_environ(environ)
    except SettingsError as exc:
        return (
            _fail(
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
    return _fail(
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
        return _fail(
            name,
            "neither AUTOCODE_APP_ID nor AUTOCODE_CLIENT_ID is set",
            "create the App with `autocode setup`, or set AUTOCODE_APP_ID to its numeric id",
        )
    if not settings.private_key:
        return _fail(
            name,
            "no private key: AUTOCODE_PRIVATE_KEY_PATH and AUTOCODE_PRIVATE_KEY are empty",
            KEY_FIX.format(app=who),
        )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(settings.private_key.encode(), password=None)
    except (ValueError, TypeError):
        return _fail(name, "the private key is not a readable PEM key", KEY_FIX.format(app=who))
    if not isinstance(key, rsa.RSAPrivateKey):
        return _fail(name, "the private key is not an RSA key", KEY_FIX.format(app=who))
    try:
        slug, app_id = asyncio.run(_authenticated_app(settings))
    except _Refused as exc:
        return _fail(
            name,
            f"GitHub refused the App's JWT ({exc}) at {settings.github_api_url}",
            KEY_FIX.format(app=who) + "; check that AUTOCODE_APP_ID names that App",
        )
    except BotError as exc:
        return _fail(
            name,
            exc.message,
            "check AUTOCODE_GITHUB_API_URL and that this host can reach it",
        )
    return Check(name, True, f"{slug} (id {app_id}) accepts this key at {settings.github_api_url}")


class _Refused(Exception):
    """GitHub answered the JWT call with 401/403/404."""


async def _authenticated_app(settings: Settings) -> tuple[str, int]:
    import httpx
    from githubkit import AppAuthStrategy, GitHub
    from githubkit.exception import GitHubException, RequestError, RequestFailed

    from .errors import GitHubError
    from .github.client import TIMEOUT

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


# --- database ---------------------------------------------------------------------


def check_database(settings: Settings) -> Check:
    """The store opens (which applies pending migrations) and its schema is this bot's."""
    from .store import open_store
    from .store.postgres import redact_url
    from .store.rows import migrations

    name = "database"
    sqlite = settings.database_url.startswith("sqlite://")
    where = (
        str(Path(settings.sqlite_path).resolve()) if sqlite else redact_url(settings.database_url)
    )
    try:
        store = open_store(settings)
    except BotError as exc:
        return _fail(
            name,
            f"{where}: {exc.message}",
            "make the SQLite file's directory writable"
            if sqlite
            else "start PostgreSQL or correct AUTOCODE_DATABASE_URL",
        )
    try:
        version_of = getattr(store, "schema_version", None)
        version = int(version_of()) if callable(version_of) else -1
    except BotError as exc:
        return _fail(name, f"{where}: {exc.message}", "check the database's permissions")
    finally:
        store.close()
    latest = max((n for n, _ in migrations("sqlite" if sqlite else "postgres")), default=0)
    if version > latest:
        return _fail(
            name,
            f"{where}: schema version {version} is newer than this bot's {latest}",
            "upgrade the bot (pip install -U) to the version that wrote this database",
        )
    if version < latest:
        return _fail(
            name,
            f"{where}: schema version {version}, this bot needs {latest}",
            "run `autocode serve` once with write access to the database to migrate it",
        )
    return Check(name, True, f"{where}, schema version {version}")


# --- Docker and the runner image --------------------------------------------------


def check_docker(settings: Settings) -> tuple[Check, Any]:
    """The engine answers; returns the runner for the image check (None when down)."""
    from .runner.docker import DockerRunner

    where = settings.docker_host or "the local socket"
    runner = DockerRunner(settings.docker_host)
    try:
        runner.ping()
        version = str(runner.client.version().get("Version", "?"))
    except BotError as exc:
        return (
            _fail(
                "Docker engine",
                f"{where}: {exc.message}"[:400],
                "start the Docker engine (dockerd, or `systemctl start docker`), or set "
                "DOCKER_HOST to one that runs",
            ),
            None,
        )
    except Exception as exc:  # noqa: BLE001 (the SDK raises requests' and its own errors)
        return (
            _fail(
                "Docker engine",
                f"{where}: {exc.__class__.__name__}",
                "start the Docker engine, or set DOCKER_HOST to one that runs",
            ),
            None,
        )
    return Check("Docker engine", True, f"{where}, Docker {version}"), runner


def check_runner_image(settings: Settings, runner: Any) -> Check:
    from .runner.image import OPENCODE_VERSION

    name = "runner image"
    image = settings.runner_image
    if runner is None:
        return _fail(
            name,
            f"{image}: not checked, the Docker engine is unreachable",
            "fix the Docker engine first",
        )
    try:
        labels = runner.image_labels(image)
    except BotError as exc:
        return _fail(name, f"{image}: {exc.message}"[:400], "fix the Docker engine first")
    if labels is None:
        return _fail(
            name,
            f"{image} is not on the Docker engine",
            f"build it with `autocode runner build` (or correct AUTOCODE_RUNNER_IMAGE={image})",
        )
    found = labels.get("autocode.opencode.version", "")
    if not found:
        return _fail(
            name,
            f"{image} has no autocode.opencode.version label: not built by `autocode runner build`",
            "build it with `autocode runner build`",
        )
    if found != OPENCODE_VERSION:
        return _fail(
            name,
            f"{image} has opencode {found}, this bot pins {OPENCODE_VERSION}",
            "rebuild it with `autocode runner build`",
        )
    return Check(name, True, f"{image}, opencode {found}")


# --- LLM credentials --------------------------------------------------------------

# Providers whose key variable is not simply <PROVIDER>_API_KEY.
KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "google": ("GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "amazon-bedrock": ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"),
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    "github-copilot": ("GITHUB_TOKEN",),
    "google-vertex": ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"),
}


def key_variables(provider: str) -> tuple[str, ...]:
    """The environment variables that hold `provider`'s key, as opencode reads them."""
    generic = re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_") + "_API_KEY"
    return (*KEY_VARIABLES.get(provider, ()), generic)


def _json_file(path: str) -> tuple[dict[str, Any] | None, str]:
    """The file's JSON object, or None with the reason it could not be read."""
    try:
        data = json.loads(Path(path).expanduser().read_text())
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    except ValueError:
        return None, "not valid JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, ""


def check_llm(settings: Settings) -> Check:
    """Some source of credentials for the model's provider reaches the agent."""
    name = "LLM credentials"
    if not settings.model:
        return _fail(
            name,
            "AUTOCODE_MODEL is not set: opencode would not know which model to ask",
            "set AUTOCODE_MODEL (provider/model, e.g. anthropic/claude-sonnet-4-5)",
        )
    provider, slash, model = settings.model.partition("/")
    if not slash or not provider or not model:
        return _fail(
            name,
            f"AUTOCODE_MODEL {settings.model!r} is not provider/model",
            "set AUTOCODE_MODEL (provider/model, e.g. anthropic/claude-sonnet-4-5)",
        )
    looked: list[str] = []
    auth, why = _json_file(settings.opencode_auth)
    if auth is not None and isinstance(auth.get(provider), dict):
        return Check(name, True, f"{provider}: opencode auth.json {settings.opencode_auth}")
    looked.append(f"auth.json {settings.opencode_auth} ({why or 'no ' + provider + ' entry'})")
    if settings.opencode_config:
        config, why = _json_file(settings.opencode_config)
        providers = config.get("provider") if config is not None else None
        if isinstance(providers, dict) and isinstance(providers.get(provider), dict):
            return Check(name, True, f"{provider}: defined in {settings.opencode_config}")
        looked.append(
            f"opencode config {settings.opencode_config} ({why or 'no provider.' + provider})"
        )
    wanted = key_variables(provider)
    for variable in wanted:
        if settings.agent_env.get(variable, "").strip():
            return Check(name, True, f"{provider}: {variable} is passed to the agent")
    looked.append(f"AUTOCODE_AGENT_ENV (none of {', '.join(wanted)})")
    return _fail(
        name,
        f"no credentials for provider {provider}: looked in " + "; ".join(looked),
        f"set {wanted[-1]} and add it to AUTOCODE_AGENT_ENV, or log in with "
        f"`opencode auth login` (AUTOCODE_OPENCODE_AUTH), or define provider {provider} in "
        "AUTOCODE_OPENCODE_CONFIG",
    )


# --- all of them -------------------------------------------------------------------


def run_checks(environ: Mapping[str, str]) -> list[Check]:
    """Every check in order; when the settings do not parse, only that one."""
    first, settings = check_settings(environ)
    if settings is None:
        return [first]
    docker, runner = check_docker(settings)
    return [
        first,
        check_webhook_secret(settings),
        check_app(settings),
        check_database(settings),
        docker,
        check_runner_image(settings, runner),
        check_llm(settings),
    ]
