"""What the agent is asked: the issue or pull request as GitHub has it now, into the prompt.

The thread is read when the run starts (edits made while the ticket waited
count); the bot's own comments are left out. The wording is
`runner.prompt.build_prompt`'s, pure.
"""

from __future__ import annotations

from ..models import FOLLOW_UP_KINDS, Origin, TicketKind
from ..runner.feedback import MAX_BRIEF
from ..runner.prompt import MAX_BODY, CodeLocation, ThreadComment, build_prompt, ticket_prompt
from ..triggers.rules import is_bot
from .ports import Repository
from .state import RunState, effective_kind, ticket_kind_and_priority


def code_location(origin: Origin) -> CodeLocation | None:
    """The lines a review comment points at, when the ticket came from one."""
    if not origin.path or not origin.diff_hunk:
        return None
    return CodeLocation(
        path=origin.path, start_line=origin.start_line, line=origin.line, diff_hunk=origin.diff_hunk
    )


async def gather_prompt(gh: Repository, state: RunState) -> str:
    """The agent's prompt for the run's ticket; the run's title follows the issue's."""
    ticket, repo = state.ticket, state.repo
    if ticket.kind == TicketKind.SERVICE:  # no issue behind it: the caller's title and text
        ticket_type, priority = ticket_kind_and_priority(ticket)
        return ticket_prompt(
            repository=ticket.repository,
            title=ticket.title,
            description=ticket.body,
            ticket_type=ticket_type,
            priority=priority,
        )
    issue = await gh.issue(ticket.number)
    comments = await gh.comments(ticket.number)
    thread = [
        ThreadComment(str(c.get("user", {}).get("login", "?")), str(c.get("body") or ""))
        for c in comments
        if not is_bot(c.get("user")) and c.get("id") != ticket.comment_id
    ]
    state.title = str(issue.get("title") or state.title)
    return build_prompt(
        repository=ticket.repository,
        number=ticket.number,
        title=state.title,
        body=str(issue.get("body") or ""),
        comments=thread,
        instructions=ticket.instructions,
        is_pull_request=ticket.is_pull_request,
        location=code_location(ticket.origin),
        repo_instructions=repo.instructions,
        test_command="" if state.ask else repo.test,
        protected=() if state.ask else repo.protected_paths,
        ask=state.ask,
        # a follow-up's task carries its checks' output and logs, or a review's comments
        task_limit=MAX_BRIEF if effective_kind(ticket) in FOLLOW_UP_KINDS else MAX_BODY,
    )
