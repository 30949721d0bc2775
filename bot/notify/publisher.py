"""Signed ticket notifications from a durable outbox: ticket.queued, .started, .finished.

Events are rows in the store before anyone is told (`ticket.queued` in the
very transaction that makes the ticket), so a receiver that is down for
minutes, or a bot that restarts meanwhile, loses nothing: the Notifier sends
each row until the receiver answers 2xx, backing off exponentially, and a
ticket's later event never overtakes its earlier one at the same URL. A row
still failing `give_up_seconds` after it was written is given up (dead):
logged, counted, shown on the ticket's page, and no longer holding up the
ticket's later events, so one receiver gone for good blocks nothing forever.
Delivery is at least once — a notifier that dies between the POST and the
store's commit sends that row again — so receivers drop a repeated
`X-Autocode-Delivery`.

Bodies are signed exactly as GitHub signs webhooks: `X-Autocode-Signature-256:
sha256=<HMAC-SHA256 of the raw body>` with AUTOCODE_NOTIFY_SECRET.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import httpx

from ..hooks import TicketEvents
from ..metrics import Metrics
from ..models import Ticket
from ..store.base import Notification, TicketStore
from ..webhook.verify import signature
from .bodies import event_body, is_slack, slack_body

log = logging.getLogger("bot.notify")

USER_AGENT = "Autocode-Notify/1"
GIVE_UP_SECONDS = 24 * 3600.0  # AUTOCODE_NOTIFY_GIVE_UP_HOURS' default


def receiver(url: str) -> str:
    """The URL's scheme and host, for logs: a Slack URL's path is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def redact(text: str, url: str) -> str:
    """`text` without the URL's path and query, however written (a Slack path is a secret)."""
    parts = urlsplit(url)
    text = text.replace(url, receiver(url))
    for secret in (parts.path + (f"?{parts.query}" if parts.query else ""), parts.path):
        if secret.strip("/"):
            text = text.replace(secret, "/…")
    return text


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2·base, 4·base … cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def request_for(row: Notification, secret: str) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers POSTed for one outbox row (pure)."""
    content = (slack_body(row.body) if is_slack(row.url) else row.body).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Autocode-Event": row.event,
        "X-Autocode-Delivery": str(row.id),
        "X-Autocode-Signature-256": signature(secret, content),
    }
    return content, headers


class Notifier:
    """Sends due outbox rows until `stop`; several processes may run one on one store."""

    def __init__(
        self,
        store: TicketStore,
        secret: str,
        *,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        poll: float = 1.0,
        batch: int = 50,
        timeout: float = 10.0,
        give_up_seconds: float = GIVE_UP_SECONDS,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.secret = secret
        self.give_up_seconds = give_up_seconds  # a row failing this long after it was written
        self.metrics = metrics
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll = poll
        self.batch = batch
        self.timeout = timeout
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now (a row was just written), not at the next poll."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("notifier started")
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            while not stop.is_set():
                settled = 0
                try:
                    settled = await self.deliver_due(client)
                except Exception:  # the store is down: look again at the next poll
                    log.warning("notifier cannot read the outbox", exc_info=True)
                if settled:
                    continue  # the next event of those tickets may be due now
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """Send every row due now, each chain's head at once; return how many were settled
        (delivered, or given up): the next event of those tickets may be due now."""
        rows = await asyncio.to_thread(self.store.due_notifications, self.clock(), self.batch)
        if not rows:
            return 0
        results = await asyncio.gather(*(self._send(client, row) for row in rows))
        return sum(results)

    async def _send(self, client: httpx.AsyncClient, row: Notification) -> bool:
        content, headers = request_for(row, self.secret)
        context = {
            "notification": row.id, "ticket": row.ticket_id, "event": row.event,
            "receiver": receiver(row.url), "attempt": row.attempts,
        }  # fmt: skip
        try:
            response = await client.post(row.url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            error = redact(f"{exc.__class__.__name__}: {exc}", row.url)
        else:
            if 200 <= response.status_code < 300:
                try:
                    await asyncio.to_thread(self.store.mark_delivered, row.id, self.clock())
                except Exception:  # sent, not recorded: it goes again after the lease
                    log.warning("notification sent but not recorded", extra=context, exc_info=True)
                    return False
                log.info("notification delivered", extra=context)
                return True
            error = f"HTTP {response.status_code}"
        return await self._failed(row, error, context)

    async def _failed(self, row: Notification, error: str, context: dict[str, object]) -> bool:
        """Retry the row later, or give it up once it has failed for too long (True)."""
        now = self.clock()
        if now - row.created_at > self.give_up_seconds:
            return await self._give_up(row, now, error, context)
        wait = backoff(row.attempts, self.backoff_base, self.backoff_cap)
        log.warning(
            "notification failed; will retry",
            extra={**context, "error": error[:300], "retry_in": wait},
        )
        try:
            await asyncio.to_thread(self.store.mark_failed, row.id, now, now + wait, error[:1000])
        except Exception:  # the row comes back after its lease anyway
            log.warning("notification failure not recorded", extra=context, exc_info=True)
        return False

    async def _give_up(
        self, row: Notification, now: float, error: str, context: dict[str, object]
    ) -> bool:
        """Mark the row dead: never sent again, and its ticket's next event is due."""
        try:
            await asyncio.to_thread(self.store.mark_dead, row.id, now, error[:1000])
        except Exception:  # the row comes back after its lease, and is given up then
            log.warning("notification give-up not recorded", extra=context, exc_info=True)
            return False
        if self.metrics is not None:
            self.metrics.notification_dead()
        log.warning(
            "notification given up: its receiver kept failing",
            extra={
                "notification": row.id, "ticket": row.ticket_id, "event": row.event,
                "receiver": receiver(row.url), "attempts": row.attempts, "error": error[:300],
                "hours": round((now - row.created_at) / 3600, 2),
            },
        )  # fmt: skip
        return True


class Publisher(TicketEvents):
    """The worker's hooks: metrics of finished runs, and ticket events into the outbox.

    Hooks never raise: a full disk or a dead database must not turn a
    finished run into a crashed one, so failures are logged and dropped.
    """

    def __init__(
        self,
        store: TicketStore,
        urls: Sequence[str] = (),
        *,
        metrics: Metrics | None = None,
        wake: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.urls = tuple(urls)
        self.metrics = metrics
        self.wake = wake or (lambda: None)
        self.clock = clock

    async def _enqueue(self, event: str, ticket: Ticket) -> None:
        now = self.clock()
        body = event_body(event, ticket, now)
        await asyncio.to_thread(
            self.store.enqueue_notifications, ticket.id, event, body, self.urls, now
        )
        self.wake()

    async def started(self, ticket: Ticket) -> None:
        if not self.urls:
            return
        try:
            await self._enqueue("ticket.started", ticket)
        except Exception:
            log.warning("ticket.started not queued", extra={"ticket": ticket.id}, exc_info=True)

    async def finished(self, ticket_id: int, *, ran: bool = False) -> None:
        if not self.urls and (self.metrics is None or not ran):
            return
        try:
            ticket = await asyncio.to_thread(self.store.get, ticket_id)
            if ticket is None:
                return
            if ran and self.metrics is not None:
                self.metrics.run_finished(ticket)
            if self.urls:
                await self._enqueue("ticket.finished", ticket)
        except Exception:
            log.warning("ticket.finished not queued", extra={"ticket": ticket_id}, exc_info=True)
