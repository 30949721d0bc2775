"""The dashboard's HTML (pure functions of tickets and log lines to strings).

Every value that comes from a ticket passes through `html.escape`: titles,
bodies, logins and branch names are written by GitHub users, and agent log
lines by the agent. Links are only ever http(s). The script adds log lines
with `textContent`, never as HTML (it and the stylesheet are in assets.py).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from ..github.render import duration, money
from ..models import Ticket, TicketState
from ..notify.publisher import receiver
from ..store.base import LogLine, Notification

NOTICES = {
    "cancel-requested": "Cancel requested: the run stops within seconds.",
    "cancel-queued": "Cancel queued: the request is dropped before it runs.",
    "already-final": "The ticket had already finished; nothing to cancel.",
    "retry-queued": "Retry queued as this ticket.",
    "signed-out": "Signed out.",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_url(url: str | None) -> str:
    """The URL if it is http(s), else "" (a `javascript:` link must never be rendered)."""
    if url and url.startswith(("https://", "http://")):
        return url
    return ""


def when(ts: float | None) -> str:
    if not ts:
        return ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return f'<time datetime="{iso}">{stamp} UTC</time>'


def elapsed(ticket: Ticket, now: float) -> str:
    if ticket.started_at is None:
        return ""
    end = ticket.finished_at or (now if ticket.state is TicketState.RUNNING else None)
    return duration(end - ticket.started_at) if end else ""


def issue_url(ticket: Ticket) -> str:
    """The issue or PR on GitHub's web UI, from the repository's clone URL."""
    base = safe_url(ticket.clone_url)
    if not base or ticket.number <= 0:
        return ""
    base = base.removesuffix(".git").rstrip("/")
    return f"{base}/{'pull' if ticket.is_pull_request else 'issues'}/{ticket.number}"


def state_badge(state: TicketState, element_id: str = "") -> str:
    ident = f' id="{esc(element_id)}"' if element_id else ""
    return f'<span class="state state-{esc(state)}"{ident}>{esc(state)}</span>'


def link(url: str, text: str) -> str:
    target = safe_url(url)
    return f'<a href="{esc(target)}">{esc(text)}</a>' if target else esc(text)


def layout(title: str, body: str, *, csrf: str = "") -> str:
    """The page frame; `csrf` (a signed-in session) adds the sign-out button."""
    signout = (
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        "<button>Sign out</button></form>"
        if csrf
        else ""
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · Auto-Code</title>"
        '<link rel="stylesheet" href="/dashboard.css"></head><body>'
        f'<header><a href="/">Auto-Code</a>{signout}</header>'
        f"<main>{body}</main>"
        '<script src="/dashboard.js"></script></body></html>\n'
    )


def notice(code: str) -> str:
    text = NOTICES.get(code)
    return f'<p class="notice" role="status">{esc(text)}</p>' if text else ""


def login_page(*, error: str = "", next_path: str = "/", note: str = "") -> str:
    message = f'<p class="notice error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        "<h1>Sign in</h1>"
        f"{notice(note)}{message}"
        '<form class="login" method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        "<label>Admin token (AUTOCODE_ADMIN_TOKEN)<br>"
        '<input type="password" name="token" autocomplete="current-password" required autofocus>'
        "</label><button>Sign in</button></form>"
    )
    return layout("Sign in", body)


def ticket_list(
    tickets: Sequence[Ticket],
    *,
    now: float,
    csrf: str,
    state: str = "",
    repository: str = "",
    repositories: Sequence[str] = (),
) -> str:
    """The ticket table with its filters (state and repository, as query parameters)."""
    states = "".join(
        f'<option value="{esc(s)}"{" selected" if s == state else ""}>{esc(s or "all")}</option>'
        for s in ["", *(str(s) for s in TicketState)]
    )
    known = "".join(f'<option value="{esc(r)}">' for r in repositories)
    filters = (
        '<form class="filters" method="get" action="/">'
        f'<label>State<select name="state">{states}</select></label>'
        '<label>Repository<input name="repository" list="repositories" '
        f'placeholder="owner/name" value="{esc(repository)}"></label>'
        f'<datalist id="repositories">{known}</datalist>'
        '<button>Filter</button> <a href="/">clear</a></form>'
    )
    rows = []
    for t in tickets:
        number = f"{'PR' if t.is_pull_request else 'issue'} #{t.number}" if t.number > 0 else ""
        pull = link(t.pr_url, f"#{t.pr_number}" if t.pr_number else "PR") if t.pr_url else ""
        rows.append(
            f'<tr data-ticket="{t.id}">'
            f'<td><a href="/tickets/{t.id}">{t.id}</a></td>'
            f"<td>{esc(t.repository)}</td>"
            f"<td>{link(issue_url(t), number)}</td>"
            f'<td class="title">{esc(t.title)}</td>'
            f"<td>{esc(t.kind)}</td>"
            f"<td>{esc(t.requested_by)}</td>"
            f"<td>{state_badge(t.state)}</td>"
            f'<td class="num">{elapsed(t, now)}</td>'
            f'<td class="num">{t.tokens_input:,} / {t.tokens_output:,}</td>'
            f'<td class="num">{money(t.cost)}</td>'
            f"<td>{pull}</td>"
            "</tr>"
        )
    table = (
        '<table id="tickets"><thead><tr><th>Ticket</th><th>Repository</th><th>Issue / PR</th>'
        "<th>Title</th><th>Kind</th><th>Asked by</th><th>State</th><th>Duration</th>"
        "<th>Tokens in / out</th><th>Cost</th><th>Pull request</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted" id="no-tickets">No tickets match.</p>'
    )
    return layout("Tickets", f"<h1>Tickets</h1>{filters}{table}", csrf=csrf)


def log_item(line: LogLine) -> str:
    clock = time.strftime("%H:%M:%S", time.gmtime(line.at))
    return (
        f'<li class="log-{esc(line.kind)}" data-id="{line.id}"><time>{clock}</time>'
        f'<span class="kind">{esc(line.kind)}</span>'
        f'<span class="msg">{esc(line.message)}</span></li>'
    )


def notification_table(rows: Sequence[Notification]) -> str:
    """A ticket's events per receiver: pending, delivered or dead (given up), and why."""
    if not rows:
        return ""
    items = "".join(
        f'<tr data-notification="{n.id}"><td>{esc(n.event)}</td>'
        f"<td>{esc(receiver(n.url))}</td>"
        f'<td><span class="state state-{esc(n.state)}">{esc(n.state)}</span></td>'
        f'<td class="num">{n.attempts}</td>'
        f"<td>{when(n.delivered_at if n.delivered_at is not None else n.dead_at)}</td>"
        f'<td class="last-error">{esc(n.last_error or "")}</td></tr>'
        for n in rows
    )
    return (
        '<h2>Notifications</h2><table id="notifications"><thead><tr><th>Event</th>'
        "<th>Receiver</th><th>State</th><th>Attempts</th><th>Delivered / given up</th>"
        f"<th>Last error</th></tr></thead><tbody>{items}</tbody></table>"
    )


