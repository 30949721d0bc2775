"""Logging set-up: a constant message plus the context given in `extra`."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


def _iso(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-12-06T10:52:40.123Z."""
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class KeyValueFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record)

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        context = " ".join(f"{k}={v}" for k, v in _context(record).items())
        return f"{base} {context}" if context else base


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": _iso(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's loggers without handlers of their own: their lines go through ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": "WARNING"},
        },
    }


class Throttled:
    """Log lines a flood could repeat without end (refused or ignored webhook deliveries).

    The first line of each message is written at once; after it, at most one
    per `every` seconds, saying how many were left out since the last one
    (`suppressed`). The metrics still count every one.
    """

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock or time.monotonic
        self._last: dict[str, tuple[float, int]] = {}  # message → (written at, left out since)

    def log(self, level: int, message: str, extra: dict[str, Any], key: str = "") -> None:
        """`message` (with `extra`), unless one of its kind (message and `key`) went out lately."""
        now = self.clock()
        kind = f"{message}\0{key}"
        written, skipped = self._last.get(kind, (float("-inf"), 0))
        if now - written < self.every:
            self._last[kind] = (written, skipped + 1)
            return
        if len(self._last) > 1000:  # keys a flood made up: forget them all
            self._last.clear()
        self._last[kind] = (now, 0)
        if skipped:
            extra = {**extra, "suppressed": skipped}
        self.logger.log(level, message, extra=extra)
