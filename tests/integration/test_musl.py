"""Agent images derived from a musl base (as Alpine's are), on the real Docker engine.

No container registry is reachable here, so there is no Alpine image: the test
makes a base whose userland is musl and nothing else. Its root file system has
no glibc at all (no `ld-linux*`, no `libc.so.6`), so opencode's glibc build
cannot run on it and the musl one must be picked:

- musl's dynamic loader from Debian 13's `musl` package (musl 1.2.5, the musl
  of current Alpine), the package downloaded in a build stage, not installed;
- the libstdc++ and libgcc_s that opencode's musl build links: Alpine's own,
  built against musl, as the musllinux wheel of pyzmq vendors them (pip
  downloads the wheel on the host; Debian has no musl libstdc++);
- git 2.39 built in a build stage from Debian's source against musl (musl-gcc,
  linked statically with a zlib built the same way);
- Debian's static busybox as /bin/sh and its applets (a static binary uses no C
  library at run time), Debian's CA certificates (a data file), and an `ldd`
  that is Alpine's: a script running musl's loader with `--list`.

It has no apk: Alpine's package manager, and so the recipe's `apk add` of
missing git, CA certificates and libstdc++, are exercised by the recipe's unit
tests (tests/unit/test_recipe.py) only. The base has no `adduser` either
(Debian's busybox leaves it out): the agent's user is written to /etc/passwd.

The pinned opencode's musl build must be in the runner image. When it is not
(npm has no musl build of the pinned version here), the tests build a runner
image of their own with `autocode runner build`'s code at FALLBACK_VERSION,
the newest version npm has both builds of, and derive from that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ImageError
from bot.runner.docker import DockerRunner, container_user
from bot.runner.image import OPENCODE_VERSION, build_image
from bot.runner.images import Images
from bot.runner.recipe import LIBC_FOUND, NO_MUSL_BUILD, Prepared
from bot.runner.spec import ContainerSpec
from tests.conftest import RUNNER_IMAGE

pytestmark = pytest.mark.docker

NET = "host"  # the builds reach Debian's mirror from the host's network (no NAT here)
FALLBACK_VERSION = "1.18.32"  # npm has opencode's glibc and musl builds of it
WHEEL = "pyzmq==27.3.0"  # its musllinux wheel vendors Alpine's libstdc++ and libgcc_s
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[
    platform.machine().lower()
]

# Debian's sources turned into Debian 13's, or given their deb-src twins
TRIXIE = "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do [ -f \"$f\" ] && " \
         "sed -i 's/bookworm/trixie/g' \"$f\"; done; "  # fmt: skip
DEB_SRC = (
    'for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do [ -f "$f" ] || continue; '
    "sed -n 's/^deb /deb-src /p' \"$f\" >> /etc/apt/sources.list.d/src.list; "
    "sed -i 's/^Types: deb$/Types: deb deb-src/' \"$f\"; done; "
)

MUSL_BASE = f"""\
FROM debian:bookworm-slim AS musl
RUN {TRIXIE}apt-get update -qq && cd /tmp && apt-get download -qq musl \\
 && dpkg-deb -x musl_*.deb /m

FROM debian:bookworm-slim AS tools
RUN {DEB_SRC}apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      musl-tools gcc make busybox-static ca-certificates xz-utils bzip2 >/dev/null \\
 && mkdir /src && cd /src && apt-get source --download-only -qq git zlib \\
 && for t in *.orig.tar.*; do tar xf "$t"; done
RUN cd /src/zlib-* && CC=musl-gcc ./configure --static --prefix=/opt/z >/dev/null \\
 && make -s -j"$(nproc)" install >/dev/null
RUN cd /src/git-* && make -s -j"$(nproc)" prefix=/usr CC=musl-gcc CFLAGS="-O2 -I/opt/z/include" \\
      LDFLAGS="-static -L/opt/z/lib" NO_CURL=1 NO_EXPAT=1 NO_OPENSSL=1 NO_PERL=1 NO_PYTHON=1 \\
      NO_TCLTK=1 NO_GETTEXT=1 NO_REGEX=NeedsStartEnd SKIP_DASHED_BUILT_INS=1 \\
      INSTALL_SYMLINKS=1 DESTDIR=/rootfs install >/dev/null
RUN mkdir -p /rootfs/bin /rootfs/lib /rootfs/etc/ssl/certs /rootfs/home /rootfs/root /rootfs/tmp \\
 && cp /bin/busybox /rootfs/bin/busybox \\
 && for a in $(/bin/busybox --list); do [ -e /rootfs/bin/$a ] || [ -e /rootfs/usr/bin/$a ] \\
      || ln -s busybox /rootfs/bin/$a; done \\
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \\
 && echo 'root:x:0:0:root:/root:/bin/sh' > /rootfs/etc/passwd \\
 && echo 'root:x:0:' > /rootfs/etc/group && chmod 1777 /rootfs/tmp \\
 && printf '#!/bin/sh\\nexec /lib/ld-musl-{ARCH}.so.1 --list "$@"\\n' > /rootfs/usr/bin/ldd \\
 && chmod 0755 /rootfs/usr/bin/ldd
