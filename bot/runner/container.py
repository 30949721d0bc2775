"""One agent container's life after it starts: its output followed, its end, its removal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from .spec import ContainerExit, ContainerSpec

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


async def follow(
    spec: ContainerSpec,
    lines: asyncio.Queue[str | None],
    on_line: Callable[[str], None],
    cancel: asyncio.Event,
    activity: Callable[[], float] | None,
    started: float,
    result: ContainerExit,
) -> None:
    """Pass the agent's lines on until they end, a timeout, idleness or cancellation."""
    last_event = time.monotonic()
    deadline = started + spec.timeout
    while True:
        now = time.monotonic()
        idle_deadline = max(last_event, activity() if activity else 0.0) + spec.idle_timeout
        wait = min(deadline, idle_deadline) - now
        if cancel.is_set():
            result.cancelled = True
            break
        if now >= deadline:
            result.timed_out = True
            break
        if now >= idle_deadline:
            result.timed_out = result.idle = True
            break
        cancel_wait = asyncio.ensure_future(cancel.wait())
        line_wait = asyncio.ensure_future(lines.get())
        done, _ = await asyncio.wait(
            {cancel_wait, line_wait},
            timeout=max(0.05, min(wait, 5.0)),
            return_when=asyncio.FIRST_COMPLETED,
        )
        cancel_wait.cancel()
        if line_wait in done:
            line = line_wait.result()
            if line is None:
                break
            last_event = time.monotonic()
            on_line(line)
        else:
            line_wait.cancel()


async def wind_up(container: Any, result: ContainerExit, started: float) -> None:
    """Stop the container if the run was cut short, else take its exit code; its stderr tail."""
    if result.cancelled or result.timed_out:
        await asyncio.to_thread(stop, container)
    else:
        status = await asyncio.to_thread(container.wait, timeout=60)
        result.exit_code = int(status.get("StatusCode", -1))
    result.agent_seconds = time.monotonic() - started - result.start_seconds
    with contextlib.suppress(Exception):
        raw = await asyncio.to_thread(container.logs, stdout=False, stderr=True, tail=40)
        result.stderr_tail = raw.decode("utf-8", "replace")[-4000:]
