"""Which LLM providers the proxy fronts, and what the agent's container is left with (pure).

A provider is *proxied* when the bot holds an API key for it and knows the
provider's real base URL: the key stays on the host, the container gets the
proxy's address and a per-run capability instead. Keys come from three
places: variables named in `AUTOCODE_AGENT_ENV` that opencode reads for a
known provider (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`, …), `"type": "api"`
entries of opencode's `auth.json`, and `options.apiKey` of providers in the
`AUTOCODE_OPENCODE_CONFIG` file. What cannot be proxied keeps today's path:
OAuth logins stay in a read-only `auth.json` (their tokens are refreshed by
opencode itself, against endpoints the proxy cannot stand in for), and other
variables are passed through. `Plan.modes` says which provider got which
mode and why; the bot logs it and the README explains it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BEARER = "bearer"  # Authorization: Bearer <key> (OpenAI and every OpenAI-compatible API)
X_API_KEY = "x-api-key"  # Anthropic
X_GOOG_API_KEY = "x-goog-api-key"  # Google's Generative Language API


@dataclass(frozen=True)
class Known:
    """What opencode's bundled provider list says about a provider we can stand in for."""

    env: tuple[str, ...]
    base_url: str
    auth: str = BEARER


# The SDK defaults opencode uses when a provider's config gives no baseURL.
KNOWN: dict[str, Known] = {
    "anthropic": Known(("ANTHROPIC_API_KEY",), "https://api.anthropic.com/v1", X_API_KEY),
    "openai": Known(("OPENAI_API_KEY",), "https://api.openai.com/v1"),
    "openrouter": Known(("OPENROUTER_API_KEY",), "https://openrouter.ai/api/v1"),
    "groq": Known(("GROQ_API_KEY",), "https://api.groq.com/openai/v1"),
    "xai": Known(("XAI_API_KEY",), "https://api.x.ai/v1"),
    "mistral": Known(("MISTRAL_API_KEY",), "https://api.mistral.ai/v1"),
    "google": Known(
        ("GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY"),
        "https://generativelanguage.googleapis.com/v1beta",
        X_GOOG_API_KEY,
    ),
}
ENV_PROVIDER = {name: provider for provider, known in KNOWN.items() for name in known.env}
NPM_AUTH = {"@ai-sdk/anthropic": X_API_KEY, "@ai-sdk/google": X_GOOG_API_KEY}
_ENV_REF = re.compile(r"^\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class Upstream:
    """One provider as the proxy reaches it: the real base URL and the real key."""

    provider: str
    base_url: str
    key: str = field(repr=False)
    auth: str = BEARER
    source: str = ""  # where the key came from, for logs and the README's table

    def auth_header(self) -> tuple[str, str]:
        """The header that carries the real key upstream."""
        if self.auth == X_API_KEY:
            return "x-api-key", self.key
        if self.auth == X_GOOG_API_KEY:
            return "x-goog-api-key", self.key
        return "authorization", f"Bearer {self.key}"


@dataclass(frozen=True)
class Mode:
    """How one provider's credential reaches the agent, and why."""

    provider: str
    mode: str  # "proxied" | "mounted" (auth.json, read-only) | "passed" (variable in the container)
    why: str


@dataclass
class Plan:
    """The outcome: what the proxy fronts and what the container still gets."""

    upstreams: dict[str, Upstream] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict, repr=False)  # variables for the container
    config: dict[str, Any] | None = field(default=None, repr=False)  # the opencode.json to mount
    auth: dict[str, Any] | None = field(default=None, repr=False)  # the auth.json to mount
    modes: list[Mode] = field(default_factory=list)

    def run_config(self, proxy_url: str, capability: str) -> dict[str, Any]:
        """The `provider` section that points every proxied provider at the proxy."""
        return {
            name: {"options": {"baseURL": f"{proxy_url}/p/{name}", "apiKey": capability}}
            for name in self.upstreams
        }

    def config_for_run(self, proxy_url: str, capability: str) -> dict[str, Any] | None:
        """The user's opencode.json as the container sees it: proxy address, capability, no key."""
        if self.config is None:
            return None
        config = copy.deepcopy(self.config)
        providers = config.get("provider")
        if isinstance(providers, dict):
            for name, entry in self.run_config(proxy_url, capability).items():
                target = providers.get(name)
                if isinstance(target, dict):
                    options = target.setdefault("options", {})
                    if isinstance(options, dict):
                        options.update(entry["options"])
        return config


def _provider_auth(name: str, entry: Mapping[str, Any]) -> str:
    npm = entry.get("npm")
    if isinstance(npm, str) and npm in NPM_AUTH:
        return NPM_AUTH[npm]
    known = KNOWN.get(name)
    return known.auth if known else BEARER


