"""A run's budgets: whether its usage has passed the tokens or cost it may spend (pure)."""

from __future__ import annotations

from ..models import Usage
from .settings import RepoSettings


def budget_reached(settings: RepoSettings, usage: Usage) -> str:
    """The budget `usage` has passed, in words for the comment; empty while within both.

    Tokens count input, output and reasoning (not cache reads, which providers
    bill at a fraction); cost is what opencode computed from the model's prices.
    """
    tokens = settings.max_tokens_per_run
    if tokens is not None and usage.total > tokens:
        return (
            f"the token budget of {tokens:,} tokens per run was reached "
            f"({usage.total:,} tokens used)"
        )
    cost = settings.max_cost_per_run
    if cost is not None and usage.cost > cost:
        return f"the cost budget of ${cost:.2f} per run was reached (${usage.cost:.4f} spent)"
    return ""
