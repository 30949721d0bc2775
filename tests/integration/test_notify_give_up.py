"""Giving up on a receiver that keeps failing, on both stores, with real receivers on 127.0.0.1.

A row still failing AUTOCODE_NOTIFY_GIVE_UP_HOURS after it was written is
dead: never sent again, no longer holding up its ticket's later events at
that URL, logged with the receiver (never the URL: a Slack URL's path is its
secret), counted, shown by the API and the ticket's page, and pruned like a
delivered row. The notifier's clock is injected, so an hour passes in a loop.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from starlette.applications import Starlette

from bot.app import build_app, build_events
from bot.config import Settings
from bot.logs import KeyValueFormatter
from bot.metrics import Metrics
from bot.notify.publisher import Notifier, Publisher
from bot.store.postgres import PostgresStore
from bot.store.rows import migrations
from bot.store.sqlite import SQLiteStore
from bot.web.templates import when
from tests.fakes.notify_receiver import SECRET, Receiver
from tests.fakes.server import ServerThread
from tests.integration.test_store import trigger
from tests.pg import create_database, drop_database

Store = SQLiteStore | PostgresStore
HOUR = 3600.0
T0 = 1_700_000_000.0
DIES_AT = T0 + HOUR + 300  # the first failure past the give-up age
SLACK_PATH = "/services/T0AUTOCODE/B0NOTIFY/s3cr3t-of-the-url"
ADMIN = "give-up-admin-token"
DEAD_MIGRATION = 5  # 005_notifications_dead.sql, in both dialects


@dataclass
class Database:
    """One fresh database of one backend, and the stores opened on it."""

    kind: str
    location: str  # the SQLite file, or the PostgreSQL URL
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store: Store = (
            SQLiteStore(self.location) if self.kind == "sqlite" else PostgresStore(self.location)
        )
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = ""
    if request.param == "postgres":
        url = create_database(request.getfixturevalue("postgres_url"))
    made = Database(request.param, url or str(tmp_path / "tickets.db"))
    yield made
    for store in made.opened:
        store.close()
    if url:
        drop_database(url)


@pytest.fixture
def store(database: Database) -> Store:
    return database.open()


@pytest.fixture
def serve() -> Iterator[Callable[[Starlette], str]]:
    """Starts apps on 127.0.0.1; returns each one's base URL. Stopped after the test."""
    started: list[ServerThread] = []

    def start(app: Starlette) -> str:
        started.append(ServerThread(app).start())
        return started[-1].url

    yield start
    for server in started:
        server.stop()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Outbox:
    """A ticket's started and finished events for one broken receiver, and the notifier."""

    store: Store
    hook: Receiver
    base: str  # the receiver's scheme and host: all a log line or a page may show
    ticket_id: int
    clock: Clock
    metrics: Metrics
    notifier: Notifier

    def states(self) -> list[tuple[str, str, int]]:
        return [(n.event, n.state, n.attempts) for n in self.store.notifications(self.ticket_id)]

    async def attempt(self, client: httpx.AsyncClient, at: float) -> int:
        """One pass of the notifier at `at`: how many rows it settled."""
        self.clock.now = at
        return await self.notifier.deliver_due(client)

    async def an_hour_of_failures(self, client: httpx.AsyncClient) -> None:
        """Every 10 minutes for an hour; the last failure at exactly the give-up age."""
        for minute in range(0, 61, 10):
            assert await self.attempt(client, T0 + minute * 60) == 0


async def outbox(store: Store, serve: Callable[[Starlette], str]) -> Outbox:
    hook = Receiver(broken=True, path=SLACK_PATH)
    base = serve(hook.app())
    clock = Clock(T0)
    metrics = Metrics(store)
    notifier = Notifier(
        store, SECRET, give_up_seconds=HOUR, backoff_base=60.0, backoff_cap=300.0,
        metrics=metrics, clock=clock,
    )  # fmt: skip
    publisher = Publisher(store, [base + SLACK_PATH], clock=clock)
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    ticket = store.get(ticket_id)
    assert ticket is not None
    await publisher.started(ticket)
    clock.now = T0 + 1
    await publisher.finished(ticket_id)
    return Outbox(store, hook, base, ticket_id, clock, metrics, notifier)


async def give_up_then_recover(box: Outbox) -> None:
    async with httpx.AsyncClient() as client:
        await box.an_hour_of_failures(client)
        assert box.states() == [("ticket.started", "pending", 7), ("ticket.finished", "pending", 0)]
        assert await box.attempt(client, DIES_AT) == 1  # failed past the age: given up
        assert box.states() == [("ticket.started", "dead", 8), ("ticket.finished", "pending", 0)]
        box.hook.broken = False
        assert await box.attempt(client, DIES_AT) == 1  # the later event is not held up
        assert await box.attempt(client, DIES_AT + 100 * HOUR) == 0  # the dead one: never again


