"""The `internal` network: the agent's container reaches the LLM proxy and nothing else.

Measured on Docker 20.10 with `dockerd --iptables=false`: a plain
`docker network create --internal` network still gives its containers a
default route through the bridge's address on the host, so every service
the host runs on a wildcard address (and any host address at all) is
reachable from it, and without iptables nothing filters that. So the agents'
network here is internal *and* has no host address on its bridge
(`com.docker.network.bridge.inhibit_ipv4`): from inside there is no router
and no host, only the other containers on the bridge. One of them is the
**relay**, a tiny container of the runner image (perl, no capabilities,
read-only, non-root) attached to this network and to Docker's default
bridge, that passes each TCP connection on to the proxy and nowhere else.
The agent finds it as `llm-proxy` through an /etc/hosts entry, so the
run's config does not depend on the relay's address. This holds with or
without iptables; with iptables the engine adds its own isolation rules on
top.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from .relay import RELAY_SCRIPT
from .spec import AGENT_NETWORK, RELAY_PORT

log = logging.getLogger("bot.runner.egress")

RELAY_USER = "65534:65534"  # nobody
INHIBIT = "com.docker.network.bridge.inhibit_ipv4"
OWNER_LABEL = "autocode.relay.owner"  # hostname:pidns:pid of the bot whose proxy it serves
UNKNOWN_PIDNS = "?"  # Linux without a readable /proc: which pids ours are is not known


def resolv_conf(folder: Path) -> Path:
    """A resolver setting that fails at once, for the agents' network: `folder`/.agents/resolv.conf.

    The agent needs no DNS (it finds the relay in /etc/hosts), but opencode
    and the tools it runs look names up. On the internal network the engine's
    resolver (127.0.0.11) answers only through iptables rules; without them
    (`--iptables=false`) every lookup waits 20 s, and opencode's start-up
    waited ~12 s here before its first request. Asking 127.0.0.1 instead is
    refused at once: 1 ms.

    The engine bind-mounts the file, so it must be where the engine finds it
    at the same path: `folder` is in the bot's work directory (the folder
    holding the agent's workspace, `<AUTOCODE_WORKDIR>/ticket-N`), which every
    deployment already mounts at one path for the bot and the engine. (Not
    the temporary folder: a bot in a container has a /tmp the engine does
    not see.) Readable by all, written whole (renamed into place).
    """
    directory = folder / ".agents"
    path = directory / "resolv.conf"
    wanted = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.is_dir():
            # an engine that did not see the file (a bind mount's missing source) made a
            # folder there; empty, it can go
            path.rmdir()
        if not path.is_file() or path.read_text() != wanted:
            scratch = directory / f"resolv.conf.{os.getpid()}"
            scratch.write_text(wanted)
            scratch.chmod(0o644)
            scratch.replace(path)
    except OSError as exc:
        raise RunnerError(
            f"the agents' resolver settings could not be written to {path}: {exc}"
        ) from exc
    return path


def pid_namespace() -> str:
    """Which pid namespace this process's pid is a number of: the inode of /proc/self/ns/pid.

    Unique among the pid namespaces that exist on this kernel (a live
    process's namespace exists). Where there is no /proc: on systems other
    than Linux there are no pid namespaces, every process on the host has its
    pid in one space ("host"); on Linux without a readable /proc it is not
    known (UNKNOWN_PIDNS), and then no relay is taken for dead by its pid.
    """
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return UNKNOWN_PIDNS if sys.platform.startswith("linux") else "host"


def relay_owner(pid: int | None = None) -> str:
    """The owner label of a relay made by process `pid` (default: this one) of our namespace."""
    number = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid_namespace()}:{number}"


def bridge_gateway(client: Any) -> str:
    """The host's address on Docker's default bridge (docker0), where containers find the host."""
    network = client.networks.get("bridge")
    for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet"):
            subnet = ipaddress.ip_network(config["Subnet"], strict=False)
            if subnet.version == 4:
                return str(next(subnet.hosts()))  # the engine's default: the first address
    raise RunnerError("Docker's default bridge network has no IPv4 address")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_under(container: Any, runtime: str) -> bool:
    """Whether the container runs under `runtime` ("": whichever the engine chose)."""
    return not runtime or (container.attrs.get("HostConfig") or {}).get("Runtime") == runtime


def relay_name(target: str) -> str:
    return "autocode-llm-relay-" + hashlib.sha256(target.encode()).hexdigest()[:12]


class Egress:
    """The agents' network and the relays on it, on one engine."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()

    def network(self) -> Any:
        """The agents' network, created on first use; refuse one that is not locked down."""
        import docker.errors

        try:
            network = self.client.networks.get(AGENT_NETWORK)
        except docker.errors.NotFound:
            try:
                network = self.client.networks.create(
                    AGENT_NETWORK,
                    driver="bridge",
                    internal=True,
                    options={INHIBIT: "true"},
                    labels={"autocode.role": "agents"},
                )
                log.info("agents network created", extra={"network": AGENT_NETWORK})
            except docker.errors.APIError:  # made by another process meanwhile
                network = self.client.networks.get(AGENT_NETWORK)
        attrs = network.attrs
        options = attrs.get("Options") or {}
        if not attrs.get("Internal") or str(options.get(INHIBIT, "")).lower() != "true":
            raise RunnerError(
                f"the Docker network {AGENT_NETWORK} exists but is not internal with no host "
                f"address; remove it (`docker network rm {AGENT_NETWORK}`) and the bot recreates it"
            )
        return network

    def relay(self, target: str, image: str, runtime: str = "") -> str:
        """The address, on the agents' network, of a running relay to `target` (host:port).

        It runs under `runtime` ("" = the engine's default), as the agents do.
        """
        import docker.errors

        name = relay_name(target)
        with self._lock:
            network = self.network()
            try:
                container = self.client.containers.get(name)
                if container.status != "running" or not _runs_under(container, runtime):
                    container.remove(force=True)
                    container = None
            except docker.errors.NotFound:
                container = None
            if container is None:
                self._sweep()
                container = self._create(name, target, image, network, runtime)
            address = self._address(container)
            if not address:
                network.connect(container)
                address = self._address(container)
        if not address:
            raise RunnerError(f"the LLM relay {name} has no address on {AGENT_NETWORK}")
        return address

    def _create(self, name: str, target: str, image: str, network: Any, runtime: str) -> Any:
        import docker.errors

        try:
            container = self.client.containers.create(
                image,
                [f"0.0.0.0:{RELAY_PORT}", target],
                entrypoint=["perl", "-e", RELAY_SCRIPT, "--"],
                name=name,
                user=RELAY_USER,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                read_only=True,
                mem_limit="64m",
                memswap_limit="64m",
                pids_limit=256,
                nano_cpus=int(0.5e9),
                init=True,
                network_mode="bridge",
                labels={
                    "autocode.role": "llm-relay",
                    "autocode.relay.target": target,
                    OWNER_LABEL: relay_owner(),
                },
                **({"runtime": runtime} if runtime else {}),
            )
        except docker.errors.APIError as exc:
            if "Conflict" not in str(exc):
                raise RunnerError(f"the LLM relay could not be created: {exc}") from exc
            container = self.client.containers.get(name)  # another process made it
        else:
            network.connect(container)
            container.start()
            log.info("llm relay started", extra={"relay": name, "network": AGENT_NETWORK})
        return container

    def _sweep(self) -> None:
        """Remove relays nobody uses: stopped ones, and those of dead processes of ours.

        A relay lives as long as its proxy; one whose bot crashed would
        otherwise stay (the default port is picked at start, so its name is
        not reused). Relays of live processes — other bots on this engine —
        are left alone. A pid means something only in its own pid namespace,
        so a running relay is taken for dead only when its
        owner label (`relay_owner`: hostname:pidns:pid) names this host and
        this process's pid namespace, and no process has that pid here. A bot
        of another namespace with this hostname — the Compose worker on the
        host's network, in a pid namespace of its own — keeps its relay.

        Labels of older versions (hostname:pid) do not say whose pids they
        are: one written by a bot in another pid namespace of this host names
        a pid that may well be free in ours while that bot lives (before
        `pid: host` that was the Compose workers' case, and a worker of an
        older version beside one of this version is it again). Taking such a
        relay for dead would cut that bot's agents off from their LLM, while
        keeping a dead one only leaves a small idle container until it stops
        (it has no restart policy) or is removed by hand. So they are never
        taken for dead by their pid, only removed when stopped.
        """
        import docker.errors

        namespace = pid_namespace()
        mine = f"{socket.gethostname()}:{namespace}:"
        try:
            relays = self.client.containers.list(
                all=True, filters={"label": "autocode.role=llm-relay"}
            )
        except docker.errors.DockerException:
            return
        for relay in relays:
            owner = str((relay.labels or {}).get(OWNER_LABEL, ""))
            pid = owner.removeprefix(mine) if owner.startswith(mine) else ""
            dead = namespace != UNKNOWN_PIDNS and pid.isdigit() and not _alive(int(pid))
            if relay.status != "running" or dead:
                with contextlib.suppress(docker.errors.DockerException):
                    relay.remove(force=True)

    @staticmethod
    def _address(container: Any) -> str:
        container.reload()
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return str((networks.get(AGENT_NETWORK) or {}).get("IPAddress") or "")

    def remove_relay(self, target: str) -> None:
        """Remove the relay to `target` (when its proxy stops); nothing if there is none."""
        import docker.errors

        try:
            self.client.containers.get(relay_name(target)).remove(force=True)
        except docker.errors.DockerException:
            return
