"""Signed ticket notifications to real receivers on 127.0.0.1, through the durable outbox.

Receivers are Starlette apps under uvicorn that check the signature the way
a GitHub webhook receiver does. One fails its first attempts, one is not
there at all for a while and then comes up on the same port: every event
still arrives exactly once, in order per ticket. Slack is never contacted:
its format and its detection are pure functions, tested as such.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.app import build_app
from bot.config import Settings
from bot.errors import SettingsError
from bot.metrics import Metrics
from bot.models import TicketState
from bot.notify.bodies import event_body, is_slack, slack_body, slack_text
from bot.notify.publisher import Notifier, Publisher, backoff, receiver, redact, request_for
from bot.store.base import Notification
from bot.store.sqlite import SQLiteStore
from bot.webhook.verify import verify
from tests.fakes.notify_receiver import SECRET, Receiver
from tests.fakes.server import ServerThread
from tests.integration.test_store import trigger
from tests.paths import PAYLOADS
from tests.webhooks import send

FAST = {"backoff_base": 0.05, "backoff_cap": 0.2, "poll": 0.02}  # injected, not patched


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    started: list[ServerThread] = []

    def start(app: Starlette, port: int = 0) -> ServerThread:
        server = ServerThread(app, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def life(store: SQLiteStore, publisher: Publisher, number: int) -> tuple[int, list[Any]]:
    """A ticket made, claimed and finished in the store, and the hooks a worker would call."""
    ticket_id, _ = store.add(f"d-{number}", "issues", trigger(number))
    claimed = store.claim("w1", 60.0, time.time())
    assert claimed is not None and claimed.id == ticket_id
    store.update(ticket_id, tokens_input=1200, tokens_output=300, cost=0.0125, pr_url="https://x/1")
    steps = [
        publisher.started(claimed),
        (store.finish, (ticket_id, TicketState.SUCCEEDED, time.time()), {"conclusion": "success"}),
        publisher.finished(ticket_id, ran=True),
    ]
    return ticket_id, steps


async def run_life(store: SQLiteStore, publisher: Publisher, number: int) -> int:
    ticket_id, (started, (finish, args, kwargs), finished) = life(store, publisher, number)
    await started
    finish(*args, **kwargs)
    await finished
    return ticket_id


# -- delivery ------------------------------------------------------------------
async def test_every_event_arrives_signed_in_order(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    hook = Receiver()
    url = serve(hook.app()).url + "/hook"
    store = SQLiteStore(tmp_path / "t.db", notify_urls=[url])
    notifier = Notifier(store, SECRET, **FAST)  # type: ignore[arg-type]
    metrics = Metrics(store)
    publisher = Publisher(store, [url], metrics=metrics, wake=notifier.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_forever(stop))
    try:
        ticket_id = await run_life(store, publisher, 7)
        await until(lambda: len(hook.got) == 3)
    finally:
        stop.set()
        await task
    assert hook.events() == [
        (ticket_id, "ticket.queued"),
        (ticket_id, "ticket.started"),
        (ticket_id, "ticket.finished"),
    ]
    assert hook.bad_signatures == 0 and hook.attempts == 3
    assert len({g["delivery"] for g in hook.got}) == 3
    assert all(g["delivery"].isdigit() and g["agent"] == "Autocode-Notify/1" for g in hook.got)
    queued, started, finished = (g["body"] for g in hook.got)
    assert queued["ticket"]["state"] == "queued" and started["ticket"]["state"] == "running"
    assert started["ticket"]["started_at"] is not None
    done = finished["ticket"]
    assert done["repository"] == "octo/hello" and done["number"] == 7
    assert done["kind"] == "command" and done["requested_by"] == "octocat"
    assert done["state"] == "succeeded" and done["conclusion"] == "success"
    assert done["pr_url"] == "https://x/1"
    assert done["tokens"] == {"input": 1200, "output": 300} and done["cost"] == 0.0125
    assert done["duration_seconds"] >= 0 and done["finished_at"] >= done["started_at"]
    # the run's figures reached the metrics through the same hook
    text = metrics.render().decode()
    assert 'autocode_llm_tokens_total{kind="input"} 1200.0' in text
    assert 'autocode_run_seconds_count{conclusion="success"} 1.0' in text
    store.close()


async def test_a_failing_receiver_gets_every_event_once_and_holds_up_no_other(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    flaky, healthy = Receiver(fail_first=7), Receiver()
    urls = [serve(flaky.app()).url + "/hook", serve(healthy.app()).url + "/hook"]
    store = SQLiteStore(tmp_path / "t.db", notify_urls=urls)
    notifier = Notifier(store, SECRET, **FAST)  # type: ignore[arg-type]
    publisher = Publisher(store, urls, wake=notifier.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_forever(stop))
    try:
        tickets = [await run_life(store, publisher, n) for n in (1, 2, 3)]
        await until(lambda: len(healthy.got) == 9 and len(flaky.got) == 9)
        await asyncio.sleep(0.3)  # nothing more comes
    finally:
        stop.set()
        await task
    for hook in (flaky, healthy):
        events = hook.events()
        assert sorted(events) == sorted(
            (t, e) for t in tickets for e in ("ticket.queued", "ticket.started", "ticket.finished")
        )  # each exactly once
        for ticket_id in tickets:
            assert [e for t, e in events if t == ticket_id] == [
                "ticket.queued", "ticket.started", "ticket.finished",
            ]  # fmt: skip
    assert flaky.attempts == 9 + 7 and healthy.attempts == 9
    assert store.due_notifications(time.time() + 1e6, 100) == []  # nothing left to send
    store.close()


async def test_a_receiver_down_for_a_while_gets_everything_once_it_is_back(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store = SQLiteStore(tmp_path / "t.db", notify_urls=[url])
    notifier = Notifier(store, SECRET, **FAST)  # type: ignore[arg-type]
    publisher = Publisher(store, [url], wake=notifier.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_forever(stop))
    hook = Receiver()
    try:
        tickets = [await run_life(store, publisher, n) for n in range(1, 6)]
        await asyncio.sleep(1.5)  # nobody listens: every attempt is refused
        # what the outbox recorded meanwhile: the first event of each ticket was tried
        # again and again; the later ones wait behind it, never tried
        tried = dict(
            store._conn()
            .execute("SELECT event, min(attempts) FROM notifications GROUP BY event")
            .fetchall()
        )
        assert tried["ticket.queued"] >= 3
        assert tried["ticket.started"] == tried["ticket.finished"] == 0
        errors = {e for (e,) in store._conn().execute("SELECT last_error FROM notifications")}
        assert {e.split(":")[0] for e in errors if e} == {"ConnectError"}
        serve(hook.app(), port=port)  # back, on the same port
        await until(lambda: len(hook.got) == 15)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
    events = hook.events()
    assert len(events) == len(set(events)) == 15
    for ticket_id in tickets:
        assert [e for t, e in events if t == ticket_id] == [
            "ticket.queued", "ticket.started", "ticket.finished",
        ]  # fmt: skip
    assert hook.bad_signatures == 0
    store.close()


async def test_a_notifier_restarted_mid_outage_loses_nothing(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    """The outbox is the store: a new process picks up where the old one stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store = SQLiteStore(tmp_path / "t.db", notify_urls=[url])
    first = Notifier(store, SECRET, **FAST)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(first.run_forever(stop))
    ticket_id = await run_life(store, Publisher(store, [url], wake=first.wake), 4)
    await asyncio.sleep(0.3)
    stop.set()
    await task
    store.close()

    hook = Receiver()
    serve(hook.app(), port=port)
    reopened = SQLiteStore(tmp_path / "t.db", notify_urls=[url])
    second = Notifier(reopened, SECRET, **FAST)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(second.run_forever(stop))
    try:
        await until(lambda: len(hook.got) == 3)
    finally:
        stop.set()
        await task
    assert hook.events() == [
        (ticket_id, "ticket.queued"), (ticket_id, "ticket.started"), (ticket_id, "ticket.finished"),
    ]  # fmt: skip
    reopened.close()