# -- giving up -----------------------------------------------------------------------
async def test_a_receiver_failing_past_the_give_up_age_is_given_up_and_the_next_event_goes(
    store: Store, serve: Callable[[Starlette], str], caplog: pytest.LogCaptureFixture
) -> None:
    box = await outbox(store, serve)
    caplog.set_level(logging.INFO, logger="bot.notify")
    await give_up_then_recover(box)
    assert box.hook.events() == [(box.ticket_id, "ticket.finished")]
    assert box.hook.attempts == 8 + 1
    dead, finished = store.notifications(box.ticket_id)
    assert (dead.state, dead.dead_at, dead.last_error) == ("dead", DIES_AT, "HTTP 500")
    assert (finished.state, finished.delivered_at, finished.dead_at) == ("delivered", DIES_AT, None)
    assert "\nautocode_notifications_dead_total 1.0\n" in box.metrics.render().decode()
    given_up = [r for r in caplog.records if r.getMessage().startswith("notification given up")]
    assert [r.levelno for r in given_up] == [logging.WARNING]
    context = given_up[0].__dict__
    assert {k: context[k] for k in ("ticket", "event", "receiver", "attempts", "error")} == {
        "ticket": box.ticket_id, "event": "ticket.started", "receiver": box.base,
        "attempts": 8, "error": "HTTP 500",
    }  # fmt: skip
    assert context["hours"] == pytest.approx((DIES_AT - T0) / HOUR, abs=0.01)
    logged = "\n".join(KeyValueFormatter().format(r) for r in caplog.records)
    assert box.base in logged
    assert "s3cr3t" not in logged and "/services/" not in logged


async def test_before_the_give_up_age_the_later_event_still_waits(
    store: Store, serve: Callable[[Starlette], str]
) -> None:
    box = await outbox(store, serve)
    async with httpx.AsyncClient() as client:
        await box.an_hour_of_failures(client)
        # an hour old, not older: the earlier event is still retried, the later one waits
        assert box.states() == [("ticket.started", "pending", 7), ("ticket.finished", "pending", 0)]
        assert box.hook.attempts == 7
        box.hook.broken = False
        assert await box.attempt(client, DIES_AT) == 1  # the earlier event first
        assert await box.attempt(client, DIES_AT) == 1  # then the later one
    assert box.hook.events() == [
        (box.ticket_id, "ticket.started"), (box.ticket_id, "ticket.finished"),
    ]  # fmt: skip
    assert "\nautocode_notifications_dead_total 0.0\n" in box.metrics.render().decode()


async def test_the_api_and_the_ticket_page_show_the_dead_event(
    store: Store, serve: Callable[[Starlette], str]
) -> None:
    box = await outbox(store, serve)
    await give_up_then_recover(box)
    settings = Settings.from_environ(
        {"AUTOCODE_WEBHOOK_SECRET": "s", "AUTOCODE_ADMIN_TOKEN": ADMIN}
    )
    bot = serve(build_app(settings, store=store, workers=False))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        api = await client.get(f"{bot}/api/tickets/{box.ticket_id}")
        page = await client.get(f"{bot}/tickets/{box.ticket_id}")
    assert api.status_code == page.status_code == 200
    dead, delivered = api.json()["notifications"]
    assert dead == {
        "id": dead["id"], "event": "ticket.started", "receiver": box.base, "state": "dead",
        "attempts": 8, "last_error": "HTTP 500", "created_at": T0, "delivered_at": None,
        "dead_at": DIES_AT,
    }  # fmt: skip
    assert (delivered["event"], delivered["state"]) == ("ticket.finished", "delivered")
    assert (delivered["delivered_at"], delivered["dead_at"]) == (DIES_AT, None)
    row = re.search(rf'<tr data-notification="{dead["id"]}">(.*?)</tr>', page.text)
    assert row is not None, page.text
    assert 'class="state state-dead">dead</span>' in row[1]
    assert "HTTP 500" in row[1] and when(DIES_AT) in row[1] and box.base in row[1]
    for text in (api.text, page.text):
        assert "s3cr3t" not in text and "/services/" not in text


def test_the_app_gives_its_notifier_the_give_up_age_and_its_metrics(tmp_path: Path) -> None:
    environ = {"AUTOCODE_NOTIFY_URLS": "http://127.0.0.1:9/hook", "AUTOCODE_NOTIFY_SECRET": SECRET}
    store = SQLiteStore(tmp_path / "t.db")
    try:
        metrics = Metrics(store)
        made = [
            build_events(Settings.from_environ({**environ, **extra}), store, metrics)[0]
            for extra in ({"AUTOCODE_NOTIFY_GIVE_UP_HOURS": "1.5"}, {})
        ]
        assert [(n.give_up_seconds, n.metrics) for n in made if n] == [
            (5400.0, metrics), (86400.0, metrics),
        ]  # fmt: skip
    finally:
        store.close()


