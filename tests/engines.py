"""Private Docker engines for the tests that need one of their own (a pod's sidecar, TLS).

Each gets its own data and exec roots and socket under a temporary folder,
`--iptables=false` like the machine's engine, and a network of its own; the
machine's engine and its docker0 are never touched. Images come from the
machine's engine (`docker save | docker load`): no registry is reachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def wait_until_up(dockerd: subprocess.Popen[bytes], local: str, root: Path, what: str) -> None:
    """Until the engine at `local` (its Unix socket) answers, or fail with its log."""
    deadline = time.monotonic() + 60
    while subprocess.run(["docker", "-H", local, "info"], capture_output=True).returncode:
        if dockerd.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log_tail(root)}", pytrace=False)
        time.sleep(0.3)


def copy_image(image: str, local: str) -> None:
    """`image` from the machine's engine into the one at `local`."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    loaded = subprocess.run(["docker", "-H", local, "load", "-q"], stdin=save.stdout,
                            capture_output=True, check=False, timeout=300)  # fmt: skip
    assert save.wait(60) == 0 and loaded.returncode == 0, loaded.stderr


def stop(dockerd: subprocess.Popen[bytes] | None, root: Path) -> None:
    """Stop the engine (it stops its containers and unmounts) and undo what it mounted."""
    if dockerd is not None:
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(30)
        except subprocess.TimeoutExpired:
            dockerd.kill()
            dockerd.wait(10)
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        point = line.split()[1]
        if point.startswith(str(root)):
            subprocess.run(["umount", "-l", point], check=False)


def log_tail(root: Path) -> str:
    try:
        return (root / "dockerd.log").read_text()[-3000:]
    except OSError:
        return ""


# gVisor as measured with Debian's runsc: the ptrace platform (this release knows no systrap), and
# the host's network stack inside the container's own network namespace (gVisor's own stack
# refuses to start here: "cannot run with network enabled in root network namespace")
RUNSC = {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=host"]}


@dataclass(frozen=True)
class PrivateEngine:
    url: str  # unix://…/docker.sock
    gateway: str  # the host's address on the engine's own bridge
    root: Path


@contextlib.contextmanager
def private_engine(
    prefix: str,
    subnet: int,
    *,
    runtimes: dict[str, Any] | None = None,
    images: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
) -> Iterator[PrivateEngine]:
    """A dockerd of its own (socket, data and exec roots under /tmp, bridge 10.<subnet>.7.1/24),
    with `runtimes` registered in its daemon.json, `args` for dockerd and `images` copied in;
    stopped after."""
    if os.getuid() != 0:
        pytest.fail("this starts a private dockerd: it runs as root (as CI)")
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: Unix socket paths
    bridge = f"{prefix.strip('-')[:6]}{uuid.uuid4().hex[:6]}"
    gateway = f"10.{subnet}.7.1"
    (root / "daemon.json").write_text(json.dumps({"runtimes": runtimes or {}}))
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    dockerd: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "addr", "add", f"{gateway}/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        local = f"unix://{root}/docker.sock"
        with open(root / "dockerd.log", "wb") as log:
            dockerd = subprocess.Popen(
                ["dockerd", f"--config-file={root}/daemon.json", f"--data-root={root}/data",
                 f"--exec-root={root}/exec", f"--pidfile={root}/dockerd.pid", f"--host={local}",
                 "--iptables=false", f"--bridge={bridge}", *args],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until_up(dockerd, local, root, f"the private dockerd in {root}")
        for image in images:
            copy_image(image, local)
        yield PrivateEngine(local, gateway, root)
    finally:
        stop(dockerd, root)
        subprocess.run(["ip", "link", "del", bridge], check=False)
        shutil.rmtree(root, ignore_errors=True)
