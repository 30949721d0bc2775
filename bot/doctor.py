"""`autocode doctor`: check each thing a run needs, and say how to fix what is wrong.

Each check is a function returning a Check, so the CLI, tests and a future
health page share them. A check reports *where* it looked (a path, a URL, an
image tag) but never a secret's value: a doctor report gets pasted into
issues and chat.

A doctor run changes nothing it finds: the database is only read (never
created or migrated: `serve` and `worker` do that when they start), and what
the LLM proxy's check starts to try the agents' path — a socket, a probe
container, a relay, the agents' network if it was missing — is gone when it
returns. Run it where the workers run (in a Compose worker container, or the
Kubernetes worker pod): the proxy's address depends on that place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import threading
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


def _latest(dialect: str) -> int:
    from .store.rows import migrations

    return max((n for n, _ in migrations(dialect)), default=0)


def _judge(name: str, where: str, version: int, latest: int) -> Check:
    """A schema version against this bot's: newer is wrong, older is migrated at start."""
    if version > latest:
        return _fail(
            name,
            f"{where}: schema version {version} is newer than this bot's {latest}",
            "upgrade the bot (pip install -U) to the version that wrote this database",
        )
    if version < latest:
        return Check(
            name,
            True,
            f"{where}: schema version {version}; `autocode serve` and `autocode worker` "
            f"migrate it to {latest} when they start",
        )
    return Check(name, True, f"{where}, schema version {version}")


def _writable_folder(path: Path) -> Path | None:
    """The nearest existing folder of `path` when the bot could create `path` there."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else None


def _check_sqlite(settings: Settings) -> Check:
    """Read the file as it is: nothing is created, migrated or left behind."""
    import sqlite3
    from urllib.parse import quote

    name = "database"
    path = Path(settings.sqlite_path).expanduser().resolve()
    latest = _latest("sqlite")
    if not path.exists():
        folder = _writable_folder(path)
        if folder is None:
            return _fail(
                name,
                f"{path} does not exist, and the bot could not create it: no writable folder "
                "on its way",
                f"make {path.parent} (or the nearest folder above it) writable by the bot's "
                "user, or point AUTOCODE_DATABASE_URL elsewhere",
            )
        return Check(
            name,
            True,
            f"{path} does not exist yet: `autocode serve` (or `autocode worker`) creates it "
            f"with schema version {latest}; {folder} is writable",
        )
    if not path.is_file():
        return _fail(name, f"{path} is not a file", "point AUTOCODE_DATABASE_URL at a file")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return _fail(
            name,
            f"{path}: the bot's user cannot write it, or its folder (SQLite keeps a journal "
            "beside the file)",
            f"give the bot's user write access to {path} and {path.parent}",
        )
    # Read-only, so nothing is migrated; `immutable` when no journal is there (no bot has it
    # open), or even a read-only open would leave an empty -wal and -shm beside the file.
    wal = path.with_name(path.name + "-wal")
    uri = f"file:{quote(str(path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
    except sqlite3.Error as exc:
        return _fail(name, f"{path}: cannot open it ({exc})", "check the file's permissions")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = None
        if "schema_migrations" in tables:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except sqlite3.Error as exc:
        return _fail(
            name,
            f"{path}: not a database this bot can read ({exc})",
            "point AUTOCODE_DATABASE_URL at the bot's database, or move this file away",
        )
    finally:
        conn.close()
    if row is None and tables:
        return _fail(
            name,
            f"{path} holds tables of something else (no schema_migrations table)",
            "point AUTOCODE_DATABASE_URL at the bot's own database file",
        )
    return _judge(name, str(path), int(row[0] or 0) if row else 0, latest)


def _check_postgres(settings: Settings) -> Check:
    """Connect and read the schema version; migrations are left to `serve` and `worker`."""
    import psycopg

    from .store.postgres import CONNECT_TIMEOUT, _passwords, redact_url

    name = "database"
    where = redact_url(settings.database_url)
    try:
        with psycopg.connect(
            settings.database_url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="autocode-doctor",
        ) as conn:
            # SQL_ASCII (initdb without a UTF-8 locale): text would come back as bytes
            encoding = conn.info.parameter_status("client_encoding") or ""
            table = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            row = None
            if table and table[0] is not None:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except psycopg.Error as exc:
        detail = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
        for secret in _passwords(settings.database_url):
            detail = detail.replace(secret, "***")
        return _fail(
            name,
            f"{where}: cannot connect ({detail})"[:400],
            "start PostgreSQL, or correct AUTOCODE_DATABASE_URL (host, port, user, password, "
            "database)",
        )
    if encoding.upper() == "SQL_ASCII":
        return _fail(
            name,
            f"{where}: the database's encoding is SQL_ASCII, so the bot would read text back "
            "undecoded",
            "use a database made with ENCODING 'UTF8' (the official postgres image's default), "
            "or set PGCLIENTENCODING=UTF8 in the bot's environment",
        )
    if row is None:
        latest = _latest("postgres")
        return Check(
            name,
            True,
            f"{where}: connected, no tables yet; `autocode serve` (or `autocode worker`) "
            f"creates them (schema version {latest}) when it starts",
        )
    return _judge(name, where, int(row[0] or 0), _latest("postgres"))


def check_database(settings: Settings) -> Check:
    """The store is there (or can be made) and its schema is this bot's; nothing is written.

    A doctor run on a fresh machine leaves no database behind: `autocode
    serve` and `autocode worker` create and migrate it when they start.
    """
    if settings.database_url.startswith("sqlite://"):
        return _check_sqlite(settings)
    if settings.database_url.startswith(("postgresql://", "postgres://")):
        return _check_postgres(settings)
    return _fail(
        "database",
        "AUTOCODE_DATABASE_URL must start with sqlite:// or postgresql://",
        "correct AUTOCODE_DATABASE_URL",
    )


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


def _json_file(path: str, *, jsonc: bool = False) -> tuple[dict[str, Any] | None, str]:
    """The file's JSON object, or None with the reason it could not be read."""
    from .llm.access import load_jsonc

    try:
        text = Path(path).expanduser().read_text()
        data = load_jsonc(text) if jsonc else json.loads(text)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    except ValueError:
        return None, "not valid JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, ""