async def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    hook = Receiver(secret="the receiver's own secret")
    url = serve(hook.app()).url + "/hook"
    store = SQLiteStore(tmp_path / "t.db", notify_urls=[url])
    store.add("d-1", "issues", trigger(1))
    notifier = Notifier(store, SECRET, **FAST)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_forever(stop))
    try:
        await until(lambda: hook.bad_signatures >= 2)
    finally:
        stop.set()
        await task
    assert hook.got == []
    row = store._conn().execute("SELECT delivered_at, last_error FROM notifications").fetchone()
    assert row == (None, "HTTP 401")
    store.close()


def test_the_app_sends_ticket_queued_when_a_webhook_makes_a_ticket(
    tmp_path: Path, serve: Callable[..., ServerThread]
) -> None:
    hook = Receiver()
    url = serve(hook.app()).url + "/hook"
    settings = Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": "webhook-secret",
            "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp_path / 'autocode.db'}",
            "AUTOCODE_NOTIFY_URLS": f" {url} ",
            "AUTOCODE_NOTIFY_SECRET": SECRET,
        }
    )
    bot = serve(build_app(settings, workers=False))
    payload = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    payload["label"]["name"] = "auto-code"
    response = send(bot.url, "issues", payload, "webhook-secret", delivery="d-1")
    assert response.status_code == 202
    again = send(bot.url, "issues", payload, "webhook-secret", delivery="d-1")
    assert again.status_code == 200  # a repeated delivery makes no second event
    deadline = time.monotonic() + 20
    while not hook.got and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    assert hook.events() == [(response.json()["ticket"], "ticket.queued")]
    body = hook.got[0]["body"]["ticket"]
    assert body["repository"] == payload["repository"]["full_name"]
    assert body["number"] == payload["issue"]["number"]
    assert body["requested_by"] == payload["sender"]["login"] and body["kind"] == "label"


