"""`autocode`: serve, worker, runner build, images, setup, doctor.

The parser and the entry point; what each command does is in `bot.cli.commands`
(`images` in `bot.cli.images`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..errors import BotError
from .commands import (
    DEFAULT_ENV_FILE,
    cmd_doctor,
    cmd_runner_build,
    cmd_serve,
    cmd_setup,
    cmd_worker,
    say,
)
from .images import cmd_images


def _command(
    sub: Any, name: str, help_text: str, *, env_file: bool = True
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows every option's default."""
    command: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    if env_file:
        command.add_argument(
            "--env-file",
            default=DEFAULT_ENV_FILE,
            help="settings file read under the process environment (which wins)",
        )
    return command


def parser() -> argparse.ArgumentParser:
    from .. import __version__
    from ..runner.image import OPENCODE_VERSION

    top = argparse.ArgumentParser(
        prog="autocode",
        description="Auto-Code bot: GitHub issues to pull requests with the OpenCode agent.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    top.add_argument(
        "--version",
        action="version",
        version=f"autocode {__version__} (opencode {OPENCODE_VERSION})",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(sub, "serve", "webhook receiver, dashboard, API and workers")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--no-workers", action="store_true", help="receive only; no runs here")
    serve.set_defaults(func=cmd_serve)

    worker = _command(sub, "worker", "run tickets without the web server")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="where /metrics listens")
    worker.add_argument("--metrics-port", type=int, default=0, help="serve /metrics (0: off)")
    worker.set_defaults(func=cmd_worker)

    runner = _command(sub, "runner", "the agent image", env_file=False)
    runner_sub = runner.add_subparsers(dest="runner_command", required=True, metavar="COMMAND")
    build = _command(runner_sub, "build", "build the agent image from Dockerfile.runner")
    build.add_argument("--tag", default="", help="image tag (empty: AUTOCODE_RUNNER_IMAGE)")
    build.add_argument("--opencode-version", default=OPENCODE_VERSION, help="opencode to put in")
    build.set_defaults(func=cmd_runner_build)

    _images(sub)

    setup = _command(sub, "setup", "create the GitHub App (manifest flow), write the env file")
    setup.add_argument("--org", default="", help="create it for this organization")
    setup.add_argument("--host", default="127.0.0.1", help="where the local setup page listens")
    setup.add_argument("--port", type=int, default=3000, help="its port (0: any free port)")
    setup.add_argument(
        "--webhook-url",
        default="",
        help="where GitHub sends events (empty: AUTOCODE_PUBLIC_URL/webhook)",
    )
    setup.add_argument("--name", default="", help="the App's name (editable on GitHub)")
    setup.set_defaults(func=cmd_setup)

    doctor = _command(sub, "doctor", "check settings, GitHub App, database, Docker, LLM")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=cmd_doctor)
    return top


def _images(sub: Any) -> None:
    """`autocode images`: list the derived agent images, or prune them."""
    images = _command(sub, "images", "list the derived agent images; --prune removes unused ones")
    images.add_argument(
        "--json", action="store_true", help="print them (or what --prune did) as JSON"
    )
    images.add_argument(
        "--prune", action="store_true", help="remove the derived images no container uses"
    )
    images.add_argument(
        "--older-than",
        type=float,
        default=0.0,
        metavar="DAYS",
        help="with --prune, only those created more than DAYS days ago (0: any age)",
    )
    images.set_defaults(func=cmd_images)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BotError as exc:
        say(f"autocode: {exc.message}")
        return 1
    except KeyboardInterrupt:
        return 130