COPY --from=musl /m/usr/lib/{ARCH}-linux-musl/libc.so /rootfs/lib/ld-musl-{ARCH}.so.1
COPY libs/ /rootfs/usr/lib/
RUN ln -s ld-musl-{ARCH}.so.1 /rootfs/lib/libc.musl-{ARCH}.so.1

FROM scratch
COPY --from=tools /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
"""


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=900)  # fmt: skip


def remove_with_descendants(client: Any, image: str) -> None:
    """Remove `image` and the images built on it (the stages of derived builds), leaves first."""
    import docker.errors

    try:
        root = client.images.get(image).id
    except docker.errors.ImageNotFound:
        return
    children: dict[str, list[str]] = {}
    for each in client.images.list(all=True):
        children.setdefault(each.attrs.get("Parent") or "", []).append(each.id)
    order, todo = [], [root]
    while todo:
        current = todo.pop()
        order.append(current)
        todo.extend(children.get(current, []))
    for image_id in reversed(order):
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(image_id, force=True)


def musl_libraries(folder: Path) -> None:
    """Alpine's libstdc++.so.6 and libgcc_s.so.1 from the musllinux wheel, into `folder`."""
    download = folder / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--platform", f"musllinux_1_2_{ARCH}", "--python-version", "3.12", WHEEL,
         "-d", str(download)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = download.glob("*.whl")
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            file = name.rsplit("/", 1)[-1]
            if re.fullmatch(r"libstdc\+\+-[0-9a-f]+\.so[.0-9]*", file):
                (folder / "libstdc++.so.6").write_bytes(archive.read(name))
            elif re.fullmatch(r"libgcc_s-[0-9a-f]+\.so\.1", file):
                (folder / "libgcc_s.so.1").write_bytes(archive.read(name))
                # auditwheel renamed it, and libstdc++ asks for it by that name
                (folder / file).symlink_to("libgcc_s.so.1")
    assert (folder / "libstdc++.so.6").is_file() and (folder / "libgcc_s.so.1").is_file()