# -- settings ------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", ["ftp://example.test/hook", "example.test/hook", "http://", "mailto:a@b.test"]
)
def test_a_notify_url_that_is_not_http_is_refused_at_start(bad: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(
            {
                "AUTOCODE_NOTIFY_URLS": f"http://127.0.0.1:1/ok,{bad}",
                "AUTOCODE_NOTIFY_SECRET": SECRET,
            }
        )
    assert "AUTOCODE_NOTIFY_URLS" in caught.value.message and repr(bad) in caught.value.message


def test_notify_urls_need_a_secret_and_parse_into_a_tuple() -> None:
    with pytest.raises(SettingsError, match="AUTOCODE_NOTIFY_SECRET"):
        Settings.from_environ({"AUTOCODE_NOTIFY_URLS": "https://example.test/hook"})
    settings = Settings.from_environ(
        {
            "AUTOCODE_NOTIFY_URLS": "https://a.test/x, ,http://127.0.0.1:9/y,",
            "AUTOCODE_NOTIFY_SECRET": SECRET,
        }
    )
    assert settings.notify_urls == ("https://a.test/x", "http://127.0.0.1:9/y")
    assert SECRET not in repr(settings) and "a.test" not in repr(settings)
    assert Settings.from_environ({}).notify_urls == ()


# -- pure parts: signing, Slack, backoff -------------------------------------------
def row(url: str, body: str, event: str = "ticket.finished") -> Notification:
    return Notification(7, 3, url, event, body, 1.0, 1, 1.0)


def finished_body() -> str:
    from bot.models import EMPTY_ORIGIN, Ticket

    ticket = Ticket(
        id=3, delivery_id="d", event="issues", kind="label", repository="octo/<hello>",
        clone_url="", installation_id=1, number=12, is_pull_request=False, title="T", body="",
        requested_by="octocat", instructions="", origin=EMPTY_ORIGIN, state=TicketState.SUCCEEDED,
        created_at=100.0, started_at=110.0, finished_at=185.4, conclusion="success",
        pr_url="https://github.test/octo/hello/pull/13", tokens_input=1000, tokens_output=234,
        cost=0.01234,
    )  # fmt: skip
    return event_body("ticket.finished", ticket, 190.0)


def test_the_signature_is_githubs_over_the_exact_bytes_sent() -> None:
    body = finished_body()
    content, headers = request_for(row("https://example.test/hook", body), SECRET)
    assert content == body.encode()
    verify(SECRET, content, headers["X-Autocode-Signature-256"])
    assert headers["X-Autocode-Signature-256"].startswith("sha256=")
    assert headers["X-Autocode-Event"] == "ticket.finished"
    assert headers["X-Autocode-Delivery"] == "7"
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("url", "slack"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", True),
        ("https://HOOKS.SLACK.COM/services/T000/B000/XXXX", True),
        ("http://hooks.slack.com/services/T000/B000/XXXX", False),  # Slack is https only
        ("https://hooks.slack.com/workflows/T000/A000/1/x", False),  # workflow triggers differ
        ("https://hooks.slack.com.evil.test/services/T/B/X", False),
        ("https://example.test/services/T/B/X", False),
        ("http://127.0.0.1:8080/hook", False),
    ],
)
def test_slack_is_told_apart_by_its_url_alone(url: str, slack: bool) -> None:
    assert is_slack(url) is slack