def chain_table(chain: Sequence[Ticket], current: int, number: int) -> str:
    """The tickets of a pull request, oldest first: what opened it, its follow-ups, commands."""
    if len(chain) < 2:
        return ""
    mark = {current: ' class="current"'}
    rows = "".join(
        f'<tr data-chain="{t.id}"{mark.get(t.id, "")}>'
        f'<td><a href="/tickets/{t.id}">{t.id}</a></td><td>{esc(t.kind)}</td>'
        f"<td>{state_badge(t.state)}</td><td>{esc(t.origin.why or t.error or t.title)}</td>"
        f"<td>{when(t.created_at)}</td></tr>"
        for t in sorted(chain, key=lambda t: t.id)
    )
    return (
        f'<h2>Pull request #{number}</h2><table id="chain"><thead><tr><th>Ticket</th>'
        f"<th>Kind</th><th>State</th><th>Why</th><th>Created</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _button(ticket_id: int, action: str, label: str, csrf: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (
        f'<form id="{action}-form" method="post" action="/tickets/{ticket_id}/{action}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f"<button{cls}>{esc(label)}</button></form>"
    )


def _details(t: Ticket, number: str, now: float) -> str:
    """A ticket's fields as a definition list's items, leaving out the empty ones."""
    fields = [
        ("Repository", esc(t.repository)),
        ("Issue / PR", link(issue_url(t), number) if t.number > 0 else ""),
        ("Title", esc(t.title)),
        ("Kind", esc(t.kind)),
        ("Asked by", esc(t.requested_by)),
        ("State", state_badge(t.state, "state")),
        ("Conclusion", esc(t.conclusion or "")),
        ("Error", esc(t.error or "")),
        ("Created", when(t.created_at)),
        ("Started", when(t.started_at)),
        ("Finished", when(t.finished_at)),
        ("Duration", elapsed(t, now)),
        ("Attempts", str(t.attempts)),
        ("Branch", esc(t.branch or "")),
        ("Pull request", link(t.pr_url or "", t.pr_url or "") if t.pr_url else ""),
        ("Tokens in / out", f"{t.tokens_input:,} / {t.tokens_output:,}"),
        ("Cost", money(t.cost)),
    ]
    return "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in fields if value)


def ticket_page(
    ticket: Ticket,
    logs: Sequence[LogLine],
    *,
    now: float,
    csrf: str,
    note: str = "",
    notifications: Sequence[Notification] = (),
    chain: Sequence[Ticket] = (),
) -> str:
    """One ticket: its fields, Cancel/Retry, its log (streamed while it runs), its events,
    and the other tickets of its pull request (`chain`)."""
    t = ticket
    number = f"{'pull request' if t.is_pull_request else 'issue'} #{t.number}"
    details = _details(t, number, now)
    actions = []
    if not t.state.final:
        actions.append(_button(t.id, "cancel", "Cancel", csrf, "danger"))
    elif t.repeatable:
        actions.append(_button(t.id, "retry", "Retry", csrf))
    extra = ""
    if t.instructions.strip():
        extra += f"<h2>Instructions</h2><pre>{esc(t.instructions)}</pre>"
    if t.files_changed:
        extra += (
            "<h2>Files changed</h2><ul>"
            + "".join(f"<li><code>{esc(path)}</code></li>" for path in t.files_changed)
            + "</ul>"
        )
    extra += chain_table(chain, t.id, t.pr_number or t.number)
    extra += notification_table(notifications)
    after = logs[-1].id if logs else 0
    stream = "" if t.state.final else f' data-stream="/tickets/{t.id}/events"'
    items = "".join(log_item(line) for line in logs)
    if not items:
        items = '<li id="log-empty" class="muted">no steps yet</li>'
    live = '<span id="live" class="live">connecting…</span>' if not t.state.final else ""
    body = (
        f"<h1>Ticket {t.id}: {esc(t.title or number)}</h1>"
        f"{notice(note)}"
        f"<dl>{details}</dl>"
        f'<div class="actions">{"".join(actions)}</div>'
        f"<h2>Agent log {live}</h2>"
        f'<ol id="log" data-after="{after}"{stream}>{items}</ol>'
        f"{extra}"
    )
    return layout(f"Ticket {t.id}", body, csrf=csrf)
