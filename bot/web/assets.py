"""The dashboard's stylesheet and script, served as /dashboard.css and /dashboard.js.

Both are static text. The script adds log lines with `textContent`, never as
HTML, so an agent's log line can never become markup.
"""

from __future__ import annotations

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
td.last-error { word-break: break-word; color: var(--muted); }
.state { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: 12px;
  font-weight: 600; border: 1px solid var(--line); background: var(--bg); }
.state-running { background: #ddf4ff; border-color: #54aeff; }
.state-queued { background: #fff8c5; border-color: #d4a72c; }
.state-succeeded, .state-delivered { background: #dafbe1; border-color: #4ac26b; }
.state-failed, .state-timed_out, .state-dead { background: #ffebe9; border-color: #ff8182; }
.state-pending { background: #fff8c5; border-color: #d4a72c; }
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
