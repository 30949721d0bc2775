"""The derived agent images on the engine (informational: how many, how large, from what)."""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ...errors import BotError
from ...runner.catalog import DerivedImage, derived_images, megabytes
from .check import Check, fail

NAME = "derived images"
SHOWN = 5  # images named in the detail; the rest are counted


def check_derived_images(settings: Settings, runner: Any) -> Check:
    """Ok whenever the engine answers: the derived images it holds, newest first."""
    if runner is None:
        return fail(NAME, "not checked, the engine is unreachable", "fix the Docker engine first")
    try:
        images = derived_images(runner.client)
    except BotError as exc:
        return fail(NAME, f"the engine did not list them: {exc.message}"[:400], "check the engine")
    return Check(NAME, True, describe(images))


def describe(images: list[DerivedImage]) -> str:
    """The detail: none yet, or N derived (X MB): tag from base (base id), …, and K more."""
    if not images:
        return "none yet"
    named = [
        f"{image.name} from {image.base or '?'} ({image.base_id[:19] or '?'})"
        for image in images[:SHOWN]
    ]
    if len(images) > SHOWN:
        named.append(f"and {len(images) - SHOWN} more")
    total = megabytes(sum(image.size for image in images))
    return f"{len(images)} derived ({total} MB): {', '.join(named)}"
