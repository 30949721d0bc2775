"""`autocode`: serve, worker, runner build, setup, doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .config import Settings, load_environ
from .errors import BotError, DockerUnavailable
from .logs import configure

log = logging.getLogger("bot.cli")


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _settings() -> Settings:
    return Settings.from_environ(load_environ())


def _require_github(settings: Settings) -> bool:
    missing = settings.missing_for_github()
    if not missing:
        return True
    _say("Auto-Code cannot talk to GitHub yet. These GitHub App settings are missing:")
    for item in missing:
        _say(f"  - {item}")
    _say("Create the App with `autocode setup`, or set them in the environment or in ./.env.")
    return False


def ensure_runner_image(settings: Settings) -> None:
    """Build the runner image when the engine is up and the image is missing."""
    from .runner.docker import DockerRunner
    from .runner.image import build_image

    runner = DockerRunner(settings.docker_host)
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

    from .app import build_app

    settings = _settings()
    configure(settings.log_level, settings.log_json)
    if not _require_github(settings):
        return 2
    if not args.no_workers:
        ensure_runner_image(settings)
    app = build_app(settings, workers=not args.no_workers)
    log.info("serving", extra={"host": args.host, "port": args.port})
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .app import build_events, build_worker
    from .llm.host import serving as serving_llm
    from .metrics import Metrics
    from .store import open_store

    settings = _settings()
    configure(settings.log_level, settings.log_json)
    if not _require_github(settings):
        return 2
    ensure_runner_image(settings)
    store = open_store(settings)
    metrics = Metrics(store)
    notifier, events = build_events(settings, store, metrics)
    worker = build_worker(settings, store, metrics=metrics, events=events)
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
        async with serving_llm(settings, worker.runner):  # provider keys stay in this process
            await worker.run_forever(stop)
        stop_notifying.set()  # after the runs: their ticket.finished rows go out too
        if notifying is not None and (await asyncio.wait({notifying}, timeout=15))[1]:
            notifying.cancel()

    asyncio.run(main())
    store.close()
    return 0


def cmd_runner_build(args: argparse.Namespace) -> int:
    from .runner.docker import DockerRunner
    from .runner.image import OPENCODE_VERSION, build_image

    settings = _settings()
    configure(settings.log_level, settings.log_json)
    runner = DockerRunner(settings.docker_host)
    runner.ping()
    image_id = build_image(runner.client, args.tag or settings.runner_image, args.opencode_version)
    _say(
        f"built {args.tag or settings.runner_image} ({image_id[:19]}) with opencode "
        f"{args.opencode_version or OPENCODE_VERSION}"
    )
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    import os

    from .setup import SetupOptions, run_setup

    environ = load_environ()
    settings = Settings.from_environ(environ)
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
        _say(f"note: the settings name App {settings.app_id} already; setup replaces it")

    def ready(url: str) -> None:
        _say(f"Open {url} in a browser signed in to {settings.github_url} to create the App.")

    written = run_setup(options, os.environ, ready)
    creds = written.credentials
    _say(f"GitHub App {creds.slug} (id {creds.app_id}) created.")
    _say(f"Credentials written to {written.env_file}, its key to {written.key_file}.")
    for name in written.shadowed:
        _say(f"warning: {name} is set in the environment and wins over {written.env_file}")
    _say(f"Install it on your repositories: {creds.install_url}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from .doctor import run_checks

    checks = run_checks(load_environ())
    if args.json:
        sys.stdout.write(json.dumps([c.as_json() for c in checks], indent=2) + "\n")
    else:
        for check in checks:
            for line in check.lines():
                _say(line)
    return 0 if all(c.ok for c in checks) else 1


def parser() -> argparse.ArgumentParser:
    from .runner.image import OPENCODE_VERSION

    top = argparse.ArgumentParser(prog="autocode", description="Auto-Code bot")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="webhook receiver, dashboard, API and workers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-workers", action="store_true", help="receive only; no runs here")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run tickets without the web server")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="where /metrics listens")
    worker.add_argument("--metrics-port", type=int, default=0, help="serve /metrics (0: off)")
    worker.set_defaults(func=cmd_worker)

    runner = sub.add_parser("runner", help="the agent image")
    runner_sub = runner.add_subparsers(dest="runner_command", required=True)
    build = runner_sub.add_parser("build", help="build the agent image from Dockerfile.runner")
    build.add_argument("--tag", default="", help="image tag (default AUTOCODE_RUNNER_IMAGE)")
    build.add_argument("--opencode-version", default=OPENCODE_VERSION)
    build.set_defaults(func=cmd_runner_build)

    setup = sub.add_parser("setup", help="create the GitHub App (manifest flow), write .env")
    setup.add_argument("--org", default="", help="create it for this organization")
    setup.add_argument("--host", default="127.0.0.1", help="where the local setup page listens")
    setup.add_argument("--port", type=int, default=3000, help="its port (0: any free port)")
    setup.add_argument("--webhook-url", default="", help="default AUTOCODE_PUBLIC_URL/webhook")
    setup.add_argument("--name", default="", help="the App's name (editable on GitHub)")
    setup.add_argument("--env-file", default=".env", help="where the credentials are written")
    setup.set_defaults(func=cmd_setup)

    doctor = sub.add_parser("doctor", help="check settings, GitHub App, database, Docker, LLM")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=cmd_doctor)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BotError as exc:
        _say(f"autocode: {exc.message}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
