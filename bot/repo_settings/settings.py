"""A repository's settings as values: the file's over the defaults, under the host's limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from .paths import protected
from .schema import ALWAYS_PROTECTED, DEFAULT_ATTEMPTS, DEFAULT_COMMAND_TIMEOUT


@dataclass(frozen=True)
class HostLimits:
    """What this host allows; a settings file may ask for less, never for more."""

    run_timeout: int
    max_cost_per_run: float | None = None
    max_tokens_per_run: int | None = None
    network: str = "internal"  # AUTOCODE_AGENT_NETWORK
    model: str = ""
    max_ci_fix_attempts: int = 5  # AUTOCODE_MAX_CI_FIX_ATTEMPTS

    @classmethod
    def of(cls, settings: Settings) -> HostLimits:
        return cls(
            run_timeout=settings.run_timeout,
            max_cost_per_run=settings.max_cost_per_run,
            max_tokens_per_run=settings.max_tokens_per_run,
            network=settings.agent_network,
            model=settings.model,
            max_ci_fix_attempts=settings.max_ci_fix_attempts,
        )

    @property
    def containers_may_go_out(self) -> bool:
        return self.network in ("bridge", "host")


@dataclass(frozen=True)
class RepoSettings:
    """The file's values over the defaults, resolved against the host's limits."""

    found: bool = False
    model: str = ""
    instructions: str = ""
    setup: tuple[str, ...] = ()
    test: str = ""
    max_attempts: int = DEFAULT_ATTEMPTS
    run_timeout: int = 1800  # the whole run: setup, agent attempts and tests
    command_timeout: int = DEFAULT_COMMAND_TIMEOUT  # one setup or test command
    network: str = "none"  # of the setup and test containers
    protected_paths: tuple[str, ...] = ALWAYS_PROTECTED
    allowed_users: tuple[str, ...] = ()
    allowed_teams: tuple[str, ...] = ()
    draft: bool = False
    pr_labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    max_cost_per_run: float | None = None
    max_tokens_per_run: int | None = None
    image: str = ""  # the repository's image, the agent's derives from ("": its dev container)
    ci_fix_attempts: int = 0  # follow-ups a bot pull request may get (0: none after failed CI)
    on_review: str = "changes_requested"  # a review requesting changes gets a follow-up, or off

    @classmethod
    def defaults(cls, host: HostLimits) -> RepoSettings:
        """The settings of a repository without the file: the host's own."""
        return resolve({}, host, found=False)

    def is_protected(self, path: str) -> bool:
        return protected(path, self.protected_paths)

    @property
    def restricts_users(self) -> bool:
        return bool(self.allowed_users or self.allowed_teams)


def resolve(data: dict[str, Any], host: HostLimits, *, found: bool) -> RepoSettings:
    """Valid values of the file (or none) → settings, each within the host's limits."""
    run_timeout = min(int(data.get("timeout") or host.run_timeout), host.run_timeout)
    command_timeout = int(data.get("command_timeout") or min(DEFAULT_COMMAND_TIMEOUT, run_timeout))
    patterns = _unique([*ALWAYS_PROTECTED, *data.get("protected_paths", ())])
    cost = data.get("max_cost_per_run", host.max_cost_per_run)
    tokens = data.get("max_tokens_per_run", host.max_tokens_per_run)
    return RepoSettings(
        found=found,
        model=str(data.get("model") or host.model),
        instructions=str(data.get("instructions") or "").strip(),
        setup=tuple(c.strip() for c in data.get("setup", ()) if c.strip()),
        test=str(data.get("test") or "").strip(),
        max_attempts=int(data.get("max_attempts", DEFAULT_ATTEMPTS)),
        run_timeout=run_timeout,
        command_timeout=min(command_timeout, run_timeout),
        network=str(data.get("network", "none")),
        protected_paths=patterns,
        allowed_users=_unique(data.get("allowed_users", ())),
        allowed_teams=_unique(data.get("allowed_teams", ())),
        draft=bool(data.get("draft", False)),
        pr_labels=_unique(data.get("pr_labels", ())),
        reviewers=_unique(data.get("reviewers", ())),
        max_cost_per_run=float(cost) if cost is not None else None,
        max_tokens_per_run=int(tokens) if tokens is not None else None,
        image=str(data.get("image") or ""),
        ci_fix_attempts=int(data.get("ci_fix_attempts", 0)),
        on_review=str(data.get("on_review", "changes_requested")),
    )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))


# -- who may ask -------------------------------------------------------------------


def team_ref(entry: str, owner: str) -> tuple[str, str]:
    """(org, team slug) of an `allowed_teams` entry; a bare slug is in the repository's owner."""
    org, _, slug = entry.rpartition("/")
    return (org or owner), slug
