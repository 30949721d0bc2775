"""Ticket events to the operator's receivers: bodies (JSON, Slack) and the outbox publisher."""

from .publisher import Notifier, Publisher

__all__ = ["Notifier", "Publisher"]
