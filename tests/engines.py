"""Private Docker engines for the tests that need one of their own (a pod's sidecar, TLS).

Each gets its own data and exec roots and socket under a temporary folder,
`--iptables=false` like the machine's engine, and a network of its own; the
machine's engine and its docker0 are never touched. Images come from the
machine's engine (`docker save | docker load`): no registry is reachable.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

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
