"""Settings: one frozen dataclass built from an environ mapping.

This is the only module that knows the names of the environment variables;
`cli.py` is the only caller that passes the real `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .envvars import ci_fix_cap, flag, http_url, one_of, positive, whole
from .errors import SettingsError

NETWORK_MODES = ("internal", "none", "bridge", "host")
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024


def _notify_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The receivers of ticket events; a bad one stops the start, not a delivery later."""
    urls = tuple(u.strip() for u in environ.get("AUTOCODE_NOTIFY_URLS", "").split(",") if u.strip())
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"AUTOCODE_NOTIFY_URLS: {url!r} is not an http(s) URL")
    if urls and not environ.get("AUTOCODE_NOTIFY_SECRET", ""):
        raise SettingsError("AUTOCODE_NOTIFY_SECRET must be set to sign AUTOCODE_NOTIFY_URLS posts")
    return urls


def _llm_proxy(environ: Mapping[str, str]) -> tuple[str, int, str]:
    """AUTOCODE_LLM_PROXY_HOST / _PORT / _URL: where the proxy listens, how agents reach it."""
    port = whole(environ, "AUTOCODE_LLM_PROXY_PORT", 0)
    if port > 65535:
        raise SettingsError(f"AUTOCODE_LLM_PROXY_PORT must be a TCP port, got {port}")
    url = environ.get("AUTOCODE_LLM_PROXY_URL", "").strip().rstrip("/")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"AUTOCODE_LLM_PROXY_URL must be an http(s) URL, got {url!r}")
        if not port:
            raise SettingsError(
                "AUTOCODE_LLM_PROXY_URL needs a fixed AUTOCODE_LLM_PROXY_PORT to point at"
            )
    return environ.get("AUTOCODE_LLM_PROXY_HOST", "").strip(), port, url


def _private_key(environ: Mapping[str, str]) -> str:
    """AUTOCODE_PRIVATE_KEY, or the file AUTOCODE_PRIVATE_KEY_PATH names; `\\n` read as newlines."""
    private_key = environ.get("AUTOCODE_PRIVATE_KEY", "").strip()
    key_path = environ.get("AUTOCODE_PRIVATE_KEY_PATH", "").strip()
    if not private_key and key_path:
        try:
            private_key = Path(key_path).expanduser().read_text()
        except OSError as exc:
            raise SettingsError(
                f"AUTOCODE_PRIVATE_KEY_PATH {key_path!r} cannot be read: {exc.strerror}"
            ) from None
    if private_key and "\\n" in private_key and "\n" not in private_key:
        private_key = private_key.replace("\\n", "\n")
    return private_key


def _agent_network(environ: Mapping[str, str]) -> str:
    network = environ.get("AUTOCODE_AGENT_NETWORK", "").strip() or "internal"
    if network not in NETWORK_MODES:
        raise SettingsError(
            f"AUTOCODE_AGENT_NETWORK must be one of {', '.join(NETWORK_MODES)}, got {network!r}"
        )
    return network


def _agent_runtime(environ: Mapping[str, str]) -> str:
    runtime = environ.get("AUTOCODE_AGENT_RUNTIME", "").strip()
    if runtime and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", runtime):
        raise SettingsError(
            f"AUTOCODE_AGENT_RUNTIME must name a runtime registered with the Docker engine "
            f"(such as runsc), got {runtime!r}"
        )
    return runtime


