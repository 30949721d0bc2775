"""The derived agent images on the engine: list them, and prune the ones no container uses.

A derived image is the repository's own image plus what the agent needs
(`recipe.py` writes it, `images.py` builds it). Each is tagged
`autocode-derived:<12 hex>` and labelled as below; this module and the
builder share these names.

Pruning only ever removes images labelled `autocode.derived=1`, and of those
neither one a container (running or not) uses nor one also tagged outside
`autocode-derived` (an image built FROM a derived one inherits its labels:
the tag says whose it is). An image is removed by its id, so a tag the
builder has just moved to a newer image is never followed to it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import DockerUnavailable, RunnerError

log = logging.getLogger("bot.runner.catalog")

DERIVED_REPOSITORY = "autocode-derived"  # images are tagged autocode-derived:<12 hex>
LABEL_DERIVED = "autocode.derived"  # "1" on every derived image
LABEL_BASE = "autocode.derived.base"  # the base as the repository named it
LABEL_BASE_ID = "autocode.derived.base-id"  # the base image's id, "sha256:…"
LABEL_OPENCODE = "autocode.opencode.version"  # the opencode inside (the runner image has it too)
LABEL_REPOSITORY = "autocode.derived.repository"  # owner/repo that asked for it first

KEPT = "kept"  # the reason given for an image `keep` kept
IN_USE = "in use by a container"
DAY = 86400.0


@dataclass(frozen=True)
class DerivedImage:
    """One derived image on the engine, as its labels and the engine describe it."""

    tag: str  # its autocode-derived tag ("" when the builder moved the tag on)
    id: str  # "sha256:…"
    base: str
    base_id: str
    opencode: str
    size: int  # bytes, base layers included
    created: str  # ISO 8601, as the engine says
    repository: str
    in_use: bool  # some container, running or not, uses it
    tags: tuple[str, ...] = field(default=())  # every tag it has

    @property
    def name(self) -> str:
        """Its tag, or its short id when it has none."""
        return self.tag or f"{self.id[:19]} (untagged)"

    @property
    def created_at(self) -> float:
        return timestamp(self.created)


def timestamp(created: str) -> float:
    """Seconds since the epoch of the engine's RFC 3339 time (to the microsecond); 0 if odd."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", created.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


def older_than(days: float, now: float) -> Callable[[DerivedImage], bool]:
    """A `keep` for `prune` that keeps the images created within `days` before `now`."""
    cutoff = now - days * DAY

    def keep(image: DerivedImage) -> bool:
        return image.created_at > cutoff

    return keep


