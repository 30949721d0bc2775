"""The LLM proxy, and whether the agents' network reaches it (a probe placed like an agent)."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from typing import Any

from ...config import Settings
from .check import Check, fail
from .probe import run_probe

# --- the LLM proxy and the agents' network -----------------------------------------

PROXY = "LLM proxy"
REACH_FIX = (
    "the agents' side connects to {target}: that must be an address of this machine that "
    "containers on the engine's default bridge reach (set AUTOCODE_LLM_PROXY_URL when it is "
    "not where the proxy listens); a host firewall must let them in (e.g. `ufw allow in on "
    "docker0`)"
)
# Where the probe was placed, by AUTOCODE_AGENT_NETWORK.
PLACED = {
    "internal": "a container on the internal network, through the relay,",
    "bridge": "a container on Docker's default bridge",
    "host": "a container on the host's network",
}


class _Listener:
    """A bound socket that answers every connection with one line, standing in for the proxy."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.token = f"autocode-doctor {secrets.token_hex(8)}"
        self.stop = threading.Event()
        sock.listen(16)
        sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, name="doctor-listener", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.sendall(f"{self.token}\n".encode())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _agents_target(settings: Settings, host: str, port: int) -> tuple[str, int]:
    """host, port of the proxy as the agents' side is told it (proxy.url, relay_target)."""
    from urllib.parse import urlsplit

    if settings.llm_proxy_url:
        parts = urlsplit(settings.llm_proxy_url)
        return str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def _unchecked(settings: Settings, runner: Any) -> Check | None:
    """The failure when the mode or a missing engine rules the check out (None otherwise)."""
    mode = settings.agent_network
    if mode == "none":
        return fail(
            PROXY,
            "AUTOCODE_AGENT_NETWORK=none: the agent's container has no network, so it reaches "
            "neither the LLM proxy nor any model",
            "set AUTOCODE_AGENT_NETWORK=internal (the default): the agent reaches the proxy and "
            "nothing else",
        )
    needs_engine = mode in ("bridge", "internal") and not settings.llm_proxy_host
    if runner is None and needs_engine:
        return fail(
            PROXY,
            f"not checked: with AUTOCODE_AGENT_NETWORK={mode} it listens on the Docker engine's "
            "default bridge, and the engine is unreachable",
            "fix the Docker engine first",
        )
    return None


def _bind(settings: Settings, runner: Any) -> tuple[str, socket.socket] | Check:
    """A socket bound where `serve` would listen (and that host), or the failure."""
    from ...errors import DockerUnavailable
    from ...llm.host import ProxyAddressError, explain, listen_host

    host = settings.llm_proxy_host or "?"
    try:
        host = listen_host(settings, runner)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, settings.llm_proxy_port))
        except OSError:
            sock.close()
            raise
    except (ProxyAddressError, DockerUnavailable, OSError) as exc:
        error, fix = explain(settings, host, settings.llm_proxy_port, exc)
        return fail(PROXY, f"AUTOCODE_AGENT_NETWORK={settings.agent_network}: {error}", fix)
    return host, sock


def _unprobed(
    settings: Settings, runner: Any, image_ok: bool, listens: str, target_host: str, target: str
) -> Check | None:
    """The failure when agents' reach cannot be probed (None when it can)."""
    if target_host in ("0.0.0.0", "::", ""):  # noqa: S104 (what the agents would be told)
        return fail(
            PROXY,
            f"{listens}, but agents would be told to connect to {target}",
            "set AUTOCODE_LLM_PROXY_URL (and a fixed AUTOCODE_LLM_PROXY_PORT) to how the "
            "agents' containers reach this machine",
        )
    if runner is None:
        return fail(
            PROXY,
            f"{listens}; whether agents reach it was not checked: the Docker engine is unreachable",
            "fix the Docker engine first",
        )
    if not image_ok:
        return fail(
            PROXY,
            f"{listens}; whether agents reach it was not checked: it takes the runner "
            f"image {settings.runner_image}",
            "build the runner image (`autocode runner build`), then run doctor again",
        )
    return None


def _listen_and_probe(
    settings: Settings, runner: Any, sock: socket.socket, host: str, port: int
) -> tuple[str, str, bool, float]:
    """Answer on `sock` during the probe: its output and fix, whether it got through, seconds."""
    import time

    listener = _Listener(sock)
    started = time.monotonic()
    try:
        said, probe_fix = run_probe(settings, runner, host, port)
    finally:
        listener.close()
    return said, probe_fix, listener.token in said, time.monotonic() - started


def check_llm_proxy(settings: Settings, runner: Any, image_ok: bool) -> Check:
    """The proxy can listen where `serve` would put it, and an agent's container reaches it.

    The address comes from `bot/llm/host.py` (`listen_host`, the same code the
    bot starts with); a socket is bound there on AUTOCODE_LLM_PROXY_PORT and
    answers a probe container of the runner image placed where an agent would
    be (see `probe.py`).
    """
    from ...llm.host import SET_IT

    unchecked = _unchecked(settings, runner)
    if unchecked is not None:
        return unchecked
    bound = _bind(settings, runner)
    if isinstance(bound, Check):
        return bound
    host, sock = bound
    mode = settings.agent_network
    port = int(sock.getsockname()[1])
    where = f"{host}:{port}" if settings.llm_proxy_port else f"{host} (a free port at each start)"
    listens = f"AUTOCODE_AGENT_NETWORK={mode}: can listen on {where}"
    target_host, target_port = _agents_target(settings, host, port)
    target = f"{target_host}:{target_port}"
    try:
        unprobed = _unprobed(settings, runner, image_ok, listens, target_host, target)
        if unprobed is not None:
            return unprobed
        said, probe_fix, reached, seconds = _listen_and_probe(
            settings, runner, sock, target_host, target_port
        )
    finally:
        sock.close()
    placed = PLACED[mode]
    if reached:
        return Check(PROXY, True, f"{listens}; {placed} reached it at {target} ({seconds:.1f} s)")
    fix = probe_fix or REACH_FIX.format(target=target)
    if mode == "host" and not probe_fix:
        fix = "run doctor (and the bot) on the Docker engine's host, or " + SET_IT
    return fail(
        PROXY, f"{listens}, but {placed} did not reach it at {target}: {said or 'no output'}", fix
    )