# What the agent's container gets in each mode of bot/llm/providers.py.
MODE_WORDS = {
    "proxied": "the agent's container gets only a per-run capability for the bot's LLM proxy, "
    "which adds the key to its requests",
    "mounted": "the agent's container gets this login in a read-only auth.json",
    "passed": "the agent's container gets the value itself",
}


def check_llm(settings: Settings) -> Check:
    """Some source of credentials for the model's provider, and how it reaches the agent.

    The mode (proxied, mounted, passed) is decided by the same function a run
    uses, `providers.plan`, over the same files and variables.
    """
    from .llm.providers import plan

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
    if auth is None or not isinstance(auth.get(provider), dict):
        looked.append(f"auth.json {settings.opencode_auth} ({why or 'no ' + provider + ' entry'})")
    config: dict[str, Any] | None = None
    if settings.opencode_config:
        config, why = _json_file(settings.opencode_config, jsonc=True)
        if config is None:
            return _fail(
                name,
                f"AUTOCODE_OPENCODE_CONFIG {settings.opencode_config} is {why}: every run "
                "would stop on it",
                "correct the file, or AUTOCODE_OPENCODE_CONFIG",
            )
    wanted = key_variables(provider)
    decided = plan(settings.agent_env, auth, config)
    # plan() names a provider by its name, or a variable it does not know by the variable's
    modes = [m for m in decided.modes if m.provider in (provider, *wanted)]
    if modes:
        mode = modes[0]
        return Check(name, True, f"{provider}: {mode.mode} ({mode.why}); {MODE_WORDS[mode.mode]}")
    providers = (config or {}).get("provider")
    if isinstance(providers, dict) and isinstance(providers.get(provider), dict):
        return Check(
            name,
            True,
            f"{provider}: defined in {settings.opencode_config} with no API key for the "
            "proxy to hold (the provider needs none, or opencode finds one in the container)",
        )
    if settings.opencode_config:
        looked.append(f"opencode config {settings.opencode_config} (no provider.{provider})")
    looked.append(f"AUTOCODE_AGENT_ENV (none of {', '.join(wanted)})")
    return _fail(
        name,
        f"no credentials for provider {provider}: looked in " + "; ".join(looked),
        f"set {wanted[-1]} and add it to AUTOCODE_AGENT_ENV, or log in with "
        f"`opencode auth login` (AUTOCODE_OPENCODE_AUTH), or define provider {provider} in "
        "AUTOCODE_OPENCODE_CONFIG",
    )


# --- the LLM proxy and the agents' network -----------------------------------------

