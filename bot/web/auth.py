"""Who may use the dashboard: the admin bearer token, or a session cookie made from it.

The cookie never holds the token. It is `<issued>.<mac>`, the mac being an
HMAC-SHA256 over the issue time and the admin token under a key the server
derives from its own secrets, so the same key holds on every web replica and
after a restart, and changing `AUTOCODE_ADMIN_TOKEN` ends every session. The
CSRF token of a form is an HMAC of the session cookie: a page on another site
can neither read it nor (with SameSite=Strict) make the browser send the
cookie, so a forged POST fails both ways. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from starlette.requests import Request

COOKIE = "autocode_session"
SESSION_SECONDS = 12 * 3600


class Guard:
    """Checks bearer tokens, session cookies and CSRF tokens for one admin token."""

    def __init__(
        self, admin_token: str, server_secret: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self.admin_token = admin_token
        self.clock = clock
        self._key = hashlib.sha256(
            b"autocode-dashboard\0" + server_secret.encode() + b"\0" + admin_token.encode()
        ).digest()

    @property
    def enabled(self) -> bool:
        return bool(self.admin_token)

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def token_ok(self, token: str) -> bool:
        """Whether `token` is the admin token (never true when none is configured)."""
        if not self.admin_token:
            return False
        return hmac.compare_digest(token.encode(), self.admin_token.encode())

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(token.strip())

    # -- sessions --------------------------------------------------------------
    def new_session(self) -> str:
        issued = str(int(self.clock()))
        return f"{issued}.{self._mac('session', issued + ':' + self.admin_token)}"

    def session_ok(self, value: str) -> bool:
        if not self.admin_token or "." not in value:
            return False
        issued, _, mac = value.partition(".")
        if not issued.isdigit():
            return False
        age = self.clock() - int(issued)
        if age < -60 or age > SESSION_SECONDS:
            return False
        expected = self._mac("session", issued + ":" + self.admin_token)
        return hmac.compare_digest(mac.encode(), expected.encode())

    def session(self, request: Request) -> str | None:
        """The request's valid session cookie, or None."""
        value = request.cookies.get(COOKIE, "")
        return value if self.session_ok(value) else None

    def allowed(self, request: Request) -> bool:
        """A bearer token or a valid session: may read the dashboard."""
        return self.bearer_ok(request) or self.session(request) is not None

    # -- CSRF --------------------------------------------------------------------
    def csrf_for(self, session: str) -> str:
        return self._mac("csrf", session)

    def csrf_ok(self, request: Request, submitted: str) -> bool:
        """A state-changing request: bearer (no cookie involved), or session + its CSRF token."""
        if self.bearer_ok(request):
            return True
        session = self.session(request)
        if session is None or not submitted:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_for(session).encode())
