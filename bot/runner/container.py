"""One agent container's output, stop and removal: blocking calls, run in threads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

log = logging.getLogger("bot.runner")


def pump(container: Any, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Put the container's stdout on `lines`, a line at a time, then None when it ends."""
    buffer = b""
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=False):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                loop.call_soon_threadsafe(lines.put_nowait, line.decode("utf-8", "replace"))
    except Exception:  # the stream ends when the container is stopped or removed
        log.debug("log stream ended", exc_info=True)
    finally:
        if buffer:
            loop.call_soon_threadsafe(lines.put_nowait, buffer.decode("utf-8", "replace"))
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lines.put_nowait, None)


def stop(container: Any) -> None:
    """Stop the container (killed after 3 s); a failure is let go: removal follows."""
    with contextlib.suppress(Exception):
        container.stop(timeout=3)


def remove(container: Any) -> None:
    """Remove the container by force, in up to three tries; one already gone is removed."""
    for _ in range(3):
        try:
            container.remove(force=True)
            return
        except Exception as exc:  # noqa: BLE001 (docker-py raises several kinds)
            if "No such container" in str(exc):
                return
            log.warning("container removal failed; retrying", extra={"error": str(exc)})
            time.sleep(0.5)
