"""Composition root for the web process: build_app(settings) → Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import Settings
from .errors import DockerUnavailable, StoreError
from .github.client import GitHubApp
from .hooks import TicketEvents
from .llm.host import serving as serving_llm
from .metrics import Metrics
from .notify import Notifier, Publisher
from .pipeline.worker import Worker
from .runner.docker import DockerRunner
from .store import TicketStore, open_store
from .triggers.rules import RuleSettings
from .web import web_routes
from .webhook.endpoint import WebhookEndpoint

log = logging.getLogger("bot.app")


def build_events(
    settings: Settings, store: TicketStore, metrics: Metrics | None
) -> tuple[Notifier | None, Publisher]:
    """The notifier (when AUTOCODE_NOTIFY_URLS names receivers) and the worker's hooks."""
    notifier = (
        Notifier(
            store,
            settings.notify_secret,
            give_up_seconds=settings.notify_give_up_hours * 3600,
            metrics=metrics,
        )
        if settings.notify_urls
        else None
    )
    wake = notifier.wake if notifier is not None else None
    return notifier, Publisher(store, settings.notify_urls, metrics=metrics, wake=wake)


def build_worker(
    settings: Settings,
    store: TicketStore,
    runner: DockerRunner,
    *,
    metrics: Metrics | None = None,
    events: TicketEvents | None = None,
) -> Worker:
    github = GitHubApp(
        api_url=settings.github_api_url,
        private_key=settings.private_key,
        app_id=settings.app_id,
        client_id=settings.client_id,
        event_hooks=metrics.github_hooks() if metrics is not None else None,
    )
    if metrics is not None:
        metrics.watch_containers(lambda: runner.active)
    return Worker(settings, store, github, runner, events=events)


def build_app(
    settings: Settings, *, store: TicketStore | None = None, workers: bool = True
) -> Starlette:
    """The ASGI app: webhook, health, JSON API; in-process workers unless `workers` is False."""
    owns_store = store is None
    store = store or open_store(settings)
    metrics = Metrics(store)
    notifier, events = build_events(settings, store, metrics)
    runner = DockerRunner.of(settings)
    worker = (
        build_worker(settings, store, runner, metrics=metrics, events=events) if workers else None
    )

    def on_ticket(_ticket_id: int) -> None:
        """A new ticket: a worker may claim it, and its ticket.queued row is due."""
        if worker is not None:
            worker.wake()
        if notifier is not None:
            notifier.wake()

    endpoint = WebhookEndpoint(
        secret=settings.webhook_secret,
        store=store,
        rules=RuleSettings(
            trigger_label=settings.trigger_label,
            command=settings.command,
            app_id=settings.app_id or settings.client_id,
        ),
        on_ticket=on_ticket,
        metrics=metrics,
    )
    lifespan = _lifespan(
        settings, store, runner, metrics, worker=worker, notifier=notifier, owns_store=owns_store
    )
    return Starlette(
        routes=[
            Route("/webhook", endpoint.handle, methods=["POST"]),
            Route("/healthz", _healthz(store, runner), methods=["GET"]),
            Route("/metrics", metrics.handle, methods=["GET"]),
            *web_routes(settings, store),
        ],
        lifespan=lifespan,
    )


def _healthz(store: TicketStore, runner: DockerRunner) -> Callable[[Request], Awaitable[Response]]:
    """GET /healthz: the database and the Docker engine, each "ok" or why not."""

    async def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await run_in_threadpool(store.counts)
            checks["database"] = "ok"
        except StoreError as exc:
            checks["database"] = f"unreachable: {exc.message}"
        try:
            await run_in_threadpool(runner.ping)
            checks["docker"] = "ok"
        except DockerUnavailable:
            checks["docker"] = "unreachable"
        status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
        return JSONResponse({"status": status, **checks}, status_code=200)

    return healthz


def _lifespan(
    settings: Settings,
    store: TicketStore,
    runner: DockerRunner,
    metrics: Metrics,
    *,
    worker: Worker | None,
    notifier: Notifier | None,
    owns_store: bool,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The app's startup and shutdown: the LLM proxy, the workers and the notifier."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        llm = contextlib.AsyncExitStack()  # the LLM proxy: up before the runs, down after them
        task = None
        if worker is not None:
            proxy = await llm.enter_async_context(serving_llm(settings, runner))
            app.state.llm_proxy = proxy
            task = asyncio.create_task(worker.run_forever(stop, llm=proxy))
        stop_notifying = asyncio.Event()  # after the worker: its last runs' events go out too
        notifying = asyncio.create_task(notifier.run_forever(stop_notifying)) if notifier else None
        app.state.worker = worker
        app.state.store = store
        app.state.metrics = metrics
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                try:
                    await task
                except Exception:
                    log.exception("the workers stopped with an error")
            await llm.aclose()
            stop_notifying.set()
            if notifying is not None and (await asyncio.wait({notifying}, timeout=15))[1]:
                notifying.cancel()  # rows in flight are sent again after their lease
            if owns_store:
                store.close()

    return lifespan
