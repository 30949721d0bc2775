"""Fixtures shared by the suites: the Docker engine and the runner image are real."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from bot.runner.docker import DockerRunner
from bot.runner.image import build_image
from tests.browser import launch, new_page

RUNNER_IMAGE = os.environ.get("AUTOCODE_TEST_RUNNER_IMAGE", "autocode-runner:latest")


@pytest.fixture(scope="session")
def docker_runner() -> Iterator[DockerRunner]:
    """The local Docker engine with the runner image built. Fails (never skips) without it."""
    runner = DockerRunner(os.environ.get("DOCKER_HOST", ""))
    try:
        runner.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"these tests need a running Docker engine ({exc}); .ci/run starts one", pytrace=False
        )
    if runner.image_labels(RUNNER_IMAGE) is None:
        build_image(runner.client, RUNNER_IMAGE)
    yield runner


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the session. Fails (never skips) without it."""
    from tests.pg import PostgresMissing, binaries, postgres_server

    try:
        binaries()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for a module's tests."""
    yield from launch()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and tab."""
    yield from new_page(browser)
