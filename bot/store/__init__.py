"""Durable ticket stores behind one protocol."""

from __future__ import annotations

from ..config import Settings
from .base import TicketStore


def open_store(settings: Settings) -> TicketStore:
    """The store named by AUTOCODE_DATABASE_URL, migrated and ready."""
    url = settings.database_url
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path, notify_urls=settings.notify_urls)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here so a SQLite-only install never loads the PostgreSQL driver.
        from .postgres import PostgresStore

        return PostgresStore(url, notify_urls=settings.notify_urls)
    from ..errors import SettingsError

    raise SettingsError("AUTOCODE_DATABASE_URL must start with sqlite:// or postgresql://")


__all__ = ["TicketStore", "open_store"]