def _config_providers(config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    providers = (config or {}).get("provider")
    if not isinstance(providers, dict):
        return {}
    return {str(k): v for k, v in providers.items() if isinstance(v, dict)}


def _base_url(name: str, entry: Mapping[str, Any] | None) -> str:
    options = (entry or {}).get("options")
    if isinstance(options, dict) and isinstance(options.get("baseURL"), str):
        return str(options["baseURL"]).rstrip("/")
    known = KNOWN.get(name)
    return known.base_url if known else ""


@dataclass
class _Planning:
    """`plan` at work: the sources it reads, and the plan so far."""

    agent_env: Mapping[str, str]
    providers: dict[str, dict[str, Any]]  # the opencode config's
    entries: dict[str, dict[str, Any]]  # auth.json's
    logins: set[str]  # providers with an OAuth login in auth.json
    result: Plan
    consumed: set[str] = field(default_factory=set)  # variables whose value the proxy now holds

    def take(self, name: str, key: str, source: str, otherwise: str) -> bool:
        """Proxy `name` with `key` when its base URL is known; else note it `otherwise`."""
        entry = self.providers.get(name)
        base = _base_url(name, entry)
        if not base:
            why = f"{source}: no baseURL in the opencode config and not a provider the bot knows"
            self.result.modes.append(Mode(name, otherwise, why))
            return False
        auth_style = _provider_auth(name, entry or {})
        self.result.upstreams[name] = Upstream(name, base, key, auth_style, source)
        self.result.modes.append(Mode(name, "proxied", f"{source}: an API key, kept on the host"))
        return True

    def from_config(self, config: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Take the config file's apiKeys; the config without the keys taken."""
        result, agent_env = self.result, self.agent_env
        sanitized = copy.deepcopy(dict(config)) if config is not None else None
        for name, entry in self.providers.items():
            options = entry.get("options")
            key = options.get("apiKey") if isinstance(options, dict) else None
            if not isinstance(key, str) or not key:
                continue
            if name in self.logins:
                why = "opencode config: an apiKey beside an OAuth login in auth.json"
                result.modes.append(Mode(name, "passed", why))
                continue
            ref = _ENV_REF.match(key)
            if ref:
                if ref.group(1) not in agent_env:
                    continue  # resolved (or not) inside the container, as before
                key = agent_env[ref.group(1)]
            elif key.startswith("{"):
                result.modes.append(Mode(name, "passed", "opencode config: a {file:…} apiKey"))
                continue
            if self.take(name, key, "opencode config", "passed"):
                if ref:
                    self.consumed.add(ref.group(1))
                if sanitized is not None:
                    sanitized["provider"][name]["options"].pop("apiKey", None)
        return sanitized

    def from_auth(self) -> dict[str, Any] | None:
        """Take auth.json's API keys; the entries left for the mounted file (None if none)."""
        result = self.result
        kept: dict[str, Any] = {}
        for name, entry in self.entries.items():
            if entry.get("type") == "api":
                key = entry.get("key")
                if name in result.upstreams:
                    continue  # the config's key wins; this one is not needed inside
                if isinstance(key, str) and key and self.take(name, key, "auth.json", "mounted"):
                    continue
            else:
                why = f"auth.json: a {entry.get('type')} login, refreshed by opencode itself"
                result.modes.append(Mode(name, "mounted", why))
            kept[name] = copy.deepcopy(entry)
        return kept or None

    def from_env(self) -> None:
        """Take the provider keys among AUTOCODE_AGENT_ENV's variables."""
        result, consumed = self.result, self.consumed
        for variable, value in self.agent_env.items():
            if variable in consumed:
                continue  # a config's {env:…} apiKey, proxied above
            known = ENV_PROVIDER.get(variable)
            if known is None:
                result.modes.append(
                    Mode(variable, "passed", "AUTOCODE_AGENT_ENV: not a provider key the bot knows")
                )
                continue
            name = known
            if name in result.upstreams:
                consumed.add(variable)  # another source's key is used: this one stays out
            elif name in self.logins:
                consumed.add(variable)
                result.modes.append(
                    Mode(name, "mounted", f"{variable} unused: an OAuth login wins")
                )
            elif value and self.take(name, value, f"AUTOCODE_AGENT_ENV {variable}", "passed"):
                consumed.add(variable)


def plan(
    agent_env: Mapping[str, str],
    auth: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
) -> Plan:
    """Decide, provider by provider, which credentials the proxy keeps on the host.

    Precedence follows what opencode would use: a key in the config file over
    an `auth.json` entry over an environment variable. An OAuth login for a
    provider is left alone (its requests carry the login's own token, which
    the proxy could not check), so that provider keeps today's mount.
    """
    result = Plan(env=dict(agent_env))
    providers = _config_providers(config)
    entries = {str(k): v for k, v in (auth or {}).items() if isinstance(v, dict)}
    logins = {name for name, entry in entries.items() if entry.get("type") != "api"}
    planning = _Planning(agent_env, providers, entries, logins, result)
    # 1. options.apiKey in the config file (literal, or {env:NAME} of a passed variable)
    sanitized = planning.from_config(config)
    # 2. auth.json: API keys go to the proxy, logins stay in the mounted file
    result.auth = planning.from_auth()
    # 3. provider variables named in AUTOCODE_AGENT_ENV
    planning.from_env()
    for variable in planning.consumed:
        result.env.pop(variable, None)
    result.config = sanitized
    return result
