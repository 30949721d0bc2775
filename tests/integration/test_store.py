"""The ticket store contract, run against every backend: a SQLite file and a real PostgreSQL.

Each test gets a fresh database (a new file, or `CREATE DATABASE t_<random>`).
The PostgreSQL-only tests at the end are about what only it promises: claims
that stay exact with several processes on one database.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.config import Settings
from bot.errors import StoreError
from bot.models import Origin, Ticket, TicketKind, TicketState, Trigger
from bot.store import open_store
from bot.store.postgres import PostgresStore
from bot.store.rows import migrations
from bot.store.sqlite import SQLiteStore
from tests.pg import create_database, drop_database

Store = SQLiteStore | PostgresStore
LEASE = 60.0


ORIGIN = Origin(
    source="review_comment",
    comment_id=9,
    comment_url="https://x.test/héllo ✓",
    line=12,
    start_line=None,
    side="RIGHT",
    diff_hunk="@@ -1 +1 @@\n-a\n+é",
    fresh=True,
    as_kind=TicketKind.ASK,
)


def trigger(number: int = 1, repository: str = "octo/hello", **fields: Any) -> Trigger:
    """A command with instructions: each makes its own ticket (bare ones coalesce)."""
    values: dict[str, Any] = {
        "kind": "command",
        "instructions": "Fix the bug.",
        "repository": repository,
        "clone_url": f"https://github.com/{repository}.git",
        "installation_id": 42,
        "number": number,
        "is_pull_request": False,
        "title": f"Issue {number}",
        "body": "Please fix it.",
        "requested_by": "octocat",
    }
    values.update(fields)
    return Trigger(**values)


class Backend:
    """Opens stores on one fresh database of one backend, and closes them all at the end."""

    def __init__(self, name: str, opener: Callable[[], Store]) -> None:
        self.name = name
        self._opener = opener
        self._opened: list[Store] = []

    def open(self) -> Store:
        store = self._opener()
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = create_database(postgres_url)
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        made = Backend("sqlite", lambda: SQLiteStore(tmp_path / "tickets.db"))
    else:
        url: str = request.getfixturevalue("pg_database")
        made = Backend("postgres", lambda: PostgresStore(url))
    yield made
    made.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def claim(store: Store, worker: str = "w1", now: float = 100.0) -> Ticket:
    ticket = store.claim(worker, LEASE, now)
    assert ticket is not None
    return ticket


# -- add ------------------------------------------------------------------
def test_add_stores_a_queued_ticket_with_every_field(store: Store) -> None:
    t = trigger(
        7,
        kind="command",
        installation_id=None,
        is_pull_request=True,
        instructions="add tests",
        origin=ORIGIN,
    )
    before = time.time()
    ticket_id, created = store.add("d-1", "issue_comment", t)
    assert created
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert before <= ticket.created_at <= time.time()
    assert ticket == Ticket(
        id=ticket_id,
        delivery_id="d-1",
        event="issue_comment",
        kind="command",
        repository="octo/hello",
        clone_url="https://github.com/octo/hello.git",
        installation_id=None,
        number=7,
        is_pull_request=True,
        title="Issue 7",
        body="Please fix it.",
        requested_by="octocat",
        instructions="add tests",
        origin=ORIGIN,
        state=TicketState.QUEUED,
        created_at=ticket.created_at,
    )
    # every field of the origin comes back typed, unicode and all
    assert ticket.origin.as_kind is TicketKind.ASK and ticket.origin.line == 12


def test_a_repeated_delivery_makes_no_second_ticket(store: Store) -> None:
    first = store.add("d-1", "issues", trigger(1))
    again = store.add("d-1", "issues", trigger(2, title="other"))
    assert first == (first[0], True)
    assert again == (first[0], False)
    assert [t.number for t in store.tickets()] == [1]


def test_add_many_dedupes_within_one_batch_and_against_stored_ones(store: Store) -> None:
    (stored, _) = store.add("d-0", "issues", trigger(10))
    results = store.add_many(
        [
            ("d-1", "issues", trigger(1)),
            ("d-2", "issues", trigger(2)),
            ("d-1", "issues", trigger(3)),
            ("d-0", "issues", trigger(4)),
            ("d-2", "issues", trigger(5)),
        ]
    )
    one, two = results[0][0], results[1][0]
    assert results == [(one, True), (two, True), (one, False), (stored, False), (two, False)]
    assert len({stored, one, two}) == 3
    assert sorted(t.number for t in store.tickets()) == [1, 2, 10]
    assert store.add_many([]) == []


def test_a_nul_in_webhook_text_does_not_fail_the_delivery(store: Store) -> None:
    ticket_id, _ = store.add("d-nul", "issues", trigger(1, title="a\x00b", body="\x00"))
    ticket = store.get(ticket_id)
    assert ticket is not None
    # SQLite keeps the NUL; PostgreSQL's TEXT cannot, so it holds U+FFFD instead
    assert ticket.title.replace("\x00", "\ufffd") == "a\ufffdb"
    assert ticket.body in ("\x00", "\ufffd")


# -- get / tickets --------------------------------------------------------
def test_get_of_an_unknown_ticket_is_none(store: Store) -> None:
    assert store.get(12345) is None


def test_tickets_are_newest_first_and_filtered(store: Store) -> None:
    a, _ = store.add("d-a", "issues", trigger(1, repository="octo/a"))
    b, _ = store.add("d-b", "issues", trigger(2, repository="octo/b"))
    c, _ = store.add("d-c", "issues", trigger(3, repository="octo/a"))
    assert claim(store).id == a
    assert [t.id for t in store.tickets()] == [c, b, a]
    assert [t.id for t in store.tickets(limit=2)] == [c, b]
    assert [t.id for t in store.tickets(state=TicketState.QUEUED)] == [c, b]
    assert [t.id for t in store.tickets(state=TicketState.RUNNING)] == [a]
    assert [t.id for t in store.tickets(repository="octo/a")] == [c, a]
    assert [t.id for t in store.tickets(repository="octo/a", state=TicketState.QUEUED)] == [c]
    assert store.tickets(repository="octo/none") == []


# -- claim ----------------------------------------------------------------
def test_claim_takes_the_oldest_and_sets_the_lease(store: Store) -> None:
    first, _ = store.add("d-1", "issues", trigger(1))
    second, _ = store.add("d-2", "issues", trigger(2))
    ticket = claim(store, "w1", now=100.0)
    assert ticket.id == first
    assert ticket.state is TicketState.RUNNING
    assert (ticket.lease_owner, ticket.lease_expires_at) == ("w1", 100.0 + LEASE)
    assert (ticket.attempts, ticket.started_at) == (1, 100.0)
    assert ticket == store.get(first)
    assert claim(store, "w2", now=101.0).id == second
    assert store.claim("w3", LEASE, 102.0) is None


def test_claim_skips_an_issue_that_already_has_a_running_ticket(store: Store) -> None:
    a1, _ = store.add("d-1", "issues", trigger(1))
    a2, _ = store.add("d-2", "issue_comment", trigger(1, kind="command"))
    b1, _ = store.add("d-3", "issues", trigger(2))
    other_repo, _ = store.add("d-4", "issues", trigger(1, repository="octo/other"))
    assert claim(store).id == a1
    assert claim(store).id == other_repo  # same number, another repository (and idle)
    assert claim(store).id == b1  # a2 waits behind a1 of the same issue
    assert store.claim("w1", LEASE, 100.0) is None
    store.finish(a1, TicketState.SUCCEEDED, 150.0, conclusion="success")
    assert claim(store).id == a2


def test_claim_of_an_empty_queue_is_none(store: Store) -> None:
    assert store.claim("w1", LEASE, 100.0) is None
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    store.finish(ticket_id, TicketState.REJECTED, 100.0)
    assert store.claim("w1", LEASE, 100.0) is None


def test_started_at_is_kept_from_the_first_attempt(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    claim(store, now=100.0)
    store.requeue_expired(now=1000.0, max_attempts=5)
    again = claim(store, now=2000.0)
    assert (again.id, again.attempts, again.started_at) == (ticket_id, 2, 100.0)


# -- renew ----------------------------------------------------------------
def test_renew_extends_only_the_owners_running_lease(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    claim(store, "w1", now=100.0)
    assert store.renew(ticket_id, "w1", LEASE, 130.0) is True
    assert store.get(ticket_id).lease_expires_at == 130.0 + LEASE  # type: ignore[union-attr]
    assert store.renew(ticket_id, "w2", LEASE, 140.0) is False
    assert store.get(ticket_id).lease_expires_at == 130.0 + LEASE  # type: ignore[union-attr]
    store.finish(ticket_id, TicketState.SUCCEEDED, 150.0)
    assert store.renew(ticket_id, "w1", LEASE, 160.0) is False
    assert store.renew(999, "w1", LEASE, 160.0) is False


# -- update ---------------------------------------------------------------
def test_update_sets_the_allowed_fields(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    store.update(
        ticket_id,
        conclusion="success",
        error="none",
        branch="autocode/issue-1",
        head_sha="a" * 40,
        pr_number=17,
        pr_url="https://github.com/octo/hello/pull/17",
        check_run_id=2**40,
        comment_id=3_000_000_000,
        tokens_input=1234,
        tokens_output=56,
        cost=0.125,
        files_changed=("src/a.py", "docs/b.md"),
        title="New title",
        body="New body",
    )
    store.update(ticket_id)  # nothing to change is fine
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert (ticket.conclusion, ticket.error, ticket.branch) == (
        "success",
        "none",
        "autocode/issue-1",
    )
    assert (ticket.head_sha, ticket.pr_number) == ("a" * 40, 17)
    assert ticket.pr_url == "https://github.com/octo/hello/pull/17"
    assert (ticket.check_run_id, ticket.comment_id) == (2**40, 3_000_000_000)
    assert (ticket.tokens_input, ticket.tokens_output, ticket.cost) == (1234, 56, 0.125)
    assert ticket.files_changed == ("src/a.py", "docs/b.md")
    assert (ticket.title, ticket.body) == ("New title", "New body")
    assert ticket.state is TicketState.QUEUED


def test_update_refuses_unknown_fields_and_changes_nothing(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    before = store.get(ticket_id)
    with pytest.raises(StoreError, match=r"cannot update ticket fields \['lease_owner', 'state'\]"):
        store.update(ticket_id, state="succeeded", lease_owner="me", branch="x")
    assert store.get(ticket_id) == before


# -- finish / release -----------------------------------------------------
def test_finish_puts_a_final_state_and_releases_the_lease(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    claim(store)
    store.update(ticket_id, conclusion="neutral", error="earlier")
    store.finish(ticket_id, TicketState.FAILED, 200.0, error="boom")
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert ticket.state is TicketState.FAILED
    assert (ticket.conclusion, ticket.error) == ("neutral", "boom")  # None keeps the old value
    assert (ticket.finished_at, ticket.lease_owner, ticket.lease_expires_at) == (200.0, None, None)
    with pytest.raises(StoreError, match="running is not a final state"):
        store.finish(ticket_id, TicketState.RUNNING, 300.0)
    assert store.get(ticket_id) == ticket


def test_release_hands_the_ticket_back_without_spending_an_attempt(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issues", trigger(1))
    claim(store, "w1")
    store.release(ticket_id, "w2")  # not w2's: nothing happens
    assert store.get(ticket_id).state is TicketState.RUNNING  # type: ignore[union-attr]
    store.release(ticket_id, "w1")
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert ticket.state is TicketState.QUEUED
    assert (ticket.attempts, ticket.lease_owner, ticket.lease_expires_at) == (0, None, None)
    assert claim(store, "w2").id == ticket_id


# -- requeue_expired ------------------------------------------------------
def test_requeue_expired_queues_lost_runs_and_fails_those_out_of_attempts(store: Store) -> None:
    spent, _ = store.add("d-1", "issues", trigger(1))
    lost, _ = store.add("d-2", "issues", trigger(2))
    alive, _ = store.add("d-3", "issues", trigger(3))
    assert claim(store, "w1", now=100.0).id == spent
    assert store.requeue_expired(now=200.0, max_attempts=5) == []
    assert store.get(spent).state is TicketState.QUEUED  # type: ignore[union-attr]
    assert claim(store, "w1", now=300.0).id == spent  # second attempt, expires at 360
    assert claim(store, "w1", now=300.0).id == lost  # first attempt, expires at 360
    assert claim(store, "w2", now=390.0).id == alive  # expires at 450

    failed = store.requeue_expired(now=400.0, max_attempts=2)
    assert [t.id for t in failed] == [spent]
    (ticket,) = failed
    assert ticket == store.get(spent)
    assert ticket.state is TicketState.FAILED
    assert ticket.conclusion == "failure"
    assert ticket.error == "the run was lost twice (its worker stopped); not retried again"
    assert (ticket.finished_at, ticket.lease_owner, ticket.lease_expires_at) == (400.0, None, None)
    requeued = store.get(lost)
    assert requeued is not None
    assert (requeued.state, requeued.attempts) == (TicketState.QUEUED, 1)
    assert (requeued.lease_owner, requeued.lease_expires_at) == (None, None)
    assert store.get(alive).state is TicketState.RUNNING  # type: ignore[union-attr]

    assert store.requeue_expired(now=500.0, max_attempts=2) == []
    assert store.get(alive).state is TicketState.QUEUED  # type: ignore[union-attr]
    assert store.counts() == {"failed": 1, "queued": 2}


# -- logs / counts --------------------------------------------------------
def test_logs_read_in_order_after_a_given_line(store: Store) -> None:
    one, _ = store.add("d-1", "issues", trigger(1))
    two, _ = store.add("d-2", "issues", trigger(2))
    for i in range(5):
        store.log(one, "step", f"line {i}", 100.0 + i)
    store.log(two, "step", "other ticket", 200.0)
    lines = store.logs(one)
    assert [(line.kind, line.message, line.at) for line in lines] == [
        ("step", f"line {i}", 100.0 + i) for i in range(5)
    ]
    assert all(line.ticket_id == one for line in lines)
    assert [line.id for line in lines] == sorted(line.id for line in lines)
    assert [line.message for line in store.logs(one, after=lines[1].id)] == [
        "line 2",
        "line 3",
        "line 4",
    ]
    assert [line.message for line in store.logs(one, after=lines[1].id, limit=1)] == ["line 2"]
    assert store.logs(one, after=lines[-1].id) == []
    assert [line.message for line in store.logs(two)] == ["other ticket"]


def test_counts_by_state(store: Store) -> None:
    assert store.counts() == {}
    for i in range(4):
        store.add(f"d-{i}", "issues", trigger(i))
    first = claim(store)
    claim(store)
    store.finish(first.id, TicketState.SUCCEEDED, 200.0)
    assert store.counts() == {"queued": 2, "running": 1, "succeeded": 1}


# -- schema ---------------------------------------------------------------
def test_migrations_are_idempotent(backend: Backend) -> None:
    first = backend.open()
    ticket_id, _ = first.add("d-1", "issues", trigger(1))
    latest = migrations(backend.name)[-1][0]
    assert first.schema_version() == latest
    assert first.migrate() == latest
    second = backend.open()
    assert second.schema_version() == latest
    assert second.get(ticket_id) == first.get(ticket_id)
    second.ping()


def test_both_backends_return_identical_tickets(tmp_path: Path, pg_database: str) -> None:
    """One script of calls on each backend: every ticket, log line and count is the same."""
    results = []
    for store in (SQLiteStore(tmp_path / "tickets.db"), PostgresStore(pg_database)):
        try:
            store.add_many(
                [
                    ("d-1", "issues", trigger(1, origin=ORIGIN)),
                    ("d-2", "issue_comment", trigger(1, kind="command", instructions="more")),
                    ("d-3", "pull_request", trigger(5, is_pull_request=True, installation_id=None)),
                ]
            )
            a = claim(store, "w1", now=100.0)
            store.update(a.id, comment_id=77, files_changed=["x.py"], cost=0.5, tokens_input=9)
            store.log(a.id, "tool", "write x.py", 101.0)
            store.finish(a.id, TicketState.SUCCEEDED, 120.0, conclusion="success")
            b = claim(store, "w2", now=130.0)
            store.release(b.id, "w2")
            claim(store, "w2", now=140.0)
            claim(store, "w3", now=140.0)
            failed = store.requeue_expired(now=1000.0, max_attempts=1)
            tickets = [dataclasses.replace(t, created_at=0.0) for t in store.tickets()]
            failed = [dataclasses.replace(t, created_at=0.0) for t in failed]
            results.append((tickets, failed, store.logs(a.id), store.counts()))
        finally:
            store.close()
    assert results[0] == results[1]


# -- open_store -----------------------------------------------------------
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_store_opens_postgres_for_its_urls(pg_database: str, scheme: str) -> None:
    url = scheme + pg_database.removeprefix("postgresql")
    store = open_store(Settings.from_environ({"AUTOCODE_DATABASE_URL": url}))
    try:
        assert isinstance(store, PostgresStore)
        assert store.counts() == {}
    finally:
        store.close()


# -- PostgreSQL only: errors ----------------------------------------------
def test_a_wrong_password_is_a_store_error_without_the_password(pg_database: str) -> None:
    wrong = "s3cret-not-this-one"
    url = pg_database.replace(":pg-test-secret-6f1d@", f":{wrong}@")
    assert wrong in url
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    message = caught.value.message
    assert "password authentication failed" in message
    assert wrong not in message and "pg-test-secret" not in message
    assert ":***@127.0.0.1" in message


def test_an_unreachable_server_is_a_store_error(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="PostgreSQL could not connect") as caught:
        PostgresStore("postgresql://bot:hunter2@127.0.0.1:1/autocode")
    assert "hunter2" not in caught.value.message


# -- PostgreSQL only: several processes on one database --------------------
def run_in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` in `count` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if failures:
        raise failures[0]
    assert not any(thread.is_alive() for thread in threads)


def test_starting_together_migrates_once(pg_database: str) -> None:
    stores: list[PostgresStore] = []
    lock = threading.Lock()

    def start(_: int) -> None:
        store = PostgresStore(pg_database)
        with lock:
            stores.append(store)

    try:
        run_in_threads(6, start)
        versions = {store.schema_version() for store in stores}
        assert versions == {migrations("postgres")[-1][0]}
    finally:
        for store in stores:
            store.close()


def test_concurrent_claims_take_every_ticket_exactly_once(pg_database: str) -> None:
    """Four stores, each with its own pool, stand for four worker processes."""
    setup = PostgresStore(pg_database)
    stores = [PostgresStore(pg_database) for _ in range(4)]
    try:
        ids = [i for i, _ in setup.add_many([(f"d-{n}", "issues", trigger(n)) for n in range(50)])]
        claimed: list[list[int]] = [[] for _ in stores]

        def work(i: int) -> None:
            while True:
                ticket = stores[i].claim(f"w{i}", LEASE, 100.0)
                if ticket is None:
                    if stores[i].counts().get("queued", 0) == 0:
                        return
                    continue
                assert ticket.lease_owner == f"w{i}"
                claimed[i].append(ticket.id)

        run_in_threads(len(stores), work)
        every = [t for mine in claimed for t in mine]
        assert sorted(every) == sorted(ids)
        assert setup.counts() == {"running": 50}
        for i, mine in enumerate(claimed):
            for ticket_id in mine:
                assert setup.get(ticket_id).lease_owner == f"w{i}"  # type: ignore[union-attr]
    finally:
        for store in (setup, *stores):
            store.close()


def test_one_ticket_per_issue_runs_at_a_time_under_concurrency(pg_database: str) -> None:
    """50 tickets on 5 issues, 4 claimers: never two of one issue at once, each in order."""
    setup = PostgresStore(pg_database)
    stores = [PostgresStore(pg_database) for _ in range(4)]
    try:
        items = [(f"d-{n}", "issues", trigger(n % 5)) for n in range(50)]
        ids = [i for i, _ in setup.add_many(items)]
        issue_of = {ticket_id: n % 5 for n, ticket_id in enumerate(ids)}
        running: set[int] = set()
        order: dict[int, list[int]] = {n: [] for n in range(5)}
        lock = threading.Lock()
        violations: list[str] = []

        def work(i: int) -> None:
            store = stores[i]
            rng = random.Random(i)
            while True:
                ticket = store.claim(f"w{i}", LEASE, 100.0)
                if ticket is None:
                    if store.counts().get("queued", 0) == 0:
                        return
                    time.sleep(0.001)
                    continue
                with lock:
                    if ticket.number in running:
                        violations.append(f"issue {ticket.number} ran twice at once")
                    running.add(ticket.number)
                    order[ticket.number].append(ticket.id)
                time.sleep(rng.random() * 0.003)
                with lock:
                    running.discard(ticket.number)
                store.finish(ticket.id, TicketState.SUCCEEDED, 200.0, conclusion="success")

        run_in_threads(len(stores), work)
        assert violations == []
        assert setup.counts() == {"succeeded": 50}
        for number, claimed in order.items():
            assert claimed == sorted(t for t in ids if issue_of[t] == number)
    finally:
        for store in (setup, *stores):
            store.close()


def test_claimers_racing_for_one_issue_take_only_its_oldest_ticket(pg_database: str) -> None:
    """Round after round, four claimers hit one issue with three queued tickets at once."""
    setup = PostgresStore(pg_database)
    stores = [PostgresStore(pg_database) for _ in range(4)]
    try:
        won: list[int] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            ticket = stores[i].claim(f"w{i}", LEASE, 100.0)
            if ticket is not None:
                with lock:
                    won.append(ticket.id)

        for issue in range(40):
            items = [(f"d-{issue}-{k}", "issues", trigger(issue)) for k in range(3)]
            ids = [i for i, _ in setup.add_many(items)]
            won.clear()
            run_in_threads(len(stores), work)
            assert won == [ids[0]], f"round {issue}: claimed {won} of {ids}"
            for ticket_id in ids:
                setup.finish(ticket_id, TicketState.CANCELLED, 200.0)
    finally:
        for store in (setup, *stores):
            store.close()


def test_a_claim_that_hits_the_one_running_index_moves_on(pg_database: str) -> None:
    """Another writer starts a run of the issue while a claim is at it: the claim takes the next.

    The other writer is a bare transaction that inserts a running ticket of
    issue 1 and commits only once the claim waits on it, so the claim's
    UPDATE meets the unique index, and its savepoint must keep it going.
    """
    store = PostgresStore(pg_database)
    try:
        first, _ = store.add("d-1", "issues", trigger(1))
        other, _ = store.add("d-2", "issues", trigger(2))
        result: list[Ticket | None] = []
        with (
            psycopg.connect(pg_database) as writer,
            psycopg.connect(pg_database, autocommit=True) as watcher,
        ):
            writer.execute(
                "INSERT INTO tickets (delivery_id, event, kind, repository, clone_url, number, "
                "requested_by, state, created_at, lease_owner, lane) "
                "VALUES ('d-x', 'issues', 'label', 'octo/hello', 'x', 1, 'o', 'running', 1, 'x', "
                "'octo/hello#1')"
            )
            thread = threading.Thread(target=lambda: result.append(store.claim("w1", LEASE, 100.0)))
            thread.start()
            deadline = time.monotonic() + 30
            # pg_stat_activity is read in autocommit: inside a transaction it would stay frozen
            while watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone() != (1,):
                assert time.monotonic() < deadline, "the claim never waited on the index"
                time.sleep(0.01)
            writer.commit()
            thread.join(timeout=30)
        (claimed,) = result
        assert claimed is not None and claimed.id == other
        assert store.get(first).state is TicketState.QUEUED  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_bare_request_joins_the_one_already_asked_for(store: Store) -> None:
    """The label and `/opencode` with no new instructions arriving together make one run."""
    label, created = store.add("d-1", "issues", trigger(1, kind="label", instructions=""))
    assert created
    bare, created = store.add("d-2", "issue_comment", trigger(1, instructions=""))
    assert (bare, created) == (label, False)
    assert claim(store).id == label
    # still running: a bare command joins it too
    assert store.add("d-3", "issue_comment", trigger(1, instructions="")) == (label, False)
    # new instructions, a fresh session or another issue make their own ticket
    asked, created = store.add("d-4", "issue_comment", trigger(1, instructions="Also add docs."))
    assert created and asked != label
    fresh, created = store.add(
        "d-5", "issue_comment", trigger(1, instructions="", origin=Origin(fresh=True))
    )
    assert created and fresh not in (label, asked)
    other, created = store.add("d-6", "issues", trigger(2, kind="label", instructions=""))
    assert created
    # once the run is over, the same bare request is a new run
    store.finish(label, TicketState.SUCCEEDED, 200.0, conclusion="success")
    again, created = store.add("d-7", "issue_comment", trigger(1, instructions=""))
    assert created and again not in (label, asked, fresh, other)


def test_control_tickets_neither_wait_nor_block(store: Store) -> None:
    run, _ = store.add("d-1", "issues", trigger(1))
    waiting, _ = store.add("d-2", "issue_comment", trigger(1, instructions="More."))
    assert claim(store).id == run
    cancel, _ = store.add("d-3", "issue_comment", trigger(1, kind="cancel", instructions=""))
    helper, _ = store.add("d-4", "issue_comment", trigger(1, kind="help", instructions=""))
    assert claim(store).id == cancel  # not behind the running ticket of its issue
    assert claim(store).id == helper  # and the running cancel does not block it either
    assert store.claim("w1", LEASE, 100.0) is None  # `waiting` still waits for `run`
    store.finish(run, TicketState.CANCELLED, 150.0, conclusion="cancelled")
    assert claim(store).id == waiting


def test_a_cancel_request_reaches_the_ticket_when_it_runs(store: Store) -> None:
    run, _ = store.add("d-1", "issues", trigger(1))
    queued, _ = store.add("d-2", "issues", trigger(2))
    assert claim(store).id == run
    assert store.cancel_requests([run, queued]) == {}
    assert store.request_cancel(run, "alice") is True
    assert store.request_cancel(queued + 1000, "alice") is False
    assert store.cancel_requests([run, queued]) == {run: "alice"}
    # a waiting ticket keeps the request until it is claimed
    assert store.request_cancel(queued, "bob") is True
    assert store.cancel_requests([queued]) == {}
    assert claim(store).id == queued
    assert store.cancel_requests([queued]) == {queued: "bob"}
    store.finish(run, TicketState.CANCELLED, 150.0, conclusion="cancelled")
    assert store.cancel_requests([run]) == {}
    assert store.request_cancel(run, "alice") is False  # over already


def test_instructions_and_origin_can_be_updated(store: Store) -> None:
    ticket_id, _ = store.add("d-1", "issue_comment", trigger(1, kind="retry", instructions=""))
    origin = Origin(source="retry", retry_of=7, as_kind=TicketKind.LABEL)
    store.update(ticket_id, instructions="Again, with tests.", origin=origin)
    ticket = store.get(ticket_id)
    assert ticket is not None
    assert ticket.instructions == "Again, with tests."
    assert ticket.origin == origin


def test_a_busy_repository_does_not_starve_the_others(store: Store) -> None:
    busy = [store.add(f"a-{n}", "issues", trigger(n, repository="octo/busy"))[0] for n in range(5)]
    quiet, _ = store.add("b-1", "issues", trigger(1, repository="octo/quiet"))
    assert claim(store).id == busy[0]
    assert claim(store).id == quiet  # before busy[1], though younger
    assert claim(store).id == busy[1]


# -- PostgreSQL only: a batch is one statement -----------------------------
# PostgresStore.add_many sends a batch to autocode_add_tickets (schema/postgres/
# 004_add_tickets.sql), which runs the rule on the server; SQLiteStore.add_many runs it
# statement by statement. Over this script both must decide alike. A step is a batch,
# or the delivery of a ticket to finish before the next batch.
URLS = ("http://127.0.0.1:9/a", "https://hooks.example.test/b")
STEPS: list[list[tuple[str, str, Trigger]] | str] = [
    [
        ("a-1", "issues", trigger(1, kind="label", instructions="")),
        ("a-2", "issue_comment", trigger(1, instructions="")),  # joins a-1
        ("a-1", "issues", trigger(1, kind="label", instructions="")),  # a repeat in the batch
        ("a-3", "issue_comment", trigger(1, instructions="Also add docs.")),
        ("a-4", "issue_comment", trigger(1, kind="cancel", instructions="")),  # no lane
        ("a-5", "issues", trigger(2, kind="label", instructions="", title="a\x00b")),
        ("a-4", "issue_comment", trigger(1, kind="cancel", instructions="")),
    ],
    [
        ("a-3", "issue_comment", trigger(1, instructions="Also add docs.")),  # stored before
        ("a-6", "issue_comment", trigger(2, instructions="", origin=Origin(fresh=True))),
        ("a-7", "issues", trigger(3, kind="label", instructions="", installation_id=None)),
        ("a-8", "issue_comment", trigger(3, instructions="")),  # joins a-7
        (
            "a-9",
            "issue_comment",
            trigger(3, instructions="", origin=Origin(comment_url="é", start_line=15)),
        ),
        ("a-10", "issue_comment", trigger(3, kind="help", instructions="")),
        ("a-2", "issue_comment", trigger(1, instructions="")),  # no ticket of its own: joins
    ],
    "a-1",  # its run is over: a-1 is no longer joinable
    [
        ("a-11", "issue_comment", trigger(1, instructions="")),  # a new run
        ("a-1", "issues", trigger(1, kind="label", instructions="")),  # its own, not a-11
        ("a-2", "issue_comment", trigger(1, instructions="")),  # joins a-11 now
        ("a-12", "issue_comment", trigger(2, instructions="")),  # joins a-5
        ("a-13", "issues", trigger(4, kind="label", instructions="", repository="octo/other")),
    ],
    [],
]
DECIDED = [
    [
        ("a-1", True),
        ("a-1", False),
        ("a-1", False),
        ("a-3", True),
        ("a-4", True),
        ("a-5", True),
        ("a-4", False),
    ],
    [
        ("a-3", False),
        ("a-6", True),
        ("a-7", True),
        ("a-7", False),
        ("a-7", False),
        ("a-10", True),
        ("a-1", False),
    ],
    [("a-11", True), ("a-1", False), ("a-11", False), ("a-5", False), ("a-13", True)],
    [],
]


Decided = tuple[list[list[tuple[str, bool]]], list[tuple[Any, ...]], list[tuple[str, str, str]]]


def decide(store: Store) -> Decided:
    """Run STEPS: each delivery's (its ticket's delivery, created), the tickets, the outbox.

    Tickets are named by their delivery, not their id: PostgreSQL's sequence
    leaves a gap where ON CONFLICT skipped a row, SQLite's does not.
    """
    results = []
    for step in STEPS:
        if isinstance(step, str):
            (done,) = [t for t in store.tickets(limit=1000) if t.delivery_id == step]
            store.finish(done.id, TicketState.SUCCEEDED, time.time(), conclusion="success")
        else:
            results.append(store.add_many(step))
    tickets = {t.id: t for t in store.tickets(limit=1000)}
    made = [[(tickets[i].delivery_id, created) for i, created in batch] for batch in results]
    rows = sorted(
        (t.delivery_id, t.event, t.kind, t.number, t.title.replace("\x00", "\ufffd"), t.origin,
         t.installation_id, t.state)
        for t in tickets.values()
    )  # fmt: skip
    outbox = [
        (tickets[n.ticket_id].delivery_id, n.url, n.event)
        for n in store.due_notifications(1e12, 100)
    ]
    return made, rows, outbox


def test_sqlite_and_postgres_decide_every_batch_alike(tmp_path: Path, pg_database: str) -> None:
    sqlite = SQLiteStore(tmp_path / "tickets.db", notify_urls=URLS)
    try:
        expected = decide(sqlite)
    finally:
        sqlite.close()
    made, rows, outbox = expected
    assert made == DECIDED
    assert [r[0] for r in rows] == sorted(
        ["a-1", "a-3", "a-4", "a-5", "a-6", "a-7", "a-10", "a-11", "a-13"]
    )
    # one ticket.queued per new ticket and URL, none for a repeat or a join
    new = [d for batch in DECIDED for d, created in batch if created]
    assert outbox == [(d, url, "ticket.queued") for d in new for url in URLS]
    store = PostgresStore(pg_database, notify_urls=URLS)
    try:
        assert decide(store) == expected
    finally:
        store.close()


def test_the_batch_function_is_one_migration_applied_once(pg_database: str) -> None:
    """004 is a numbered file like the others: run once, whole (its body holds `;`)."""
    files = dict(migrations("postgres"))
    assert files[4].count("$add_tickets$") == 2
    first = PostgresStore(pg_database)
    second = PostgresStore(pg_database)
    try:
        assert first.migrate() == second.migrate() == max(files)
        with psycopg.connect(pg_database) as conn:
            versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            functions = conn.execute(
                "SELECT n.nspname, p.prosrc FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'autocode_add_tickets'"
            ).fetchall()
            temporary = conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pg_temp%' "
                "AND oid IN (SELECT pronamespace FROM pg_proc)"
            ).fetchone()
        assert versions == [(number,) for number in sorted(files)]
        # one function, in the schema of the tables, with its whole body; nothing temporary
        assert [schema for schema, _ in functions] == ["public"]
        assert "RETURN NEXT" in functions[0][1] and "END LOOP" in functions[0][1]
        assert temporary == (0,)
        one, created = first.add("d-1", "issues", trigger(1))
        assert created and second.add("d-1", "issues", trigger(1)) == (one, False)
    finally:
        first.close()
        second.close()


def test_a_database_of_schema_3_gets_the_function_and_keeps_its_tickets(
    pg_database: str,
) -> None:
    """A database an older bot made (001 to 003) is migrated from 004 on when a store opens it."""
    with psycopg.connect(pg_database) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))"
        )
        for number, text in migrations("postgres")[:3]:
            conn.execute(text.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        conn.execute(
            "INSERT INTO tickets (delivery_id, event, kind, repository, clone_url, number, "
            "requested_by, created_at, lane, bare) VALUES ('old-1', 'issues', 'label', "
            "'octo/hello', 'https://github.com/octo/hello.git', 1, 'octocat', "
            "extract(epoch FROM now()), 'octo/hello#1', TRUE)"
        )
    store = PostgresStore(pg_database)
    try:
        assert store.schema_version() == migrations("postgres")[-1][0]
        (old,) = store.tickets()
        assert store.add_many(
            [
                ("old-1", "issues", trigger(1, kind="label", instructions="")),
                ("new-1", "issue_comment", trigger(1, instructions="")),
            ]
        ) == [(old.id, False), (old.id, False)]
    finally:
        store.close()


def test_a_batch_and_its_queued_events_are_one_transaction(pg_database: str) -> None:
    store = PostgresStore(pg_database, notify_urls=URLS)
    plain = PostgresStore(pg_database)
    try:
        batch = [("d-1", "issues", trigger(1)), ("d-2", "issues", trigger(2))]
        with psycopg.connect(pg_database, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'no outbox today'; END $$"
            )
            admin.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON notifications "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
            with pytest.raises(StoreError, match="no outbox today"):
                store.add_many(batch)
            assert store.tickets() == []  # the tickets went with their events
            admin.execute("DROP TRIGGER refuse ON notifications")
        (one, made), (two, made_too) = store.add_many(batch)
        assert made and made_too
        assert store.add_many(batch[:1]) == [(one, False)]  # a repeat: no second event
        rows = store.due_notifications(1e12, 10)
        assert [(r.ticket_id, r.url, r.event) for r in rows] == [
            (ticket, url, "ticket.queued") for ticket in (one, two) for url in URLS
        ]
        # without notify URLs, a batch writes no outbox rows
        three, created = plain.add_many([("d-3", "issues", trigger(3))])[0]
        assert created
        assert [r for r in plain.due_notifications(2e12, 10) if r.ticket_id == three] == []
    finally:
        store.close()
        plain.close()


def test_stores_adding_the_same_batches_at_once_store_each_delivery_once(
    pg_database: str,
) -> None:
    """Six processes get the same batches at once, each starting with another one.

    A delivery another batch is inserting right now waits for it (ON CONFLICT),
    then is found: every store answers with the same ticket, made exactly once.
    (The deliveries of a batch keep one order in every store: two transactions
    inserting the same rows in opposite orders would deadlock, as they always could.)
    """
    deliveries = [
        (f"d-{n}", "issues", trigger(n % 5 + 1, instructions=f"step {n}")) for n in range(40)
    ]
    batches = [deliveries[start : start + 8] for start in range(0, len(deliveries), 8)]
    stores = [PostgresStore(pg_database) for _ in range(6)]
    answers: list[dict[str, tuple[int, bool]]] = [{} for _ in stores]

    def add(i: int) -> None:
        for batch in batches[i % len(batches) :] + batches[: i % len(batches)]:
            results = stores[i].add_many(batch)
            answers[i].update(zip((d for d, _, _ in batch), results, strict=True))

    try:
        run_in_threads(len(stores), add)
        tickets = stores[0].tickets(limit=1000)
        assert sorted(t.delivery_id for t in tickets) == sorted(d for d, _, _ in deliveries)
        for ticket in tickets:
            results = [answer[ticket.delivery_id] for answer in answers]
            assert {i for i, _ in results} == {ticket.id}
            assert sorted(created for _, created in results) == [False] * 5 + [True]
    finally:
        for store in stores:
            store.close()


def test_old_log_lines_and_delivered_notifications_are_pruned(store: Store) -> None:
    """Only what is past its time goes: logs of tickets finished long ago, delivered rows."""
    old, _ = store.add("p-1", "issues", trigger(1))
    recent, _ = store.add("p-2", "issues", trigger(2))
    running, _ = store.add("p-3", "issues", trigger(3))
    for ticket_id in (old, recent, running):
        claim(store, now=50.0)
        for n in range(3):
            store.log(ticket_id, "phase", f"step {n}", 50.0 + n)
    store.finish(old, TicketState.SUCCEEDED, 100.0, conclusion="success")
    store.finish(recent, TicketState.FAILED, 1000.0, conclusion="failure")
    a, b = store.enqueue_notifications(
        old, "ticket.finished", "{}", ["http://a", "http://b"], 100.0
    )
    (c,) = store.enqueue_notifications(recent, "ticket.finished", "{}", ["http://a"], 1000.0)
    store.mark_delivered(a, 100.0)  # delivered long ago: goes
    store.mark_delivered(c, 1000.0)  # delivered lately: stays; b never delivered: stays

    assert store.prune_logs(500.0) == 3
    assert store.logs(old) == []
    assert [line.message for line in store.logs(recent)] == ["step 0", "step 1", "step 2"]
    assert len(store.logs(running)) == 3  # not finished: whatever its age
    assert store.prune_notifications(500.0) == 1
    due = {n.id for n in store.due_notifications(10_000.0, 100)}
    assert due == {b}  # the undelivered row is still there to send
    assert store.prune_logs(500.0) == 0 and store.prune_notifications(500.0) == 0


def test_a_pull_requests_tickets_and_who_pushed_a_commit(store: Store) -> None:
    issue, _ = store.add("p1", "issues", trigger(3))
    on_pull, _ = store.add("p2", "issue_comment", trigger(7, is_pull_request=True))
    other_pull, _ = store.add("p3", "issue_comment", trigger(8, is_pull_request=True))
    elsewhere, _ = store.add("p4", "issues", trigger(7, repository="octo/other"))
    store.update(issue, pr_number=7, pushed_sha="a" * 40)  # the issue's run opened PR 7
    store.update(on_pull, pushed_sha="b" * 40)
    store.update(elsewhere, pushed_sha="b" * 40)
    found = store.pull_tickets("octo/hello", 7)
    assert [t.id for t in found] == [on_pull, issue]  # newest first, neither #8 nor octo/other
    assert found[1].pushed_sha == "a" * 40
    pusher = store.pusher("octo/hello", "b" * 40)
    assert pusher is not None and pusher.id == on_pull
    assert store.pusher("octo/hello", "c" * 40) is None
    assert store.pusher("octo/nobody", "a" * 40) is None
    assert other_pull not in [t.id for t in found]
