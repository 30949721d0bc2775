"""The proxy's two legs: a request as the provider gets it, an answer as the agent gets it.

The provider gets the request with its real key in place of the capability;
the agent gets the answer byte for byte (SSE as it arrives, a JSON document
whole), with the key masked in error answers, and its tokens are counted
against the run's grant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .grant import KEY_HEADERS, Grant
from .meter import Meter
from .providers import Upstream

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    }
)  # fmt: skip


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    # the shape both OpenAI's and Anthropic's SDKs read a message from
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status)


def outgoing(request: Request, upstream: Upstream) -> tuple[str, dict[str, str]]:
    """The provider's URL for a request, and its headers with the real key in place."""
    url = f"{upstream.base_url}/{request.path_params['path']}"
    if request.url.query:
        url += f"?{request.url.query}"
    headers = {
        k: v
        for k, v in request.headers.items()
        if k not in HOP_BY_HOP and k not in KEY_HEADERS and k != "accept-encoding"
    }
    name, value = upstream.auth_header()
    headers[name] = value
    headers["accept-encoding"] = "identity"  # the usage must be readable on the way back
    return url, headers


async def failed_answer(
    answer: httpx.Response, upstream: Upstream, passed: dict[str, str]
) -> Response:
    """A provider's error answer, passed on to the agent."""
    # an error is small and read whole: a provider that echoes the key gets it masked
    try:
        error = await answer.aread()
    except httpx.HTTPError:
        error = b""
    finally:
        await answer.aclose()
    error = error.replace(upstream.key.encode(), b"***")
    passed.pop("content-encoding", None)  # aread() has decoded it
    return Response(error, status_code=answer.status_code, headers=passed)


async def whole_answer(
    answer: httpx.Response, meter: Meter, grant: Grant, passed: dict[str, str]
) -> Response:
    """A non-streamed answer (one JSON document, as for opencode's title): read, counted, sent.

    Sent as one plain response: a stream's machinery (a task watching for the
    client's disconnect, one write per chunk) costs more than the answer.
    """
    try:
        content = await answer.aread()
    except httpx.HTTPError as exc:
        grant.usage.failed += 1
        return error_response(
            502, f"the provider's answer broke off ({type(exc).__name__})", "api_error"
        )
    finally:
        await answer.aclose()
    meter.feed(content)
    grant.usage.tokens.add(meter.finish())
    return Response(content, status_code=answer.status_code, headers=passed)


async def streamed_answer(
    answer: httpx.Response, meter: Meter, grant: Grant
) -> AsyncIterator[bytes]:
    """The answer's bytes as they arrive; its tokens count against the grant once it ends."""
    try:
        async for chunk in answer.aiter_raw():
            meter.feed(chunk)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await answer.aclose()
        grant.usage.tokens.add(meter.finish())