PROXY = "LLM proxy"
PROBE_SECONDS = 20.0
# The agent's side of the probe: connect where the agent's opencode would, read one line.
PROBE_SCRIPT = r"""
use strict; use warnings; use IO::Socket::INET;
my ($host, $port) = @ARGV; $| = 1;
$SIG{ALRM} = sub { print "no answer from $host:$port\n"; exit 4 }; alarm 10;
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 5)
  or do { print "cannot connect to $host:$port: $!\n"; exit 3 };
my $line = <$s>;
print defined $line ? $line : "$host:$port closed the connection without an answer\n";
"""
REACH_FIX = (
    "the agents' side connects to {target}: that must be an address of this machine that "
    "containers on the engine's default bridge reach (set AUTOCODE_LLM_PROXY_URL when it is "
    "not where the proxy listens); a host firewall must let them in (e.g. `ufw allow in on "
    "docker0`)"
)


class _Listener:
    """A bound socket that answers every connection with one line, standing in for the proxy."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.token = f"autocode-doctor {secrets.token_hex(8)}"
        self.stop = threading.Event()
        sock.listen(16)
        sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, name="doctor-listener", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.sendall(f"{self.token}\n".encode())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _agents_target(settings: Settings, host: str, port: int) -> tuple[str, int]:
    """host, port of the proxy as the agents' side is told it (proxy.url, relay_target)."""
    from urllib.parse import urlsplit

    if settings.llm_proxy_url:
        parts = urlsplit(settings.llm_proxy_url)
        return str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def _probe(settings: Settings, runner: Any, host: str, port: int) -> tuple[str, str]:
    """From a container placed like an agent, reach the listener the way the agent would.

    `internal`: a relay (the bot's own code makes it) on the agents' network,
    found as `llm-proxy`, forwarding to the proxy's address; `bridge`: the
    proxy's address from Docker's default bridge; `host`: from the host's
    network stack. Every container (and the agents' network, if it was made
    here) is removed before returning. Returns what the container printed, and
    the fix when the probe itself could not run ("" otherwise).
    """
    import docker.errors

    from .runner.egress import AGENT_NETWORK, RELAY_HOST, RELAY_PORT, RELAY_USER, resolv_conf

    mode = settings.agent_network
    image = settings.runner_image
    client = runner.client
    target = f"{host}:{port}"
    made_network = False
    relay = False
    container = None
    kwargs: dict[str, Any] = {
        "entrypoint": ["perl", "-e", PROBE_SCRIPT, "--"],
        "user": RELAY_USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "mem_limit": "64m",
        "pids_limit": 32,
        "labels": {"autocode.role": "doctor"},
        "network_mode": "host" if mode == "host" else "bridge",
    }
    connect = (host, port)
    # the agents' resolver file, written where a run writes it: beside a workspace in the work
    # directory (the engine must see it there), in a folder of the doctor's own like a
    # ticket's; that folder and any of the work directory's it made are removed after
    workdir = Path(settings.workdir).resolve()
    scratch = workdir / f"doctor-{secrets.token_hex(6)}"
    missing = [p for p in (workdir, *workdir.parents) if not p.exists()]
    resolv = None  # once written
    try:
        if mode == "internal":
            try:
                client.networks.get(AGENT_NETWORK)
            except docker.errors.NotFound:
                made_network = True
            runner.egress.network()  # made as the bot makes it, or refused when not locked down
            relay = True
            address = runner.egress.relay(target, image)
            kwargs["network_mode"] = AGENT_NETWORK
            kwargs["extra_hosts"] = {RELAY_HOST: address}
            resolv = resolv_conf(scratch)
            kwargs["volumes"] = {str(resolv): {"bind": "/etc/resolv.conf", "mode": "ro"}}
            connect = (RELAY_HOST, RELAY_PORT)
        container = client.containers.create(image, [connect[0], str(connect[1])], **kwargs)
        container.start()
        container.wait(timeout=PROBE_SECONDS)
        return container.logs(stdout=True, stderr=True).decode(errors="replace").strip(), ""
    except (docker.errors.DockerException, BotError) as exc:
        text = str(getattr(exc, "message", None) or getattr(exc, "explanation", None) or exc)
        if "resolv.conf" in text and resolv is None:  # it could not be written
            return text[:400], "AUTOCODE_WORKDIR must be a folder the bot can write to"
        if "resolv.conf" in text:
            return (
                f"the engine could not mount {resolv} into the agent's container: the bot "
                "wrote it in its work directory (AUTOCODE_WORKDIR), which the engine does not "
                "see at that path (the bot runs in a container, or the engine on another host)",
                "mount AUTOCODE_WORKDIR at the same path for the bot and for the engine, as "
                "deploy/compose.yaml and deploy/kubernetes/worker.yaml do (with an engine on "
                "another host: shared storage mounted at one path on both)",
            )
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"
    except Exception as exc:  # noqa: BLE001 (requests' timeouts and the like)
        text = f"{exc.__class__.__name__}: {exc}"
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        if relay:
            with contextlib.suppress(Exception):
                runner.egress.remove_relay(target)
        if made_network:
            with contextlib.suppress(Exception):
                network = client.networks.get(AGENT_NETWORK)
                if not network.attrs.get("Containers"):
                    network.remove()
        shutil.rmtree(scratch, ignore_errors=True)
        for folder in missing:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_llm_proxy(settings: Settings, runner: Any, image_ok: bool) -> Check:
    """The proxy can listen where `serve` would put it, and an agent's container reaches it.

    The address comes from `bot/llm/host.py` (`listen_host`, the same code the
    bot starts with); a socket is bound there on AUTOCODE_LLM_PROXY_PORT and
    answers a probe container of the runner image placed where an agent would
    be (see `_probe`).
    """
    import time

    from .errors import DockerUnavailable
    from .llm.host import SET_IT, ProxyAddressError, explain, listen_host

    mode = settings.agent_network
    if mode == "none":
        return _fail(
            PROXY,
            "AUTOCODE_AGENT_NETWORK=none: the agent's container has no network, so it reaches "
            "neither the LLM proxy nor any model",
            "set AUTOCODE_AGENT_NETWORK=internal (the default): the agent reaches the proxy and "
            "nothing else",
        )
    needs_engine = mode in ("bridge", "internal") and not settings.llm_proxy_host
    if runner is None and needs_engine:
        return _fail(
            PROXY,
            f"not checked: with AUTOCODE_AGENT_NETWORK={mode} it listens on the Docker engine's "
            "default bridge, and the engine is unreachable",
            "fix the Docker engine first",
        )
    host = settings.llm_proxy_host or "?"
    try:
        host = listen_host(settings, runner)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, settings.llm_proxy_port))
        except OSError:
            sock.close()
            raise
    except (ProxyAddressError, DockerUnavailable, OSError) as exc:
        error, fix = explain(settings, host, settings.llm_proxy_port, exc)
        return _fail(PROXY, f"AUTOCODE_AGENT_NETWORK={mode}: {error}", fix)
    port = int(sock.getsockname()[1])
    where = f"{host}:{port}" if settings.llm_proxy_port else f"{host} (a free port at each start)"
    listens = f"AUTOCODE_AGENT_NETWORK={mode}: can listen on {where}"
    target_host, target_port = _agents_target(settings, host, port)
    target = f"{target_host}:{target_port}"
    try:
        if target_host in ("0.0.0.0", "::", ""):  # noqa: S104 (what the agents would be told)
            return _fail(
                PROXY,
                f"{listens}, but agents would be told to connect to {target}",
                "set AUTOCODE_LLM_PROXY_URL (and a fixed AUTOCODE_LLM_PROXY_PORT) to how the "
                "agents' containers reach this machine",
            )
        if runner is None:
            return _fail(
                PROXY,
                f"{listens}; whether agents reach it was not checked: the Docker engine is "
                "unreachable",
                "fix the Docker engine first",
            )
        if not image_ok:
            return _fail(
                PROXY,
                f"{listens}; whether agents reach it was not checked: it takes the runner "
                f"image {settings.runner_image}",
                "build the runner image (`autocode runner build`), then run doctor again",
            )
        listener = _Listener(sock)
        started = time.monotonic()
        try:
            said, probe_fix = _probe(settings, runner, target_host, target_port)
        finally:
            listener.close()
        seconds = time.monotonic() - started
    finally:
        sock.close()
    placed = {
        "internal": "a container on the internal network, through the relay,",
        "bridge": "a container on Docker's default bridge",
        "host": "a container on the host's network",
    }[mode]
    if listener.token in said:
        return Check(PROXY, True, f"{listens}; {placed} reached it at {target} ({seconds:.1f} s)")
    fix = probe_fix or REACH_FIX.format(target=target)
    if mode == "host" and not probe_fix:
        fix = "run doctor (and the bot) on the Docker engine's host, or " + SET_IT
    return _fail(
        PROXY, f"{listens}, but {placed} did not reach it at {target}: {said or 'no output'}", fix
    )


# --- all of them -------------------------------------------------------------------


def run_checks(environ: Mapping[str, str]) -> list[Check]:
    """Every check in order; when the settings do not parse, only that one."""
    first, settings = check_settings(environ)
    if settings is None:
        return [first]
    docker, runner = check_docker(settings)
    image = check_runner_image(settings, runner)
    return [
        first,
        check_webhook_secret(settings),
        check_app(settings),
        check_database(settings),
        docker,
        image,
        check_llm(settings),
        check_llm_proxy(settings, runner, image.ok),
    ]
