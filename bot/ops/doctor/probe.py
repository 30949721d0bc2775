"""The probe: a container placed like an agent, reaching the proxy's address as the agent would."""

from __future__ import annotations

import contextlib
import secrets
import shutil
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import BotError

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


def _probe_kwargs(mode: str, runtime: str = "") -> dict[str, Any]:
    """The probe container's settings: locked down like an agent's, on the mode's network,
    under the agents' runtime."""
    from ...runner.egress import RELAY_USER

    return {
        **({"runtime": runtime} if runtime else {}),
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


class _Probe:
    """One probe container and what was made for it, all removed by `clean_up`."""

    def __init__(self, settings: Settings, runner: Any, target: str) -> None:
        self.runner = runner
        self.image = settings.runner_image
        self.runtime = settings.agent_runtime
        self.client = runner.client
        self.target = target
        self.made_network = False
        self.relay = False
        self.container: Any = None
        # the agents' resolver file, written where a run writes it: beside a workspace in the
        # work directory (the engine must see it there), in a folder of the doctor's own like
        # a ticket's; that folder and any of the work directory's it made are removed after
        workdir = Path(settings.workdir).resolve()
        self.scratch = workdir / f"doctor-{secrets.token_hex(6)}"
        self.missing = [p for p in (workdir, *workdir.parents) if not p.exists()]
        self.resolv: Path | None = None  # once written

    def through_relay(self, kwargs: dict[str, Any]) -> tuple[str, int]:
        """Put the probe on the agents' network, beside a relay; where it connects then."""
        import docker.errors

        from ...runner.egress import resolv_conf
        from ...runner.spec import AGENT_NETWORK, RELAY_HOST, RELAY_PORT

        try:
            self.client.networks.get(AGENT_NETWORK)
        except docker.errors.NotFound:
            self.made_network = True
        self.runner.egress.network()  # made as the bot makes it, or refused when not locked down
        self.relay = True
        address = self.runner.egress.relay(self.target, self.image, self.runtime)
        kwargs["network_mode"] = AGENT_NETWORK
        kwargs["extra_hosts"] = {RELAY_HOST: address}
        self.resolv = resolv_conf(self.scratch)
        kwargs["volumes"] = {str(self.resolv): {"bind": "/etc/resolv.conf", "mode": "ro"}}
        return RELAY_HOST, RELAY_PORT

    def run(self, connect: tuple[str, int], kwargs: dict[str, Any]) -> str:
        """Run the probe to its end; what it printed."""
        container = self.client.containers.create(
            self.image, [connect[0], str(connect[1])], **kwargs
        )
        self.container = container
        container.start()
        container.wait(timeout=PROBE_SECONDS)
        said: str = container.logs(stdout=True, stderr=True).decode(errors="replace").strip()
        return said

    def failed(self, exc: Exception) -> tuple[str, str]:
        """What the engine (or the relay) said when the probe could not run, and the fix."""
        text = str(getattr(exc, "message", None) or getattr(exc, "explanation", None) or exc)
        if "resolv.conf" in text and self.resolv is None:  # it could not be written
            return text[:400], "AUTOCODE_WORKDIR must be a folder the bot can write to"
        if "resolv.conf" in text:
            return (
                f"the engine could not mount {self.resolv} into the agent's container: the bot "
                "wrote it in its work directory (AUTOCODE_WORKDIR), which the engine does not "
                "see at that path (the bot runs in a container, or the engine on another host)",
                "mount AUTOCODE_WORKDIR at the same path for the bot and for the engine, as "
                "deploy/compose.yaml and deploy/kubernetes/worker.yaml do (with an engine on "
                "another host: shared storage mounted at one path on both)",
            )
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"

    def clean_up(self) -> None:
        """Remove the container, the relay, the network when made here, and the folders."""
        from ...runner.spec import AGENT_NETWORK

        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.remove(force=True)
        if self.relay:
            with contextlib.suppress(Exception):
                self.runner.egress.remove_relay(self.target)
        if self.made_network:
            with contextlib.suppress(Exception):
                network = self.client.networks.get(AGENT_NETWORK)
                if not network.attrs.get("Containers"):
                    network.remove()
        shutil.rmtree(self.scratch, ignore_errors=True)
        for folder in self.missing:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def run_probe(settings: Settings, runner: Any, host: str, port: int) -> tuple[str, str]:
    """From a container placed like an agent, reach the listener the way the agent would.

    `internal`: a relay (the bot's own code makes it) on the agents' network,
    found as `llm-proxy`, forwarding to the proxy's address; `bridge`: the
    proxy's address from Docker's default bridge; `host`: from the host's
    network stack. Every container (and the agents' network, if it was made
    here) is removed before returning. Returns what the container printed, and
    the fix when the probe itself could not run ("" otherwise).
    """
    import docker.errors

    kwargs = _probe_kwargs(settings.agent_network, settings.agent_runtime)
    probe = _Probe(settings, runner, f"{host}:{port}")
    connect = (host, port)
    try:
        if settings.agent_network == "internal":
            connect = probe.through_relay(kwargs)
        return probe.run(connect, kwargs), ""
    except (docker.errors.DockerException, BotError) as exc:
        return probe.failed(exc)
    except Exception as exc:  # noqa: BLE001 (requests' timeouts and the like)
        text = f"{exc.__class__.__name__}: {exc}"
        return f"the probe container could not run: {text}"[:400], "check the Docker engine"
    finally:
        probe.clean_up()
