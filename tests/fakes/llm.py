"""A scripted OpenAI-compatible LLM on loopback that drives the real opencode.

    with ScriptedLLM() as llm:
        llm.script([tool("write", filePath="a.txt", content="hi\\n"), text("Done.")])
        ...give opencode llm.provider_config() and --model fake/scripted...

opencode first asks for a session title (a request without tools): that is
answered with a fixed title and consumes no step. Every request that offers
tools takes the next step of the script: a tool call (finish_reason
`tool_calls`), a text answer (`stop`), a hang (the answer never comes until
`release()`), or an HTTP error. When the script runs out the model answers
"Done.". Every request body is kept in `requests` to assert on.

When several runs share the server at once, one queue of steps cannot say
which run gets which step: set `on_tools` to a function of the request body
that returns the step (e.g. from the prompt, or from whether a tool result
is already in the messages); returning None falls back to the script.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .server import ServerThread

MODEL = "scripted"
PROVIDER = "fake"
TITLE = "Scripted run"


@dataclass(frozen=True)
class Step:
    """One answer of the model."""

    kind: str  # tool | text | hang | error | slow
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    status: int = 0
    delay: float = 0.0
    repeat: bool = False  # an error step that answers every later request too
    usage: tuple[int, int] = (120, 30)


def tool(name: str, **arguments: Any) -> Step:
    """A call of opencode's tool `name` (write: filePath, content; bash: command, description)."""
    return Step("tool", name=name, arguments=arguments)


def text(answer: str) -> Step:
    """A final text answer: the run ends."""
    return Step("text", text=answer)


def hang() -> Step:
    """The model starts answering and then goes silent until `release()`."""
    return Step("hang")


def slow(step: Step, seconds: float) -> Step:
    """`step`, answered only after `seconds` of silence."""
    return Step(step.kind, step.name, step.arguments, step.text, step.status, seconds, step.repeat)


def error(status: int = 500, *, repeat: bool = True) -> Step:
    """An HTTP error answer (for every later request too, unless `repeat` is False)."""
    return Step("error", status=status, repeat=repeat)


class ScriptedLLM:
    """The server and its script. See the module docstring."""

    def __init__(self, api_key: str = "scripted-key") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._steps: list[Step] = []
        self._sticky: Step | None = None
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._ids = itertools.count(1)
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        # picks the step of a request that offers tools from its body; None: the script
        self.on_tools: Callable[[dict[str, Any]], Step | None] | None = None
        self.title_usage: tuple[int, int] = (120, 30)  # what the title answer reports
        self._server = ServerThread(self._app())
        self.url = self._server.url
        self.base_url = f"{self.url}/v1"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> ScriptedLLM:
        self._server.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.stop()

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the script ----------------------------------------------------------
    def script(self, steps: Iterable[Step]) -> None:
        with self._lock:
            self._steps = list(steps)
            self._sticky = None
            self._released.clear()

    def add(self, steps: Iterable[Step]) -> None:
        with self._lock:
            self._steps.extend(steps)

    def release(self) -> None:
        """Let hanging answers end (they end with an error, as a dropped stream would)."""
        self._released.set()

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._steps)

    def provider_config(self, *, base_url: str | None = None) -> dict[str, Any]:
        """An opencode.json that makes `fake/scripted` talk to this server."""
        return {
            "$schema": "https://opencode.ai/config.json",
            "provider": {
                PROVIDER: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Fake",
                    "options": {"baseURL": base_url or self.base_url, "apiKey": self.api_key},
                    "models": {MODEL: {"name": "Scripted"}},
                }
            },
            "model": f"{PROVIDER}/{MODEL}",
            "autoupdate": False,
            "share": "disabled",
        }

    def _texts(self, role: str, joiner: str) -> list[str]:
        """The text of every message of `role` the model saw, in order, without repeats."""
        seen: list[str] = []
        for request in self.requests:
            for message in request["body"].get("messages", []):
                if message.get("role") != role:
                    continue
                content = message.get("content")
                if isinstance(content, list):
                    content = joiner.join(
                        str(p.get("text", "")) for p in content if isinstance(p, dict)
                    )
                if str(content) not in seen:
                    seen.append(str(content))
        return seen

    def tool_results(self) -> list[str]:
        """Every tool output opencode sent back to the model, in order, without repeats."""
        return self._texts("tool", "")

    def prompts(self) -> list[str]:
        """The text of every user message the model saw, without repeats."""
        return self._texts("user", "\n")

    def _next(self, body: dict[str, Any]) -> Step:
        picker = self.on_tools
        if picker is not None and body.get("tools"):
            with self._lock:
                sticky = self._sticky
            chosen = picker(body) if sticky is None else None
            if chosen is not None:
                return chosen
        with self._lock:
            if self._sticky is not None:
                return self._sticky
            if not body.get("tools"):
                return Step("text", text=TITLE, usage=self.title_usage)
            if not self._steps:
                return text("Done.")
            step = self._steps.pop(0)
            if step.kind == "error" and step.repeat:
                self._sticky = step
            return step

    # -- HTTP ------------------------------------------------------------------
    def _app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            try:
                body = json.loads(await request.body())
            except ValueError:
                return JSONResponse({"error": {"message": "invalid JSON"}}, 400)
            record = {"headers": dict(request.headers), "body": body, "time": time.time()}
            with self._lock:
                self.requests.append(record)
            if self.on_request is not None:
                self.on_request(record)
            if auth != f"Bearer {self.api_key}":
                return JSONResponse(
                    {"error": {"message": "Incorrect API key provided", "type": "invalid_api_key"}},
                    401,
                )
            step = self._next(body)
            if step.kind == "error":
                return JSONResponse(
                    {"error": {"message": f"scripted failure {step.status}", "type": "server"}},
                    step.status,
                )
            if step.delay:
                await asyncio.sleep(step.delay)
            stream = bool(body.get("stream"))
            if not stream:
                return JSONResponse(self._completion(step))
            return StreamingResponse(self._chunks(step), media_type="text/event-stream")

        async def models(request: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

        return Starlette(
            routes=[
                Route("/v1/chat/completions", completions, methods=["POST"]),
                Route("/v1/models", models, methods=["GET"]),
            ]
        )

    def _completion(self, step: Step) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
        finish = "stop"
        if step.kind == "tool":
            message["tool_calls"] = [self._call(step)]
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(step),
        }

    def _call(self, step: Step) -> dict[str, Any]:
        return {
            "id": f"call_{next(self._ids)}",
            "type": "function",
            "function": {"name": step.name, "arguments": json.dumps(step.arguments)},
        }

    @staticmethod
    def _usage(step: Step) -> dict[str, int]:
        prompt, completion = step.usage
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def _chunks(self, step: Step) -> AsyncIterator[bytes]:
        ident = f"chatcmpl-{next(self._ids)}"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        if step.kind == "hang":
            while not self._released.is_set():
                await asyncio.sleep(0.1)
            return  # the stream drops without a finish
        if step.kind == "tool":
            call = self._call(step)
            yield chunk({"tool_calls": [{"index": 0, **call}]})
            finish = "tool_calls"
        else:
            yield chunk({"content": step.text})
            finish = "stop"
        yield chunk({}, finish)
        usage = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [],
            "usage": self._usage(step),
        }
        yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"
