"""A receiver of the bot's notifications: checks each signature, records what it accepted."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.errors import SignatureError
from bot.webhook.verify import verify

SECRET = "notify-test-secret"


@dataclass
class Receiver:
    """A receiver that verifies each POST's signature and records what it accepted."""

    secret: str = SECRET
    fail_first: int = 0  # answer 503 to this many attempts first
    broken: bool = False  # while set, answer 500 to every attempt (a receiver gone wrong)
    path: str = "/hook"  # where it listens (a Slack-like URL keeps its secret in the path)
    attempts: int = 0
    bad_signatures: int = 0
    got: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.attempts += 1
                if self.broken:
                    return Response("broken", status_code=500)
                if self.attempts <= self.fail_first:
                    return Response("busy", status_code=503)
            try:
                verify(self.secret, body, request.headers.get("x-autocode-signature-256"))
            except SignatureError:
                with self.lock:
                    self.bad_signatures += 1
                return Response("bad signature", status_code=401)
            with self.lock:
                self.got.append(
                    {
                        "event": request.headers["x-autocode-event"],
                        "delivery": request.headers["x-autocode-delivery"],
                        "agent": request.headers["user-agent"],
                        "body": json.loads(body),
                    }
                )
            return Response(status_code=204)

        return Starlette(routes=[Route(self.path, hook, methods=["POST"])])

    def events(self) -> list[tuple[int, str]]:
        with self.lock:
            return [(g["body"]["ticket"]["id"], g["event"]) for g in self.got]
