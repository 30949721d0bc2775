"""The default runner image runs a repository's setup and tests.

The README's `.github/autocode.yml` example is taken from the README itself,
validated by the bot's parser on a default host, and its `setup` and `test`
commands run on a small Python project through the bot's own code path for
them (`pipeline.spec.command_spec`, as `pipeline.commands` uses it), in containers
of the runner image with the bot's hardening, on the real Docker engine.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.config import Settings
from bot.pipeline.spec import Site, command_spec
from bot.repo_settings import HostLimits, Invalid, RepoSettings, parse
from bot.runner.docker import DockerRunner, container_user
from bot.runner.spec import ContainerExit, ContainerSpec
from bot.testloop import tail
from bot.workspace import Workspace
from tests.conftest import RUNNER_IMAGE

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Repository settings: `.github/autocode.yml`"
TICKET_ID = 990201  # container label; distinct from other tests' tickets

pytestmark = pytest.mark.docker


def readme_settings_example() -> str:
    """The ```yaml block with `setup` and `test` under the README's settings heading."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no heading {SECTION!r}"
    section = re.split(r"^## ", text.split(SECTION, 1)[1], flags=re.M)[0]
    blocks: list[str] = re.findall(r"^```yaml\n(.*?)^```", section, flags=re.M | re.S)
    examples = [
        b
        for b in blocks
        if isinstance(data := yaml.safe_load(b), dict) and {"setup", "test"} <= data.keys()
    ]
    assert len(examples) == 1, (
        f"expected one yaml example with setup and test, found {len(examples)}"
    )
    return examples[0]


def python_project(root: Path) -> Workspace:
    """A package and a passing test, laid out as `Workspace.clone` leaves a clone."""
    workspace = Workspace(root, "https://github.invalid/octo/greeter.git")
    work = workspace.work_tree
    (work / "greeter").mkdir(parents=True)
    (work / "greeter" / "__init__.py").write_text(
        'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n'
    )
    (work / "tests").mkdir()
    (work / "tests" / "test_greeter.py").write_text(
        "from greeter import greet\n\n\n"
        "def test_greet() -> None:\n"
        '    assert greet("World") == "Hello, World!"\n'
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(
        [*git, "init", "-q", "-b", "main", "--separate-git-dir", str(workspace.git_dir), str(work)],
        check=True,
    )
    env = {**os.environ, "GIT_DIR": str(workspace.git_dir), "GIT_WORK_TREE": str(work)}
    subprocess.run([*git, "add", "-A"], cwd=work, env=env, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], cwd=work, env=env, check=True)
    # like a clone: the `.git` pointer file gives way to the git dir's mount point
    (work / ".git").unlink()
    (work / ".git").mkdir()
    uid, _, gid = container_user().partition(":")
    workspace.hand_to_agent(int(uid), int(gid))  # the bot's own chown (as root) to uid 1000
    return workspace


async def run_commands(
    runner: DockerRunner,
    settings: Settings,
    repo: RepoSettings,
    workspace: Workspace,
    commands: list[str],
    role: str,
) -> tuple[ContainerExit, str]:
    """Setup or test commands as a run has them carried out (`pipeline.commands.Commands`).

    The container is the bot's own (`pipeline.spec.command_spec`), its output
    kept and cut the same way; there is no GitHub here to show progress on.
    """
    site = Site(workspace.work_tree, workspace.git_dir, TICKET_ID, container_user(),
                "test-runner-image")  # fmt: skip
    spec = command_spec(settings, repo, site, commands, role, remaining=float(repo.run_timeout))
    lines: list[str] = []
    exit_ = await runner.run(spec, lambda line: lines.append(line[:2000]), asyncio.Event())
    return exit_, tail("\n".join(lines[-400:]), lines=400, chars=60000)


async def test_the_readmes_settings_example_runs_as_written_in_the_default_image(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    host = replace(Settings.from_environ({}), runner_image=RUNNER_IMAGE)
    assert host.agent_network == "internal"  # a default host
    repo = parse(readme_settings_example(), HostLimits.of(host))
    assert not isinstance(repo, Invalid), [str(p) for p in repo.problems]
    assert repo.setup and repo.test and repo.network == "none"

    workspace = python_project(tmp_path / f"ticket-{TICKET_ID}")
    setup, setup_output = await run_commands(
        docker_runner, host, repo, workspace, list(repo.setup), "setup"
    )
    assert (setup.exit_code, setup.timed_out) == (0, False), setup_output
    kept_out = workspace.exclude_untracked()  # what a run does after a setup that passed
    assert ".venv/" in kept_out, kept_out
    assert (workspace.work_tree / ".venv" / "bin" / "python").exists()

    test, test_output = await run_commands(
        docker_runner, host, repo, workspace, [repo.test], "test"
    )
    assert (test.exit_code, test.timed_out) == (0, False), test_output
    assert f"$ {repo.test}" in test_output
    assert re.search(r"^1 passed\b", test_output, flags=re.M), test_output
    assert docker_runner.running_for(TICKET_ID) == []  # both containers removed


TOOLS = [
    "python --version",
    "python3 -m pip --version",
    "node --version",
    "npm --version",
    "make --version",
    "cc --version",
    # a test suite runs what it builds in a temporary folder (tmpfs: exec allowed)
    'echo "int main(void){return 0;}" > /tmp/t.c && cc -o /tmp/t /tmp/t.c && /tmp/t',
    "cp /tmp/t ~/t && ~/t",
]


async def test_the_toolchains_run_as_the_agent_on_a_read_only_root(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    checks = "; ".join(
        f"if {tool} >/dev/null 2>&1; then echo 'ok: {tool}'; else echo 'FAILED: {tool}'; fi"
        for tool in TOOLS
    )
    script = (
        f"id -u; touch /usr/x 2>/dev/null && echo root-writable || echo root-read-only; {checks}"
    )
    spec = ContainerSpec(
        image=RUNNER_IMAGE,
        command=["sh", "-c", script],
        workspace=workspace,
        ticket_id=TICKET_ID + 1,
        network="none",
        timeout=120.0,
        idle_timeout=120.0,
        user=container_user(),
        role="test",
    )
    lines: list[str] = []
    result = await docker_runner.run(spec, lines.append, asyncio.Event())
    assert result.exit_code == 0, (lines, result.stderr_tail)
    assert lines[:2] == [container_user().split(":")[0], "root-read-only"], lines
    assert lines[2:] == [f"ok: {tool}" for tool in TOOLS], lines