@pytest.fixture(scope="module")
def musl_base(
    docker_runner: DockerRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The musl-only base image (its tag), made for this module."""
    context = tmp_path_factory.mktemp("musl-base")
    musl_libraries(context / "libs")
    tag = f"autocode-test-musl:{secrets.token_hex(4)}"
    (context / "Dockerfile").write_text(MUSL_BASE + f"LABEL autocode.test={tag}\n")
    docker("build", "-q", "--force-rm", "--network", NET, "-t", tag, str(context))
    yield tag
    remove_with_descendants(docker_runner.client, tag)


@pytest.fixture(scope="module")
def musl_runner(docker_runner: DockerRunner) -> Iterator[tuple[str, str]]:
    """A runner image that carries opencode's musl build, and its opencode version."""
    labels = docker_runner.image_labels(RUNNER_IMAGE) or {}
    if labels.get("autocode.opencode.musl") == OPENCODE_VERSION:
        yield RUNNER_IMAGE, OPENCODE_VERSION
        return
    tag = f"autocode-test-runner-musl:{secrets.token_hex(4)}"
    build_image(docker_runner.client, tag, FALLBACK_VERSION)
    labels = docker_runner.image_labels(tag) or {}
    assert labels["autocode.opencode.musl"] == FALLBACK_VERSION, labels
    yield tag, FALLBACK_VERSION
    remove_with_descendants(docker_runner.client, tag)  # with the derived builds' stages


@pytest.fixture
def made(docker_runner: DockerRunner) -> Iterator[list[str]]:
    images: list[str] = []
    yield images
    for image in reversed(images):
        remove_with_descendants(docker_runner.client, image)


def derive(runner: DockerRunner, runner_image: str, version: str, base: str,
           heard: list[str]) -> Prepared:  # fmt: skip
    images = Images(runner.client, runner_image, version, network=NET, timeout=900)
    return images.prepare("octo/alpine-app", image=base, on_line=heard.append)


def run_in(runner: DockerRunner, image: str, script: str, workspace: Path) -> list[str]:
    """Run `script` in `image` as the agent runs: its uid, a read-only root, no network."""
    workspace.mkdir(exist_ok=True)
    uid, _, gid = container_user().partition(":")
    os.chown(workspace, int(uid), int(gid))
    spec = ContainerSpec(
        image=image, command=["sh", "-c", script], workspace=workspace, ticket_id=990601,
        network="none", user=container_user(), timeout=180, idle_timeout=180, role="agent",
    )  # fmt: skip
    lines: list[str] = []
    exit_ = asyncio.run(runner.run(spec, lines.append, asyncio.Event()))
    assert exit_.exit_code == 0, (exit_, lines)
    return lines


def test_the_base_has_musl_and_no_glibc(docker_runner: DockerRunner, musl_base: str) -> None:
    script = (
        "ls /lib/ld-* /lib/libc.* /usr/lib/libstdc++* /usr/lib/libgcc_s*; "
        "for f in /lib/ld-linux* /lib64/ld-linux* /lib/*-linux-gnu /usr/lib/*-linux-gnu "
        '/lib/libc.so.6 /usr/lib/libc.so.6; do [ -e "$f" ] && echo glibc: $f; done; '
        "ldd --version 2>&1 | head -2; git --version; apk --version 2>&1 | head -1"
    )
    out = docker("run", "--rm", "--network", "none", musl_base, "sh", "-c", script)
    said = out.stdout + out.stderr
    assert f"/lib/ld-musl-{ARCH}.so.1" in said and "glibc:" not in said, said
    assert "musl libc" in said and "Version 1.2.5" in said and "git version 2." in said, said
    assert "apk: not found" in said, said


def test_a_musl_base_gets_opencodes_musl_build(
    docker_runner: DockerRunner, musl_base: str, musl_runner: tuple[str, str],
    made: list[str], tmp_path: Path,
) -> None:  # fmt: skip
    runner_image, version = musl_runner
    heard: list[str] = []
    prepared = derive(docker_runner, runner_image, version, musl_base, heard)
    made.append(prepared.image)
    assert prepared.built, prepared
    assert f"{LIBC_FOUND} musl" in heard, heard[-30:]  # the base's ldd said so

    lines = run_in(docker_runner, prepared.image,
                   "id -u; cat /usr/local/lib/autocode/libc; opencode --version; "
                   "ldd /usr/local/bin/opencode; git --version; "
                   "test -e /usr/local/lib/autocode/musl || echo no-second-build; "
                   "git init -q . && echo hi > a.txt && git add a.txt && git commit -qm first "
                   "&& git log --format='%an %s'; "
                   # opencode starts, reads its config and lists its models
                   "model=$(opencode models | head -1); echo model=$model",
                   tmp_path / "ws")  # fmt: skip
    assert lines[0] == container_user().split(":")[0] and lines[1] == "musl"
    assert lines[2] == version  # the musl build runs, as the agent, on a read-only root
    linked = "\n".join(lines[3:8])
    assert f"libc.musl-{ARCH}.so.1 => /lib/ld-musl-{ARCH}.so.1" in linked
    assert "libstdc++.so.6 => /usr/lib/libstdc++.so.6" in linked
    assert "git version 2.39" in "\n".join(lines) and "no-second-build" in lines
    assert "Auto-Code agent first" in lines  # git's system settings from the recipe
    model = next(line for line in lines if line.startswith("model="))
    assert "/" in model  # opencode started, read its config and listed its models
    # one opencode build only (the musl one, ~196 MB) on the ~29 MB base
    sizes = [docker_runner.client.images.get(i).attrs["Size"] for i in (prepared.image, musl_base)]
    assert 150e6 < sizes[0] - sizes[1] < 250e6, sizes


def test_a_musl_base_without_git_and_without_apk_is_refused_after_musl_was_found(
    docker_runner: DockerRunner, musl_base: str, musl_runner: tuple[str, str],
    made: list[str], tmp_path: Path,
) -> None:  # fmt: skip
    # no git, and no `ldd` either: musl is found by its loader, without glibc's
    base = f"autocode-test-musl-nogit:{secrets.token_hex(4)}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {musl_base}\nRUN rm /usr/bin/git /usr/bin/ldd\n")  # fmt: skip
    docker("build", "-q", "--force-rm", "-t", base, str(tmp_path))
    made.append(base)
    runner_image, version = musl_runner
    heard: list[str] = []
    with pytest.raises(ImageError) as raised:
        derive(docker_runner, runner_image, version, base, heard)
    assert f"{LIBC_FOUND} musl" in heard, heard[-30:]
    assert "lacks git or CA certificates and has no apt-get or apk" in raised.value.message
    assert "autocode: cannot install git" in "\n".join(raised.value.lines)


def test_a_runner_image_without_the_musl_build_names_the_fix(
    docker_runner: DockerRunner, musl_base: str, made: list[str], tmp_path: Path
) -> None:
    runner = f"autocode-test-runner-nomusl:{secrets.token_hex(4)}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {RUNNER_IMAGE}\nUSER 0\nRUN rm -rf /usr/local/lib/autocode/musl\nUSER agent\n"
    )
    docker("build", "-q", "--force-rm", "-t", runner, str(tmp_path))  # fmt: skip
    made.append(runner)
    with pytest.raises(ImageError) as raised:
        derive(docker_runner, runner, OPENCODE_VERSION, musl_base, [])
    assert "the runner image has no musl build of opencode" in raised.value.message
    assert "autocode runner build" in raised.value.message
    assert f"{NO_MUSL_BUILD} {OPENCODE_VERSION}" in "\n".join(raised.value.lines)
