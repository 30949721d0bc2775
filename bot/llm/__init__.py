"""The agent's LLM access: provider keys stay on the host, behind a per-run capability."""

from __future__ import annotations

from .access import AgentLLM, prepare
from .grant import Grant, ProxyUsage
from .meter import Meter, Tokens, usage_of
from .providers import KNOWN, Mode, Plan, Upstream, plan
from .proxy import LLMProxy

__all__ = [
    "KNOWN",
    "AgentLLM",
    "Grant",
    "LLMProxy",
    "Meter",
    "Mode",
    "Plan",
    "ProxyUsage",
    "Tokens",
    "Upstream",
    "plan",
    "prepare",
    "usage_of",
]
