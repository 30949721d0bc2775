"""LLM credentials, and how each provider reaches the agent (as a run decides it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...config import Settings
from .check import Check, fail

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
    from ...llm.access import load_jsonc

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


def _model_problem(model: str) -> str:
    """What is wrong with AUTOCODE_MODEL ("" when it names a provider and a model)."""
    if not model:
        return "AUTOCODE_MODEL is not set: opencode would not know which model to ask"
    provider, slash, name = model.partition("/")
    if not slash or not provider or not name:
        return f"AUTOCODE_MODEL {model!r} is not provider/model"
    return ""


def _no_credentials(
    name: str, settings: Settings, provider: str, looked: list[str], wanted: tuple[str, ...]
) -> Check:
    """The failure naming every place looked in, and the ways to give the provider a key."""
    if settings.opencode_config:
        looked.append(f"opencode config {settings.opencode_config} (no provider.{provider})")
    looked.append(f"AUTOCODE_AGENT_ENV (none of {', '.join(wanted)})")
    return fail(
        name,
        f"no credentials for provider {provider}: looked in " + "; ".join(looked),
        f"set {wanted[-1]} and add it to AUTOCODE_AGENT_ENV, or log in with "
        f"`opencode auth login` (AUTOCODE_OPENCODE_AUTH), or define provider {provider} in "
        "AUTOCODE_OPENCODE_CONFIG",
    )


def check_llm(settings: Settings) -> Check:
    """Some source of credentials for the model's provider, and how it reaches the agent.

    The mode (proxied, mounted, passed) is decided by the same function a run
    uses, `providers.plan`, over the same files and variables.
    """
    from ...llm.providers import plan

    name = "LLM credentials"
    problem = _model_problem(settings.model)
    if problem:
        return fail(
            name, problem, "set AUTOCODE_MODEL (provider/model, e.g. anthropic/claude-sonnet-4-5)"
        )
    provider = settings.model.partition("/")[0]
    looked: list[str] = []
    auth, why = _json_file(settings.opencode_auth)
    if auth is None or not isinstance(auth.get(provider), dict):
        looked.append(f"auth.json {settings.opencode_auth} ({why or 'no ' + provider + ' entry'})")
    config: dict[str, Any] | None = None
    if settings.opencode_config:
        config, why = _json_file(settings.opencode_config, jsonc=True)
        if config is None:
            return fail(
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
    return _no_credentials(name, settings, provider, looked, wanted)
