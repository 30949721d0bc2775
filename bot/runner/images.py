"""The image a run's containers use: the runner image, or one derived from the repository's own.

`Images.prepare` takes what the repository names (an image, or a Dockerfile
build from its dev container) and returns the derived image's tag, building
what is missing: the base (pulled, or built from the repository's Dockerfile
on the host's engine) and the derived image (recipe.py), cached by the base's
id and the opencode version. What goes wrong ends as an `ImageError` whose
message holds the last lines the engine printed and what to do.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DockerUnavailable, ImageError
from . import recipe
from .recipe import BuildRecipe, Prepared

log = logging.getLogger("bot.runner.images")

TAIL = 20  # lines of a failed build shown to the maintainer
LEGACY_NOTICE = "DEPRECATED: The legacy builder"


class Images:
    """Derived images on one engine (`client`: the Docker SDK's)."""

    def __init__(
        self,
        client: Any,
        runner_image: str,
        opencode_version: str,
        *,
        network: str = "bridge",
        timeout: float = 600.0,
    ) -> None:
        self.client = client
        self.runner_image = runner_image
        self.opencode_version = opencode_version
        self.network = network  # of the build's RUN steps (AUTOCODE_BUILD_NETWORK)
        self.timeout = timeout  # the longest a build may stay silent

    def prepare(
        self,
        repository: str,
        *,
        image: str = "",
        build: BuildRecipe | None = None,
        work_tree: Path | None = None,
        on_line: Callable[[str], None] = lambda _line: None,
    ) -> Prepared:
        """The derived image for `image` (or for `build` on `work_tree`), built when missing."""
        started = time.monotonic()
        if build is not None and work_tree is not None:
            base = f"the dev container of {repository} ({build.dockerfile})"
            base_id = self._build_base(work_tree, build, on_line)
        else:
            base, base_id = image, self._base(image, on_line)
        tag = recipe.derived_tag(base_id, self.opencode_version)
        if self._exists(tag):
            return Prepared(tag, base, False, time.monotonic() - started)
        text = recipe.dockerfile(
            base_id=base_id,
            base=base,
            runner_image=self.runner_image,
            opencode_version=self.opencode_version,
            repository=repository,
        )
        self._build(
            {"fileobj": io.BytesIO(text.encode()), "tag": tag},
            on_line,
            what=f"the agent image from {base}",
        )
        log.info("derived image built", extra={"image": tag, "base": base, "base_id": base_id})
        return Prepared(tag, base, True, time.monotonic() - started)

    # -- the base -------------------------------------------------------------
    def _base(self, image: str, on_line: Callable[[str], None]) -> str:
        """The id of `image`: on the engine already, or pulled."""
        import docker.errors

        try:
            return str(self.client.images.get(image).id)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
        on_line(f"pulling {image}")
        try:
            return str(self.client.images.pull(image).id)
        except docker.errors.DockerException as exc:
            detail = str(getattr(exc, "explanation", None) or exc)
            raise ImageError(
                f"the image {image} could not be pulled: {detail}. "
                "Name an image this bot's Docker engine has or can pull (`image:` in "
                ".github/autocode.yml, or `image` in devcontainer.json); for a private "
                "registry, log the engine's host in to it (`docker login`)."
            ) from exc

    def _build_base(
        self, work_tree: Path, build: BuildRecipe, on_line: Callable[[str], None]
    ) -> str:
        """Build the repository's Dockerfile on its work tree; the image's id."""
        context = (work_tree / build.context).resolve()
        dockerfile = (work_tree / build.dockerfile).resolve()
        root = work_tree.resolve()
        if not (context.is_relative_to(root) and dockerfile.is_relative_to(root)):
            raise ImageError(f"{build.dockerfile} or {build.context} is outside the repository")
        if not dockerfile.is_file():
            raise ImageError(
                f"the dev container's Dockerfile {build.dockerfile} is not in the repository\n\n"
                "Fix: correct `build.dockerfile` in devcontainer.json (it is relative to the "
                "folder holding devcontainer.json)."
            )
        # the engine reads the Dockerfile from the context when it is inside it
        inside = dockerfile.is_relative_to(context)
        kwargs: dict[str, Any] = {
            "path": str(context),
            "dockerfile": str(PurePosixPath(*dockerfile.relative_to(context).parts))
            if inside
            else str(dockerfile),
            "buildargs": dict(build.args),
        }
        if build.target:
            kwargs["target"] = build.target
        return self._build(kwargs, on_line, what=f"the dev container's image ({build.dockerfile})")

    # -- building ---------------------------------------------------------------
    def _build(self, kwargs: dict[str, Any], on_line: Callable[[str], None], *, what: str) -> str:
        """Run one build to its end, streaming its lines; the image's id, or an ImageError."""
        import docker.errors
        import requests

        lines: list[str] = []
        image_id = ""
        try:
            stream = self.client.api.build(
                rm=True,
                forcerm=True,
                decode=True,
                network_mode=self.network,
                timeout=self.timeout,
                **kwargs,
            )
            for chunk in stream:
                if "error" in chunk:
                    # the engine's error, without its notice that the classic builder is old
                    lines.append(str(chunk["error"]).split(LEGACY_NOTICE)[0].rstrip())
                    raise _failed(what, lines)
                text = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
                if text:
                    lines.extend(text.splitlines())
                    on_line(lines[-1])
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
        except docker.errors.APIError as exc:
            lines.append(str(exc.explanation or exc))
            raise _failed(what, lines) from exc
        except requests.exceptions.ReadTimeout as exc:
            lines.append(f"(the build printed nothing for {self.timeout:.0f} s)")
            raise _failed(what, lines) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
        if not image_id:
            raise _failed(what, [*lines, "the engine named no image"])
        return image_id

    def _exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
        return True


def _failed(what: str, lines: list[str]) -> ImageError:
    """The maintainer's error: what failed and the fix, with the build's last lines."""
    said = "\n".join(line for line in lines if not line.startswith("Step "))  # not the recipe
    advice = "Fix the Dockerfile (or the image it starts from) and label the issue again."
    if 'exec: "/bin/sh"' in said:  # the engine could not start the step's shell
        advice = (
            "The image has no shell (/bin/sh): the agent, its tools and the setup and test "
            "commands need one. Start from an image with a shell (a Debian or Ubuntu one)."
        )
    elif recipe.NO_PACKAGE_MANAGER in said:
        advice = (
            "The image lacks git or CA certificates and has no apt-get or apk to install "
            "them: add them to the image, or start from a Debian, Ubuntu or Alpine one."
        )
    elif recipe.NO_MUSL_BUILD in said:
        advice = (
            "The image's C library is musl (as Alpine's is) and the runner image has no "
            "musl build of opencode: rebuild it with `autocode runner build` where npm can "
            "fetch opencode's musl package of the pinned version, or start from a Debian or "
            "Ubuntu based image."
        )
    elif recipe.NO_OPENCODE in said:
        advice = (
            "Neither of opencode's builds (for glibc and for musl) runs on this image: start "
            "from a Debian, Ubuntu or Alpine based image."
        )
    return ImageError(f"{what} could not be built. {advice}", tuple(lines[-TAIL:]))
