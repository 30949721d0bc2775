"""Where the LLM proxy listens, and its life beside the workers.

By `AUTOCODE_AGENT_NETWORK`, unless `AUTOCODE_LLM_PROXY_HOST` says otherwise:
`host` and `none` on 127.0.0.1 (the agent shares the host's loopback, or
has no network at all); `bridge` and `internal` on the host's address on
Docker's default bridge — where `bridge` agents find the host, and where the
`internal` network's relay forwards to. The proxy starts with the workers and
stops after them, so runs finishing in their shutdown grace keep their LLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import BotError, DockerUnavailable
from ..runner.docker import DockerRunner
from .proxy import LLMProxy

log = logging.getLogger("bot.llm")

RETRY_MAX = 30.0  # seconds between tries to bind while Docker or the address is missing


def listen_host(settings: Settings, runner: DockerRunner) -> str:
    """The address the proxy binds (may ask the Docker engine for its bridge's address)."""
    if settings.llm_proxy_host:
        return settings.llm_proxy_host
    if settings.agent_network in ("bridge", "internal"):
        return runner.bridge_gateway()
    return "127.0.0.1"


def relay_target(proxy: LLMProxy) -> str:
    """host:port of the proxy as containers see it: what the `internal` relay connects to."""
    parts = urlsplit(proxy.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


async def _start(proxy: LLMProxy, settings: Settings, runner: DockerRunner) -> None:
    wait, told = 1.0, False
    while True:
        try:
            proxy.host = await asyncio.to_thread(listen_host, settings, runner)
            await proxy.start()
            return
        except (DockerUnavailable, OSError) as exc:
            level = logging.DEBUG if told else logging.ERROR
            log.log(
                level,
                "llm proxy cannot listen yet; runs wait for it",
                extra={
                    "host": proxy.host,
                    "port": proxy.port,
                    "error": getattr(exc, "message", None) or str(exc),
                    "fix": "set AUTOCODE_LLM_PROXY_HOST (and _PORT, _URL) to an address of "
                    "this machine that the agents' containers reach",
                },
            )
            told = True
            await asyncio.sleep(wait)
            wait = min(RETRY_MAX, wait * 2)


@contextlib.asynccontextmanager
async def serving(settings: Settings, runner: DockerRunner) -> AsyncIterator[LLMProxy]:
    """Serve the proxy for the runs of `runner` while the block runs."""
    proxy = LLMProxy(port=settings.llm_proxy_port, public_url=settings.llm_proxy_url)
    runner.llm_proxy = proxy
    starting = asyncio.create_task(_start(proxy, settings, runner), name="llm-proxy-start")
    try:
        yield proxy
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        if proxy.started and settings.agent_network == "internal":
            with contextlib.suppress(Exception):
                await asyncio.to_thread(runner.egress.remove_relay, relay_target(proxy))
        await proxy.stop()
        runner.llm_proxy = None


def require_started(proxy: LLMProxy) -> None:
    """A run cannot start its agent before the proxy listens: say so plainly."""
    if not proxy.started:
        raise BotError(
            "the LLM proxy is not listening yet (see the bot's log: "
            "AUTOCODE_LLM_PROXY_HOST may name an address this machine does not have)"
        )
