"""Where the LLM proxy listens, and its life beside the workers.

By `AUTOCODE_AGENT_NETWORK`, unless `AUTOCODE_LLM_PROXY_HOST` says otherwise:
`host` and `none` on 127.0.0.1 (the agent shares the host's loopback, or
has no network at all); `bridge` and `internal` on the host's address on
Docker's default bridge — where `bridge` agents find the host, and where the
`internal` network's relay forwards to. The proxy starts with the workers and
stops after them, so runs finishing in their shutdown grace keep their LLM.

That default bridge is the *engine's*: its gateway (docker0, e.g.
172.17.0.1) is an address of the bot's own network namespace only when the
bot shares it with the engine's host:
- the bot on the engine's host, or in a container with host networking
  (deploy/compose.yaml's worker: `network_mode: host`);
- the bot in a Kubernetes pod beside a Docker-in-Docker sidecar: the
  sidecar's dockerd makes its docker0 in the pod's network namespace, which
  every container of the pod shares (deploy/kubernetes/worker.yaml).
A bot that is itself a container on that default bridge (a plain `docker
run` with the socket mounted) does not have the gateway but has an address
of its own on the bridge, beside the relay and the `bridge` agents: it
listens there. A bot in a container on a network of its own (Compose's
default network, a user-defined one) or in front of a remote engine has
neither: containers on the engine's bridge cannot reach it (with iptables
Docker isolates bridge networks from one another), so it says so at start,
with the fix, instead of guessing an address the agents would not reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import BotError, DockerUnavailable
from ..runner.docker import DockerRunner
from .proxy import LLMProxy

log = logging.getLogger("bot.llm")

RETRY_MAX = 30.0  # seconds between tries to bind while Docker or the address is missing

SET_IT = (
    "set AUTOCODE_LLM_PROXY_HOST (and _PORT, _URL) to an address of this machine that "
    "the agents' containers reach"
)
NETWORK_FIX = (
    "run the bot where Docker's default bridge is local: on the engine's host, or in a "
    "container with host networking (deploy/compose.yaml's worker has `network_mode: host`), "
    "or in a pod beside a Docker-in-Docker sidecar (deploy/kubernetes/worker.yaml); or "
    + SET_IT
    + "; on a single-user machine AUTOCODE_AGENT_NETWORK=host also works, but then the agent "
    "reaches everything the host does (its loopback services, the internet)"
)


class ProxyAddressError(BotError):
    """The LLM proxy has no address to listen on that the agents' containers reach."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def is_local(address: str) -> bool:
    """Whether this network namespace has `address` (binding a free port there works)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return False
            raise
    return True


def source_toward(address: str) -> str:
    """The local address the kernel would send from to reach `address` ("" if no route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, 9))  # UDP: nothing is sent
            return str(sock.getsockname()[0])
        except OSError:
            return ""


def default_bridge(runner: DockerRunner) -> tuple[str, str]:
    """The gateway and the IPv4 subnet of the engine's default bridge ("" when unknown)."""
    gateway = runner.bridge_gateway()
    subnet = ""
    with contextlib.suppress(Exception):
        network = runner.client.networks.get("bridge")
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Subnet") and ipaddress.ip_network(config["Subnet"]).version == 4:
                subnet = str(config["Subnet"])
                break
    return gateway, subnet


def listen_host(settings: Settings, runner: DockerRunner) -> str:
    """The address the proxy binds (may ask the Docker engine for its bridge's address).

    Raises ProxyAddressError, naming the fix, when the bot runs where the
    engine's default bridge is out of reach (see the module's docstring).
    """
    if settings.llm_proxy_host:
        return settings.llm_proxy_host
    if settings.agent_network not in ("bridge", "internal"):
        return "127.0.0.1"
    gateway, subnet = default_bridge(runner)
    if is_local(gateway):
        return gateway  # on the engine's host, host networking, or beside a dind sidecar
    own = source_toward(gateway)
    with contextlib.suppress(ValueError):
        if own and subnet and ipaddress.ip_address(own) in ipaddress.ip_network(subnet):
            return own  # a container on the default bridge itself: its neighbours reach it
    where = settings.docker_host or "the local socket"
    raise ProxyAddressError(
        f"{gateway}, the gateway of the Docker engine's default bridge ({where}), is not an "
        f"address of this machine, and this machine is not on that bridge either"
        f"{f' (its address toward it is {own})' if own else ''}: the bot runs in a container "
        "on a network of its own, or the engine is on another host, and containers on the "
        "engine's bridge cannot reach it",
        NETWORK_FIX,
    )


