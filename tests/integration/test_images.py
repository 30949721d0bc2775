"""Agent images derived from a repository's own, on the real Docker engine.

No registry is reachable here: the bases are built with `docker build` from
the locally made `debian:bookworm-slim` (its packages come from Debian's
mirror, as in `autocode runner build`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ImageError
from bot.runner.catalog import LABEL_BASE, LABEL_BASE_ID, LABEL_DERIVED
from bot.runner.docker import DockerRunner, container_user
from bot.runner.image import OPENCODE_VERSION
from bot.runner.recipe import BuildRecipe
from bot.runner.spec import ContainerSpec
from tests.conftest import RUNNER_IMAGE

pytestmark = pytest.mark.docker

# the builds' network: this engine runs with --iptables=false, so its bridge has no way out and
# Debian's mirror is reached from the host's network (AUTOCODE_BUILD_NETWORK=host)
NET = "host"

PYTHON_DOCKERFILE = """\
FROM debian:bookworm-slim
ARG EXTRA=""
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      python3 python3-pytest $EXTRA \\
 && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Images a test makes (tags or ids), removed after it."""
    images: list[str] = []
    yield images
    for image in reversed(images):
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def docker_build(folder: Path, dockerfile: str, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], check=True,
                   capture_output=True)  # fmt: skip


def run_in(runner: DockerRunner, image: str, script: str, workspace: Path) -> list[str]:
    """Run `script` in `image` with the agent's hardening; its output lines."""
    workspace.mkdir(exist_ok=True)
    uid, _, gid = container_user().partition(":")
    os.chown(workspace, int(uid), int(gid))  # the work tree is the agent's, as in a run
    spec = ContainerSpec(
        image=image, command=["sh", "-c", script], workspace=workspace, ticket_id=990501,
        network="none", user=container_user(), timeout=120, idle_timeout=120, role="test",
    )  # fmt: skip
    lines: list[str] = []
    exit_ = asyncio.run(runner.run(spec, lines.append, asyncio.Event()))
    assert exit_.exit_code == 0, (exit_, lines)
    return lines


def test_a_dev_container_dockerfile_becomes_the_agents_image_and_is_cached(
    docker_runner: DockerRunner, tmp_path: Path, made: list[str]
) -> None:
    tree = tmp_path / "repo"
    (tree / ".devcontainer").mkdir(parents=True)
    nonce = secrets.token_hex(4)  # a base of this test's own: never cached by another run
    (tree / ".devcontainer" / "Dockerfile").write_text(PYTHON_DOCKERFILE + f"LABEL n={nonce}\n")
    build = BuildRecipe(".devcontainer/Dockerfile", ".", {"EXTRA": "make"})
    heard: list[str] = []

    first = docker_runner.prepare_image(
        "octo/app", RUNNER_IMAGE, build=build, work_tree=tree, on_line=heard.append, network=NET
    )
    made.append(first.image)
    assert first.built and first.image.startswith("autocode-derived:")
    assert first.base == "the dev container of octo/app (.devcontainer/Dockerfile)"
    assert any("apt-get" in line or "Step" in line for line in heard)  # progress was heard
    labels = docker_runner.image_labels(first.image) or {}
    assert labels[LABEL_DERIVED] == "1" and labels[LABEL_BASE] == first.base
    assert labels[LABEL_BASE_ID].startswith("sha256:")
    assert labels["autocode.opencode.version"] == OPENCODE_VERSION

    # the agent's tools and the repository's toolchain, as the agent (non-root, read-only root)
    lines = run_in(docker_runner, first.image,
                   "id -u; python3 --version; python3 -m pytest --version 2>&1 | head -1; "
                   "make --version | head -1; git --version; opencode --version; "
                   "test -w /workspace && echo workspace-writable",
                   tmp_path / "ws")  # fmt: skip
    assert lines[0] == container_user().split(":")[0]
    assert lines[1].startswith("Python 3.") and lines[2].startswith("pytest")
    assert lines[3].startswith("GNU Make") and lines[4].startswith("git version")
    assert lines[5] == OPENCODE_VERSION and lines[6] == "workspace-writable"

    started = time.monotonic()
    second = docker_runner.prepare_image(
        "octo/app", RUNNER_IMAGE, build=build, work_tree=tree, network=NET
    )
    assert not second.built and second.image == first.image
    assert time.monotonic() - started < first.seconds  # the cached path builds nothing


