"""The ticket page's live log: a ticket's log lines as server-sent events.

The stream polls the store (in threads) for lines after the last one sent,
sends a `log` event per line and an `end` event once the ticket is final, and
closes after a while so the browser reconnects with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..store.base import LogLine, TicketStore

POLL_SECONDS = 0.5  # how often the event stream looks for new log lines
HEARTBEAT_SECONDS = 15.0  # a comment line keeps proxies from closing a quiet stream
# A stream ends after this and the browser reconnects at once with Last-Event-ID:
# no stream outlives a shutdown by more than this (uvicorn waits for open responses).
STREAM_SECONDS = 25.0


def sse(event: str, data: dict[str, Any], ident: int | None = None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def log_json(line: LogLine) -> dict[str, Any]:
    return {"id": line.id, "at": line.at, "kind": line.kind, "message": line.message}


def resume_after(request: Request) -> int:
    """The last line the browser has: `?after=` or the Last-Event-ID of a reconnect."""
    after = 0
    for raw in (
        request.query_params.get("after", ""),
        request.headers.get("last-event-id", ""),
    ):
        if raw.strip().isdigit():
            after = max(after, int(raw))
    return after


async def log_stream(store: TicketStore, ticket_id: int, after: int) -> AsyncIterator[bytes]:
    """The event stream of one ticket's log lines after `after`."""
    last = after
    started = beat = time.monotonic()
    final_seen = False
    yield b"retry: 1000\n\n"
    while True:
        # the state first: lines written before it turned final are read below
        ticket = await run_in_threadpool(store.get, ticket_id)
        done = ticket is None or ticket.state.final
        lines = await run_in_threadpool(store.logs, ticket_id, last, 500)
        for line in lines:
            last = line.id
            yield sse("log", log_json(line), line.id)
        if len(lines) == 500:
            continue
        if done:
            if final_seen:  # one more look: the last line comes just after the state
                end = {"id": ticket_id, "state": str(ticket.state) if ticket else "gone"}
                if ticket is not None:
                    end.update(conclusion=ticket.conclusion or "", pr_url=ticket.pr_url or "")
                yield sse("end", end)
                return
            final_seen = True
        now = time.monotonic()
        if now - started > STREAM_SECONDS:
            return
        if now - beat > HEARTBEAT_SECONDS:
            beat = now
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)
