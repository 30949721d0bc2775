"""Send signed deliveries the way GitHub does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from bot.webhook.verify import signature


def headers(event: str, body: bytes, secret: str, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": signature(secret, body),
    }


def send(
    base_url: str,
    event: str,
    payload: dict[str, Any],
    secret: str,
    *,
    delivery: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    post = client.post if client is not None else httpx.post
    return post(
        f"{base_url}/webhook",
        content=body,
        headers=headers(event, body, secret, delivery),
        timeout=30,
    )
