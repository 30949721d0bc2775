"""What one container is made of, and how it ended: plain data, no I/O.

The pipeline builds a `ContainerSpec` (pure), a runner (`runner.docker`)
turns it into a container and gives back a `ContainerExit`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGENT_NETWORK = "autocode-agents"  # the `internal` network's Docker name
RELAY_HOST = "llm-proxy"  # the name the agent's config uses for the LLM proxy
RELAY_PORT = 8080

LABEL = "autocode.ticket"
WORKER_LABEL = "autocode.worker"
STORE_LABEL = "autocode.store"
AGENT_HOME = "/home/agent"
WORKSPACE = "/workspace"
OPENCODE_DATA = AGENT_HOME + "/.local/share/opencode"


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """Everything one agent container is made of."""

    image: str
    command: Sequence[str]
    workspace: Path
    ticket_id: int
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    network: str = "bridge"
    memory: str = "2g"
    cpus: float = 2.0
    pids: int = 512
    timeout: float = 1800.0
    idle_timeout: float = 300.0
    user: str = "1000:1000"
    workspace_read_only: bool = False  # ask mode: the agent reads, nothing is pushed
    worker: str = ""  # the worker that runs it: the orphan sweep asks the store about it
    store: str = ""  # which ticket store it belongs to: a sweep touches only its own
    # the agent's opencode data dir, kept on the host between containers and runs (sessions)
    session_dir: Path | None = None
    role: str = "agent"  # agent | setup | test: what the container runs, on its label
    runtime: str = ""  # the OCI runtime the engine runs it with ("" = the engine's default)
    # `internal` network: where the relay beside the agent forwards to (the LLM proxy, host:port)
    llm_relay: str = ""
    # called once the container is gone (or was never made): the run's LLM capability dies
    on_removed: Callable[[], None] | None = field(default=None, compare=False)

    def create_kwargs(self) -> dict[str, Any]:
        """The Docker SDK arguments: non-root, no capabilities, read-only root, limits."""
        uid, _, gid = self.user.partition(":")
        mode = "ro" if self.workspace_read_only else "rw"
        volumes = {str(self.workspace): {"bind": WORKSPACE, "mode": mode}}
        for mount in self.mounts:
            volumes[str(mount.source)] = {
                "bind": mount.target,
                "mode": "ro" if mount.read_only else "rw",
            }
        # exec: test suites run what they build in /tmp and ~ (Docker's default is noexec;
        # the work tree is writable and executable anyway, so noexec would protect nothing)
        tmpfs = {
            "/tmp": "rw,exec,nosuid,nodev,size=1g",  # noqa: S108 (inside the container)
            AGENT_HOME: f"rw,exec,nosuid,nodev,size=2g,uid={uid},gid={gid or uid},mode=0700",
        }
        if self.session_dir is not None:
            volumes[str(self.session_dir)] = {"bind": OPENCODE_DATA, "mode": "rw"}
            # the engine creates the mount point's parents as root: give the agent
            # its own ~/.local, or opencode cannot make ~/.local/state
            tmpfs[AGENT_HOME + "/.local"] = (
                f"rw,exec,nosuid,nodev,size=1g,uid={uid},gid={gid or uid},mode=0700"
            )
        network = AGENT_NETWORK if self.network == "internal" else self.network
        return {
            "image": self.image,
            "command": list(self.command),
            "user": self.user,
            "working_dir": WORKSPACE,
            "environment": {"HOME": AGENT_HOME, **self.environment},
            "volumes": volumes,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "read_only": True,
            "tmpfs": tmpfs,
            "mem_limit": self.memory,
            "memswap_limit": self.memory,
            "nano_cpus": int(self.cpus * 1e9),
            "pids_limit": self.pids,
            "network_mode": network,
            "init": True,
            "labels": {
                LABEL: str(self.ticket_id),
                WORKER_LABEL: self.worker,
                STORE_LABEL: self.store,
                "autocode.role": self.role,
            },
            "detach": True,
            "stdin_open": False,
            "tty": False,
            **({"runtime": self.runtime} if self.runtime else {}),
        }


@dataclass
class ContainerExit:
    exit_code: int | None
    timed_out: bool = False
    idle: bool = False
    cancelled: bool = False
    stderr_tail: str = ""
    seconds: float = 0.0  # create → removed
    start_seconds: float = 0.0  # create + start
    agent_seconds: float = 0.0  # started → exited (the agent's own time)
