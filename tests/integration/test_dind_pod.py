"""A worker beside a Docker-in-Docker sidecar, as deploy/kubernetes/worker.yaml runs it.

The containers of a pod share one network namespace. The sidecar's dockerd
makes its default bridge (docker0) in it, so that bridge's gateway is an
address of the worker container too: bot/llm/host.py's default finds it
(the manifest leaves AUTOCODE_LLM_PROXY_HOST empty), and that engine's
agents — through the `internal` relay, or on its bridge — reach the worker's
LLM proxy there.

The pod is built here without Kubernetes: a network namespace of its own
(`ip netns`), a private dockerd started in it (its own data-root, exec-root
and socket, `--iptables=false` like the machine's; the machine's engine and
its docker0 are never touched), the runner image copied in (as the manifest's
pull-runner would pull it), and `autocode doctor` run in that namespace with
the worker's settings from worker.yaml: its LLM proxy check binds where the
worker would and sends a probe container of the sidecar's engine through the
relay to it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.runner.docker import DockerRunner
from tests import engines
from tests.conftest import RUNNER_IMAGE
from tests.integration.test_deploy import container, container_env, kubernetes_docs, pod_spec

WORK = "/var/lib/autocode/work"  # the manifest's work volume, mounted there in worker and dind


@dataclass
class Pod:
    netns: str
    docker_host: str  # the sidecar's engine
    root: Path  # its files, and the pod's work volume (root / "work")

    def enter(self) -> list[str]:
        return ["nsenter", f"--net=/var/run/netns/{self.netns}"]


def _docker(host: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", host, *args], capture_output=True, text=True, check=False, **kwargs
    )


@pytest.fixture
def pod(docker_runner: DockerRunner) -> Iterator[Pod]:
    if os.getuid() != 0:
        pytest.fail("this test starts a dockerd in a network namespace: it runs as root (as CI)")
    for tool in ("ip", "nsenter", "dockerd", "docker"):
        if not shutil.which(tool):
            pytest.fail(f"this test needs {tool}", pytrace=False)
    netns = f"autocode-pod-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="acpod-", dir="/tmp"))  # short: Unix socket paths
    (root / "work").mkdir()
    host = f"unix://{root}/docker.sock"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    dockerd: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
        with open(root / "dockerd.log", "wb") as log:
            dockerd = subprocess.Popen(
                ["nsenter", f"--net=/var/run/netns/{netns}", "dockerd",
                 f"--data-root={root}/data", f"--exec-root={root}/exec",
                 f"--pidfile={root}/dockerd.pid", f"--host={host}", "--iptables=false"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        engines.wait_until_up(dockerd, host, root, "the sidecar's dockerd")
        # the image the pull-runner init container would pull from the registry
        engines.copy_image(RUNNER_IMAGE, host)
        yield Pod(netns, host, root)
    finally:
        engines.stop(dockerd, root)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(root, ignore_errors=True)


def worker_environ(pod: Pod) -> dict[str, str]:
    """The worker container's variables from deploy/kubernetes/, pointed at this pod."""
    docs = kubernetes_docs()
    worker = container(pod_spec(docs, "Deployment", "autocode-worker"), "worker")
    env = container_env(docs, worker)
    assert env["DOCKER_HOST"] == "unix:///var/run/dind/docker.sock"  # the sidecar's socket
    assert env["AUTOCODE_WORKDIR"] == WORK
    # the work volume: one path for worker and engine here too (the clones, and the resolver
    # file of `internal` agents, written in the work directory)
    work = str(pod.root / "work")
    env.update(
        DOCKER_HOST=pod.docker_host,
        AUTOCODE_WORKDIR=work,
        AUTOCODE_RUNNER_IMAGE=RUNNER_IMAGE,
        AUTOCODE_PRIVATE_KEY_PATH="",  # a mounted Secret in the pod; not checked here
        AUTOCODE_DATABASE_URL=f"sqlite:///{pod.root / 'autocode.db'}",
    )
    return env


def doctor(pod: Pod, env: dict[str, str], *, inside: bool) -> dict[str, dict[str, Any]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOCODE_", "DOCKER_"))}
    done = subprocess.run(
        [*(pod.enter() if inside else []), sys.executable, "-m", "bot", "doctor", "--json"],
        cwd=pod.root, env={**base, **env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    found = json.loads(done.stdout)
    return {c["name"]: c for c in found}


@pytest.mark.docker
@pytest.mark.timeout(400)
def test_the_workers_proxy_is_reached_from_the_sidecars_engine(pod: Pod) -> None:
    env = worker_environ(pod)
    assert env["AUTOCODE_AGENT_NETWORK"] == "internal" and env["AUTOCODE_LLM_PROXY_HOST"] == ""
    gateway = DockerRunner(pod.docker_host).bridge_gateway()  # the sidecar's docker0

    # in the pod's network namespace: the proxy binds the sidecar's docker0 gateway, and an
    # agent of the sidecar's engine, on the internal network, reaches it through the relay
    found = doctor(pod, env, inside=True)
    assert found["Docker engine"]["ok"], found["Docker engine"]
    proxy = found["LLM proxy"]
    assert proxy["ok"], proxy
    assert proxy["detail"].startswith(f"AUTOCODE_AGENT_NETWORK=internal: can listen on {gateway} ")
    assert f"through the relay, reached it at {gateway}:" in proxy["detail"]
    found = doctor(pod, {**env, "AUTOCODE_AGENT_NETWORK": "bridge"}, inside=True)
    assert found["LLM proxy"]["ok"], found["LLM proxy"]

    # the same settings outside the pod: the sidecar's agents cannot reach the proxy, and the
    # doctor says so — also where the machine's own docker0 has the same address (as here,
    # both 172.17.0.1 by default): it binds, but the relay's connections land in the pod
    outside = doctor(pod, env, inside=False)["LLM proxy"]
    assert not outside["ok"]
    assert (
        f"through the relay, did not reach it at {gateway}:" in outside["detail"]
        or "is not an address of this machine" in outside["detail"]
    ), outside

    # nothing of the probes is left in the sidecar's engine
    left = _docker(pod.docker_host, "ps", "-aq").stdout.split()
    assert left == []
