"""Durable ticket stores behind one protocol."""

from __future__ import annotations

from ..config import Settings
from .base import TicketStore


def open_store(settings: Settings) -> TicketStore:
    """The store named by AUTOCODE_DATABASE_URL, migrated and ready."""
    from .sqlite import SQLiteStore

    if settings.database_url.startswith("sqlite://"):
        return SQLiteStore(settings.sqlite_path)
    from ..errors import SettingsError

    raise SettingsError("PostgreSQL is not supported by this build; use a sqlite:// URL")


__all__ = ["TicketStore", "open_store"]