def test_a_slack_url_gets_a_text_message_signed_the_same_way() -> None:
    body = finished_body()
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    content, headers = request_for(row(url, body), SECRET)
    assert content == slack_body(body).encode()
    message = json.loads(content)
    assert list(message) == ["text"]
    assert message["text"] == (
        "Auto-Code ticket 3 on octo/&lt;hello&gt;#12 (label by @octocat): succeeded (success)"
        " · <https://github.test/octo/hello/pull/13|pull request> · 1234 tokens · $0.0123"
        " · 1m 15s"
    )
    verify(SECRET, content, headers["X-Autocode-Signature-256"])
    assert receiver(url) == "https://hooks.slack.com"  # logs never show the secret path


def test_slack_text_of_each_event() -> None:
    finished = json.loads(finished_body())
    for event in ("ticket.queued", "ticket.started"):
        text = slack_text(json.dumps({**finished, "event": event}))
        assert text.endswith(": " + event.split(".")[1]) and "tokens" not in text
    failed = {**finished, "ticket": {**finished["ticket"], "state": "failed", "pr_url": None,
              "conclusion": "failure", "error": "the agent exited with code 1", "cost": 0,
              "tokens": {"input": 0, "output": 0}, "duration_seconds": 9.6}}  # fmt: skip
    assert slack_text(json.dumps(failed)).endswith(
        ": failed (failure) · 10s · the agent exited with code 1"
    )


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 2.0, 300.0) for n in range(1, 11)] == [
        2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0,
    ]  # fmt: skip
    assert backoff(0, 2.0, 300.0) == 2.0


def test_receiver_hides_paths_and_passwords() -> None:
    assert receiver("https://user:pw@example.test:8443/secret/path?q=1") == (
        "https://example.test:8443"
    )
    assert httpx.URL(receiver("http://127.0.0.1:9/x")).host == "127.0.0.1"


def test_an_error_never_holds_the_receivers_secret_path() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    said = [
        f"ConnectError: {url}",
        "ConnectError: http://hooks.slack.com/services/T000/B000/XXXXSECRET: refused",
        "ReadTimeout: POST /services/T000/B000/XXXXSECRET timed out",
    ]
    for text in said:
        assert "XXXXSECRET" not in redact(text, url), text
    assert redact(f"ConnectError: {url}", url) == "ConnectError: https://hooks.slack.com"
