"""What the App asks GitHub for and gets: permissions, installation tokens, its bot identity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

# The permissions a run needs, and nothing more.
RUN_PERMISSIONS: dict[str, str] = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
# Asked for only to check `allowed_teams` (GET /orgs/{org}/teams/{team}/memberships/{user}).
MEMBERS_PERMISSIONS: dict[str, str] = {"members": "read", "metadata": "read"}
REFRESH_MARGIN = 300.0  # seconds before expiry when a token is replaced


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: float
    repository: str

    def __repr__(self) -> str:  # never show the secret
        return f"AccessToken(repository={self.repository!r}, expires_at={self.expires_at})"

    def fresh(self, now: float) -> bool:
        return self.expires_at - now > REFRESH_MARGIN


@dataclass(frozen=True)
class Identity:
    """The App's bot account, used as the author of its commits."""

    login: str
    name: str
    email: str


def parse_time(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def noreply_domain(api_url: str) -> str:
    host = urlsplit(api_url).hostname or "github.com"
    if host == "api.github.com":
        host = "github.com"
    return f"users.noreply.{host}"