def explain(settings: Settings, host: str, port: int, exc: BaseException) -> tuple[str, str]:
    """Why the proxy cannot listen, and the fix: for the bot's log and for `autocode doctor`."""
    if isinstance(exc, ProxyAddressError):
        return exc.message, exc.fix
    if isinstance(exc, DockerUnavailable):
        return (
            f"{exc.message} (with AUTOCODE_AGENT_NETWORK={settings.agent_network} the proxy "
            "listens on the engine's default bridge)",
            "start the Docker engine, or set DOCKER_HOST to one that runs; or " + SET_IT,
        )
    code = getattr(exc, "errno", None)
    chosen = "AUTOCODE_LLM_PROXY_HOST" if settings.llm_proxy_host else "the default bridge"
    if code == errno.EADDRNOTAVAIL:
        return (
            f"cannot bind {host}: it is not an address of this machine (from {chosen})",
            NETWORK_FIX if not settings.llm_proxy_host else SET_IT,
        )
    if code == errno.EADDRINUSE:
        return (
            f"cannot bind {host}:{port}: the port is in use (by a bot already running here, "
            "or another program)",
            "stop what holds it, or choose another AUTOCODE_LLM_PROXY_PORT (0: a free port "
            "at each start, as long as AUTOCODE_LLM_PROXY_URL is not set)",
        )
    if code == errno.EACCES:
        return (
            f"cannot bind {host}:{port}: permission denied (ports below 1024 need root)",
            "choose an AUTOCODE_LLM_PROXY_PORT of 1024 or more, or 0",
        )
    detail = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return f"cannot listen on {host}:{port}: {detail}", SET_IT


def relay_target(proxy: LLMProxy) -> str:
    """host:port of the proxy as containers see it: what the `internal` relay connects to."""
    parts = urlsplit(proxy.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


async def _start(proxy: LLMProxy, settings: Settings, runner: DockerRunner) -> None:
    wait, told = 1.0, ""
    while True:
        host = settings.llm_proxy_host or "?"
        try:
            host = proxy.host = await asyncio.to_thread(listen_host, settings, runner)
            await proxy.start()
            if told:
                log.info("llm proxy listens now", extra={"host": proxy.host, "port": proxy.port})
            return
        except (DockerUnavailable, ProxyAddressError, OSError) as exc:
            error, fix = explain(settings, host, proxy.port, exc)
            # said loudly once per reason; retried quietly (an engine starting, docker0 coming up)
            level = logging.DEBUG if told == error else logging.ERROR
            log.log(
                level,
                "llm proxy cannot listen; runs wait for it",
                extra={
                    "host": host,
                    "port": proxy.port,
                    "network": settings.agent_network,
                    "error": error,
                    "fix": fix,
                },
            )
            told = error
            await asyncio.sleep(wait)
            wait = min(RETRY_MAX, wait * 2)


@contextlib.asynccontextmanager
async def serving(settings: Settings, runner: DockerRunner) -> AsyncIterator[LLMProxy]:
    """Serve the proxy while the block runs; the caller hands it to its runs."""
    proxy = LLMProxy(port=settings.llm_proxy_port, public_url=settings.llm_proxy_url)
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


def require_started(proxy: LLMProxy) -> None:
    """A run cannot start its agent before the proxy listens: say so plainly."""
    if not proxy.started:
        raise BotError(
            "the LLM proxy is not listening yet (the bot's log says why, with the fix, under "
            "'llm proxy cannot listen'; `autocode doctor` checks it too)"
        )
