"""Markdown the bot writes on GitHub: comments, check-run output, PR bodies (pure).

- `text`: the check's name, the hidden marker, durations, money, quotes;
  `progress`: a run's comment and check run while it runs; `outcome`: what a
  finished run reports and its comment, answer and check output; `pulls`:
  pull request bodies and commit messages; `replies`: the short answers.
"""

from __future__ import annotations

from .outcome import MAX_SUMMARY, Outcome, answer_comment, check_output, outcome_comment
from .progress import PHASE_LABELS, PHASES, progress_comment, progress_output
from .pulls import commit_message, pr_body, pr_intro, ticket_commit_message, ticket_intro
from .replies import (
    OPERATOR_NAMES,
    cancelled_by,
    follow_ups_stopped,
    fork_refused,
    not_allowed_comment,
    nothing_to_cancel,
    nothing_to_retry,
    rejected_comment,
    stop_needs_a_pull_request,
    waiting_comment,
)
from .text import CHECK_NAME, duration, marker, money

__all__ = [
    "CHECK_NAME",
    "MAX_SUMMARY",
    "OPERATOR_NAMES",
    "PHASES",
    "PHASE_LABELS",
    "Outcome",
    "answer_comment",
    "cancelled_by",
    "check_output",
    "commit_message",
    "duration",
    "follow_ups_stopped",
    "fork_refused",
    "marker",
    "money",
    "not_allowed_comment",
    "nothing_to_cancel",
    "nothing_to_retry",
    "outcome_comment",
    "pr_body",
    "pr_intro",
    "progress_comment",
    "progress_output",
    "rejected_comment",
    "stop_needs_a_pull_request",
    "ticket_commit_message",
    "ticket_intro",
    "waiting_comment",
]
