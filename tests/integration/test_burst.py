"""Nothing lost, nothing doubled: a burst of signed deliveries with repeats, on both stores.

A real uvicorn server (intake only, no workers) takes 2,000 deliveries at
once over 16 keep-alive connections: 1,500 distinct deliveries, each on its
own issue (bare label requests on one issue coalesce by design), and 500
repeats of some of them, byte for byte as GitHub redelivers, shuffled in.
Every answer is 2xx, each distinct delivery is created exactly once (one 202,
its repeats 200 with the same ticket), and the database then holds exactly
the distinct tickets.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bot.app import build_app
from bot.config import Settings
from bot.store import open_store
from tests.fakes.server import ServerThread
from tests.paths import PAYLOADS
from tests.pg import create_database, drop_database
from tests.webhooks import headers

SECRET = "burst-secret"
DISTINCT = 1500
REPEATS = 500
CONNECTIONS = 16


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a new SQLite file, or `CREATE DATABASE t_<random>`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'burst.db'}"
        return
    url = create_database(request.getfixturevalue("postgres_url"))
    yield url
    drop_database(url)


def deliveries(seed: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """(delivery id, body, headers): the distinct ones plus repeats, shuffled."""
    template = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    template["label"]["name"] = "auto-code"
    distinct = []
    for index in range(DISTINCT):
        template["issue"]["number"] = index + 1
        body = json.dumps(template).encode()
        delivery = f"burst-{seed}-{index:05d}"
        distinct.append((delivery, body, headers("issues", body, SECRET, delivery)))
    rng = random.Random(seed)
    burst = distinct + [rng.choice(distinct) for _ in range(REPEATS)]
    rng.shuffle(burst)
    return burst


async def send_all(
    url: str, burst: list[tuple[str, bytes, dict[str, str]]]
) -> list[tuple[str, int, dict[str, Any]]]:
    """Every delivery once, CONNECTIONS in flight at a time on keep-alive connections."""
    queue: asyncio.Queue[tuple[str, bytes, dict[str, str]]] = asyncio.Queue()
    for item in burst:
        queue.put_nowait(item)
    answers: list[tuple[str, int, dict[str, Any]]] = []
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def connection() -> None:
            while not queue.empty():
                delivery, body, hdrs = queue.get_nowait()
                response = await client.post("/webhook", content=body, headers=hdrs)
                answers.append((delivery, response.status_code, response.json()))

        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return answers


def stored(url: str) -> list[tuple[int, str, str, int]]:
    """(id, delivery id, state, issue number) of every ticket, read past the bot's store."""
    query = "SELECT id, delivery_id, state, number FROM tickets ORDER BY id"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return [tuple(r) for r in conn.execute(query).fetchall()]  # type: ignore[misc]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]  # type: ignore[misc]


def test_a_burst_with_repeats_stores_each_delivery_exactly_once(database_url: str) -> None:
    settings = Settings.from_environ(
        {"AUTOCODE_WEBHOOK_SECRET": SECRET, "AUTOCODE_DATABASE_URL": database_url}
    )
    burst = deliveries(seed=20240611)
    expected = {d for d, _, _ in burst}
    assert len(expected) == DISTINCT and len(burst) == DISTINCT + REPEATS
    store = open_store(settings)
    try:
        with ServerThread(build_app(settings, store=store, workers=False)) as server:
            answers = asyncio.run(send_all(server.url, burst))
    finally:
        store.close()

    # every answer is a success, and exactly one per distinct delivery created it
    assert len(answers) == len(burst)
    statuses = Counter(status for _, status, _ in answers)
    assert statuses == {202: DISTINCT, 200: REPEATS}, statuses
    created = Counter(d for d, status, _ in answers if status == 202)
    assert set(created) == expected and set(created.values()) == {1}
    assert all(body.get("duplicate") is True for _, status, body in answers if status == 200)

    # a repeat names the ticket its first delivery made; distinct deliveries, distinct tickets
    ticket_of: dict[str, set[int]] = {}
    for delivery, _, body in answers:
        ticket_of.setdefault(delivery, set()).add(int(body["ticket"]))
    assert all(len(ids) == 1 for ids in ticket_of.values()), "a repeat got another ticket"
    ids = {next(iter(v)) for v in ticket_of.values()}
    assert len(ids) == DISTINCT

    # the database holds exactly those tickets: nothing lost, nothing doubled
    rows = stored(database_url)
    assert len(rows) == DISTINCT
    assert {r[0] for r in rows} == ids
    assert {r[1] for r in rows} == expected
    assert {r[0]: r[1] for r in rows} == {next(iter(v)): d for d, v in ticket_of.items()}
    assert {r[2] for r in rows} == {"queued"}
    assert sorted(r[3] for r in rows) == list(range(1, DISTINCT + 1))
