"""The notification outbox of the ticket store, on both backends (a SQLite file, a real PostgreSQL).

What the notifier relies on: rows are due in order per ticket and URL, a
claimed row is hidden from other notifiers for its lease, a failure
reschedules it, and a new ticket's `ticket.queued` commits with the ticket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.integration.test_store import trigger
from tests.pg import create_database, drop_database

Store = SQLiteStore | PostgresStore
A, B = "http://127.0.0.1:9/a", "https://hooks.example.test/b"


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Opens stores on one fresh database of one backend; closes them after the test."""
    opened: list[Store] = []
    url = ""
    if request.param == "postgres":
        url = create_database(request.getfixturevalue("postgres_url"))

    def make(urls: tuple[str, ...] = ()) -> Store:
        store: Store = (
            SQLiteStore(tmp_path / "tickets.db", notify_urls=urls)
            if not url
            else PostgresStore(url, notify_urls=urls)
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if url:
        drop_database(url)


def test_a_new_ticket_and_its_queued_event_commit_together(
    open_store: Callable[..., Store],
) -> None:
    store = open_store((A, B))
    (ticket_id, created), (again, repeated) = store.add_many(
        [("d-1", "issues", trigger(7)), ("d-1", "issues", trigger(7))]
    )
    assert created and not repeated and again == ticket_id
    rows = store.due_notifications(1e12, 10)
    assert [(r.ticket_id, r.url, r.event, r.attempts) for r in rows] == [
        (ticket_id, A, "ticket.queued", 1),
        (ticket_id, B, "ticket.queued", 1),
    ]
    body = json.loads(rows[0].body)
    assert body["event"] == "ticket.queued"
    assert body["ticket"]["id"] == ticket_id
    assert body["ticket"]["repository"] == "octo/hello"
    assert body["ticket"]["number"] == 7
    assert body["ticket"]["state"] == "queued"
    assert body["ticket"]["requested_by"] == "octocat"
    # nothing about the text or the instructions leaves the bot
    assert "Please fix it." not in rows[0].body and "Fix the bug." not in rows[0].body
    # a store without receivers writes no rows
    plain = open_store()
    plain.add("d-2", "issues", trigger(8))
    assert [r.ticket_id for r in plain.due_notifications(1e12, 10)] == []


def test_a_later_event_waits_for_the_earlier_one_of_its_ticket_and_url(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    t1, _ = store.add("d-1", "issues", trigger(1))
    t2, _ = store.add("d-2", "issues", trigger(2))
    first = store.enqueue_notifications(t1, "ticket.started", "{}", [A, B], 10.0)
    second = store.enqueue_notifications(t1, "ticket.finished", "{}", [A, B], 11.0)
    other = store.enqueue_notifications(t2, "ticket.started", "{}", [A], 12.0)
    assert store.enqueue_notifications(t2, "ticket.finished", "{}", [], 12.0) == []

    due = store.due_notifications(100.0, 10)
    assert [r.id for r in due] == [*first, *other]  # the heads of three chains
    # claimed rows are hidden for their lease: a second notifier finds nothing
    assert store.due_notifications(100.0, 10) == []
    # A answered, B failed: A's next event is due, B's must wait for B's first
    store.mark_delivered(first[0], 101.0)
    store.mark_failed(first[1], 101.0, 105.0, "HTTP 503")
    store.mark_delivered(other[0], 101.0)
    assert [r.id for r in store.due_notifications(102.0, 10)] == [second[0]]
    retry = store.due_notifications(105.0, 10)
    assert [(r.id, r.attempts, r.last_error) for r in retry] == [(first[1], 2, "HTTP 503")]
    store.mark_delivered(first[1], 106.0)
    assert [r.id for r in store.due_notifications(106.0, 10)] == [second[1]]


def test_an_unrecorded_attempt_is_due_again_after_its_lease(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    (row_id,) = store.enqueue_notifications(ticket_id, "ticket.started", "{}", [A], 10.0)
    assert [r.id for r in store.due_notifications(10.0, 5, lease_seconds=30.0)] == [row_id]
    assert store.due_notifications(39.0, 5) == []
    again = store.due_notifications(40.0, 5)
    assert [(r.id, r.attempts) for r in again] == [(row_id, 2)]
    # delivered rows are never handed out again
    store.mark_delivered(row_id, 41.0)
    store.mark_failed(row_id, 41.0, 0.0, "late failure report")
    assert store.due_notifications(1e12, 5) == []


def test_the_limit_takes_the_oldest_due_first(open_store: Callable[..., Store]) -> None:
    store = open_store()
    ids = []
    for n in range(5):
        ticket_id, _ = store.add(f"d-{n}", "issues", trigger(n))
        ids += store.enqueue_notifications(ticket_id, "ticket.started", "{}", [A], 10.0 + n)
    assert [r.id for r in store.due_notifications(100.0, 2)] == ids[:2]
    assert [r.id for r in store.due_notifications(100.0, 10)] == ids[2:]


def test_oldest_queued_is_the_age_of_the_oldest_waiting_ticket(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    assert store.oldest_queued(1e10) is None
    first, _ = store.add("d-1", "issues", trigger(1))
    store.add("d-2", "issues", trigger(2))
    created = store.get(first).created_at  # type: ignore[union-attr]
    assert store.oldest_queued(created + 30.0) == pytest.approx(30.0)
    claimed = store.claim("w1", 60.0, created + 31.0)
    assert claimed is not None and claimed.id == first
    second = store.get(claimed.id + 1)
    assert second is not None
    assert store.oldest_queued(second.created_at + 5.0) == pytest.approx(5.0)
    store.claim("w1", 60.0, created + 32.0)
    assert store.oldest_queued(created + 40.0) is None


def test_concurrent_notifiers_claim_each_row_once(tmp_path: Path, postgres_url: str) -> None:
    """Four stores stand for four processes' notifiers on one PostgreSQL database."""
    url = create_database(postgres_url)
    stores = [PostgresStore(url) for _ in range(4)]
    try:
        expected = []
        for n in range(40):
            ticket_id, _ = stores[0].add(f"d-{n}", "issues", trigger(n))
            expected += stores[0].enqueue_notifications(ticket_id, "ticket.started", "{}", [A], 1.0)
        got: list[list[int]] = [[] for _ in stores]

        def notify(i: int) -> None:
            while True:
                rows = stores[i].due_notifications(100.0, 3)
                if not rows:
                    return
                got[i] += [r.id for r in rows]

        threads = [threading.Thread(target=notify, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [row for mine in got for row in mine]
        assert sorted(every) == sorted(expected)  # each once, none twice
    finally:
        for store in stores:
            store.close()
        drop_database(url)
