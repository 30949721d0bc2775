"""Auto-Code bot: GitHub issues to pull requests with the OpenCode agent in a container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import OpenCodeService

__version__ = "0.1.0"
__all__ = ["OpenCodeService", "__version__"]


def __getattr__(name: str) -> Any:
    """`from bot import OpenCodeService`, imported on first use so `bot.config` stays light."""
    if name == "OpenCodeService":
        from .service import OpenCodeService

        return OpenCodeService
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
