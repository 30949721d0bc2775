"""Plain data passed between the layers: no I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec


class TicketState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self not in (TicketState.QUEUED, TicketState.RUNNING)


class Conclusion(StrEnum):
    """Check-run conclusions the bot reports."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery, verified and parsed."""

    delivery_id: str
    event: str
    action: str
    payload: dict[str, Any]


class TicketKind(StrEnum):
    """What a ticket asks for; stored as its value (a plain string) in both stores."""

    LABEL = "label"  # the trigger label on an issue
    COMMAND = "command"  # `/opencode <instructions>` (also `fresh`)
    ASK = "ask"  # `/opencode ask`: an answer, nothing pushed
    RETRY = "retry"  # `/opencode retry`, or the dashboard's Retry
    RERUN = "rerequest"  # Re-run of the check run on GitHub
    CANCEL = "cancel"  # `/opencode cancel`, the check run's or the dashboard's Cancel
    HELP = "help"  # `/opencode help`, or an unknown sub-command
    STOP = "stop"  # `/opencode stop` on a pull request: no more follow-ups on it
    CI_FIX = "ci_fix"  # the checks of the bot's push to a pull request finished
    REVIEW_FIX = "review_fix"  # a review requested changes on a pull request
    SERVICE = "service"  # the Python API's one ticket (never stored)


# Tickets that act on other tickets; they neither wait for nor block a run.
CONTROL_KINDS = frozenset({TicketKind.CANCEL, TicketKind.HELP, TicketKind.STOP})
# Tickets the bot makes itself from what happened on its own pull request: each is
# decided when claimed (the repository's settings, the per-PR cap) and may end quietly.
FOLLOW_UP_KINDS = frozenset({TicketKind.CI_FIX, TicketKind.REVIEW_FIX})
# Tickets that run the agent (a retry runs what it repeats).
WORK_KINDS = frozenset(
    {
        TicketKind.LABEL,
        TicketKind.COMMAND,
        TicketKind.ASK,
        TicketKind.RETRY,
        TicketKind.RERUN,
        *FOLLOW_UP_KINDS,
    }
)
# Seconds within which a bare request (label, or the command without new
# instructions) for an issue joins the bare request already queued or running.
COALESCE_SECONDS = 120.0


