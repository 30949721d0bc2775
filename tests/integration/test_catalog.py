"""Derived images on the real engine: listed, pruned, shown by `autocode images` and the doctor.

Each test makes its own images (unique tags): three young ones built from
debian:bookworm-slim, one as old as 2001 (loaded from a tarball: the engine
keeps the time its config says), one used by a created container, and an
unlabelled one in the same repository that nothing may remove. Other tests
may make derived images on this engine meanwhile: assertions are about ours
only, and the library's prunes keep everything that is not ours.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.ops.doctor.images import check_derived_images, describe
from bot.runner.catalog import (
    DAY,
    DERIVED_REPOSITORY,
    KEPT,
    LABEL_BASE,
    LABEL_BASE_ID,
    LABEL_DERIVED,
    LABEL_OPENCODE,
    LABEL_REPOSITORY,
    DerivedImage,
    derived_images,
    older_than,
    prune,
)
from bot.runner.docker import DockerRunner

BASE = "debian:bookworm-slim"
OPENCODE = "0.0.0-catalog-test"
OLD = "2001-02-03T04:05:06Z"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=120
    )


def inspect(ref: str) -> dict[str, Any] | None:
    done = docker("image", "inspect", ref, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


@dataclass
class Made:
    """What a test made: derived images a, b (used by `user`), c (built in that order), old."""

    key: str
    base_id: str
    a: str = ""
    b: str = ""
    c: str = ""
    old: str = ""
    plain: str = ""  # in autocode-derived, but not labelled
    user: str = ""  # the created container using b
    refs: list[str] = field(default_factory=list)  # every tag to remove at the end

    @property
    def tags(self) -> list[str]:
        """Ours, newest first."""
        return [self.c, self.b, self.a, self.old]

    def ours(self, images: list[DerivedImage]) -> list[DerivedImage]:
        return [i for i in images if i.tag in self.tags]

    def labels(self, name: str) -> dict[str, str]:
        return {
            LABEL_DERIVED: "1",
            LABEL_BASE: "python:3.12",
            LABEL_BASE_ID: self.base_id,
            LABEL_OPENCODE: OPENCODE,
            LABEL_REPOSITORY: f"test/{self.key}-{name}",
        }


def build(made: Made, folder: Path, name: str, labels: dict[str, str]) -> str:
    """`docker build` of BASE plus `labels`, tagged autocode-derived:test<key><name>."""
    tag = f"{DERIVED_REPOSITORY}:test{made.key}{name}"
    made.refs.append(tag)
    (folder / name).mkdir()
    line = " ".join(f'{k}="{v}"' for k, v in labels.items())
    (folder / name / "Dockerfile").write_text(f"FROM {BASE}\nLABEL {line}\n")
    docker("build", "-q", "-t", tag, str(folder / name))
    return tag


def load_old(made: Made) -> str:
    """A layerless derived image whose config says it was made in 2001 (`docker load`)."""
    tag = f"{DERIVED_REPOSITORY}:test{made.key}old"
    made.refs.append(tag)
    config = json.dumps(
        {
            "architecture": (inspect(BASE) or {}).get("Architecture", "amd64"),
            "os": "linux",
            "created": OLD,
            "config": {"Labels": made.labels("old")},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": name, "RepoTags": [tag], "Layers": []}]).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path, data in ((name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    loaded = subprocess.run(["docker", "load", "-q"], input=archive.getvalue(),
                            capture_output=True, check=False, timeout=120)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    return tag


@pytest.fixture
def made(tmp_path: Path, docker_runner: DockerRunner) -> Iterator[Made]:
    base = inspect(BASE)
    assert base is not None, f"{BASE} is not on the engine"
    made = Made(key=secrets.token_hex(4), base_id=base["Id"])
    made.user = f"autocode-catalog-test-{made.key}"
    try:
        made.old = load_old(made)
        made.a = build(made, tmp_path, "a", made.labels("a"))
        made.b = build(made, tmp_path, "b", made.labels("b"))
        made.c = build(made, tmp_path, "c", made.labels("c"))
        made.plain = build(made, tmp_path, "plain", {"test.plain": made.key})
        docker("create", "--name", made.user, made.b, "true")  # created, never started
        yield made
    finally:
        docker("rm", "-f", made.user, check=False)
        for ref in made.refs:
            docker("rmi", "-f", ref, check=False)


@pytest.fixture
def client(docker_runner: DockerRunner) -> Any:
    return docker_runner.client


def not_ours(made: Made) -> Any:
    return lambda image: image.tag not in made.tags


# --- the library ---------------------------------------------------------------------


def test_lists_derived_images_newest_first(made: Made, client: Any) -> None:
    images = derived_images(client)
    assert [i.created_at for i in images] == sorted((i.created_at for i in images), reverse=True)
    ours = made.ours(images)
    assert [i.tag for i in ours] == made.tags
    for image in ours:
        engine = inspect(image.tag)
        assert engine is not None
        name = image.tag.rsplit(made.key, 1)[1]
        assert image == DerivedImage(
            tag=image.tag, id=engine["Id"], base="python:3.12", base_id=made.base_id,
            opencode=OPENCODE, size=engine["Size"], created=engine["Created"],
            repository=f"test/{made.key}-{name}", in_use=image.tag == made.b,
            tags=(image.tag,),
        )  # fmt: skip
    assert ours[-1].created == OLD and ours[-1].size == 0
    assert ours[0].size > 10_000_000  # debian's layers counted
    plain = inspect(made.plain)
    assert plain is not None
    assert plain["Id"] not in {i.id for i in images}
    assert not any(made.plain in i.tags for i in images)


def test_prune_removes_unused_and_skips_one_in_use(made: Made, client: Any) -> None:
    removed, skipped = prune(client, keep=not_ours(made))
    assert sorted(i.tag for i in removed) == sorted([made.a, made.c, made.old])
    assert {i.tag: why for i, why in skipped if i.tag in made.tags} == {
        made.b: f"in use by a container ({made.user})"
    }
    assert all(why == KEPT for i, why in skipped if i.tag not in made.tags)
    assert [t for t in made.tags if inspect(t)] == [made.b]
    assert inspect(made.plain) is not None  # not labelled: never removed

    docker("rm", made.user)  # no longer in use: the next prune removes it
    removed, skipped = prune(client, keep=not_ours(made))
    assert [i.tag for i in removed] == [made.b]
    assert inspect(made.b) is None
    assert inspect(made.plain) is not None


def test_prune_spares_a_derived_image_tagged_elsewhere(made: Made, client: Any) -> None:
    """An image built FROM a derived one inherits its labels: its own tag says it is not ours."""
    other = f"autocode-catalog-test:{made.key}"
    made.refs.append(other)
    docker("tag", made.a, other)
    removed, skipped = prune(client, keep=not_ours(made))
    assert sorted(i.tag for i in removed) == sorted([made.c, made.old])
    reasons = {i.tag: why for i, why in skipped if i.tag in made.tags}
    assert reasons[made.a] == f"also tagged {other}"
    assert inspect(made.a) is not None and inspect(other) is not None


def test_older_than_keeps_young_images(made: Made, client: Any) -> None:
    young = older_than(1, time.time())
    removed, skipped = prune(client, keep=lambda i: not_ours(made)(i) or young(i))
    assert [i.tag for i in removed] == [made.old]
    assert {i.tag: why for i, why in skipped if i.tag in made.tags} == {
        made.a: KEPT,
        made.b: KEPT,
        made.c: KEPT,
    }
    assert [t for t in made.tags if inspect(t)] == [made.c, made.b, made.a]


def test_older_than_reads_the_engines_times() -> None:
    image = DerivedImage(
        tag="autocode-derived:0123456789ab", id="sha256:" + "0" * 64, base="python:3.12",
        base_id="sha256:" + "1" * 64, opencode=OPENCODE, size=1, in_use=False,
        created="2026-01-02T03:04:05.123456789Z", repository="owner/repo",
    )  # fmt: skip
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC).timestamp()
    assert image.created_at == pytest.approx(at)
    assert older_than(1, at + 0.5 * DAY)(image)  # younger than a day: kept
    assert not older_than(1, at + 1.5 * DAY)(image)
    assert not older_than(1, at)(dataclasses.replace(image, created="not a time"))


# --- `autocode images` --------------------------------------------------------------


def autocode(
    cwd: Path, *args: str, docker_host: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOCODE_", "DOCKER_")) and not k.endswith("_API_KEY")
    }
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if host:
        env["DOCKER_HOST"] = host
    return subprocess.run(
        [sys.executable, "-m", "bot", "images", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_cli_lists_as_a_table_and_as_json(made: Made, tmp_path: Path) -> None:
    done = autocode(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "TAG", "BASE", "BASE ID", "OPENCODE", "SIZE (MB)", "CREATED", "IN USE"
    ]  # fmt: skip
    rows = {r[0]: r for r in (re.split(r"\s{2,}", line) for line in lines[1:])}
    assert [r for r in rows if r in made.tags] == made.tags  # newest first
    assert rows[made.old] == [
        made.old, "python:3.12", made.base_id[:19], OPENCODE, "0.0", "2001-02-03T04:05:06Z", "no"
    ]  # fmt: skip
    size = (inspect(made.b) or {})["Size"]
    assert rows[made.b][4] == f"{size / 1_000_000:.1f}" and rows[made.b][6] == "yes"

    done = autocode(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    listed = [i for i in json.loads(done.stdout) if i["tag"] in made.tags]
    assert [i["tag"] for i in listed] == made.tags
    assert listed[1] == {
        "tag": made.b, "id": (inspect(made.b) or {})["Id"], "base": "python:3.12",
        "base_id": made.base_id, "opencode": OPENCODE, "size": size,
        "created": (inspect(made.b) or {})["Created"], "repository": f"test/{made.key}-b",
        "in_use": True, "tags": [made.b],
    }  # fmt: skip


def test_cli_prunes(made: Made, tmp_path: Path) -> None:
    done = autocode(tmp_path, "--older-than", "3")
    assert done.returncode == 2 and "with --prune" in done.stderr

    done = autocode(tmp_path, "--prune", "--older-than", "3650")  # only what is 10 years old
    assert done.returncode == 0, done.stderr
    assert f"removed {made.old} (python:3.12, 0.0 MB)\n" in done.stdout
    assert f"skipped {made.a}: created less than 3650 days ago\n" in done.stdout
    assert re.search(r"^\d+ derived images removed \([\d.]+ MB\), \d+ skipped$", done.stdout, re.M)
    assert [t for t in made.tags if inspect(t)] == [made.c, made.b, made.a]

    # every unused derived image on the engine goes, ours and any other
    done = autocode(tmp_path, "--prune", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {made.a, made.c} <= {i["tag"] for i in report["removed"]}
    skipped = {s["image"]["tag"]: s["reason"] for s in report["skipped"]}
    assert skipped[made.b] == f"in use by a container ({made.user})"
    assert [t for t in made.tags if inspect(t)] == [made.b]
    assert inspect(made.plain) is not None


@pytest.mark.parametrize("args", [(), ("--prune",)])
def test_cli_without_an_engine(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = autocode(tmp_path, *args, docker_host="unix:///nonexistent")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("autocode: the Docker engine cannot be reached: ")
    assert "(unix:///nonexistent: start it, or set DOCKER_HOST to one that runs)" in done.stderr


# --- the doctor's check ------------------------------------------------------------------


def test_doctor_check(made: Made, docker_runner: DockerRunner) -> None:
    settings = Settings.from_environ({})
    check = check_derived_images(settings, docker_runner)
    assert check.ok and check.fix is None
    found = re.match(r"(\d+) derived \([\d.]+ MB\): ", check.detail)
    assert found and int(found.group(1)) >= 4, check.detail
    assert f"{made.c} from python:3.12 ({made.base_id[:19]})" in check.detail  # the newest

    unreachable = check_derived_images(settings, None)
    assert not unreachable.ok
    assert unreachable.detail == "not checked, the engine is unreachable"
    assert unreachable.fix == "fix the Docker engine first"


def test_doctor_detail(made: Made, client: Any) -> None:
    assert describe([]) == "none yet"
    ours = made.ours(derived_images(client))
    total = sum(i.size for i in ours)
    short = made.base_id[:19]
    assert describe(ours) == (
        f"4 derived ({total / 1_000_000:.1f} MB): {made.c} from python:3.12 ({short}), "
        f"{made.b} from python:3.12 ({short}), {made.a} from python:3.12 ({short}), "
        f"{made.old} from python:3.12 ({short})"
    )
    many = ours + [dataclasses.replace(i, tag=f"{i.tag}x") for i in ours[:3]]
    detail = describe(many)
    assert detail.startswith(f"7 derived ({sum(i.size for i in many) / 1_000_000:.1f} MB): ")
    assert detail.endswith(f"{made.c}x from python:3.12 ({short}), and 2 more")
    assert detail.count(" from ") == 5
