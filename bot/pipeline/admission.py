"""Before the work: the repository's settings file, and whether it lets the requester in.

The file is read from the commit the run starts from (never from the agent's
changes); `allowed_users` and `allowed_teams` there narrow who may start
runs, with GitHub asked about team membership only when it decides.
"""

from __future__ import annotations

import asyncio
import logging

from .. import repo_settings
from ..errors import WorkspaceError
from ..github import render
from ..github.render import Outcome
from ..models import Conclusion, Ticket, TicketState
from ..policy.authz import Asker, Decision, authorize
from ..workspace import Workspace
from . import outcomes
from .ports import App
from .report import RunReport
from .state import Deps, RunState

log = logging.getLogger("bot.pipeline")


async def load_settings(
    deps: Deps, state: RunState, report: RunReport, workspace: Workspace
) -> Outcome | None:
    """Read `.github/autocode.yml` from the start commit; the outcome when it is invalid."""
    try:
        text = await asyncio.to_thread(
            workspace.read_committed, repo_settings.PATH, repo_settings.MAX_FILE_BYTES
        )
    except WorkspaceError as exc:
        problems = [exc.message]
    else:
        parsed = repo_settings.parse(text, repo_settings.HostLimits.of(deps.settings))
        if not isinstance(parsed, repo_settings.Invalid):
            state.repo = parsed
            if parsed.found:
                report.log("phase", f"settings from {repo_settings.PATH}")
            return None
        problems = [str(p) for p in parsed.problems]
    report.log("error", f"invalid {repo_settings.PATH}: {'; '.join(problems)}")
    return outcomes.invalid_settings(problems)


async def admission(
    app: App, ticket: Ticket, asker: Asker, repo: repo_settings.RepoSettings
) -> Decision:
    """`authorize` with the settings file, asking GitHub about the teams it names if needed."""
    decision = authorize(asker, settings=repo, repository=ticket.repository)
    if not decision.pending:
        return decision
    member = False
    for org, slug in decision.ask_teams:
        member = await app.team_member(
            ticket.repository, ticket.installation_id, org, slug, ticket.requested_by
        )
        if member:
            break
    return authorize(asker, settings=repo, repository=ticket.repository, team_member=member)


async def admitted(deps: Deps, state: RunState, report: RunReport, asker: Asker) -> bool:
    """The settings file may narrow who may trigger runs; False (reported) when refused."""
    ticket = state.ticket
    decision = await admission(deps.app, ticket, asker, state.repo)
    if decision.allowed:
        return True
    reporter = report.reporter
    await reporter.try_say(
        render.marker(ticket.id) + "\n" + render.not_allowed_comment(ticket.requested_by)
    )
    outcome = Outcome(Conclusion.NEUTRAL, "not allowed by the repository's settings")
    await reporter.conclude_check(report.now(), "neutral", render.check_output(outcome))
    await report.finish(TicketState.REJECTED, None, decision.reason)
    log.info("ticket rejected by the repository's settings", extra={"ticket": ticket.id})
    return False
