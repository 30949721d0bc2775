"""The agent under gVisor: AUTOCODE_AGENT_RUNTIME=runsc, from label to pull request.

A private dockerd (its own socket, data and exec roots, and a bridge of its
own: the machine's engine and its docker0 are never touched) has `runsc`
registered in its daemon.json as the README says. The whole bot runs against
it on the default `internal` network: the relay, the setup, agent and test
containers all run under gVisor. From inside, the agent sees gVisor's kernel,
not the host's; the repository's test command passes only where `dmesg`
shows gVisor starting, so a test container under runc would fail the run.
"""

from __future__ import annotations

import platform
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from bot.ops.doctor import check_docker, check_runtime
from tests import engines
from tests.conftest import RUNNER_IMAGE
from tests.e2e.conftest import REPO, Bot, labeled_payload
from tests.fakes.llm import text, tool

pytestmark = pytest.mark.docker

SETTINGS_FILE = """\
setup:
  - dmesg | grep -q 'Starting gVisor' && echo setup-under-gvisor > .setup-kernel
test: dmesg | grep -q 'Starting gVisor' && test -s kernel.txt
"""


@pytest.fixture(scope="module")
def gvisor() -> Iterator[engines.PrivateEngine]:
    with engines.private_engine(
        "acgv-",
        216,
        runtimes={
            "runsc": engines.RUNSC,
            # gVisor with its own network stack, which cannot start on these hosts
            "runsc-netstack": {"path": engines.RUNSC["path"], "runtimeArgs": ["--platform=ptrace"]},
        },
        images=(RUNNER_IMAGE,),
    ) as engine:
        yield engine


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this is about the sandbox, not the store."""
    return f"sqlite:///{tmp_path / 'autocode.db'}"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_a_labeled_issue_becomes_a_pull_request_under_gvisor(
    make_bot: Callable[..., Bot], gvisor: engines.PrivateEngine
) -> None:
    bot = make_bot(
        DOCKER_HOST=gvisor.url,
        AUTOCODE_AGENT_RUNTIME="runsc",
        AUTOCODE_AGENT_NETWORK="internal",
        AUTOCODE_LLM_PROXY_PORT=str(free_port(gvisor.gateway)),
    )
    gh, llm = bot.github, bot.llm
    gh.add_repo(REPO, {"README.md": "# Hello\n", ".github/autocode.yml": SETTINGS_FILE})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Record the kernel", body="Please.", user="Codertocat")
    llm.script([
        tool("bash", description="Which kernel",
             command="uname -r; cat /proc/version; dmesg | head -n 2; cat .setup-kernel"),
        tool("bash", description="Record it", command="cat /proc/version > kernel.txt"),
        text("Recorded the kernel."),
    ])  # fmt: skip

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh, 1)), timeout=300)

    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    seen = "\n".join(llm.tool_results())
    assert "Starting gVisor" in seen, seen  # gVisor's own kernel log
    assert "4.4.0" in seen  # the kernel gVisor reports
    assert platform.release() not in seen  # never the host's
    assert "setup-under-gvisor" in seen  # the setup container ran under gVisor too
    (pull,) = gh.pulls.values()
    assert "4.4.0" in (gh.read_file(REPO, pull["head"]["ref"], "kernel.txt") or "")
    assert gh.find_check_runs(REPO, "Auto-Code")[-1]["conclusion"] == "success"
    # the relay beside the agents runs under gVisor as well
    engine = docker.DockerClient(base_url=gvisor.url)
    try:
        relays = engine.containers.list(filters={"label": "autocode.role=llm-relay"})
        assert relays and all(r.attrs["HostConfig"]["Runtime"] == "runsc" for r in relays)
    finally:
        engine.close()


def test_doctor_starts_a_container_under_the_runtime(
    make_bot: Callable[..., Bot], gvisor: engines.PrivateEngine
) -> None:
    bot = make_bot(DOCKER_HOST=gvisor.url, AUTOCODE_AGENT_RUNTIME="runsc")
    docker_check, runner = check_docker(bot.settings)
    assert docker_check.ok, docker_check
    check = check_runtime(bot.settings, runner, True)
    assert check.ok, check
    assert check.detail.startswith("runsc: a hardened container ran in ")
    assert "4.4.0" in check.detail and "(gVisor)" in check.detail


@pytest.mark.parametrize(
    ("environ", "detail", "fix"),
    [
        (
            {"AUTOCODE_AGENT_RUNTIME": "runsc-netstack"},
            "cannot run with network enabled",
            'add "--network=host" to the runtime\'s "runtimeArgs"',
        ),
        (
            {"AUTOCODE_AGENT_RUNTIME": "runsc", "AUTOCODE_AGENT_PIDS": "24"},
            "did not start",
            "AUTOCODE_AGENT_PIDS=24 must leave room for its own threads",
        ),
    ],
    ids=["own-network-stack", "pids-too-low"],
)
def test_doctor_names_the_fix_when_no_container_starts(
    make_bot: Callable[..., Bot],
    gvisor: engines.PrivateEngine,
    environ: dict[str, str],
    detail: str,
    fix: str,
) -> None:
    bot = make_bot(DOCKER_HOST=gvisor.url, **environ)
    _, runner = check_docker(bot.settings)
    check = check_runtime(bot.settings, runner, True)
    assert not check.ok and detail in check.detail, check
    assert check.fix and fix in check.fix, check
