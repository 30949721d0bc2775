"""The dashboard's HTML (pure functions of tickets and log lines to strings).

Every value that comes from a ticket passes through `html.escape`: titles,
bodies, logins and branch names are written by GitHub users, and agent log
lines by the agent. Links are only ever http(s). The script adds log lines
with `textContent`, never as HTML.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from ..github.render import duration, money
from ..models import CONTROL_KINDS, Ticket, TicketState
from ..store.base import LogLine

NOTICES = {
    "cancel-requested": "Cancel requested: the run stops within seconds.",
    "cancel-queued": "Cancel queued: the request is dropped before it runs.",
    "already-final": "The ticket had already finished; nothing to cancel.",
    "retry-queued": "Retry queued as this ticket.",
    "signed-out": "Signed out.",
}

STYLE = """\
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem;
  background: #24292f; color: #fff; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--bg); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.state { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: 12px;
  font-weight: 600; border: 1px solid var(--line); background: var(--bg); }
.state-running { background: #ddf4ff; border-color: #54aeff; }
.state-queued { background: #fff8c5; border-color: #d4a72c; }
.state-succeeded { background: #dafbe1; border-color: #4ac26b; }
.state-failed, .state-timed_out { background: #ffebe9; border-color: #ff8182; }
.state-cancelled, .state-rejected { background: #eaeef2; }
.filters { display: flex; gap: .6rem; align-items: end; margin-bottom: 1rem; flex-wrap: wrap; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; padding: .25rem .5rem; }
button { cursor: pointer; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); }
button.danger { color: #cf222e; }
.notice { padding: .5rem .8rem; border: 1px solid #54aeff; background: #ddf4ff;
  border-radius: 6px; margin-bottom: 1rem; }
.error { border-color: #ff8182; background: #ffebe9; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
dt { color: var(--muted); }
dd { margin: 0; }
.actions { display: flex; gap: .5rem; margin: 0 0 1rem; }
ol#log { list-style: none; padding: .5rem; margin: 0; background: #0d1117; color: #e6edf3;
  font: 12px/1.6 ui-monospace, SFMono-Regular, Menlo, monospace; border-radius: 6px;
  max-height: 60vh; overflow: auto; }
ol#log li { white-space: pre-wrap; word-break: break-word; }
ol#log time { color: #7d8590; margin-right: .6rem; }
ol#log .kind { display: inline-block; min-width: 3.5rem; color: #79c0ff; margin-right: .4rem; }
ol#log li.log-error .kind { color: #ff7b72; }
ol#log li.log-done .kind { color: #56d364; }
pre { background: var(--bg); padding: .6rem; border-radius: 6px; white-space: pre-wrap; }
.muted { color: var(--muted); }
.live { color: #1a7f37; font-size: 12px; }
form.login { display: flex; flex-direction: column; gap: .6rem; max-width: 22rem; }
"""

SCRIPT = """\
// The ticket page's live log: server-sent events from /tickets/{id}/events.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.stream) { return; }
  var last = parseInt(log.dataset.after || "0", 10);
  var live = document.getElementById("live");
  var source = new EventSource(log.dataset.stream + "?after=" + last);
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clock(seconds) {
    var d = new Date(seconds * 1000);
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds());
  }
  function append(line) {
    if (line.id <= last) { return; }
    last = line.id;
    var empty = document.getElementById("log-empty");
    if (empty) { empty.remove(); }
    var follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    var item = document.createElement("li");
    item.className = "log-" + line.kind;
    item.dataset.id = String(line.id);
    var when = document.createElement("time");
    when.textContent = clock(line.at);
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = line.kind;
    var message = document.createElement("span");
    message.className = "msg";
    message.textContent = line.message;
    item.append(when, kind, message);
    log.append(item);
    if (follow) { log.scrollTop = log.scrollHeight; }
  }
  source.addEventListener("log", function (event) { append(JSON.parse(event.data)); });
  source.addEventListener("end", function (event) {
    var ticket = JSON.parse(event.data);
    source.close();
    var state = document.getElementById("state");
    if (state) {
      state.textContent = ticket.state;
      state.className = "state state-" + ticket.state;
    }
    var cancel = document.getElementById("cancel-form");
    if (cancel) { cancel.remove(); }
    if (live) { live.textContent = "finished: reload for the details"; }
  });
  // the server ends each stream after a while; the browser reconnects at once (Last-Event-ID)
  source.addEventListener("error", function () {
    setTimeout(function () {
      if (live && source.readyState === EventSource.CONNECTING) {
        live.textContent = "reconnecting…";
      }
    }, 3000);
  });
  source.addEventListener("open", function () { if (live) { live.textContent = "live"; } });
})();
"""


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


def _button(ticket_id: int, action: str, label: str, csrf: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (
        f'<form id="{action}-form" method="post" action="/tickets/{ticket_id}/{action}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        f"<button{cls}>{esc(label)}</button></form>"
    )


def ticket_page(
    ticket: Ticket, logs: Sequence[LogLine], *, now: float, csrf: str, note: str = ""
) -> str:
    """One ticket: its fields, Cancel/Retry, and its log (streamed while it runs)."""
    t = ticket
    number = f"{'pull request' if t.is_pull_request else 'issue'} #{t.number}"
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
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in fields if value)
    actions = []
    if not t.state.final:
        actions.append(_button(t.id, "cancel", "Cancel", csrf, "danger"))
    elif t.kind not in CONTROL_KINDS:
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
