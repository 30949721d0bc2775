"""Group commit for intake: deliveries arriving together share one transaction.

Each request still waits until its own ticket is committed, so the 202 keeps
its promise; under load the commits (and their disk syncs) are shared, and
the event loop hands work to a thread once per batch, not once per request.
"""

from __future__ import annotations

import asyncio

from ..models import Trigger
from ..store.base import TicketStore

MAX_BATCH = 256


class IntakeBatcher:
    def __init__(self, store: TicketStore) -> None:
        self.store = store
        self._pending: list[tuple[tuple[str, str, Trigger], asyncio.Future[tuple[int, bool]]]] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None

    async def add(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self._pending.append(((delivery_id, event, trigger), future))
        if not self._flushing:
            self._flushing = True
            # let the requests that arrive in this loop iteration join the batch
            loop.call_soon(self._start_flush, loop)
        return await future

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        # held here: the loop keeps only a weak reference to its tasks
        self._flush_task = loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                items = [b[0] for b in batch]
                try:
                    if self.store.inline_writes:
                        # an embedded database: a short blocking commit beats a thread hop
                        results = self.store.add_many(items)
                    else:
                        results = await asyncio.to_thread(self.store.add_many, items)
                except Exception as exc:  # noqa: BLE001 (each waiting request gets the error)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
        finally:
            self._flushing = False