@contextlib.contextmanager
def _engine(what: str) -> Iterator[None]:
    """The SDK's errors as the bot's: unreachable, or refused with the engine's message."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.APIError as exc:
        raise RunnerError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc


def derived_images(client: Any) -> list[DerivedImage]:
    """The derived images on the engine of `client` (a docker SDK DockerClient), newest first."""
    return _catalog(client)[0]


def _catalog(client: Any) -> tuple[list[DerivedImage], dict[str, list[str]]]:
    """The derived images, and the names of the containers using each image id."""
    import docker.errors

    with _engine("the Docker engine did not list the derived images"):
        ids = client.api.images(filters={"label": f"{LABEL_DERIVED}=1"}, quiet=True)
        users: dict[str, list[str]] = {}
        for container in client.api.containers(all=True):
            names = [str(n).lstrip("/") for n in container.get("Names") or []]
            users.setdefault(str(container.get("ImageID", "")), []).extend(names)
        found: list[DerivedImage] = []
        for image_id in dict.fromkeys(ids):
            try:
                attrs = client.api.inspect_image(image_id)
            except docker.errors.ImageNotFound:
                continue  # removed since it was listed
            found.append(_described(attrs, image_id in users))
    found.sort(key=lambda image: image.created_at, reverse=True)
    return found, users


def _described(attrs: dict[str, Any], in_use: bool) -> DerivedImage:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    tags = tuple(sorted(attrs.get("RepoTags") or []))
    ours = [t for t in tags if t.startswith(f"{DERIVED_REPOSITORY}:")]
    return DerivedImage(
        tag=(ours or [""])[0],
        id=str(attrs.get("Id", "")),
        base=str(labels.get(LABEL_BASE, "")),
        base_id=str(labels.get(LABEL_BASE_ID, "")),
        opencode=str(labels.get(LABEL_OPENCODE, "")),
        size=int(attrs.get("Size") or 0),
        created=str(attrs.get("Created", "")),
        repository=str(labels.get(LABEL_REPOSITORY, "")),
        in_use=in_use,
        tags=tags,
    )


def prune(
    client: Any, *, keep: Callable[[DerivedImage], bool] = lambda _i: False
) -> tuple[list[DerivedImage], list[tuple[DerivedImage, str]]]:
    """Remove every derived image not kept and not in use: (removed, skipped with the reason)."""
    images, users = _catalog(client)
    removed: list[DerivedImage] = []
    skipped: list[tuple[DerivedImage, str]] = []
    for image in images:
        reason = _spared(image, users, keep) or _remove(client, image)
        if reason:
            skipped.append((image, reason))
            continue
        removed.append(image)
        log.info(
            "derived image removed",
            extra={"image": image.name, "id": image.id, "base": image.base},
        )
    return removed, skipped


def _spared(
    image: DerivedImage, users: dict[str, list[str]], keep: Callable[[DerivedImage], bool]
) -> str:
    """Why `image` stays, or "" when it may go."""
    if keep(image):
        return KEPT
    if image.in_use:
        return f"{IN_USE} ({', '.join(users.get(image.id, [])) or '?'})"
    foreign = [t for t in image.tags if not t.startswith(f"{DERIVED_REPOSITORY}:")]
    if foreign:
        return f"also tagged {', '.join(foreign)}"
    return ""


def _remove(client: Any, image: DerivedImage) -> str:
    """Remove `image` by its id; "" when done, else the engine's reason to refuse."""
    import docker.errors

    with _engine(f"the Docker engine did not remove {image.name}"):
        try:
            for tag in image.tags[1:]:  # an id with several tags loses all but one first
                with contextlib.suppress(docker.errors.ImageNotFound):
                    if client.api.inspect_image(tag).get("Id") == image.id:  # not moved on
                        client.api.remove_image(tag, noprune=False)
            client.api.remove_image(image.id, noprune=False)
        except docker.errors.ImageNotFound:
            return "already gone"
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # a conflict: a container took it since, or a child
                raise
            return f"the engine refused: {exc.explanation or exc}"
    return ""


def table(images: list[DerivedImage]) -> list[str]:
    """The images as the lines of a table: tag, base, base id, opencode, MB, created, in use."""
    rows = [("TAG", "BASE", "BASE ID", "OPENCODE", "SIZE (MB)", "CREATED", "IN USE")]
    for image in images:
        created = datetime.fromtimestamp(image.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(
            (
                image.name,
                image.base or "?",
                image.base_id[:19] or "?",
                image.opencode or "?",
                megabytes(image.size),
                created,
                "yes" if image.in_use else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def report(
    removed: list[DerivedImage], skipped: list[tuple[DerivedImage, str]], *, kept: str = KEPT
) -> list[str]:
    """What `prune` did, a line per image and a total; `kept` words the reason `keep` gave."""
    lines = [f"removed {i.name} ({i.base or '?'}, {megabytes(i.size)} MB)" for i in removed]
    lines += [f"skipped {i.name}: {kept if why == KEPT else why}" for i, why in skipped]
    total = megabytes(sum(i.size for i in removed))
    lines.append(f"{len(removed)} derived images removed ({total} MB), {len(skipped)} skipped")
    return lines
