"""githubkit behind a small adapter: App JWT, scoped installation tokens, repo calls.

Installation tokens are minted for one repository and the least permissions a
run needs, and reused until shortly before they expire.

This module gathers the adapter's names; they live in:
- `app`: `GitHubApp`, the App's JWT calls, token cache, team check and identity;
- `repo`: `RepoClient`, the calls on one repository;
- `calls`: `call`, `status_of`, the retry policy (`Backoff`, `RETRY`) and `TIMEOUT`;
- `tokens`: the permissions asked for, `AccessToken`, `Identity`, `noreply_domain`.
"""

from __future__ import annotations

from .app import GitHubApp
from .calls import (
    MAX_RETRY_WAIT,
    RETRY,
    TIMEOUT,
    Backoff,
    EventHooks,
    SharedTransport,
    call,
    status_of,
)
from .repo import RepoClient
from .tokens import (
    MEMBERS_PERMISSIONS,
    REFRESH_MARGIN,
    RUN_PERMISSIONS,
    AccessToken,
    Identity,
    noreply_domain,
)

__all__ = [
    "MAX_RETRY_WAIT",
    "MEMBERS_PERMISSIONS",
    "REFRESH_MARGIN",
    "RETRY",
    "RUN_PERMISSIONS",
    "TIMEOUT",
    "AccessToken",
    "Backoff",
    "EventHooks",
    "GitHubApp",
    "Identity",
    "RepoClient",
    "SharedTransport",
    "call",
    "noreply_domain",
    "status_of",
]
