"""POST /webhook: verify, parse, decide, store durably, answer in milliseconds.

The endpoint is a plain ASGI app (Starlette routes an ASGI app as it is):
it reads the five headers it needs from the scope in one pass, the body
straight from the receive channel, and sends its answers as ready bytes,
so a delivery costs no Request, Headers or Response objects on the way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from starlette.types import Receive, Scope, Send

from ..config import MAX_WEBHOOK_BYTES
from ..errors import BodyTooLarge, BotError, PayloadError, SignatureError, StoreError
from ..logs import Throttled
from ..metrics import Metrics
from ..models import TicketKind, Trigger
from ..store.base import TicketStore
from ..triggers.rules import Ignore, RuleSettings, decide
from . import parse as parsing
from .batch import IntakeBatcher
from .verify import verify

log = logging.getLogger("bot.webhook")

# The request headers the intake reads; ASGI servers hand over names in lower case.
_HEADERS = {
    name.encode(): name
    for name in (
        "content-length",
        "content-type",
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
    )
}
_PONG = b'{"ok":true,"pong":true}'

Answer = tuple[str, int, bytes]  # what it meant for the metrics (an OUTCOMES name), status, body


def request_headers(scope: Scope) -> dict[str, str]:
    """The headers the intake reads, by lower-case name (the first of repeated ones)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _HEADERS.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


class ClientGone(BotError):
    """The client disconnected before its body arrived."""


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes without reading them all."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise PayloadError("invalid Content-Length") from None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _json(data: object) -> bytes:
    """JSON as Starlette's JSONResponse renders it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, _json({"error": message})


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class WebhookEndpoint:
    """The ASGI app for GitHub deliveries, routed as `Route("/webhook", endpoint.handle)`."""

    def __init__(
        self,
        *,
        secret: str,
        store: TicketStore,
        rules: RuleSettings,
        on_ticket: Callable[[int], None] | None = None,
        max_bytes: int = MAX_WEBHOOK_BYTES,
        metrics: Metrics | None = None,
    ) -> None:
        self.secret = secret
        self._key = secret.encode()
        self.metrics = metrics
        self.store = store
        self.rules = rules
        self.on_ticket = on_ticket
        self.max_bytes = max_bytes
        self.batcher = IntakeBatcher(store)
        # refused and ignored deliveries: a flood of them must not flood the log too
        self._quiet = Throttled(log)

    @property
    def handle(self) -> WebhookEndpoint:
        """The ASGI app to route POST /webhook to: this endpoint itself."""
        return self

    async def _for_check_run(self, trigger: Trigger) -> Trigger | Ignore:
        """A check run's button or re-run acts on the ticket that made the run.

        The check run's `external_id` is our ticket id; the ticket must belong to
        the repository the signed payload names. One store read, no GitHub call.
        """
        external = trigger.origin.external_id
        if not external.isdigit():
            return Ignore("the check run has no ticket of ours")
        if self.store.inline_writes:
            source = self.store.get(int(external))
        else:
            source = await asyncio.to_thread(self.store.get, int(external))
        if source is None or source.repository.lower() != trigger.repository.lower():
            return Ignore("the check run has no ticket of ours")
        if trigger.kind == TicketKind.CANCEL:
            origin = trigger.origin.but(target=source.id)
        else:
            origin = trigger.origin.but(retry_of=source.id)
        return replace(
            trigger,
            number=source.number,
            is_pull_request=source.is_pull_request,
            title=source.title,
            origin=origin,
        )

    async def _for_check_suite(self, trigger: Trigger) -> Trigger | Ignore:
        """Checks of a commit make a follow-up only when the bot pushed that commit.

        Every repository's CI sends these; one store read (an index) keeps all but
        the bot's own from the queue. The run records its commit before pushing it.
        """
        sha = trigger.origin.head_sha
        if self.store.inline_writes:
            pusher = self.store.pusher(trigger.repository, sha)
        else:
            pusher = await asyncio.to_thread(self.store.pusher, trigger.repository, sha)
        if pusher is None:
            return Ignore("checks of a commit the bot did not push")
        return trigger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        headers = request_headers(scope)
        try:
            outcome, status, body = await self._handle(headers, receive)
        except ClientGone:
            log.info("webhook abandoned: the client disconnected")
            return
        if self.metrics is not None:
            event = headers.get("x-github-event", "")
            self.metrics.webhook(event, outcome, time.perf_counter() - began)
        await _answer(send, status, body)

    async def _handle(self, headers: Mapping[str, str], receive: Receive) -> Answer:
        """The answer, and what it meant for the metrics (an OUTCOMES name)."""
        delivery_id = headers.get("x-github-delivery", "")
        event = headers.get("x-github-event", "")
        context = {"delivery": delivery_id[:64], "event": event[:64]}
        try:
            body = await read_body(receive, headers, self.max_bytes)
        except BodyTooLarge:
            self._quiet.log(logging.WARNING, "webhook refused: body too large", context)
            return "too_large", *_error(413, f"payload larger than {self.max_bytes} bytes")
        except PayloadError as exc:
            return "malformed", *_error(400, exc.message)
        try:
            verify(self._key, body, headers.get("x-hub-signature-256"))
        except SignatureError as exc:
            self._quiet.log(logging.WARNING, "webhook refused: bad signature",
                            {**context, "reason": exc.message}, key=exc.message)  # fmt: skip
            return "unauthorized", *_error(401, exc.message)
        try:
            delivery = parsing.parse(headers, body)
            if delivery.event == "ping":
                log.info("webhook ping", extra=context)
                return "ignored", 200, _PONG
            decision = decide(delivery, self.rules)
        except PayloadError as exc:
            self._quiet.log(logging.WARNING, "webhook refused: malformed",
                            {**context, "reason": exc.message}, key=exc.message)  # fmt: skip
            return "malformed", *_error(400, exc.message)
        if not isinstance(decision, Ignore) and decision.origin.source == "check_run":
            decision = await self._for_check_run(decision)
        elif not isinstance(decision, Ignore) and decision.kind == TicketKind.CI_FIX:
            decision = await self._for_check_suite(decision)
        if isinstance(decision, Ignore):
            reason = decision.reason
            self._quiet.log(logging.INFO, "webhook ignored", {**context, "reason": reason}, reason)
            return "ignored", 200, _json({"ignored": decision.reason})
        try:
            ticket_id, created = await self.batcher.add(
                delivery.delivery_id, delivery.event, decision
            )
        except StoreError as exc:
            log.error("webhook not stored", extra={**context, "reason": exc.message})
            message = "the ticket store is unavailable; GitHub may redeliver"
            return "unavailable", *_error(503, message)
        log.info(
            "ticket queued" if created else "repeated delivery",
            extra={**context, "ticket": ticket_id, "repository": decision.repository},
        )
        if not created:
            return "duplicate", 200, b'{"ticket":%d,"duplicate":true}' % ticket_id
        if self.on_ticket is not None:
            self.on_ticket(ticket_id)
        return "ticket", 202, b'{"ticket":%d}' % ticket_id
