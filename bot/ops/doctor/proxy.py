"""The LLM proxy, and whether the agents' network reaches it (a probe placed like an agent)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import BotError
from .check import Check, fail

# --- the LLM proxy and the agents' network -----------------------------------------

PROXY = "LLM proxy"
PROBE_SECONDS = 20.0
# The agent's side of the probe: connect where the agent's opencode would, read one line.
PROBE_SCRIPT = r"""
use strict; use warnings; use IO::Socket::INET;
my ($host, $port) = @ARGV; $| = 1;
$SIG{ALRM} = sub { print "no answer from $host:$port\n"; exit 4 }; alarm 10;
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 5)
  or do { print "cannot connect to $host:$port: $!\n"; exit 3 };
my $line = <$s>;
print defined $line ? $line : "$host:$port closed the connection without an answer\n";
"""
REACH_FIX = (
    "the agents' side connects to {target}: that must be an address of this machine that "
    "containers on the engine's default bridge reach (set AUTOCODE_LLM_PROXY_URL when it is "
    "not where the proxy listens); a host firewall must let them in (e.g. `ufw allow in on "
    "docker0`)"
)


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


def _probe(settings: Settings, runner: Any, host: str, port: int) -> tuple[str, str]:
    """From a container placed like an agent, reach the listener the way the agent would.

    `internal`: a relay (the bot's own code makes it) on the agents' network,
    found as `llm-proxy`, forwarding to the proxy's address; `bridge`: the
    proxy's address from Docker's default bridge; `host`: from the host's
    network stack. Every container (and the agents' network, if it was made
    here) is removed before returning. Returns what the container printed, and
    the fix when the probe itself could not run ("" otherwise).
    """
    import docker.errors

    from ...runner.egress import RELAY_USER, resolv_conf
    from ...runner.spec import AGENT_NETWORK, RELAY_HOST, RELAY_PORT

    mode = settings.agent_network
    image = settings.runner_image
    client = runner.client
    target = f"{host}:{port}"
    made_network = False
    relay = False
    container = None
    kwargs: dict[str, Any] = {
        "entrypoint": ["perl", "-e", PROBE_SCRIPT, "--"],
        "user": RELAY_USER,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "mem_limit": "64m",
        "pids_limit": 32,
        "labels": {"autocode.role": "doctor"},
        "network_mode": "host" if mode == "host" else "bridge",
    }
    connect = (host, port)
    # the agents' resolver file, written where a run writes it: beside a workspace in the work
    # directory (the engine must see it there), in a folder of the doctor's own like a
    # ticket's; that folder and any of the work directory's it made are removed after
    workdir = Path(settings.workdir).resolve()
    scratch = workdir / f"doctor-{secrets.token_hex(6)}"
    missing = [p for p in (workdir, *workdir.parents) if not p.exists()]
    resolv = None  # once written
    try:
        if mode == "internal":
            try:
                client.networks.get(AGENT_NETWORK)
            except docker.errors.NotFound:
                made_network = True
            runner.egress.network()  # made as the bot makes it, or refused when not locked down
            relay = True
            address = runner.egress.relay(target, image)
            kwargs["network_mode"] = AGENT_NETWORK
            kwargs["extra_hosts"] = {RELAY_HOST: address}
            resolv = resolv_conf(scratch)
            kwargs["volumes"] = {str(resolv): {"bind": "/etc/resolv.conf", "mode": "ro"}}
            connect = (RELAY_HOST, RELAY_PORT)
        container = client.containers.create(image, [connect[0], str(connect[1])], **kwargs)
        container.start()
        container.wait(timeout=PROBE_SECONDS)
        return container.logs(stdout=True, stderr=True).decode(errors="replace").strip(), ""
    except (docker.errors.DockerException, BotError) as exc:
        text = str(getattr(exc, "message", None) or getattr(exc, "explanation", None) or exc)
        if "resolv.conf" in text and resolv is None:  # it could not be written
            return text[:400], "AUTOCODE_WORKDIR must be a folder the bot can write to"
        if "resolv.conf" in text:
            return (
                f"the engine could not mount {resolv} into the agent's container: the bot "
                "wrote it in its work directory (AUTOCODE_WORKDIR), which the engine does not "
                "see at that path (the bot runs in a container, or the engine on another host)",
                "mount AUTOCODE_WORKDIR at the same path for the bot and for the engine, as "
                "deploy/compose.yaml and deploy/kubernetes/worker.yaml do (with an engine on "
                "another host: shared storage mounted at one path on both)",
            )
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"
    except Exception as exc:  # noqa: BLE001 (requests' timeouts and the like)
        text = f"{exc.__class__.__name__}: {exc}"
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        if relay:
            with contextlib.suppress(Exception):
                runner.egress.remove_relay(target)
        if made_network:
            with contextlib.suppress(Exception):
                network = client.networks.get(AGENT_NETWORK)
                if not network.attrs.get("Containers"):
                    network.remove()
        shutil.rmtree(scratch, ignore_errors=True)
        for folder in missing:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_llm_proxy(settings: Settings, runner: Any, image_ok: bool) -> Check:
    """The proxy can listen where `serve` would put it, and an agent's container reaches it.

    The address comes from `bot/llm/host.py` (`listen_host`, the same code the
    bot starts with); a socket is bound there on AUTOCODE_LLM_PROXY_PORT and
    answers a probe container of the runner image placed where an agent would
    be (see `_probe`).
    """
    import time

    from ...errors import DockerUnavailable
    from ...llm.host import SET_IT, ProxyAddressError, explain, listen_host

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
        return fail(PROXY, f"AUTOCODE_AGENT_NETWORK={mode}: {error}", fix)
    port = int(sock.getsockname()[1])
    where = f"{host}:{port}" if settings.llm_proxy_port else f"{host} (a free port at each start)"
    listens = f"AUTOCODE_AGENT_NETWORK={mode}: can listen on {where}"
    target_host, target_port = _agents_target(settings, host, port)
    target = f"{target_host}:{target_port}"
    try:
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
                f"{listens}; whether agents reach it was not checked: the Docker engine is "
                "unreachable",
                "fix the Docker engine first",
            )
        if not image_ok:
            return fail(
                PROXY,
                f"{listens}; whether agents reach it was not checked: it takes the runner "
                f"image {settings.runner_image}",
                "build the runner image (`autocode runner build`), then run doctor again",
            )
        listener = _Listener(sock)
        started = time.monotonic()
        try:
            said, probe_fix = _probe(settings, runner, target_host, target_port)
        finally:
            listener.close()
        seconds = time.monotonic() - started
    finally:
        sock.close()
    placed = {
        "internal": "a container on the internal network, through the relay,",
        "bridge": "a container on Docker's default bridge",
        "host": "a container on the host's network",
    }[mode]
    if listener.token in said:
        return Check(PROXY, True, f"{listens}; {placed} reached it at {target} ({seconds:.1f} s)")
    fix = probe_fix or REACH_FIX.format(target=target)
    if mode == "host" and not probe_fix:
        fix = "run doctor (and the bot) on the Docker engine's host, or " + SET_IT
    return fail(
        PROXY, f"{listens}, but {placed} did not reach it at {target}: {said or 'no output'}", fix
    )
