"""One run's LLM access: what its container gets instead of the provider keys.

`prepare` reads the operator's opencode config and `auth.json` as they are
now (a fresh `opencode auth login` counts from the next run), decides with
`providers.plan` what the proxy keeps, asks the proxy for the run's
capability, and writes the two files the container may read — the config
with the proxy's address and the capability in place of each key, and an
`auth.json` holding only the logins that cannot be proxied — into the run's
own folder beside the clone. `AgentLLM.close` revokes the capability; the
runner calls it once the container is gone.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BotError
from .grant import Grant, ProxyUsage
from .providers import Mode, plan
from .proxy import LLMProxy

log = logging.getLogger("bot.llm")


def load_jsonc(text: str) -> Any:
    """JSON with // and /* */ comments and trailing commas, as opencode.json allows."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 2
        else:
            out.append(ch)
            i += 1
    cleaned = "".join(out)
    try:
        return json.loads(cleaned)
    except ValueError:
        import re

        return json.loads(re.sub(r",(\s*[}\]])", r"\1", cleaned))


def _read(path: Path, what: str, *, jsonc: bool = False) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BotError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        data = load_jsonc(text) if jsonc else json.loads(text)
    except ValueError:
        raise BotError(f"{what} {path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise BotError(f"{what} {path} must hold a JSON object")
    return data


@dataclass
class AgentLLM:
    """What one run's container gets for its LLM, and the capability to revoke after."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    providers: dict[str, Any] = field(default_factory=dict, repr=False)  # inline config overrides
    config_file: Path | None = None  # mounted at /run/autocode/opencode.json
    auth_file: Path | None = None  # mounted at /run/autocode/auth.json
    grant: Grant | None = None
    proxy: LLMProxy | None = None
    modes: list[Mode] = field(default_factory=list)

    def close(self) -> ProxyUsage | None:
        """Revoke the run's capability (idempotent); the run's usage as the proxy counted it."""
        grant, self.grant = self.grant, None
        if grant is None or self.proxy is None:
            return None
        return self.proxy.revoke(grant)


def _write(folder: Path, name: str, data: dict[str, Any], owner: tuple[int, int] | None) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    if owner is not None and os.getuid() == 0:
        os.chown(path, *owner)  # the agent's user reads it; nobody else
    return path


def prepare(
    *,
    ticket_id: int,
    agent_env: dict[str, str],
    auth_path: str,
    config_path: str,
    proxy: LLMProxy | None,
    agent_url: str,
    folder: Path,
    owner: tuple[int, int] | None,  # the agent's uid, gid: the files' owner when we are root
    lifetime: float,
    token_budget: int | None = None,
    on_budget_spent: Callable[[int], None] | None = None,
) -> AgentLLM:
    """Everything the container gets for its LLM; no provider key the proxy can hold.

    Without a proxy (a caller that runs none) the files and variables are
    handed over as they are, as before the proxy existed.
    """
    config_file = Path(config_path).expanduser().resolve() if config_path else None
    if config_file is not None and not config_file.is_file():
        raise BotError(f"AUTOCODE_OPENCODE_CONFIG {config_file} does not exist")
    auth_file = Path(auth_path).expanduser() if auth_path else None
    if auth_file is not None and not auth_file.is_file():
        auth_file = None
    if proxy is None:
        return AgentLLM(
            env=dict(agent_env),
            config_file=config_file,
            auth_file=auth_file.resolve() if auth_file else None,
        )
    config = _read(config_file, "AUTOCODE_OPENCODE_CONFIG", jsonc=True) if config_file else None
    auth = _read(auth_file, "AUTOCODE_OPENCODE_AUTH", jsonc=False) if auth_file else None
    decided = plan(agent_env, auth, config)
    access = AgentLLM(env=decided.env, proxy=proxy, modes=decided.modes)
    if decided.upstreams:
        access.grant = proxy.grant(
            ticket_id,
            decided.upstreams,
            lifetime=lifetime,
            token_budget=token_budget,
            on_spent=on_budget_spent,
        )
        access.providers = decided.run_config(agent_url, access.grant.capability)
    capability = access.grant.capability if access.grant else ""
    run_config = decided.config_for_run(agent_url, capability)
    if run_config is not None:
        access.config_file = _write(folder, "opencode.json", run_config, owner)
    if decided.auth is not None:
        access.auth_file = _write(folder, "auth.json", decided.auth, owner)
    log.info(
        "llm access for the run",
        extra={
            "ticket": ticket_id,
            "modes": {m.provider: m.mode for m in decided.modes},
            "proxied": sorted(decided.upstreams),
        },
    )
    return access
