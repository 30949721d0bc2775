"""The run's environment: the image its setup, agent and test containers use.

`image:` in `.github/autocode.yml` wins; else the repository's dev container
(`.devcontainer/devcontainer.json`: its `image`, or its Dockerfile `build`,
built on the host's engine, with its `containerEnv` and its
`postCreateCommand` run as the first setup command); else the host's runner
image. A repository's own image becomes the agent's through a derived image
(runner/images.py), cached by the base's id: the progress comment says
"preparing the environment" while one is built, and the check run which
image ran and whether it was built or cached.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from ..errors import ImageError, WorkspaceError
from ..github.render import Outcome
from ..repo_settings import RepoSettings
from ..repo_settings.devcontainer import (
    MAX_FILE_BYTES,
    PATHS,
    DevContainer,
    DevContainerProblem,
    parse_devcontainer,
)
from ..runner.recipe import BuildRecipe, Prepared
from ..workspace import Workspace
from . import outcomes
from .ports import Environments
from .report import Stage

PREPARING = "preparing the environment"


class EnvironmentStage(Stage):
    """Picks the run's image and makes it; an Outcome when that cannot be done."""

    async def prepare(self, workspace: Workspace) -> Outcome | None:
        state, repo = self.state, self.state.repo
        images = self.deps.images
        if images is None:
            return None
        devcontainer: DevContainer | None = None
        if not repo.image:
            found = await self._devcontainer(workspace)
            if isinstance(found, DevContainerProblem):
                return outcomes.environment_failed(f"{found.path}: {found.message}")
            devcontainer = found
        if not repo.image and devcontainer is None:
            return None
        image, build = repo.image, None
        if devcontainer is not None:
            image, build = devcontainer.image, _recipe(devcontainer)
            state.container_env = dict(devcontainer.container_env)
            if devcontainer.post_create and not state.ask:
                state.repo = _with_setup(repo, devcontainer.post_create)
            if devcontainer.ignored:
                self.report.log(
                    "phase", f"{devcontainer.path}: ignored {', '.join(devcontainer.ignored)}"
                )
        if build is not None and not self._own_clone():
            # a fork's Dockerfile would run its author's code on this bot's engine
            state.container_env = {}
            state.environment = "the runner image (a fork's Dockerfile is not built)"
            self.report.log("phase", f"environment: {state.environment}")
            return None
        return await self._make(images, workspace, image, build)

    async def _make(
        self, images: Environments, workspace: Workspace, image: str, build: BuildRecipe | None
    ) -> Outcome | None:
        """Makes the derived image (built, or found cached) and takes it as the run's.

        An Outcome when it cannot be made or the run is cancelled meanwhile.
        """
        state = self.state
        await self.report.phase(PREPARING)
        started = time.monotonic()

        def heard(line: str) -> None:
            self.state.progress.last_step = f"{PREPARING}: {line[:120]}"
            self.state.progress.dirty = True

        making = asyncio.ensure_future(
            asyncio.to_thread(
                images.prepare_image,
                state.ticket.repository,
                self.deps.settings.runner_image,
                image=image,
                build=build,
                work_tree=workspace.work_tree,
                on_line=heard,
                network=self.deps.settings.build_network,
                timeout=max(1.0, min(float(state.repo.command_timeout), state.remaining())),
            )
        )
        try:
            async with self.report.reporting():
                prepared = await self._unless_cancelled(making)
        except ImageError as exc:
            self.report.log("error", exc.message.splitlines()[0])
            return outcomes.environment_failed(exc.message, exc.lines)
        if prepared is None:
            return outcomes.cancelled(self.cancel.by)
        state.image = prepared.image
        how = (
            f"built in {time.monotonic() - started:.0f} s"
            if prepared.built
            else "cached, nothing built"
        )
        state.environment = f"`{prepared.image}`, derived from {prepared.base} ({how})"
        self.report.log("phase", f"environment: {state.environment}")
        return None

    async def _unless_cancelled(self, making: asyncio.Future[Prepared]) -> Prepared | None:
        """What the build made, or None as soon as the run is cancelled.

        A build the engine is running cannot be stopped from here: it goes on,
        and what it makes is cached for the next run.
        """
        stop: asyncio.Future[Any] = asyncio.ensure_future(self.cancel.event.wait())
        waited: set[asyncio.Future[Any]] = {making, stop}
        try:
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if making.done():
            return making.result()
        making.add_done_callback(lambda f: f.cancelled() or f.exception())  # heard, not raised
        return None

    async def _devcontainer(
        self, workspace: Workspace
    ) -> DevContainer | DevContainerProblem | None:
        for path in PATHS:
            try:
                raw = await asyncio.to_thread(workspace.read_committed, path, MAX_FILE_BYTES)
            except WorkspaceError as exc:
                return DevContainerProblem(path, exc.message)
            if raw is not None:
                return parse_devcontainer(path, raw.decode(errors="replace"))
        return None

    def _own_clone(self) -> bool:
        """Whether the run works on the repository's own clone (not a fork's)."""
        ticket = self.state.ticket
        return ticket.clone_url.removesuffix(".git").endswith("/" + ticket.repository)


def _recipe(devcontainer: DevContainer) -> BuildRecipe | None:
    if devcontainer.build is None:
        return None
    found = devcontainer.build
    return BuildRecipe(found.dockerfile, found.context, dict(found.args), found.target)


def _with_setup(repo: RepoSettings, command: str) -> RepoSettings:
    """The settings with the dev container's postCreateCommand as the first setup command."""
    return replace(repo, setup=(command, *repo.setup))
