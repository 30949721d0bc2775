"""The fake GitHub's HTTP server: REST under /api/v3 and git smart HTTP.

Also: fault injection, rate-limit headers and the request log.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .github_checks import BLOB_PREFIX, serve_blob  # also registers its REST routes
from .github_git import http_backend
from .github_rest import DOCS, ApiError, Caller, Rest, auth_kind, basic_password, covers, has
from .github_web import WEB_PATH

if TYPE_CHECKING:
    from .github import FakeGitHub, Injection

DROP = -1  # tests/fakes/github.py's DROP: the answer breaks off

API_PREFIX = "/api/v3"
API_VERSIONS = ("2022-11-28", "2026-03-10")
GIT_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/"
    r"(?P<what>info/refs|git-upload-pack|git-receive-pack)$"
)
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    " If you reach out to GitHub Support for help, please include the request ID {id}."
)
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class DroppedAnswer(Response):
    """An answer that starts and breaks off: the client sees the connection drop mid-answer."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"4096")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise ConnectionAbortedError("the fake GitHub drops the connection (injected)")


def request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 3, 4, 4, 4))


def take_injection(fake: FakeGitHub, method: str, path: str) -> Injection | None:
    with fake._lock:
        for inj in fake.injections:
            if inj.times > 0 and inj.method in ("*", method) and inj.pattern.search(path):
                inj.times -= 1
                if inj.times == 0:
                    fake.injections.remove(inj)
                return inj
    return None


def rate_headers(
    fake: FakeGitHub, caller: Caller | None, count: bool
) -> tuple[dict[str, str], bool]:
    """The x-ratelimit-* headers after this request, and whether it was over the limit."""
    if caller is not None and caller.token is not None:
        key, limit = f"installation:{caller.token['installation_id']}", 5000
    elif caller is not None and caller.kind == "jwt":
        key, limit = f"app:{fake.app_id}", 5000
    else:
        key, limit = "ip:127.0.0.1", 60
    now = time.time()
    reset, used = fake.rate_used.get(key, (now + 3600, 0))
    if reset <= now:
        reset, used = now + 3600, 0
    exceeded = used >= limit
    if count and not exceeded:
        used += 1
    fake.rate_used[key] = (reset, used)
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(max(limit - used, 0)),
        "x-ratelimit-reset": str(int(reset)),
        "x-ratelimit-used": str(used),
        "x-ratelimit-resource": "core",
    }, exceeded


def body_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def json_response(status: int, data: Any, headers: dict[str, str]) -> Response:
    body = b"" if status == 204 or (status == 302 and data is None) else json.dumps(data).encode()
    return Response(
        body, status_code=status, headers=headers, media_type="application/json; charset=utf-8"
    )


def record(
    fake: FakeGitHub,
    request: Request,
    status: int,
    auth: str,
    started: float,
    body: Any = None,
    **extra: Any,
) -> None:
    with fake._lock:
        fake.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "status": status,
                "auth": auth,
                "time": started,
                "duration": time.time() - started,
                "body": body,
                **extra,
            }
        )


