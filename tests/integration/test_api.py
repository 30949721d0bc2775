"""POST /api/tickets and the dashboard's guard, through a real uvicorn server (no workers).

No Docker here: `build_app(settings, workers=False)` stores tickets and
answers; the runs themselves are covered by tests/e2e/.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build_app
from bot.config import Settings
from bot.models import Origin, TicketState
from bot.store.sqlite import SQLiteStore
from bot.web.auth import COOKIE, SESSION_SECONDS, Guard
from tests.fakes.server import ServerThread

ADMIN = "api-admin-token"
GITHUB_URL = "https://github.example.com"


@dataclass
class Api:
    url: str
    db: Path

    def post(self, body: Any, *, token: str | None = ADMIN, **headers: str) -> httpx.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(body, bytes | str):
            return httpx.post(f"{self.url}/api/tickets", content=body, headers=headers)
        return httpx.post(f"{self.url}/api/tickets", json=body, headers=headers)

    def store(self) -> SQLiteStore:
        return SQLiteStore(self.db)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    db = tmp_path / "autocode.db"
    settings = Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": "secret",
            "AUTOCODE_DATABASE_URL": f"sqlite:///{db}",
            "AUTOCODE_ADMIN_TOKEN": ADMIN,
            "AUTOCODE_GITHUB_URL": GITHUB_URL,
        }
    )
    with ServerThread(build_app(settings, workers=False)) as server:
        yield Api(server.url, db)


def test_an_issue_becomes_a_queued_ticket_like_the_label(api: Api) -> None:
    response = api.post({"repository": "octo/hello", "issue": 7})
    assert response.status_code == 202, response.text
    ticket_id = response.json()["ticket"]
    store = api.store()
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert ticket.state == "queued" and ticket.kind == "label"
    assert (ticket.repository, ticket.number, ticket.is_pull_request) == ("octo/hello", 7, False)
    assert ticket.clone_url == f"{GITHUB_URL}/octo/hello.git"
    assert ticket.installation_id is None  # the worker looks it up
    assert ticket.requested_by == "api" and ticket.event == "api"
    assert ticket.origin == Origin(source="api", operator=True)
    listed = httpx.get(
        f"{api.url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    ).json()
    assert listed["state"] == "queued" and listed["number"] == 7


def test_instructions_make_a_command_ticket(api: Api) -> None:
    response = api.post(
        {"repository": "octo/hello", "issue": 3, "instructions": "  add a README  "}
    )
    assert response.status_code == 202, response.text
    ticket = api.store().get(response.json()["ticket"])
    assert ticket is not None
    assert ticket.kind == "command" and ticket.instructions == "add a README"


def test_an_idempotency_key_makes_one_ticket(api: Api) -> None:
    first = api.post({"repository": "octo/hello", "issue": 4, "instructions": "x"},
                     **{"Idempotency-Key": "order-1234"})  # fmt: skip
    again = api.post({"repository": "octo/hello", "issue": 4, "instructions": "x"},
                     **{"Idempotency-Key": "order-1234"})  # fmt: skip
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"ticket": first.json()["ticket"], "duplicate": True}
    assert len(api.store().tickets()) == 1


def test_a_bare_request_joins_the_one_already_waiting(api: Api) -> None:
    first = api.post({"repository": "octo/hello", "issue": 5})
    second = api.post({"repository": "octo/hello", "issue": 5})
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["ticket"] == first.json()["ticket"]


@pytest.mark.parametrize("token", [None, "wrong", ADMIN + "x"])
def test_without_the_admin_token_nothing_is_queued(api: Api, token: str | None) -> None:
    response = api.post({"repository": "octo/hello", "issue": 1}, token=token)
    assert response.status_code == 401
    assert "admin bearer token" in response.json()["error"]
    assert api.store().tickets() == []


def test_the_session_cookie_is_not_enough_for_the_json_api(api: Api) -> None:
    with httpx.Client(base_url=api.url) as browser:
        signed_in = browser.post("/login", data={"token": ADMIN, "next": "/"})
        assert signed_in.status_code == 303 and COOKIE in browser.cookies
        assert browser.get("/").status_code == 200
        queued = browser.post("/api/tickets", json={"repository": "o/r", "issue": 1})
        assert queued.status_code == 401
        assert browser.get("/api/tickets").status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"repository": "octo/hello"}, "issue must be a positive whole number"),
        ({"repository": "octo/hello", "issue": 0}, "issue must be a positive whole number"),
        ({"repository": "octo/hello", "issue": "7"}, "issue must be a positive whole number"),
        ({"repository": "octo/hello", "issue": True}, "issue must be a positive whole number"),
        ({"repository": "hello", "issue": 1}, 'repository must be "owner/name"'),
        ({"repository": "../etc/passwd", "issue": 1}, 'repository must be "owner/name"'),
        ({"repository": "o/r", "issue": 1, "instructions": 5}, "instructions must be a string"),
        ({"repository": "o/r", "issue": 1, "draft": True}, "unknown field(s) draft"),
        (
            {"repository": "o/r", "title": "Add X", "description": "Please"},
            "a ticket needs an existing issue",
        ),
    ],
)
def test_bad_requests_get_a_clear_400(api: Api, body: Any, message: str) -> None:
    response = api.post(body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert api.store().tickets() == []


def test_a_bad_idempotency_key_is_refused(api: Api) -> None:
    response = api.post({"repository": "o/r", "issue": 1}, **{"Idempotency-Key": "a b"})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]


def test_the_dashboard_redirects_to_the_login_form_without_a_session(api: Api) -> None:
    for path in ("/", "/tickets/1", "/?state=running"):
        response = httpx.get(f"{api.url}{path}")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert httpx.get(f"{api.url}/tickets/1/events").status_code == 401
    page = httpx.get(f"{api.url}/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    wrong = httpx.post(f"{api.url}/login", data={"token": "guess"})
    assert wrong.status_code == 401 and COOKIE not in wrong.cookies
    assert httpx.get(f"{api.url}/", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_the_session_cookie_is_httponly_strict_and_not_the_token(api: Api) -> None:
    response = httpx.post(f"{api.url}/login", data={"token": ADMIN, "next": "//evil.example"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"  # never off-site
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=strict" in header.replace("Strict", "strict")
    value = response.cookies[COOKIE]
    assert ADMIN not in value and value
    tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
    with httpx.Client(base_url=api.url, cookies={COOKIE: tampered}) as forged:
        assert forged.get("/").status_code == 303


def test_posts_without_the_csrf_token_are_forbidden(api: Api) -> None:
    ticket_id = api.post({"repository": "octo/hello", "issue": 9}).json()["ticket"]
    with httpx.Client(base_url=api.url) as browser:
        browser.post("/login", data={"token": ADMIN})
        for form in ({}, {"csrf": "0" * 64}):
            response = browser.post(f"/tickets/{ticket_id}/cancel", data=form)
            assert response.status_code == 403
    anonymous = httpx.post(f"{api.url}/tickets/{ticket_id}/cancel", data={"csrf": "x"})
    assert anonymous.status_code == 403
    tickets = api.store().tickets()
    assert [t.id for t in tickets] == [ticket_id]  # no cancel ticket was made


def test_pages_forbid_foreign_scripts_and_framing(api: Api) -> None:
    page = httpx.get(f"{api.url}/", headers={"Authorization": f"Bearer {ADMIN}"})
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"


def test_without_an_admin_token_the_dashboard_is_off(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {"AUTOCODE_WEBHOOK_SECRET": "s", "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    with ServerThread(build_app(settings, workers=False)) as server:
        form = httpx.get(f"{server.url}/login")
        assert "AUTOCODE_ADMIN_TOKEN is not set" in form.text
        refused = httpx.post(f"{server.url}/login", data={"token": ""})
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        assert httpx.get(f"{server.url}/").status_code == 303
        queued = httpx.post(f"{server.url}/api/tickets", json={"repository": "o/r", "issue": 1},
                            headers={"Authorization": "Bearer x"})  # fmt: skip
        assert queued.status_code == 401


def test_sessions_expire_and_are_bound_to_the_token() -> None:
    now = [1_000_000.0]
    guard = Guard(ADMIN, "webhook-secret", clock=lambda: now[0])
    session = guard.new_session()
    assert guard.session_ok(session)
    assert guard.csrf_for(session) != guard.csrf_for(guard.new_session() + "x")
    now[0] += SESSION_SECONDS + 1
    assert not guard.session_ok(session)  # expired
    now[0] = 1_000_000.0
    assert not Guard(ADMIN + "2", "webhook-secret", clock=lambda: now[0]).session_ok(session)
    assert not Guard(ADMIN, "other-secret", clock=lambda: now[0]).session_ok(session)
    assert not Guard("", "webhook-secret").session_ok(session)  # no token: nobody signs in


@contextlib.contextmanager
def signed_in(api: Api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url) as browser:
        assert browser.post("/login", data={"token": ADMIN}).status_code == 303
        yield browser


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, page
    return found.group(1)


def test_cancel_of_a_queued_ticket_stops_it_when_it_is_claimed(api: Api) -> None:
    ticket_id = api.post({"repository": "octo/hello", "issue": 9}).json()["ticket"]
    with signed_in(api) as browser:
        page = browser.get(f"/tickets/{ticket_id}")
        assert 'id="cancel-form"' in page.text and 'id="retry-form"' not in page.text
        done = browser.post(f"/tickets/{ticket_id}/cancel", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    assert done.headers["location"] == f"/tickets/{ticket_id}?note=cancel-requested"
    store = api.store()
    assert [t.id for t in store.tickets()] == [ticket_id]  # no extra ticket needed
    claimed = store.claim("w1", 60, time.time())
    assert claimed is not None and claimed.id == ticket_id
    # the worker that claims it finds the request and ends it cancelled at once
    assert store.cancel_requests([ticket_id]) == {ticket_id: "dashboard"}


def test_retry_of_a_finished_ticket_queues_an_operator_retry(api: Api) -> None:
    ticket_id = api.post({"repository": "octo/hello", "issue": 9}).json()["ticket"]
    store = api.store()
    with signed_in(api) as browser:
        early = browser.post(
            f"/tickets/{ticket_id}/retry",
            data={"csrf": csrf_of(browser.get(f"/tickets/{ticket_id}").text)},
        )
        assert early.status_code == 409  # still queued: nothing to retry yet
        store.finish(ticket_id, TicketState.FAILED, time.time(), conclusion="failure")
        page = browser.get(f"/tickets/{ticket_id}")
        assert 'id="retry-form"' in page.text and 'id="cancel-form"' not in page.text
        done = browser.post(f"/tickets/{ticket_id}/retry", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    retry_id = int(done.headers["location"].split("/tickets/")[1].split("?")[0])
    retry = store.get(retry_id)
    assert retry is not None and retry.kind == "retry" and retry.state == "queued"
    assert retry.origin == Origin(retry_of=ticket_id, source="dashboard", operator=True)
    assert retry.requested_by == "dashboard"


def test_the_event_stream_replays_the_log_and_ends_when_final(api: Api) -> None:
    ticket_id = api.post({"repository": "octo/hello", "issue": 9}).json()["ticket"]
    store = api.store()
    for n in range(3):
        store.log(ticket_id, "tool", f"bash echo {n} <b>", time.time())
    store.finish(ticket_id, TicketState.SUCCEEDED, time.time(), conclusion="success")
    headers = {"Authorization": f"Bearer {ADMIN}", "Last-Event-ID": "0"}
    with httpx.stream(
        "GET", f"{api.url}/tickets/{ticket_id}/events?after=0", headers=headers, timeout=10
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = [block for block in body.split("\n\n") if "event:" in block]
    assert [e.split("event: ")[1].split("\n")[0] for e in events] == ["log"] * 3 + ["end"]
    assert '"message": "bash echo 2 <b>"' in events[2]
    assert '"state": "succeeded"' in events[3]
    first = int(events[0].split("id: ")[1].split("\n")[0])
    headers["Last-Event-ID"] = str(first + 1)  # a reconnect resumes after what it saw
    with httpx.stream("GET", f"{api.url}/tickets/{ticket_id}/events", headers=headers,
                      timeout=10) as response:  # fmt: skip
        again = "".join(response.iter_text())
    assert again.count("event: log") == 1 and "bash echo 2" in again


def test_the_ticket_list_pages_with_a_cursor(api: Api) -> None:
    made = [
        api.post({"repository": "octo/hello", "issue": n}).json()["ticket"] for n in range(1, 8)
    ]
    auth = {"Authorization": f"Bearer {ADMIN}"}
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"before": cursor} if cursor else {})}
        answer = httpx.get(f"{api.url}/api/tickets", params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        pages += 1
        assert len(data["tickets"]) <= 3
        seen += [t["id"] for t in data["tickets"]]
        assert all(t["trigger"] == "label" and t["kind"] == "label" for t in data["tickets"])
        cursor = data["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(made, reverse=True)  # newest first, each once

    everything = httpx.get(f"{api.url}/api/tickets", headers=auth).json()
    assert [t["id"] for t in everything["tickets"]] == seen and everything["next"] is None
    for bad in ({"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"before": "-1"}):
        answer = httpx.get(f"{api.url}/api/tickets", params=bad, headers=auth)
        assert answer.status_code == 400 and "must be" in answer.json()["error"], bad
    assert httpx.get(f"{api.url}/api/tickets", params={"limit": 2}).status_code == 401
    missing = httpx.get(f"{api.url}/api/tickets/abc", headers=auth)
    assert missing.status_code == 404
