"""The agents' OCI runtime (AUTOCODE_AGENT_RUNTIME): registered, and a container starts under it."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ...config import Settings
from .check import Check, fail

NAME = "agent runtime"
# What to put in the engine's daemon.json for gVisor, as measured with Debian's runsc: the
# ptrace platform (this release knows no systrap), and the host's network stack inside the
# container's own network namespace (its own stack refuses to start there).
RUNSC = (
    '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", '
    '"runtimeArgs": ["--platform=ptrace", "--network=host"]}}}'
)
REGISTER_FIX = (
    "install gVisor (Debian: `apt-get install runsc`) on the engine's host, register it in "
    f"/etc/docker/daemon.json as {RUNSC} and restart dockerd; or unset AUTOCODE_AGENT_RUNTIME "
    "to use the engine's default"
)
NETWORK_FIX = (
    'add "--network=host" to the runtime\'s "runtimeArgs" in daemon.json (gVisor\'s own '
    "network stack cannot start on this host; with it the container keeps its own Docker "
    "network namespace), then restart dockerd"
)
# The probe: which kernel answers inside (gVisor prints its own banner in dmesg).
PROBE = "cat /proc/version; dmesg 2>/dev/null | head -n 1"


def check_runtime(settings: Settings, runner: Any, image_ok: bool) -> Check:
    """The runtime the agents run under is registered, and starts a locked-down container."""
    runtime = settings.agent_runtime
    if not runtime:
        return Check(
            NAME,
            True,
            "the engine's default (AUTOCODE_AGENT_RUNTIME is not set; runsc, gVisor, gives "
            "the agents a kernel of their own: see the README)",
        )
    if runner is None:
        return fail(NAME, f"{runtime}: not checked, the engine is unreachable", "fix it first")
    try:
        registered = sorted((runner.client.info().get("Runtimes") or {}).keys())
    except Exception as exc:  # noqa: BLE001 (the SDK raises requests' and its own errors)
        return fail(NAME, f"{runtime}: the engine did not say: {exc}"[:400], "check the engine")
    if runtime not in registered:
        return fail(
            NAME,
            f"{runtime} is not registered with the Docker engine (it has "
            f"{', '.join(registered) or 'none'})",
            REGISTER_FIX,
        )
    if not image_ok:
        return fail(NAME, f"{runtime}: not started, the runner image is missing", "build it")
    return _started(settings, runner, runtime)


def _started(settings: Settings, runner: Any, runtime: str) -> Check:
    """Start the runner image under `runtime`, hardened like an agent: what kernel answers."""
    import docker.errors
    import requests

    started = time.monotonic()
    container = None
    try:
        container = runner.client.containers.create(
            settings.runner_image,
            ["-c", PROBE],
            entrypoint=["sh"],
            runtime=runtime,
            user="1000:1000",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            read_only=True,
            # the agent's limits: under gVisor the pids limit counts its own threads too
            mem_limit=settings.agent_memory,
            pids_limit=settings.agent_pids,
            network_mode="none",
            labels={"autocode.role": "doctor"},
        )
        container.start()
        code = container.wait(timeout=60).get("StatusCode")
        said = container.logs().decode(errors="replace").strip()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        # refused, or hung (a start that never answers: seen with a pids limit too low)
        text = str(getattr(exc, "explanation", None) or f"{exc.__class__.__name__}: {exc}")
        fix = (
            NETWORK_FIX
            if "network" in text
            else f"see the engine's log (under gVisor, AUTOCODE_AGENT_PIDS={settings.agent_pids} "
            f"must leave room for its own threads, about 40); {REGISTER_FIX}"
        )
        return fail(NAME, f"{runtime}: a container did not start: {text}"[:400], fix)
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
    seconds = time.monotonic() - started
    if code != 0:
        return fail(
            NAME,
            f"{runtime}: the container exited {code}: {said[:300] or 'no output'}",
            f"see the engine's log; {REGISTER_FIX}",
        )
    kernel = said.splitlines()[0] if said else "?"
    gvisor = " (gVisor)" if "gVisor" in said else ""
    return Check(NAME, True, f"{runtime}: a hardened container ran in {seconds:.1f} s; its kernel: "
                 f"{kernel[:60]}{gvisor}")  # fmt: skip
