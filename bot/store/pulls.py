"""What both SQL backends ask about one pull request's tickets (the follow-ups' history).

`{p}` is the dialect's placeholder. The tickets of pull request N are those
made on it (`number`) and those that opened or pushed to it (`pr_number`),
such as the issue's ticket whose run opened it.
"""

from __future__ import annotations

from .rows import COLUMNS

PULL_TICKETS = (
    f"SELECT {COLUMNS} FROM tickets WHERE repository = {{p}} "  # noqa: S608
    "AND (number = {p} OR pr_number = {p}) ORDER BY id DESC LIMIT {p}"
)
# the ticket whose run pushed a commit (recorded before the push: never after GitHub saw it)
PUSHER = (
    f"SELECT {COLUMNS} FROM tickets WHERE repository = {{p}} "  # noqa: S608
    "AND pushed_sha = {p} ORDER BY id DESC LIMIT 1"
)
