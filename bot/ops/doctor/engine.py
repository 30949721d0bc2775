"""The Docker engine and the runner image."""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ...errors import BotError
from .check import Check, fail

# --- Docker and the runner image --------------------------------------------------


def check_docker(settings: Settings) -> tuple[Check, Any]:
    """The engine answers; returns the runner for the image check (None when down)."""
    from ...runner.docker import DockerRunner

    where = settings.docker_host or "the local socket"
    fix = (
        "start the Docker engine (dockerd, or `systemctl start docker`), or set DOCKER_HOST "
        "to one that runs"
    )
    if settings.docker_tls_verify or settings.docker_cert_path:
        certs = settings.docker_cert_path or "~/.docker"
        where += f" over TLS (certificates from {certs})"
        fix += (
            "; for TLS, DOCKER_CERT_PATH must hold the engine's CA as ca.pem and this "
            "client's cert.pem and key.pem, as the Docker CLI uses them"
        )
    runner = DockerRunner.of(settings)
    try:
        runner.ping()
        version = str(runner.client.version().get("Version", "?"))
    except BotError as exc:
        return (
            fail("Docker engine", f"{where}: {exc.message}"[:400], fix),
            None,
        )
    except Exception as exc:  # noqa: BLE001 (the SDK raises requests' and its own errors)
        return (
            fail("Docker engine", f"{where}: {exc.__class__.__name__}", fix),
            None,
        )
    return Check("Docker engine", True, f"{where}, Docker {version}"), runner


def check_runner_image(settings: Settings, runner: Any) -> Check:
    from ...runner.image import OPENCODE_VERSION

    name = "runner image"
    image = settings.runner_image
    if runner is None:
        return fail(
            name,
            f"{image}: not checked, the Docker engine is unreachable",
            "fix the Docker engine first",
        )
    try:
        labels = runner.image_labels(image)
    except BotError as exc:
        return fail(name, f"{image}: {exc.message}"[:400], "fix the Docker engine first")
    if labels is None:
        return fail(
            name,
            f"{image} is not on the Docker engine",
            f"build it with `autocode runner build` (or correct AUTOCODE_RUNNER_IMAGE={image})",
        )
    found = labels.get("autocode.opencode.version", "")
    if not found:
        return fail(
            name,
            f"{image} has no autocode.opencode.version label: not built by `autocode runner build`",
            "build it with `autocode runner build`",
        )
    if found != OPENCODE_VERSION:
        return fail(
            name,
            f"{image} has opencode {found}, this bot pins {OPENCODE_VERSION}",
            "rebuild it with `autocode runner build`",
        )
    return Check(name, True, f"{image}, opencode {found}")
