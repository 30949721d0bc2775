"""Notifications through a receiver outage: every event delivered once, in order, and when.

    python -m bench.notify [--tickets 50] [--outage 30] [--backoff-base 2] [--backoff-cap 300]
                           [--database sqlite|postgres]

A receiver URL on 127.0.0.1 whose port nobody listens on for `--outage`
seconds; meanwhile tickets go through their life in the store (queued →
started → finished, three events each) and the Notifier, with the
production backoff unless told otherwise, tries and fails. Then a receiver
that checks every signature comes up on that same port. Prints how many
events arrived, how many were lost or doubled, how many arrived out of
order for their ticket, the attempts the outbox counted, and how long after
the receiver's return the last event arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bot.models import TicketState, Trigger
from bot.notify import Notifier, Publisher
from bot.store.base import TicketStore
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.fakes.notify_receiver import SECRET, Receiver
from tests.fakes.server import ServerThread

EVENTS = ("ticket.queued", "ticket.started", "ticket.finished")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trigger(number: int) -> Trigger:
    return Trigger(
        kind="label", repository="octo/bench", clone_url="https://github.test/octo/bench.git",
        installation_id=1, number=number, is_pull_request=False, title=f"Issue {number}",
        body="", requested_by="octocat",
    )  # fmt: skip


@contextlib.contextmanager
def open_store(kind: str, url: str) -> Iterator[TicketStore]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore(Path(tmp) / "bench.db", notify_urls=[url])
            yield store
            store.close()
        return
    from tests.pg import create_database, drop_database, postgres_server

    with postgres_server() as server:
        database = create_database(server)
        pg = PostgresStore(database, notify_urls=[url])
        yield pg
        pg.close()
        drop_database(database)


async def tickets_meanwhile(store: TicketStore, publisher: Publisher, count: int) -> list[int]:
    ids = []
    for n in range(1, count + 1):
        ticket_id, _ = await asyncio.to_thread(store.add, f"bench-{n}", "issues", trigger(n))
        claimed = await asyncio.to_thread(store.claim, "bench", 600.0, time.time())
        assert claimed is not None
        await publisher.started(claimed)
        await asyncio.to_thread(
            store.finish, ticket_id, TicketState.SUCCEEDED, time.time(), conclusion="success"
        )
        await publisher.finished(ticket_id, ran=True)
        ids.append(ticket_id)
    return ids


async def bench(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    with open_store(args.database, url) as store:
        notifier = Notifier(
            store, SECRET, backoff_base=args.backoff_base, backoff_cap=args.backoff_cap
        )
        publisher = Publisher(store, [url], wake=notifier.wake)
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run_forever(stop))
        down_at = time.monotonic()
        tickets = await tickets_meanwhile(store, publisher, args.tickets)
        made = time.monotonic() - down_at
        await asyncio.sleep(max(0.0, args.outage - made))
        hook = Receiver()
        expected = len(tickets) * len(EVENTS)
        with ServerThread(hook.app(), port=port):
            up_at = time.monotonic()
            while len(hook.got) < expected and time.monotonic() - up_at < args.backoff_cap + 60:
                await asyncio.sleep(0.05)
            drained = time.monotonic() - up_at
            await asyncio.sleep(2.0)  # anything doubled would show up now
        stop.set()
        await task
        events = hook.events()
        unique = set(events)
        out_of_order = sum(
            1 for ticket_id in tickets if [e for t, e in events if t == ticket_id] != list(EVENTS)
        )
        rows = await asyncio.to_thread(store.due_notifications, time.time() + 1e9, 10_000)
    attempts = hook.attempts  # every POST the receiver saw (before it was up, none)
    print(f"database              {args.database}")
    print(f"receiver down         {args.outage:.1f} s (connection refused)")
    cap = args.backoff_cap
    print(f"backoff               {args.backoff_base:g} s doubling, capped at {cap:g} s")
    print(f"tickets               {len(tickets)} ({expected} events)")
    print(f"delivered             {len(events)}")
    wanted = {(t, e) for t in tickets for e in EVENTS}
    print(f"lost                  {len(wanted - unique)}")
    print(f"doubled               {len(events) - len(unique)}")
    print(f"out of order tickets  {out_of_order}")
    print(f"bad signatures        {hook.bad_signatures}")
    print(f"POSTs after return    {attempts}")
    print(f"left in the outbox    {len(rows)}")
    print(f"all delivered         {drained:.2f} s after the receiver came back")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=50)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--backoff-base", type=float, default=2.0)
    parser.add_argument("--backoff-cap", type=float, default=300.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every refused attempt logs a warning
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