# -- pruning -------------------------------------------------------------------------
def test_dead_rows_are_pruned_like_delivered_ones(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    urls = [f"http://127.0.0.1:9/{name}" for name in ("old", "young", "sent", "pending")]
    old, young, sent, pending = store.enqueue_notifications(
        ticket_id, "ticket.started", "{}", urls, 10.0
    )
    store.mark_dead(old, 100.0, "HTTP 500")  # given up before the cut-off: goes
    store.mark_dead(young, 1000.0, "HTTP 500")  # given up after it: stays
    store.mark_delivered(sent, 100.0)  # delivered before it: goes, as always
    store.mark_dead(sent, 100.0, "a late failure")  # a delivered row is never made dead
    assert [(n.dead_at, n.last_error) for n in store.notifications(ticket_id) if n.id == sent] == [
        (None, None)
    ]
    assert store.prune_notifications(500.0) == 2
    left = {n.id: (n.state, n.last_error) for n in store.notifications(ticket_id)}
    assert left == {young: ("dead", "HTTP 500"), pending: ("pending", None)}
    assert store.prune_notifications(500.0) == 0


# -- migration -----------------------------------------------------------------------
OLD_TICKET = (
    "INSERT INTO tickets (delivery_id, event, kind, repository, clone_url, number, "
    "requested_by, created_at, lane) VALUES ('old-1', 'issues', 'label', 'octo/hello', "
    "'https://github.com/octo/hello.git', 1, 'octocat', 100, 'octo/hello#1')"
)
VERSION = "INSERT INTO schema_migrations (version) VALUES ({p})"
OLD_ROW = (
    "INSERT INTO notifications (ticket_id, url, event, body, created_at, attempts, "
    "next_attempt_at, delivered_at, last_error) VALUES ({p}, {p}, {p}, {p}, 100, 3, 100, {p}, {p})"
)


def previous_database(database: Database, url: str) -> int:
    """The schema before 005, as an older bot left it: a ticket with one event delivered and
    one still failing. Returns the ticket's id."""
    files = [(number, text) for number, text in migrations(database.kind) if number < 5]
    sqlite = database.kind == "sqlite"
    mark = "?" if sqlite else "%s"
    conn: Any = sqlite3.connect(database.location) if sqlite else psycopg.connect(database.location)
    try:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL DEFAULT 0)"
        )
        for number, text in files:  # each file whole, as each store's runner applies it
            if sqlite:
                conn.executescript(text)
            else:
                conn.execute(text.encode())
            conn.execute(VERSION.format(p=mark), (number,))
        conn.execute(OLD_TICKET)
        (ticket_id,) = conn.execute("SELECT id FROM tickets").fetchone()
        for event, delivered, error in (
            ("ticket.queued", 101.0, None),
            ("ticket.started", None, "HTTP 503"),
        ):
            body = json.dumps({"event": event, "ticket": {"id": ticket_id}})
            conn.execute(OLD_ROW.format(p=mark), (ticket_id, url, event, body, delivered, error))
        conn.commit()
    finally:
        conn.close()
    return int(ticket_id)


async def test_a_database_of_the_previous_schema_migrates_and_its_rows_still_deliver(
    database: Database, serve: Callable[[Starlette], str]
) -> None:
    hook = Receiver()
    url = serve(hook.app()) + "/hook"
    ticket_id = previous_database(database, url)
    store = database.open()
    assert store.schema_version() == migrations(database.kind)[-1][0] >= DEAD_MIGRATION
    rows = store.notifications(ticket_id)
    assert [(n.event, n.state, n.last_error, n.dead_at) for n in rows] == [
        ("ticket.queued", "delivered", None, None),
        ("ticket.started", "pending", "HTTP 503", None),
    ]
    async with httpx.AsyncClient() as client:
        assert await Notifier(store, SECRET).deliver_due(client) == 1
    assert hook.events() == [(ticket_id, "ticket.started")]  # the old failing row went
    # the new column works on the old table; opening the database again migrates nothing
    (later,) = store.enqueue_notifications(ticket_id, "ticket.finished", "{}", [url], 200.0)
    store.mark_dead(later, 300.0, "HTTP 500")
    again = database.open()
    assert again.schema_version() == store.schema_version()
    assert [n.state for n in again.notifications(ticket_id)] == ["delivered", "delivered", "dead"]
