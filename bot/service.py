"""The Python API: one ticket from a title and a description to a pull request.

    from bot import OpenCodeService
    result = await OpenCodeService().develop_ticket(
        ticket_title="Add a greeting", ticket_description="…",
        repository_url="https://github.com/owner/name", github_token="ghp_…",
    )

It runs the ticket through the bot's own pieces: the repository is cloned
and pushed on the host by `Workspace` with the given token (in git's
environment only), the agent runs in the same locked-down container the bot
builds (`Run.container_spec`, `DockerRunner`), its events are read by the
same `Transcript`, and the pull request is opened through the same
`RepoClient`. The token never enters the container. There is no issue and
no ticket store: nothing waits in a queue, the caller awaits the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from githubkit import GitHub, TokenAuthStrategy

from .config import Settings, load_environ
from .errors import BotError, GitHubError
from .github.client import (
    RETRY,
    TIMEOUT,
    AccessToken,
    GitHubApp,
    RepoClient,
    call,
    noreply_domain,
)
from .github.render import duration, money
from .github.reporter import Reporter
from .models import RunResult, Ticket, TicketKind, TicketState, Usage
from .policy.authz import Asker
from .run import Deps, Run
from .runner.docker import ContainerSpec, DockerRunner, container_user
from .runner.events import Transcript
from .runner.prompt import ticket_prompt
from .store.base import TicketStore
from .workspace import Author, Workspace

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


def pr_body(
    *,
    ticket_type: str,
    priority: str,
    files: list[str],
    usage: Usage,
    seconds: float,
    answer: str,
) -> str:
    lines = [
        f"A {ticket_type} ticket (priority: {priority}), "
        "written by the OpenCode agent run by **Auto-Code**.",
        "",
    ]
    if answer.strip():
        lines += ["### Summary from the agent", "", answer.strip()[-6000:], ""]
    if files:
        lines += ["### Changed files", *(f"- `{path}`" for path in files[:50]), ""]
    lines.append(
        f"{usage.input:,} input + {usage.output:,} output tokens · "
        f"{money(usage.cost)} · {duration(seconds)}"
    )
    return "\n".join(lines)


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


async def _nobody_waits(ticket: Ticket, gh: RepoClient) -> None:
    """No ticket queues behind a service run: there is no queue."""


class OpenCodeService:
    """Develops one ticket per call on a repository the caller's token can push to."""

    def __init__(self, settings: Settings | None = None, *, runner: DockerRunner | None = None):
        self.settings = settings or Settings.from_environ(load_environ())
        self.runner = runner or DockerRunner(self.settings.docker_host)
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
        access = AccessToken(token, float("inf"), repository)
        gh = RepoClient(settings.github_api_url, repository, access)
        base = await gh.default_branch()
        branch = f"autocode/{branch_slug(title)}"
        existing = await gh.branch_sha(branch) is not None
        ticket = self._ticket(repository, clone_url, title, description)
        workspace = Workspace(
            Path(settings.workdir).resolve() / f"service-{uuid.uuid4().hex[:12]}", clone_url
        )
        try:
            await asyncio.to_thread(workspace.clone, token, base, branch, existing)
            uid, _, gid = container_user().partition(":")
            await asyncio.to_thread(workspace.hand_to_agent, int(uid), int(gid))
            prompt = ticket_prompt(
                repository=repository,
                title=title,
                description=description,
                ticket_type=kind,
                priority=level,
            )
            spec = self._container_spec(ticket, gh, workspace, prompt)
            result = await self._agent(spec, repository)
            usage = result.usage
            seconds = time.monotonic() - started

            def failed(reason: str) -> dict[str, Any]:
                log.warning(
                    "service ticket failed", extra={"repository": repository, "error": reason}
                )
                return _result(
                    success=False,
                    output=result.final_text or reason,
                    usage=usage,
                    seconds=seconds,
                    error=reason,
                )

            if result.timed_out:
                return failed(
                    f"the agent went silent for {settings.idle_timeout}s"
                    if result.idle
                    else f"the run took longer than {settings.run_timeout}s"
                )
            if result.exit_code != 0 or result.error:
                return failed(result.error or f"the agent exited with code {result.exit_code}")
            files = await asyncio.to_thread(workspace.changes)
            if not files:
                return failed("the agent made no changes")
            author = await self._author(token)
            message = (
                f"Auto-Code: {title}"[:72]
                + f"\n\nA {kind} ticket (priority: {level}), written by the OpenCode agent.\n"
            )
            await asyncio.to_thread(workspace.commit, message, author)
            await asyncio.to_thread(workspace.push, token, branch)
            body = pr_body(
                ticket_type=kind,
                priority=level,
                files=files,
                usage=usage,
                seconds=time.monotonic() - started,
                answer=result.final_text,
            )
            found = await gh.find_pull(branch)
            if found is None:
                number, url = await gh.create_pull(title=title, head=branch, base=base, body=body)
            else:
                number, url = found
                await gh.update_pull(number, body=body)
            log.info(
                "service ticket finished",
                extra={"repository": repository, "branch": branch, "pull_request": number},
            )
            return _result(
                success=True,
                output=result.final_text,
                branch=branch,
                pull_request_url=url,
                pull_request_number=number,
                files=files,
                usage=usage,
                seconds=time.monotonic() - started,
            )
        finally:
            await asyncio.to_thread(workspace.remove)

    def _ticket(self, repository: str, clone_url: str, title: str, description: str) -> Ticket:
        """The run's ticket as the container spec sees it (id 0: it is in no store)."""
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
            context={"source": "service"},
            state=TicketState.RUNNING,
            created_at=time.time(),
        )

    def _container_spec(
        self, ticket: Ticket, gh: RepoClient, workspace: Workspace, prompt: str
    ) -> ContainerSpec:
        """The bot's own container spec, built by `Run.container_spec`.

        That method reads only the settings, the ticket and the worker/store
        labels; the App client and the store a Run normally carries are never
        touched by it, so none is made here (there is no App and no store).
        """
        deps = Deps(
            settings=self.settings,
            store=cast(TicketStore, None),
            github=cast(GitHubApp, None),
            runner=self.runner,
            clock=time.time,
            announce=_nobody_waits,
            cancelled_by=lambda _ticket_id: None,
            worker_id=self.worker_id,
            store_key=STORE_LABEL,
        )
        asker = Asker(ticket.requested_by, "admin", operator=True)  # the token's owner asks
        run = Run(deps, ticket, gh, Reporter(gh, ticket), asyncio.Event(), asker)
        return run.container_spec(workspace, prompt)

    async def _agent(self, spec: ContainerSpec, repository: str) -> RunResult:
        transcript = Transcript()

        def on_line(line: str) -> None:
            event = transcript.feed(line)
            if event is not None and event.kind in ("tool", "text", "error"):
                log.info(
                    "agent step",
                    extra={"repository": repository, "kind": event.kind, "step": event.describe()},
                )

        exit_ = await self.runner.run(spec, on_line, asyncio.Event())
        errors = transcript.errors
        return RunResult(
            exit_code=exit_.exit_code,
            timed_out=exit_.timed_out,
            idle=exit_.idle,
            final_text=transcript.final_text,
            error=errors[-1] if errors else "",
            files_touched=transcript.files,
            usage=transcript.usage,
            output_tail=list(transcript.tail),
            last_step=transcript.last_step,
            seconds=exit_.seconds,
        )

    async def _author(self, token: str) -> Author:
        """The token's user (GET /user) as the commit author, or a generic identity.

        An installation token has no user (GitHub answers 403): its commits
        are signed `Auto-Code` with a noreply address.
        """
        client = GitHub(
            TokenAuthStrategy(token),
            base_url=self.settings.github_api_url,
            auto_retry=RETRY,
            timeout=TIMEOUT,
            http_cache=False,
        )
        rest: Any = client.rest
        domain = noreply_domain(self.settings.github_api_url)
        try:
            response = await call(rest.users.async_get_authenticated)
            user = response.json()
        except GitHubError as exc:
            log.info("no user behind the token; generic author", extra={"reason": exc.message})
            return Author("Auto-Code", f"autocode@{domain}")
        if not isinstance(user, dict) or not user.get("login"):
            return Author("Auto-Code", f"autocode@{domain}")
        login = str(user["login"])
        email = user.get("email")
        if not isinstance(email, str) or not email:
            email = f"{user.get('id', 0)}+{login}@{domain}"
        name = str(user.get("name") or login)
        return Author(name, email)
