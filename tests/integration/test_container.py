"""The agent container's hardening and lifecycle, on the real Docker engine."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bot.errors import RunnerError
from bot.runner.docker import DockerRunner, container_user
from bot.runner.spec import ContainerSpec, Mount
from tests.conftest import RUNNER_IMAGE
from tests.fakes.docker_link import DockerLink


def spec(workspace: Path, script: str, **overrides: object) -> ContainerSpec:
    workspace.mkdir(exist_ok=True)
    import os

    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    base = {
        "image": RUNNER_IMAGE,
        "command": ["sh", "-c", script],
        "workspace": workspace,
        "ticket_id": 990001,
        "network": "none",
        "memory": "256m",
        "cpus": 0.5,
        "pids": 64,
        "timeout": 60.0,
        "idle_timeout": 60.0,
        "user": container_user(),
    }
    base.update(overrides)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def run(runner: DockerRunner, s: ContainerSpec, cancel_after: float | None = None):
    lines: list[str] = []

    async def main():
        cancel = asyncio.Event()
        if cancel_after is not None:
            asyncio.get_running_loop().call_later(cancel_after, cancel.set)
        return await runner.run(s, lines.append, cancel)

    return asyncio.run(main()), lines


def test_the_agent_runs_unprivileged_and_locked_down(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"fake": {"type": "api", "key": "k"}}))
    script = (
        "id -u; grep CapEff /proc/self/status; "
        "touch /etc/x 2>/dev/null && echo rootfs-writable || echo rootfs-readonly; "
        "echo hi > /workspace/out.txt && echo workspace-writable; "
        "test -s $HOME/.local/share/opencode/auth.json && echo auth-present; "
        "touch /run/autocode/auth.json 2>/dev/null && echo auth-writable || echo auth-readonly; "
        "cat /proc/self/status | grep NoNewPrivs; opencode --version"
    )
    s = spec(tmp_path / "ws", script, mounts=[Mount(auth, "/run/autocode/auth.json")])
    result, lines = run(docker_runner, s)
    assert result.exit_code == 0, (lines, result.stderr_tail)
    uid = container_user().split(":")[0]
    assert lines[0] == uid
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert "rootfs-readonly" in lines and "workspace-writable" in lines
    assert "auth-present" in lines and "auth-readonly" in lines
    assert "NoNewPrivs:\t1" in "\n".join(lines) or any(
        "NoNewPrivs" in x and x.endswith("1") for x in lines
    )
    assert lines[-1] == "1.18.33"
    assert (tmp_path / "ws" / "out.txt").read_text() == "hi\n"
    assert docker_runner.running_for(990001) == []  # removed


def test_limits_are_applied(docker_runner: DockerRunner, tmp_path: Path) -> None:
    s = spec(
        tmp_path / "ws",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    )
    result, lines = run(docker_runner, s)
    assert result.exit_code == 0
    assert lines == [str(256 * 1024 * 1024), "64"]


def test_a_run_past_its_timeout_is_stopped_and_removed(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    s = spec(tmp_path / "ws", "echo started; sleep 300", timeout=3.0, ticket_id=990002)
    began = time.monotonic()
    result, lines = run(docker_runner, s)
    assert result.timed_out and not result.idle
    assert lines == ["started"]
    assert time.monotonic() - began < 15
    assert docker_runner.running_for(990002) == []


def test_an_idle_agent_is_stopped(docker_runner: DockerRunner, tmp_path: Path) -> None:
    s = spec(tmp_path / "ws", "echo one; sleep 300", idle_timeout=2.0, ticket_id=990003)
    result, _ = run(docker_runner, s)
    assert result.timed_out and result.idle


def test_cancel_stops_the_container_within_seconds(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    s = spec(tmp_path / "ws", "echo up; sleep 300", ticket_id=990004)
    began = time.monotonic()
    result, _ = run(docker_runner, s, cancel_after=1.0)
    assert result.cancelled
    assert time.monotonic() - began < 10
    assert docker_runner.running_for(990004) == []


def test_a_missing_image_names_the_fix(docker_runner: DockerRunner, tmp_path: Path) -> None:
    from bot.errors import RunnerImageMissing

    s = spec(tmp_path / "ws", "true", image="autocode-runner:does-not-exist")
    try:
        run(docker_runner, s)
    except RunnerImageMissing as exc:
        assert "autocode runner build" in exc.message
    else:
        raise AssertionError("expected RunnerImageMissing")


@pytest.mark.parametrize(
    ("request_line", "forward"),
    [
        (b"/containers/create", True),  # the engine made it; its answer was lost
        (b"/containers/create", False),  # the request never reached the engine
        (b"/start ", True),  # started; the answer was lost
        (b"GET /v", True),  # an inspect (the SDK's after create): asked again
    ],
    ids=["create-answer-lost", "create-never-arrived", "start-answer-lost", "inspect-lost"],
)
def test_a_request_that_loses_its_connection_makes_exactly_one_container(
    tmp_path: Path, request_line: bytes, forward: bool
) -> None:
    """A connection closed under a request (an engine or a socket proxy closing idle
    keep-alive connections) neither fails the run nor leaves a second container."""
    with DockerLink(tmp_path / "docker.sock") as link:
        runner = DockerRunner(link.url)
        ticket = 990100 + len(request_line) * 2 + forward  # one per case
        for leftover in runner.running_for(ticket):  # of an earlier, aborted test run
            runner.client.containers.get(leftover).remove(force=True)
        link.lose(request_line, forward=forward)
        result, lines = run(runner, spec(tmp_path / "ws", "echo made", ticket_id=ticket))
        assert link.pending() == [], "the request was never made"
        assert result.exit_code == 0, (lines, result.stderr_tail)
        assert lines == ["made"]
        assert runner.running_for(ticket) == []  # the one container made is removed too


def test_a_runtime_the_engine_does_not_have_names_the_fix(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    s = spec(tmp_path / "ws", "true", runtime="no-such-runtime", ticket_id=990011)
    with pytest.raises(RunnerError) as raised:
        run(docker_runner, s)
    assert "cannot run containers under no-such-runtime (AUTOCODE_AGENT_RUNTIME)" in str(
        raised.value
    )
    assert "daemon.json" in str(raised.value)
    assert docker_runner.running_for(990011) == []
