"""HMAC-SHA256 verification of GitHub webhook deliveries (pure)."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import SignatureError

PREFIX = "sha256="


def signature(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return PREFIX + hmac.digest(key, body, hashlib.sha256).hex()


def verify(secret: str | bytes, body: bytes, header: str | None) -> None:
    """Raise SignatureError unless `header` is the SHA-256 signature of `body`.

    Only `X-Hub-Signature-256` counts: a SHA-1 signature is refused, so a
    downgrade cannot be forced by sending the weaker header alone.
    """
    if not secret:
        raise SignatureError("the webhook secret is not configured")
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    if not header.startswith(PREFIX):
        raise SignatureError("X-Hub-Signature-256 must be a sha256= signature")
    expected = signature(secret, body)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise SignatureError("signature does not match the payload")
