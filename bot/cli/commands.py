"""What each `autocode` subcommand does: serve, worker, runner build, setup, doctor.

`bot.cli` parses the command line and calls one of these with the parsed
arguments; each returns the process's exit status. Settings come from the
process environment over the env file (--env-file). `images` is in
`bot.cli.images`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..config import Settings, load_environ
from ..errors import BotError, DockerUnavailable, SettingsError
from ..logs import configure, uvicorn_log_config

log = logging.getLogger("bot.cli")

DEFAULT_ENV_FILE = ".env"


def say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _environ(args: argparse.Namespace, *, writes: bool = False) -> dict[str, str]:
    """The process environment over --env-file.

    A file named on purpose must exist, except for the commands that write it
    (`setup`, and `serve` whose setup page does).
    """
    env_file = Path(args.env_file).expanduser()
    if not writes and args.env_file != DEFAULT_ENV_FILE and not env_file.is_file():
        raise SettingsError(f"the env file {str(env_file)!r} does not exist")
    return load_environ(env_file)


def _settings(args: argparse.Namespace, *, writes: bool = False) -> Settings:
    return Settings.from_environ(_environ(args, writes=writes))


def _require_github(settings: Settings) -> bool:
    missing = settings.missing_for_github()
    if not missing:
        return True
    say("Auto-Code cannot talk to GitHub yet. These GitHub App settings are missing:")
    for item in missing:
        say(f"  - {item}")
    say(
        "Create the App on the setup page of `autocode serve` or with `autocode setup`, "
        "or set them in the environment or in the env file (--env-file, default ./.env)."
    )
    return False


def ensure_runner_image(settings: Settings) -> None:
    """Build the runner image when the engine is up and the image is missing."""
    from ..runner.docker import DockerRunner
    from ..runner.image import build_image

    runner = DockerRunner.of(settings)
    try:
        runner.ping()
        if runner.image_labels(settings.runner_image) is None:
            log.info("runner image missing; building it", extra={"image": settings.runner_image})
            build_image(runner.client, settings.runner_image)
            log.info("runner image built", extra={"image": settings.runner_image})
    except DockerUnavailable as exc:
        log.warning(
            "Docker engine unreachable; runs wait until it is", extra={"error": exc.message}
        )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..app import build_app
    from ..ops.onboarding import Onboarding, missing

    settings = _settings(args, writes=True)
    configure(settings.log_level, settings.log_json)
    runs_agents = not args.no_workers
    app: Any
    if not missing(settings, runs_agents=runs_agents):
        if runs_agents:
            ensure_runner_image(settings)
        app = build_app(settings, workers=runs_agents)
    else:
        building = _build_in_background(settings) if runs_agents else None
        app = Onboarding(
            lambda: _settings(args, writes=True),
            lambda ready: build_app(ready, workers=runs_agents),
            settings=settings,
            env_file=Path(args.env_file).expanduser().resolve(),
            process_env=os.environ,
            runs_agents=runs_agents,
            preparing=(
                (lambda: "being built (its steps are in the log)" if building.is_alive() else "")
                if building is not None
                else None
            ),
        )
        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host, args.host)  # noqa: S104
        log.warning(
            "not set up yet: open the setup page",
            extra={
                "url": f"http://{shown}:{args.port}/",
                "missing": ", ".join(m.what for m in app.missing),
            },
        )
    log.info("serving", extra={"host": args.host, "port": args.port})
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=uvicorn_log_config(),
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


def _build_in_background(settings: Settings) -> threading.Thread:
    """The runner image, built while the setup page is served (runs wait for it)."""

    def build() -> None:
        try:
            ensure_runner_image(settings)
        except BotError as exc:
            log.error(
                "the runner image could not be built",
                extra={"error": exc.message, "fix": "fix that, then run `autocode runner build`"},
            )

    thread = threading.Thread(target=build, name="runner-image", daemon=True)
    thread.start()
    return thread


def cmd_worker(args: argparse.Namespace) -> int:
    from ..app import build_events, build_worker
    from ..llm.host import serving as serving_llm
    from ..metrics import Metrics
    from ..runner.docker import DockerRunner
    from ..store import open_store

    settings = _settings(args)
    configure(settings.log_level, settings.log_json)
    if not _require_github(settings):
        return 2
    ensure_runner_image(settings)
    store = open_store(settings)
    metrics = Metrics(store)
    notifier, events = build_events(settings, store, metrics)
    runner = DockerRunner.of(settings)
    worker = build_worker(settings, store, runner, metrics=metrics, events=events)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, args.metrics_host, registry=metrics.registry)
        log.info("metrics served", extra={"host": args.metrics_host, "port": args.metrics_port})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stop_notifying = asyncio.Event()
        notifying = asyncio.create_task(notifier.run_forever(stop_notifying)) if notifier else None
        async with serving_llm(settings, runner) as llm:  # keys stay in this process
            await worker.run_forever(stop, llm=llm)
        stop_notifying.set()  # after the runs: their ticket.finished rows go out too
        if notifying is not None and (await asyncio.wait({notifying}, timeout=15))[1]:
            notifying.cancel()

    asyncio.run(main())
    store.close()
    return 0


def cmd_runner_build(args: argparse.Namespace) -> int:
    from ..runner.docker import DockerRunner
    from ..runner.image import OPENCODE_VERSION, build_image

    settings = _settings(args)
    configure(settings.log_level, settings.log_json)
    runner = DockerRunner.of(settings)
    runner.ping()
    image_id = build_image(runner.client, args.tag or settings.runner_image, args.opencode_version)
    say(
        f"built {args.tag or settings.runner_image} ({image_id[:19]}) with opencode "
        f"{args.opencode_version or OPENCODE_VERSION}"
    )
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    import os

    from ..ops.manifest import SetupOptions
    from ..ops.setup_site import run_setup

    settings = _settings(args, writes=True)
    configure(settings.log_level, settings.log_json)
    options = SetupOptions.build(
        github_url=settings.github_url,
        api_url=settings.github_api_url,
        public_url=settings.public_url,
        webhook_url=args.webhook_url,
        name=args.name,
        org=args.org,
        env_file=args.env_file,
        host=args.host,
        port=args.port,
    )
    if settings.app_id:
        say(f"note: the settings name App {settings.app_id} already; setup replaces it")

    def ready(url: str) -> None:
        say(f"Open {url} in a browser signed in to {settings.github_url} to create the App.")

    written = run_setup(options, os.environ, ready)
    creds = written.credentials
    say(f"GitHub App {creds.slug} (id {creds.app_id}) created.")
    say(f"Credentials written to {written.env_file}, its key to {written.key_file}.")
    for name in written.shadowed:
        say(f"warning: {name} is set in the environment and wins over {written.env_file}")
    say(f"Install it on your repositories: {creds.install_url}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from ..ops.doctor import run_checks

    checks = run_checks(_environ(args))
    if args.json:
        sys.stdout.write(json.dumps([c.as_json() for c in checks], indent=2) + "\n")
    else:
        for check in checks:
            for line in check.lines():
                say(line)
    return 0 if all(c.ok for c in checks) else 1
