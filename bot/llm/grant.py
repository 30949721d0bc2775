"""A run's capability for the LLM proxy: the providers it opens, and what the run used."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .meter import Tokens
from .providers import Upstream

# the capability arrives wherever the provider's SDK puts its key
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")


@dataclass
class ProxyUsage:
    """What one run's agent asked of its providers, as the proxy saw it."""

    requests: int = 0
    failed: int = 0  # answers with a status of 400 or more, and providers not reached
    tokens: Tokens = field(default_factory=Tokens)


@dataclass
class Grant:
    """One run's capability and the providers it opens."""

    ticket_id: int
    capability: str = field(repr=False)
    upstreams: Mapping[str, Upstream] = field(repr=False)
    expires_at: float  # time.monotonic(); a lost run's capability dies anyway
    token_budget: int | None = None
    usage: ProxyUsage = field(default_factory=ProxyUsage)
    # told (with the tokens counted) each time a request is refused for the spent budget:
    # opencode does not end its run on that refusal, so the run must stop it
    on_spent: Callable[[int], None] | None = field(default=None, repr=False, compare=False)


def digest(capability: str) -> bytes:
    """The key the proxy looks a grant up by."""
    return hashlib.sha256(capability.encode()).digest()


def presented_capability(headers: Mapping[str, str]) -> str:
    """The capability a request carries (as a bearer token or an API-key header)."""
    for name in KEY_HEADERS:
        value = headers.get(name, "").strip()
        if not value:
            continue
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer":
                continue
            value = token.strip()
        return value
    return ""