class Origin(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    """Where a ticket came from and what it carries beyond its kind (stored as JSON).

    The rules fill it from the signed payload's fixed fields; the operator's
    dashboard and API, retries and the Python API add their own. No payload
    can set `operator`: the rules never do.
    """

    # where the request was made: "" (a label), issue_comment, review_comment,
    # review, check_run, check_suite, retry, dashboard, api or service
    source: str = ""
    comment_id: int | None = None  # the comment with the command (the 👀 and the reply go there)
    comment_url: str = ""
    fresh: bool = False  # `/opencode fresh`: the agent forgets the earlier session
    unknown: str = ""  # `help` for a sub-command that does not exist: its name
    operator: bool = False  # asked by the bot's operator (dashboard, API): no GitHub role
    # a pull request's code, as the event saw it (the worker reads it again before pushing)
    head_ref: str = ""
    head_repo: str | None = None
    base_ref: str = ""
    head_sha: str = ""
    # a review comment: the lines it points at
    path: str = ""
    line: int | None = None
    start_line: int | None = None
    original_line: int | None = None
    side: str | None = None
    diff_hunk: str = ""
    commit_id: str = ""
    in_reply_to_id: int | None = None
    review_id: int | None = None
    review_url: str = ""
    # a check run's button or Re-run: the run, and our ticket id it names
    check_run_id: int | None = None
    external_id: str = ""
    # a check suite of the bot's push (a CI follow-up): the suite, its App, how it ended
    check_suite_id: int | None = None
    suite_app: str = ""  # the App's slug, e.g. github-actions
    suite_conclusion: str = ""
    why: str = ""  # a follow-up: what started it, in words (set when it is claimed)
    reply_to: tuple[int, ...] = ()  # a review's follow-up: the comments whose threads it answers
    target: int | None = None  # `cancel` of one ticket (its check run's button)
    retry_of: int | None = None  # a retry: the ticket it repeats …
    as_kind: TicketKind | None = None  # … and what that one did
    # the Python API's ticket: its branch and its words for the prompt
    branch: str = ""
    ticket_type: str = ""
    priority: str = ""

    def to_json(self) -> str:
        return _ENCODER.encode(self).decode()

    @classmethod
    def of(cls, raw: str | bytes | Mapping[str, Any] | None) -> Origin:
        """An origin from its stored JSON (text, or a mapping from a JSON column)."""
        if not raw:
            return EMPTY_ORIGIN
        if isinstance(raw, str | bytes):
            return msgspec.json.decode(raw, type=cls)
        return msgspec.convert(dict(raw), cls)

    def but(self, **changes: Any) -> Origin:
        return msgspec.structs.replace(self, **changes)


_ENCODER = msgspec.json.Encoder()
EMPTY_ORIGIN = Origin()


@dataclass(frozen=True)
class Trigger:
    """What a delivery asks the bot to do (decided by the pure rules)."""

    kind: TicketKind
    repository: str  # owner/name
    clone_url: str
    installation_id: int | None
    number: int
    is_pull_request: bool
    title: str
    body: str
    requested_by: str
    instructions: str = ""
    origin: Origin = EMPTY_ORIGIN

    @property
    def lane(self) -> str | None:
        """The queue this ticket waits in: one run at a time per issue or PR.

        Control tickets have none: a cancel must not wait behind the run it stops.
        """
        return None if self.kind in CONTROL_KINDS else f"{self.repository}#{self.number}"

    @property
    def bare(self) -> bool:
        """A request that adds nothing to a run already asked for on the same issue."""
        return (
            self.kind in (TicketKind.LABEL, TicketKind.COMMAND)
            and not self.instructions.strip()
            and not self.origin.fresh
        )


@dataclass(frozen=True)
class Ticket:
    """A durable unit of work, as the store holds it."""

    id: int
    delivery_id: str
    event: str
    kind: TicketKind
    repository: str
    clone_url: str
    installation_id: int | None
    number: int
    is_pull_request: bool
    title: str
    body: str
    requested_by: str
    instructions: str
    origin: Origin
    state: TicketState
    created_at: float
    conclusion: str | None = None
    error: str | None = None
    branch: str | None = None
    head_sha: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    check_run_id: int | None = None
    comment_id: int | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    tokens_input: int = 0
    tokens_output: int = 0
    cost: float = 0.0
    files_changed: tuple[str, ...] = ()
    pushed_sha: str | None = None  # the commit the run pushed (recorded before the push)

    @property
    def repeatable(self) -> bool:
        """Whether a retry can repeat it: not a control ticket, nor a follow-up that never ran."""
        if self.kind in CONTROL_KINDS:
            return False
        return self.kind not in FOLLOW_UP_KINDS or self.check_run_id is not None


@dataclass
class Usage:
    """Tokens and money the agent reported."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float = 0.0

    @property
    def total(self) -> int:
        return self.input + self.output + self.reasoning


@dataclass(frozen=True)
class AgentEvent:
    """One step of the agent, condensed from opencode's JSON event stream."""

    kind: str  # "step" | "tool" | "text" | "finish" | "error" | "other"
    tool: str = ""
    target: str = ""  # a file path or a command
    status: str = ""
    text: str = ""
    tokens: int = 0
    cost: float = 0.0

    def describe(self) -> str:
        """A short line for progress reports and logs."""
        if self.kind == "tool":
            return f"{self.tool} {self.target}".strip()
        if self.kind == "text":
            first = self.text.strip().splitlines()[0] if self.text.strip() else ""
            return f"wrote: {first[:120]}"
        if self.kind == "error":
            return f"error: {self.text[:200]}"
        return self.kind


@dataclass
class RunResult:
    """What came out of one agent container."""

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    idle: bool = False
    final_text: str = ""
    error: str = ""
    files_touched: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    output_tail: list[str] = field(default_factory=list)
    last_step: str = ""
    session_id: str = ""
    seconds: float = 0.0