def build_app(fake: FakeGitHub) -> Starlette:
    rest = Rest(fake)

    async def endpoint(request: Request) -> Response:
        started = time.time()
        raw = await request.body()
        path = request.url.path
        is_api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        injected = take_injection(fake, request.method, path)
        if injected is not None:
            if injected.delay:
                await anyio.sleep(injected.delay)
            if injected.after and injected.status:
                await serve(request, raw, started, is_api, path)  # done; the answer is lost
            if injected.status == DROP:
                record(fake, request, 0, auth_kind(request.headers.get("authorization", "")),
                       started, injected=True, after=injected.after)  # fmt: skip
                return DroppedAnswer()
            if injected.status:
                return injected_response(request, injected, started, is_api)
        return await serve(request, raw, started, is_api, path)

    async def serve(
        request: Request, raw: bytes, started: float, is_api: bool, path: str
    ) -> Response:
        if is_api:
            return await api_call(request, raw, started)
        if path.startswith(BLOB_PREFIX):
            return await blob_call(request, started)
        if WEB_PATH.match(path):
            return await web_call(request, raw, started)
        match = GIT_PATH.match(path)
        if match is not None:
            return await git_call(request, raw, started, match)
        record(fake, request, 404, auth_kind(request.headers.get("authorization", "")), started)
        return json_response(404, {"message": "Not Found", "documentation_url": DOCS}, {})

    def injected_response(
        request: Request, inj: Injection, started: float, is_api: bool
    ) -> Response:
        rid = request_id()
        headers = {"x-github-request-id": rid}
        if is_api:
            with fake._lock:
                rates, _ = rate_headers(fake, None, False)
            headers.update(rates, **{"x-github-api-version-selected": API_VERSIONS[0]})
        headers.update({k.lower(): v for k, v in inj.headers.items()})
        body = inj.body
        if body is None:
            if inj.status in (403, 429):
                body = {"message": SECONDARY.format(id=rid), "documentation_url": DOCS}
            else:
                body = {"message": REASONS.get(inj.status, "Error")}
        auth = auth_kind(request.headers.get("authorization", ""))
        # after=True: the same request's real answer is on record just before this one
        record(fake, request, inj.status, auth, started, injected=True, after=inj.after)
        return json_response(inj.status, body, headers)

    async def api_call(request: Request, raw: bytes, started: float) -> Response:
        sub = request.url.path[len(API_PREFIX) :] or "/"
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)
        version = headers.get("x-github-api-version", API_VERSIONS[0])

        def run() -> tuple[int, Any, dict[str, str], str, Any]:
            with fake._lock:
                caller: Caller | None = None
                if version not in API_VERSIONS:
                    err = ApiError(400, f"API version '{version}' is not supported.")
                    status, data, extra = err.status, err.body(), err.headers
                else:
                    (status, data, extra), caller = rest.handle(
                        request.method, sub, query, headers, raw
                    )
                rates, exceeded = rate_headers(fake, caller, caller is not None)
                if exceeded:
                    who = (
                        f"installation ID {caller.token['installation_id']}"
                        if caller is not None and caller.token
                        else "127.0.0.1"
                    )
                    status, extra = 403, {}
                    data = {
                        "message": f"API rate limit exceeded for {who}.",
                        "documentation_url": DOCS,
                    }
                kind = (
                    caller.kind
                    if caller is not None
                    else auth_kind(headers.get("authorization", ""))
                )
                return status, data, {**rates, **extra}, kind, body_or_none(raw)

        status, data, extra, kind, body = await anyio.to_thread.run_sync(run)
        response_headers = {
            "x-github-request-id": request_id(),
            "x-github-api-version-selected": version
            if version in API_VERSIONS
            else API_VERSIONS[0],
            "x-github-media-type": "github.v3; format=json",
            **extra,
        }
        record(fake, request, status, kind, started, body=body)
        return json_response(status, data, response_headers)

    async def blob_call(request: Request, started: float) -> Response:
        """The blob host (signed job-log URLs, github_checks.py): no GitHub auth, no
        rate limit; an Authorization header is refused and recorded as a violation."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)

        def run() -> tuple[int, bytes, dict[str, str]]:
            with fake._lock:
                return serve_blob(fake, request.method, request.url.path, query, headers)

        status, body, extra = await anyio.to_thread.run_sync(run)
        record(fake, request, status, auth_kind(headers.get("authorization", "")), started,
               blob=True)  # fmt: skip
        return Response(body, status_code=status, headers=extra)

    async def web_call(request: Request, raw: bytes, started: float) -> Response:
        """The App manifest flow's pages (github_web.py); the browser's cookies are not
        checked: the fake's web visitor is always `fake.manifests.signed_in`."""
        path, query = request.url.path, dict(request.query_params)
        ctype = request.headers.get("content-type", "")

        def run() -> tuple[int, str, dict[str, str]]:
            with fake._lock:
                return fake.manifests.handle(request.method, path, query, raw, ctype)

        status, text, headers = await anyio.to_thread.run_sync(run)
        record(fake, request, status, "web", started)
        return Response(text, status_code=status, headers=headers)

    async def git_call(
        request: Request, raw: bytes, started: float, match: re.Match[str]
    ) -> Response:
        what = match.group("what")
        service = request.query_params.get("service", "") if what == "info/refs" else what
        header = request.headers.get("authorization", "")
        kind = auth_kind(header)

        def deny(status: int, message: str, *, challenge: bool = False) -> Response:
            record(fake, request, status, kind, started, service=service)
            headers = {"www-authenticate": 'Basic realm="GitHub"'} if challenge else {}
            return Response(
                message + "\n", status_code=status, headers=headers, media_type="text/plain"
            )

        if service not in ("git-upload-pack", "git-receive-pack"):
            return deny(403, "Dumb HTTP is not supported.")
        push = service == "git-receive-pack"
        with fake._lock:
            repo = fake.find_repo(f"{match.group('owner')}/{match.group('name')}")
            if not header:
                if repo is not None and not repo.private and not push and fake.allow_anonymous_git:
                    token = None
                else:
                    return deny(401, "Authentication required.", challenge=True)
            else:
                password = basic_password(header)
                record_ = fake.token_index.get(password or "")
                if record_ is None or record_["expires_ts"] <= time.time():
                    return deny(
                        401,
                        "Invalid username or token. Password authentication is not"
                        " supported for Git operations.",
                        challenge=True,
                    )
                token = record_
            if repo is None:
                return deny(404, "Repository not found.")
            if token is not None:
                if not covers(fake, token, repo):
                    if push and not repo.private:
                        return deny(403, "Write access to repository not granted.")
                    return deny(404, "Repository not found.")
                if push and not has(token["permissions"], "contents", "write"):
                    return deny(403, "Write access to repository not granted.")
                if not has(token["permissions"], "contents", "read"):
                    return deny(403, "Read access to repository not granted.")
            path_info = f"/{repo.owner}/{repo.name}.git/{what}"
            root = fake.root

        result = await anyio.to_thread.run_sync(
            lambda: http_backend(
                root,
                method=request.method,
                path_info=path_info,
                query=request.url.query,
                content_type=request.headers.get("content-type", ""),
                body=raw,
                remote_user="x-access-token",
                git_protocol=request.headers.get("git-protocol", ""),
                content_encoding=request.headers.get("content-encoding", ""),
            )
        )
        record(fake, request, result.status, kind, started, service=service)
        return Response(
            result.body,
            status_code=result.status,
            headers={k: v for k, v in result.headers if k.lower() != "content-length"},
        )

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])
