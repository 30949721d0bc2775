"""Writes that create something, never doubled.

A POST that fails with a 5xx answer, a timeout or a dropped connection may
have been carried out by GitHub all the same; sent again blindly, it makes
a second comment, pull request or check run. So a creating write is sent
without githubkit's retries. When it fails that way, what it would have
made is looked for first — a comment or reply by its exact body (which
holds the ticket's hidden marker), a pull request by its head branch, a
check run by its `external_id` — and reused when found; only otherwise is
it sent again. Rate limits are still waited out and retried: a refused
request did nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import GitHubError
from .calls import Backoff, status_of

log = logging.getLogger("bot.github")

T = TypeVar("T")

ATTEMPTS = 4
ONCE = Backoff(error_retries=0)  # githubkit's retries for a creating write: rate limits only
LOOKBACK = 600.0  # seconds: what a lookup reads back (beyond any clock skew with GitHub)


def maybe_done(exc: GitHubError) -> bool:
    """Whether GitHub may have carried out a write that failed with `exc`."""
    status = status_of(exc)
    return status is None or status >= 500


def since(now: float | None = None) -> str:
    """The `since` of a lookup for something made around now, as GitHub spells a time.

    Given as text: githubkit would send a datetime as `str()` makes it (a space
    instead of the `T`), which is not the ISO 8601 form GitHub documents.
    """
    moment = (now if now is not None else time.time()) - LOOKBACK
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


async def create_once(
    make: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    pause: float = 0.5,
) -> T:
    """`make` it once; after a failure GitHub may have done anyway, `find` it before again."""
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(pause * 2 ** (attempt - 1))
            found = await find()
            if found is not None:
                log.info("a failed GitHub write was done after all; reused", extra={"what": what})
                return found
        try:
            return await make()
        except GitHubError as exc:
            if not maybe_done(exc) or attempt == ATTEMPTS - 1:
                raise
            log.warning(
                "GitHub write failed; looking for it before sending it again",
                extra={"what": what, "error": exc.message, "retry": attempt + 1},
            )
    raise AssertionError("unreachable")
