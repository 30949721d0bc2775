"""Calling GitHub through githubkit: retries and backoff, timeouts, errors as GitHubError."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed
from githubkit.typing import RetryOption

from ..errors import GitHubError

log = logging.getLogger("bot.github")

MAX_RETRY_WAIT = 900.0  # seconds: the longest a single rate-limit wait may last


class Backoff:
    """githubkit's retry decision, tuned for a bot that must reach the same end state.

    Rate limits (403/429 with `retry-after` or an exhausted `x-ratelimit-*`)
    wait as long as GitHub asks, capped; 5xx answers, timeouts and dropped
    connections back off exponentially. githubkit's own deciders are not used
    because a `retry-after: 0` becomes a falsy timedelta, which it turns into
    a 60 s sleep.
    """

    def __init__(self, *, rate_limit_retries: int = 4, error_retries: int = 4) -> None:
        self.rate_limit_retries = rate_limit_retries
        self.error_retries = error_retries

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            if retry_count >= self.rate_limit_retries:
                return RetryOption(False)
            wait = min(max(exc.retry_after.total_seconds(), 1.0), MAX_RETRY_WAIT)
            log.warning(
                "GitHub rate limit; waiting",
                extra={"seconds": wait, "path": exc.request.url.path, "retry": retry_count + 1},
            )
            return RetryOption(True, timedelta(seconds=wait))
        if retry_count >= self.error_retries:
            return RetryOption(False)
        if isinstance(exc, RequestFailed):
            if exc.response.status_code < 500:
                return RetryOption(False)
        elif not isinstance(exc, RequestError):
            return RetryOption(False)
        wait = 0.5 * 2**retry_count
        log.warning(
            "GitHub request failed; retrying",
            extra={"error": exc.__class__.__name__, "seconds": wait, "retry": retry_count + 1},
        )
        return RetryOption(True, timedelta(seconds=wait))


RETRY = Backoff()


def token_client(
    api_url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    event_hooks: EventHooks | None = None,
    retry: Backoff = RETRY,
) -> GitHub[TokenAuthStrategy]:
    """A githubkit client acting with `token`: the bot's retry policy and timeouts, no cache."""
    return GitHub(
        TokenAuthStrategy(token),
        base_url=api_url,
        auto_retry=retry,
        timeout=TIMEOUT,
        http_cache=False,
        async_event_hooks=event_hooks,
        async_transport=transport,
    )


class SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool for all of an owner's GitHub calls, kept open between them.

    Outside an `async with`, githubkit makes a new httpx client for every
    request and closes it after: a new TCP (and TLS) connection each time,
    and about 20 ms just to build the client's SSL context. Given this
    transport, a client costs nothing to make and its requests reuse the
    pool's connections; closing a client leaves the pool open, and its owner
    closes it (`close`) when done. The pool belongs to the event loop of its
    first request: an owner lives in one loop.
    """

    def __init__(self) -> None:
        self._pool = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """A githubkit client is done with it: the pool stays open for the next one."""

    async def close(self) -> None:
        await self._pool.aclose()


TIMEOUT = httpx.Timeout(30.0, connect=10.0)

T = TypeVar("T")
EventHooks = Mapping[str, list[Callable[..., Any]]]  # httpx's event_hooks


def _describe(exc: GitHubException) -> str:
    if isinstance(exc, RequestFailed):
        response = exc.response
        message = ""
        try:
            data = response.json()
            if isinstance(data, dict):
                message = str(data.get("message", ""))
        except ValueError:
            pass
        request = exc.request
        return f"GitHub answered {response.status_code} to {request.method} {request.url.path}" + (
            f": {message}" if message else ""
        )
    if isinstance(exc, RequestError):
        origin = exc.exc
        where = ""
        sent = getattr(origin, "_request", None)
        if isinstance(sent, httpx.Request):
            where = f" ({sent.method} {sent.url.path})"
        return f"cannot reach GitHub{where}: {origin.__class__.__name__}: {origin}"[:500]
    return f"GitHub request failed: {exc.__class__.__name__}"


async def call(what: Callable[[], Awaitable[T]]) -> T:
    """Await a githubkit call, turning its failures into GitHubError."""
    try:
        return await what()
    except GitHubException as exc:
        raise GitHubError(_describe(exc)) from exc
    except httpx.HTTPError as exc:
        raise GitHubError(f"cannot reach GitHub: {exc.__class__.__name__}") from exc


def status_of(exc: BaseException) -> int | None:
    cause = exc.__cause__
    if isinstance(cause, RequestFailed):
        return int(cause.response.status_code)
    return None
