"""The operator's side: the dashboard (HTML, live log, cancel/retry) and POST /api/tickets.

Read-only on the store except for the operator's own actions (cancel, retry,
queue a ticket), which take the same paths as their GitHub counterparts.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from ..config import Settings
from ..store.base import TicketStore
from .api import api_routes
from .routes import dashboard_routes


def web_routes(settings: Settings, store: TicketStore) -> list[BaseRoute]:
    """Every route of the dashboard and the write side of the JSON API."""
    return [*api_routes(settings, store), *dashboard_routes(settings, store)]


__all__ = ["web_routes"]
