"""POST /webhook: verify, parse, decide, store durably, answer in milliseconds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import MAX_WEBHOOK_BYTES
from ..errors import BodyTooLarge, PayloadError, SignatureError, StoreError
from ..metrics import Metrics
from ..models import Trigger
from ..store.base import TicketStore
from ..triggers.rules import Ignore, RuleSettings, decide
from . import parse as parsing
from .batch import IntakeBatcher
from .verify import verify

log = logging.getLogger("bot.webhook")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise PayloadError("invalid Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class WebhookEndpoint:
    """The ASGI handler for GitHub deliveries."""

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
        self.metrics = metrics
        self.store = store
        self.rules = rules
        self.on_ticket = on_ticket
        self.max_bytes = max_bytes
        self.batcher = IntakeBatcher(store)

    async def _for_check_run(self, trigger: Trigger) -> Trigger | Ignore:
        """A check run's button or re-run acts on the ticket that made the run.

        The check run's `external_id` is our ticket id; the ticket must belong to
        the repository the signed payload names. One store read, no GitHub call.
        """
        external = str(trigger.context.get("external_id") or "")
        if not external.isdigit():
            return Ignore("the check run has no ticket of ours")
        if self.store.inline_writes:
            source = self.store.get(int(external))
        else:
            source = await asyncio.to_thread(self.store.get, int(external))
        if source is None or source.repository.lower() != trigger.repository.lower():
            return Ignore("the check run has no ticket of ours")
        key = "target" if trigger.kind == "cancel" else "retry_of"
        return replace(
            trigger,
            number=source.number,
            is_pull_request=source.is_pull_request,
            title=source.title,
            context={**trigger.context, key: source.id},
        )

    async def handle(self, request: Request) -> Response:
        began = time.perf_counter()
        outcome, response = await self._handle(request)
        if self.metrics is not None:
            event = request.headers.get("x-github-event", "")
            self.metrics.webhook(event, outcome, time.perf_counter() - began)
        return response

    async def _handle(self, request: Request) -> tuple[str, Response]:
        """The answer, and what it meant for the metrics (an OUTCOMES name)."""
        delivery_id = request.headers.get("x-github-delivery", "")
        event = request.headers.get("x-github-event", "")
        context = {"delivery": delivery_id[:64], "event": event[:64]}
        try:
            body = await read_body(request, self.max_bytes)
        except BodyTooLarge:
            log.warning("webhook refused: body too large", extra=context)
            return "too_large", _error(413, f"payload larger than {self.max_bytes} bytes")
        except PayloadError as exc:
            return "malformed", _error(400, exc.message)
        try:
            verify(self.secret, body, request.headers.get("x-hub-signature-256"))
        except SignatureError as exc:
            log.warning("webhook refused: bad signature", extra={**context, "reason": exc.message})
            return "unauthorized", _error(401, exc.message)
        try:
            delivery = parsing.parse(request.headers, body)
            if delivery.event == "ping":
                log.info("webhook ping", extra=context)
                return "ignored", JSONResponse({"ok": True, "pong": True}, status_code=200)
            decision = decide(delivery, self.rules)
        except PayloadError as exc:
            log.warning("webhook refused: malformed", extra={**context, "reason": exc.message})
            return "malformed", _error(400, exc.message)
        if not isinstance(decision, Ignore) and decision.context.get("source") == "check_run":
            decision = await self._for_check_run(decision)
        if isinstance(decision, Ignore):
            log.info("webhook ignored", extra={**context, "reason": decision.reason})
            return "ignored", JSONResponse({"ignored": decision.reason}, status_code=200)
        try:
            ticket_id, created = await self.batcher.add(
                delivery.delivery_id, delivery.event, decision
            )
        except StoreError as exc:
            log.error("webhook not stored", extra={**context, "reason": exc.message})
            message = "the ticket store is unavailable; GitHub may redeliver"
            return "unavailable", _error(503, message)
        log.info(
            "ticket queued" if created else "repeated delivery",
            extra={**context, "ticket": ticket_id, "repository": decision.repository},
        )
        if not created:
            return "duplicate", JSONResponse({"ticket": ticket_id, "duplicate": True}, 200)
        if self.on_ticket is not None:
            self.on_ticket(ticket_id)
        return "ticket", JSONResponse({"ticket": ticket_id}, status_code=202)
