"""The Python API: one ticket from a title and a description to a pull request.

    from bot import OpenCodeService
    result = await OpenCodeService().develop_ticket(
        ticket_title="Add a greeting", ticket_description="…",
        repository_url="https://github.com/owner/name", github_token="ghp_…",
    )

It runs the ticket through the bot's own pipeline (`pipeline.run.Run`),
the one the worker runs issues through: the repository is cloned and pushed
on the host with the given token (in git's environment only), its
`.github/autocode.yml` is honoured (setup, tests, protected paths,
budgets), the agent runs in the same locked-down container, and the pull
request is opened through the same `RepoClient`. The token never enters the
container. What differs is filled in by `standalone`: the token instead of
the App, an in-memory ledger instead of the ticket store, and no issue to
comment on. Nothing waits in a queue: the caller awaits the run.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import Settings, load_environ
from .errors import BotError
from .github.client import AccessToken
from .github.render import Outcome
from .models import Conclusion, Origin, Ticket, TicketKind, TicketState, Usage
from .pipeline.run import Run
from .pipeline.state import CancelSignal, Deps, Placement
from .policy.authz import Asker
from .runner.docker import DockerRunner, container_user
from .standalone import LogLines, Quiet, Receipt, TokenApp
from .workspace import Workspace

log = logging.getLogger("bot.service")

# The `autocode.store` label of the service's containers: no worker's orphan
# sweep (which only looks at its own database's label) ever removes them.
STORE_LABEL = "service"
SHORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}$")


def branch_slug(title: str, limit: int = 48) -> str:
    """`Add a greeting!` → `add-a-greeting`: the branch name's tail (ASCII, lower case)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "ticket"


def parse_repository(repository_url: str, github_url: str) -> tuple[str, str]:
    """(owner/name, clone URL) from `https://HOST/OWNER/NAME[.git]` or `OWNER/NAME`."""
    value = repository_url.strip()
    if SHORT_NAME.match(value) and "://" not in value:
        full_name = value.removesuffix(".git")
        return full_name, f"{github_url.rstrip('/')}/{full_name}.git"
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            f"repository_url must be https://HOST/OWNER/NAME or OWNER/NAME, got {value!r}"
        )
    if parts.username or parts.password:
        raise ValueError("repository_url must not carry credentials: pass github_token instead")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) != 2:
        raise ValueError(f"repository_url must name one repository (OWNER/NAME), got {value!r}")
    owner, name = segments[0], segments[1].removesuffix(".git")
    full_name = f"{owner}/{name}"
    if not SHORT_NAME.match(full_name):
        raise ValueError(f"repository_url names no valid repository: {value!r}")
    return full_name, f"{parts.scheme}://{parts.netloc}/{full_name}.git"


def _result(
    *,
    success: bool,
    output: str,
    branch: str | None = None,
    pull_request_url: str | None = None,
    pull_request_number: int | None = None,
    files: list[str] | None = None,
    usage: Usage | None = None,
    seconds: float = 0.0,
    error: str | None = None,
) -> dict[str, Any]:
    usage = usage or Usage()
    return {
        "success": success,
        "output": output,
        "branch": branch,
        "pull_request_url": pull_request_url,
        "pull_request_number": pull_request_number,
        "files_changed": list(files or []),
        "tokens": {
            "input": usage.input,
            "output": usage.output,
            "reasoning": usage.reasoning,
            "cache_read": usage.cache_read,
            "cache_write": usage.cache_write,
            "total": usage.total,
        },
        "cost": usage.cost,
        "seconds": round(seconds, 3),
        "error": error,
    }