def test_an_image_named_in_the_settings_is_derived(
    docker_runner: DockerRunner, tmp_path: Path, made: list[str]
) -> None:
    base = f"autocode-test-base:{secrets.token_hex(4)}"
    docker_build(tmp_path / "base", f"FROM debian:bookworm-slim\nLABEL n={base}\n", base)
    made.append(base)
    prepared = docker_runner.prepare_image("octo/app", RUNNER_IMAGE, image=base, network=NET)
    made.append(prepared.image)
    assert prepared.built and prepared.base == base
    # git and CA certificates were missing from the base: installed with apt-get; the base's
    # C library is glibc, and the runner image's glibc opencode is the one copied (no musl one)
    lines = run_in(docker_runner, prepared.image,
                   "git --version; test -s /etc/ssl/certs/ca-certificates.crt && echo ca; "
                   "cat /usr/local/lib/autocode/libc; opencode --version; "
                   "ldd /usr/local/bin/opencode | grep -c 'libc.so.6'; "
                   "test -e /usr/local/lib/autocode/musl || echo no-musl-build",
                   tmp_path / "ws")  # fmt: skip
    assert lines[0].startswith("git version") and lines[1] == "ca"
    assert lines[2:] == ["glibc", OPENCODE_VERSION, "1", "no-musl-build"]
    again = docker_runner.prepare_image("octo/other", RUNNER_IMAGE, image=base, network=NET)
    assert (again.image, again.built) == (prepared.image, False)  # by the base's id


def test_a_dockerfile_that_fails_to_build_says_its_last_lines(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    tree = tmp_path / "repo"
    (tree / ".devcontainer").mkdir(parents=True)
    (tree / ".devcontainer" / "Dockerfile").write_text(
        "FROM debian:bookworm-slim\n"
        "RUN echo 'compiling the toolchain'; echo 'error: libfoo-dev not found' >&2; exit 7\n"
    )
    with pytest.raises(ImageError) as raised:
        docker_runner.prepare_image(
            "octo/app", RUNNER_IMAGE,
            build=BuildRecipe(".devcontainer/Dockerfile", ".devcontainer"), work_tree=tree,
        )  # fmt: skip
    error = raised.value
    assert error.message.startswith(
        "the dev container of octo/app (.devcontainer/Dockerfile) could not be built"
    ) or error.message.startswith("the dev container's image (.devcontainer/Dockerfile)")
    assert "Fix the Dockerfile" in error.message
    tail = "\n".join(error.lines)
    assert "error: libfoo-dev not found" in tail and "returned a non-zero code: 7" in tail


def test_an_image_without_a_shell_is_refused_with_the_reason(
    docker_runner: DockerRunner, tmp_path: Path, made: list[str]
) -> None:
    base = f"autocode-test-noshell:{secrets.token_hex(4)}"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "hello.txt").write_text("hi\n")
    docker_build(tmp_path / "base", "FROM scratch\nCOPY hello.txt /hello.txt\n", base)
    made.append(base)
    with pytest.raises(ImageError) as raised:
        docker_runner.prepare_image("octo/app", RUNNER_IMAGE, image=base)
    assert "has no shell (/bin/sh)" in raised.value.message
    assert raised.value.message.startswith(f"the agent image from {base} could not be built")


def test_an_image_that_cannot_be_pulled_names_the_fix(docker_runner: DockerRunner) -> None:
    missing = f"autocode-no-such-image:{secrets.token_hex(4)}"
    with pytest.raises(ImageError) as raised:
        docker_runner.prepare_image("octo/app", RUNNER_IMAGE, image=missing)
    assert raised.value.message.startswith(f"the image {missing} could not be pulled")
    assert "Name an image this bot's Docker engine has or can pull" in raised.value.message


def test_a_base_without_git_and_without_a_package_manager_says_what_to_add(
    docker_runner: DockerRunner, tmp_path: Path, made: list[str]
) -> None:
    base = f"autocode-test-nopkg:{secrets.token_hex(4)}"
    docker_build(tmp_path / "base", "FROM debian:bookworm-slim\n"
                 "RUN rm -f /usr/bin/apt-get /usr/bin/apt /usr/bin/dpkg\n", base)  # fmt: skip
    made.append(base)
    with pytest.raises(ImageError) as raised:
        docker_runner.prepare_image("octo/app", RUNNER_IMAGE, image=base, network=NET)
    message = raised.value.message
    assert "lacks git or CA certificates and has no apt-get or apk" in message
    assert "autocode: cannot install git ca-certificates" in "\n".join(raised.value.lines)
