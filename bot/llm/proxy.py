"""The host-side LLM proxy: the agent holds a per-run capability, never a provider key.

    proxy = LLMProxy(host="172.17.0.1", port=0)
    await proxy.start()
    grant = proxy.grant(ticket_id, plan.upstreams, lifetime=1800)
    ...the run's opencode config: baseURL <proxy.url>/p/<provider>, apiKey grant.capability...
    usage = proxy.revoke(grant)          # when the run's container is gone

`/p/<provider>/<path>` is forwarded to that provider's real base URL +
`<path>` with the real key in the provider's own auth header, and the
answer comes back byte for byte: a stream (SSE) as it arrives, one JSON
document whole (`answers`). A request
whose capability is not live — made up, or of a run that ended — gets 401
and never reaches a provider. Capabilities are compared in constant time and
never logged; the proxy keeps them in memory only, so a restart forgets all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .answers import (
    HOP_BY_HOP,
    error_response,
    failed_answer,
    outgoing,
    streamed_answer,
    whole_answer,
)
from .grant import Grant, ProxyUsage, digest, presented_capability
from .meter import Meter
from .providers import Upstream

log = logging.getLogger("bot.llm.proxy")

MAX_BODY = 32 * 1024 * 1024
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
UPSTREAM_TIMEOUT = httpx.Timeout(connect=30.0, read=900.0, write=120.0, pool=60.0)


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the proxy stops when its owner says so.

    A second `Server.serve` in the main thread would take SIGTERM from the
    bot's own server and stop the proxy before the runs' shutdown grace.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LLMProxy:
    """The reverse proxy, its live capabilities and their usage."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str = "",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._public_url = public_url.rstrip("/")
        self._client = client
        self._grants: dict[bytes, Grant] = {}
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(
            routes=[Route("/p/{provider}/{path:path}", self._forward, methods=METHODS)]
        )

    # -- lifecycle -------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    @property
    def url(self) -> str:
        """How containers reach the proxy (AUTOCODE_LLM_PROXY_URL, or where it listens)."""
        return self._public_url or f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve in the running loop; raise OSError when the address is not ours."""
        # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets that say so, and
        # with Nagle on each streamed chunk can wait ~40 ms for the client's delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=UPSTREAM_TIMEOUT,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=40),
                follow_redirects=False,
            )
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="llm-proxy")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError("the LLM proxy stopped while starting")
            await asyncio.sleep(0.01)
        log.info("llm proxy listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._socket is not None:
            self._socket.close()
        if self._client is not None:
            await self._client.aclose()
        self._grants.clear()

    # -- capabilities ----------------------------------------------------------
    def grant(
        self,
        ticket_id: int,
        upstreams: Mapping[str, Upstream],
        *,
        lifetime: float,
        token_budget: int | None = None,
        on_spent: Callable[[int], None] | None = None,
    ) -> Grant:
        """A fresh capability for one run, alive until `revoke` or `lifetime` seconds."""
        grant = Grant(
            ticket_id=ticket_id,
            capability=f"autocode-{secrets.token_urlsafe(32)}",
            upstreams=dict(upstreams),
            expires_at=time.monotonic() + lifetime,
            token_budget=token_budget,
            on_spent=on_spent,
        )
        self._grants[digest(grant.capability)] = grant
        return grant

    def revoke(self, grant: Grant) -> ProxyUsage:
        """Forget the capability: from now on it gets 401. Returns the run's usage."""
        self._grants.pop(digest(grant.capability), None)
        tokens = grant.usage.tokens
        log.info(
            "llm proxy run ended",
            extra={
                "ticket": grant.ticket_id,
                "requests": grant.usage.requests,
                "failed": grant.usage.failed,
                "input_tokens": tokens.input,
                "output_tokens": tokens.output,
            },
        )
        return grant.usage

    @property
    def live(self) -> int:
        return len(self._grants)

    def _find(self, presented: str) -> Grant | None:
        if not presented:
            return None
        grant = self._grants.get(digest(presented))
        if grant is None or not hmac.compare_digest(grant.capability, presented):
            return None
        if time.monotonic() >= grant.expires_at:
            self._grants.pop(digest(presented), None)
            return None
        return grant

    # -- forwarding ------------------------------------------------------------
    async def _forward(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        grant = self._find(presented_capability(request.headers))
        if grant is None:
            log.warning("llm proxy refused a capability", extra={"provider": provider})
            return error_response(401, "unknown or expired capability", "authentication_error")
        upstream = grant.upstreams.get(provider)
        if upstream is None:
            return error_response(404, f"no provider {provider!r} for this run", "not_found_error")
        budget = grant.token_budget
        if budget is not None and grant.usage.tokens.total >= budget:
            # 403, not 429: opencode retries a 429 forever; this must end the run, and as
            # opencode does not end it on a 403 either, the run is told to stop its agent
            if grant.on_spent is not None:
                grant.on_spent(grant.usage.tokens.total)
            message = f"the run's token budget ({budget}) is spent"
            return error_response(403, message, "permission_error")
        body = await request.body()
        if len(body) > MAX_BODY:
            return error_response(413, "request too large", "invalid_request_error")
        url, headers = outgoing(request, upstream)
        assert self._client is not None
        grant.usage.requests += 1
        try:
            answer = await self._client.send(
                self._client.build_request(request.method, url, headers=headers, content=body),
                stream=True,
            )
        except httpx.HTTPError as exc:
            grant.usage.failed += 1
            kind = type(exc).__name__
            log.warning(
                "llm provider unreachable",
                extra={"ticket": grant.ticket_id, "provider": provider, "error": kind},
            )
            return error_response(502, f"the provider could not be reached ({kind})", "api_error")
        passed = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        if answer.status_code >= 400:
            grant.usage.failed += 1
            return await failed_answer(answer, upstream, passed)
        content_type = answer.headers.get("content-type", "")
        meter = Meter(content_type)
        if "text/event-stream" not in content_type:
            return await whole_answer(answer, meter, grant, passed)
        return StreamingResponse(
            streamed_answer(answer, meter, grant), status_code=answer.status_code, headers=passed
        )