class OpenCodeService:
    """Develops one ticket per call on a repository the caller's token can push to."""

    def __init__(self, settings: Settings | None = None, *, runner: DockerRunner | None = None):
        self.settings = settings or Settings.from_environ(load_environ())
        self.runner = runner or DockerRunner.of(self.settings)
        self.worker_id = f"service:{socket.gethostname()}:{os.getpid()}"

    async def develop_ticket(
        self,
        *,
        ticket_title: str,
        ticket_description: str,
        ticket_type: str = "feature",
        priority: str = "medium",
        repository_url: str,
        github_token: str,
    ) -> dict[str, Any]:
        """Clone, let the agent work in its container, push `autocode/<slug>`, open a PR.

        Returns `success`, `output` (the agent's final answer, or why it
        failed), `branch`, `pull_request_url`, `pull_request_number`,
        `files_changed`, `tokens` (input, output, reasoning, cache_read,
        cache_write, total), `cost` (USD, as the provider reports it),
        `seconds` and `error`. Wrong arguments raise ValueError; everything
        that goes wrong later (GitHub, git, Docker, the agent) comes back as
        `success: False` with `error` saying what happened.
        """
        title = " ".join(ticket_title.split())
        if not title:
            raise ValueError("ticket_title must not be empty")
        if not github_token.strip():
            raise ValueError("github_token must not be empty")
        kind = " ".join(ticket_type.split())[:40] or "feature"
        level = " ".join(priority.split())[:40] or "medium"
        repository, clone_url = parse_repository(repository_url, self.settings.github_url)
        started = time.monotonic()
        context = {"repository": repository, "title": title[:100]}
        log.info("service ticket started", extra=context)
        try:
            return await self._develop(
                repository=repository,
                clone_url=clone_url,
                title=title,
                description=ticket_description,
                kind=kind,
                level=level,
                token=github_token.strip(),
                started=started,
            )
        except BotError as exc:
            log.warning("service ticket failed", extra={**context, "error": exc.message})
            return _result(
                success=False,
                output=exc.message,
                seconds=time.monotonic() - started,
                error=exc.message,
            )

    async def _develop(
        self,
        *,
        repository: str,
        clone_url: str,
        title: str,
        description: str,
        kind: str,
        level: str,
        token: str,
        started: float,
    ) -> dict[str, Any]:
        settings = self.settings
        app = TokenApp(settings.github_api_url, AccessToken(token, float("inf"), repository))
        try:
            return await self._run(app, repository, clone_url, title, description, kind, level,
                                   started)  # fmt: skip
        finally:
            await app.aclose()

    async def _run(
        self,
        app: TokenApp,
        repository: str,
        clone_url: str,
        title: str,
        description: str,
        kind: str,
        level: str,
        started: float,
    ) -> dict[str, Any]:
        settings = self.settings
        gh = await app.repo(repository)
        ticket = self._ticket(repository, clone_url, title, description, kind, level)
        receipt = Receipt()
        folder = Path(settings.workdir).resolve() / f"service-{uuid.uuid4().hex[:12]}"
        deps = Deps(
            settings=settings,
            ledger=receipt,
            log=LogLines(repository),
            app=app,
            containers=self.runner,
            images=self.runner,
            sessions=None,  # every call is a new conversation
            placement=Placement(container_user(), self.worker_id, STORE_LABEL),
            workspace=lambda _root, url: Workspace(folder, url),
        )
        asker = Asker(ticket.requested_by, "admin", operator=True)  # the token's owner asks
        run = Run(deps, ticket, gh, Quiet(), CancelSignal(), asker)
        await run.execute()
        return result_of(receipt, run.report.outcome, time.monotonic() - started)

    def _ticket(
        self, repository: str, clone_url: str, title: str, description: str, kind: str, level: str
    ) -> Ticket:
        """The call's ticket (id 0: it is in no store) on its own branch `autocode/<slug>`."""
        return Ticket(
            id=0,
            delivery_id=f"service-{uuid.uuid4().hex}",
            event="service",
            kind=TicketKind.SERVICE,
            repository=repository,
            clone_url=clone_url,
            installation_id=None,
            number=0,
            is_pull_request=False,
            title=title,
            body=description,
            requested_by="service",
            instructions="",
            origin=Origin(
                source="service",
                branch=f"autocode/{branch_slug(title)}",
                ticket_type=kind,
                priority=level,
            ),
            state=TicketState.RUNNING,
            created_at=time.time(),
        )


def result_of(receipt: Receipt, outcome: Outcome | None, seconds: float) -> dict[str, Any]:
    """The call's answer from how its run ended: a pull request, or why there is none."""
    usage = receipt.usage
    if outcome is not None and outcome.conclusion is Conclusion.SUCCESS and receipt.pr_url:
        log.info("service ticket finished", extra={"branch": receipt.branch,
                                                   "pull_request": receipt.pr_number})  # fmt: skip
        return _result(
            success=True,
            output=outcome.answer,
            branch=receipt.branch,
            pull_request_url=receipt.pr_url,
            pull_request_number=receipt.pr_number,
            files=receipt.files,
            usage=usage,
            seconds=seconds,
        )
    if outcome is None:
        error = receipt.error or "the run ended without an outcome"
    elif outcome.conclusion is Conclusion.NEUTRAL or not outcome.reason:
        error = outcome.headline
    else:
        error = outcome.reason
    if outcome is not None and outcome.pr_url:  # pushed, but the tests still fail
        error = f"{outcome.headline}: {outcome.reason}" if outcome.reason else outcome.headline
    log.warning("service ticket failed", extra={"error": error})
    answer = outcome.answer if outcome is not None else ""
    return _result(
        success=False,
        output=answer or error,
        branch=receipt.branch if receipt.pr_url else None,
        pull_request_url=receipt.pr_url,
        pull_request_number=receipt.pr_number,
        files=receipt.files,
        usage=usage,
        seconds=seconds,
        error=error,
    )