def _agent_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables AUTOCODE_AGENT_ENV names, with their values; each must be set."""
    agent_env: dict[str, str] = {}
    for name in environ.get("AUTOCODE_AGENT_ENV", "").split(","):
        name = name.strip()
        if not name:
            continue
        if name not in environ:
            raise SettingsError(
                f"AUTOCODE_AGENT_ENV names {name}, but {name} is not set in the environment"
            )
        agent_env[name] = environ[name]
    return agent_env


def _command(environ: Mapping[str, str]) -> str:
    command = environ.get("AUTOCODE_COMMAND", "").strip() or "/opencode"
    if any(ch.isspace() for ch in command):
        raise SettingsError(f"AUTOCODE_COMMAND must be one word, got {command!r}")
    return command


def _database_url(environ: Mapping[str, str]) -> str:
    database_url = environ.get("AUTOCODE_DATABASE_URL", "").strip() or "sqlite:///./autocode.db"
    if not database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise SettingsError(
            "AUTOCODE_DATABASE_URL must start with sqlite:// or postgresql://, "
            f"got {database_url.split(':', 1)[0]!r}"
        )
    return database_url


@dataclass(frozen=True)
class Settings:
    """Everything the bot can be told, with the embedded defaults."""

    webhook_secret: str = ""
    app_id: str = ""
    client_id: str = ""
    private_key: str = field(default="", repr=False)
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"
    database_url: str = "sqlite:///./autocode.db"
    trigger_label: str = "auto-code"
    command: str = "/opencode"
    runner_image: str = "autocode-runner:latest"
    model: str = ""
    opencode_auth: str = ""
    opencode_config: str = ""
    agent_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    agent_network: str = "internal"
    # the OCI runtime of the setup, agent and test containers (and the relay); "" = the engine's
    # default. `runsc` (gVisor) gives them a kernel of their own: see the README
    agent_runtime: str = ""
    # the network of the builds of repositories' images: Docker's default bridge, or the host's
    # where the engine gives its bridge no way out (dockerd --iptables=false)
    build_network: str = "bridge"
    agent_memory: str = "2g"
    agent_cpus: float = 2.0
    agent_pids: int = 512
    llm_proxy_host: str = ""  # where the LLM proxy listens; "" = by AUTOCODE_AGENT_NETWORK
    llm_proxy_port: int = 0  # 0 = a free port, picked at start
    llm_proxy_url: str = ""  # how agent containers reach it; "" = http://HOST:PORT
    max_parallel: int = 2
    run_timeout: int = 1800
    idle_timeout: int = 300
    max_cost_per_run: float | None = None  # dollars, as opencode reports them
    max_tokens_per_run: int | None = None  # input + output + reasoning tokens
    session_ttl_days: int = 30
    log_keep_days: int = 30  # a finished ticket's log lines are kept this long
    notify_keep_days: int = 7  # a delivered notification's row is kept this long
    # a notification its receiver kept refusing this long is given up (dead), not retried
    notify_give_up_hours: float = 24.0
    # follow-ups a pull request may get after failed checks or a review (the file's cap's cap)
    max_ci_fix_attempts: int = 5
    admin_token: str = field(default="", repr=False)
    docker_host: str = ""
    # a remote engine over TLS, as the Docker CLI reads them: verify the engine's certificate
    # against DOCKER_CERT_PATH/ca.pem, and present cert.pem/key.pem from there
    docker_tls_verify: bool = False
    docker_cert_path: str = ""
    workdir: str = "./autocode-work"
    public_url: str = ""
    lease_seconds: int = 60
    shutdown_grace: int = 30
    max_attempts: int = 2
    log_level: str = "INFO"
    log_json: bool = False
    notify_urls: tuple[str, ...] = field(default=(), repr=False)  # Slack's hold a secret
    notify_secret: str = field(default="", repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read the settings; raise SettingsError naming the first bad one."""
        private_key = _private_key(environ)
        network = _agent_network(environ)
        agent_env = _agent_env(environ)
        command = _command(environ)
        database_url = _database_url(environ)
        auth_default = str(Path("~/.local/share/opencode/auth.json").expanduser())
        cpus = positive(environ, "AUTOCODE_AGENT_CPUS")
        proxy_host, proxy_port, proxy_url = _llm_proxy(environ)
        return cls(
            webhook_secret=environ.get("AUTOCODE_WEBHOOK_SECRET", ""),
            app_id=environ.get("AUTOCODE_APP_ID", "").strip(),
            client_id=environ.get("AUTOCODE_CLIENT_ID", "").strip(),
            private_key=private_key,
            github_api_url=http_url(environ, "AUTOCODE_GITHUB_API_URL", "https://api.github.com"),
            github_url=http_url(environ, "AUTOCODE_GITHUB_URL", "https://github.com"),
            database_url=database_url,
            trigger_label=environ.get("AUTOCODE_TRIGGER_LABEL", "").strip() or "auto-code",
            command=command,
            runner_image=environ.get("AUTOCODE_RUNNER_IMAGE", "").strip()
            or "autocode-runner:latest",
            model=environ.get("AUTOCODE_MODEL", "").strip(),
            opencode_auth=environ.get("AUTOCODE_OPENCODE_AUTH", "").strip() or auth_default,
            opencode_config=environ.get("AUTOCODE_OPENCODE_CONFIG", "").strip(),
            agent_env=agent_env,
            agent_network=network,
            agent_runtime=_agent_runtime(environ),
            build_network=one_of(environ, "AUTOCODE_BUILD_NETWORK", ("bridge", "host", "none")),
            agent_memory=environ.get("AUTOCODE_AGENT_MEMORY", "").strip() or "2g",
            agent_cpus=cpus if cpus is not None else 2.0,
            agent_pids=whole(environ, "AUTOCODE_AGENT_PIDS", 512, minimum=16),
            llm_proxy_host=proxy_host,
            llm_proxy_port=proxy_port,
            llm_proxy_url=proxy_url,
            max_parallel=whole(environ, "AUTOCODE_MAX_PARALLEL", 2, minimum=1),
            run_timeout=whole(environ, "AUTOCODE_RUN_TIMEOUT", 1800, minimum=1),
            idle_timeout=whole(environ, "AUTOCODE_IDLE_TIMEOUT", 300, minimum=1),
            max_cost_per_run=positive(environ, "AUTOCODE_MAX_COST_PER_RUN"),
            max_tokens_per_run=whole(environ, "AUTOCODE_MAX_TOKENS_PER_RUN", 0, minimum=1) or None,
            session_ttl_days=whole(environ, "AUTOCODE_SESSION_TTL_DAYS", 30, minimum=1),
            log_keep_days=whole(environ, "AUTOCODE_LOG_KEEP_DAYS", 30, minimum=1),
            notify_keep_days=whole(environ, "AUTOCODE_NOTIFY_KEEP_DAYS", 7, minimum=1),
            notify_give_up_hours=positive(environ, "AUTOCODE_NOTIFY_GIVE_UP_HOURS") or 24.0,
            max_ci_fix_attempts=ci_fix_cap(environ),
            admin_token=environ.get("AUTOCODE_ADMIN_TOKEN", ""),
            docker_host=environ.get("DOCKER_HOST", "").strip(),
            docker_tls_verify=environ.get("DOCKER_TLS_VERIFY", "") != "",
            docker_cert_path=environ.get("DOCKER_CERT_PATH", "").strip(),
            workdir=environ.get("AUTOCODE_WORKDIR", "").strip() or "./autocode-work",
            public_url=environ.get("AUTOCODE_PUBLIC_URL", "").strip().rstrip("/"),
            lease_seconds=whole(environ, "AUTOCODE_LEASE_SECONDS", 60, minimum=2),
            shutdown_grace=whole(environ, "AUTOCODE_SHUTDOWN_GRACE", 30, minimum=0),
            max_attempts=whole(environ, "AUTOCODE_MAX_ATTEMPTS", 2, minimum=1),
            log_level=(environ.get("AUTOCODE_LOG_LEVEL", "").strip() or "INFO").upper(),
            log_json=flag(environ, "AUTOCODE_LOG_JSON", False),
            notify_urls=_notify_urls(environ),
            notify_secret=environ.get("AUTOCODE_NOTIFY_SECRET", ""),
        )

    def missing_for_github(self) -> list[str]:
        """The GitHub App settings still missing, as sentences naming each variable."""
        missing = []
        if not self.webhook_secret:
            missing.append("AUTOCODE_WEBHOOK_SECRET (the App's webhook secret)")
        if not (self.app_id or self.client_id):
            missing.append("AUTOCODE_APP_ID (the App's numeric id, or AUTOCODE_CLIENT_ID)")
        if not self.private_key:
            missing.append(
                "AUTOCODE_PRIVATE_KEY_PATH or AUTOCODE_PRIVATE_KEY (the App's PEM private key)"
            )
        return missing

    @property
    def sqlite_path(self) -> str:
        """The file behind a sqlite:// URL (`sqlite:///rel.db`, `sqlite:////abs.db`)."""
        if not self.database_url.startswith("sqlite://"):
            raise SettingsError("not a SQLite database URL")
        path = self.database_url[len("sqlite://") :]
        if path.startswith("/"):
            path = path[1:]
        return path or "autocode.db"


def load_environ(env_file: Path | str | None = None) -> dict[str, str]:
    """The process environment over an env file (default: `.env` in the working directory).

    A missing file reads as empty: `autocode serve` on nothing writes it in its setup.
    """
    from dotenv import dotenv_values

    path = Path(env_file).expanduser() if env_file else Path.cwd() / ".env"
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return merged
