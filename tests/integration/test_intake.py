"""POST /webhook through a real uvicorn server and a real SQLite file (no workers)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.app import build_app
from bot.config import Settings
from bot.webhook.verify import signature
from tests.fakes.server import ServerThread
from tests.paths import PAYLOADS
from tests.webhooks import headers, send

SECRET = "It's a Secret to Everybody"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "autocode.db"
    settings = Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_DATABASE_URL": f"sqlite:///{db}",
            "AUTOCODE_ADMIN_TOKEN": "admin-token",
        }
    )
    with ServerThread(build_app(settings, workers=False)) as server:
        yield server.url, db


def labeled(label: str = "auto-code") -> dict:
    data = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    data["label"]["name"] = label
    return data


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, delivery_id, state, repository, number FROM tickets"
        ).fetchall()


def test_a_labeled_issue_is_stored_before_the_answer(bot: tuple[str, Path]) -> None:
    url, db = bot
    response = send(url, "issues", labeled(), SECRET, delivery="d-1")
    assert response.status_code == 202
    ticket = response.json()["ticket"]
    # a separate connection sees the committed row as soon as the answer arrives
    assert rows(db) == [(ticket, "d-1", "queued", "Codertocat/Hello-World", 1)]


def test_a_repeated_delivery_makes_no_second_ticket(bot: tuple[str, Path]) -> None:
    url, db = bot
    first = send(url, "issues", labeled(), SECRET, delivery="same")
    again = send(url, "issues", labeled(), SECRET, delivery="same")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"ticket": first.json()["ticket"], "duplicate": True}
    assert len(rows(db)) == 1
    second_issue = labeled()
    second_issue["issue"]["number"] = 2
    other = send(url, "issues", second_issue, SECRET, delivery="another")
    assert other.status_code == 202 and len(rows(db)) == 2


def test_the_label_and_a_bare_command_together_make_one_ticket(bot: tuple[str, Path]) -> None:
    url, db = bot
    first = send(url, "issues", labeled(), SECRET, delivery="label")
    comment = json.loads((PAYLOADS / "issue_comment" / "created.json").read_text())
    comment["issue"]["number"] = 1
    comment["repository"] = labeled()["repository"]
    comment["comment"]["body"] = "/opencode"
    joined = send(url, "issue_comment", comment, SECRET, delivery="command")
    assert first.status_code == 202 and joined.status_code == 200
    assert joined.json()["ticket"] == first.json()["ticket"]
    comment["comment"]["body"] = "/opencode and add a test"
    asked = send(url, "issue_comment", comment, SECRET, delivery="command-2")
    assert asked.status_code == 202 and len(rows(db)) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: h.pop("X-Hub-Signature-256"),
        lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        lambda h: h.update({"X-Hub-Signature-256": signature("wrong secret", b"{}")}),
        # only a SHA-1 signature (even a correct one) is refused
        lambda h: (h.pop("X-Hub-Signature-256"), h.update({"X-Hub-Signature": "sha1=" + "a" * 40})),
    ],
)
def test_bad_signatures_get_401_and_change_nothing(bot: tuple[str, Path], tamper: object) -> None:
    url, db = bot
    body = json.dumps(labeled()).encode()
    h = headers("issues", body, SECRET)
    tamper(h)  # type: ignore[operator]
    response = httpx.post(f"{url}/webhook", content=body, headers=h)
    assert response.status_code == 401
    assert rows(db) == []


def test_malformed_deliveries_get_400(bot: tuple[str, Path]) -> None:
    url, db = bot
    for body in (b"not json", b"[1, 2]", b'{"action": 5}'):
        response = httpx.post(
            f"{url}/webhook", content=body, headers=headers("issues", body, SECRET)
        )
        assert response.status_code == 400, body
    broken = labeled()
    del broken["issue"]["number"]
    assert send(url, "issues", broken, SECRET).status_code == 400
    body = json.dumps(labeled()).encode()
    no_event = headers("issues", body, SECRET)
    del no_event["X-GitHub-Event"]
    assert httpx.post(f"{url}/webhook", content=body, headers=no_event).status_code == 400
    assert rows(db) == []


def test_oversize_bodies_get_413(bot: tuple[str, Path]) -> None:
    url, db = bot
    body = b'{"pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = httpx.post(f"{url}/webhook", content=body, headers=headers("issues", body, SECRET))
    assert response.status_code == 413
    assert rows(db) == []


def test_ping_and_events_that_make_no_ticket_answer_2xx(bot: tuple[str, Path]) -> None:
    url, db = bot
    ping = json.loads((PAYLOADS / "ping" / "ping.json").read_text())
    assert send(url, "ping", ping, SECRET).status_code == 200
    assert send(url, "issues", labeled("bug"), SECRET).status_code == 200
    star = json.loads((PAYLOADS / "star" / "created.json").read_text())
    assert send(url, "star", star, SECRET).status_code == 200
    opened = json.loads((PAYLOADS / "issues" / "opened.json").read_text())
    assert send(url, "issues", opened, SECRET).status_code == 200
    assert rows(db) == []


def test_every_published_example_gets_a_2xx(bot: tuple[str, Path]) -> None:
    url, _ = bot
    with httpx.Client() as client:
        for path in sorted(PAYLOADS.glob("*/*.json")):
            event = "ping" if path.parent.name == "ping" else path.parent.name
            payload = json.loads(path.read_text())
            response = send(url, event, payload, SECRET, client=client)
            assert response.status_code in (200, 202, 204), (path, response.text)


def test_the_api_needs_the_admin_token(bot: tuple[str, Path]) -> None:
    url, _ = bot
    ticket = send(url, "issues", labeled(), SECRET).json()["ticket"]
    assert httpx.get(f"{url}/api/tickets").status_code == 401
    assert (
        httpx.get(f"{url}/api/tickets", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    auth = {"Authorization": "Bearer admin-token"}
    listed = httpx.get(f"{url}/api/tickets", headers=auth).json()["tickets"]
    assert [t["id"] for t in listed] == [ticket]
    one = httpx.get(f"{url}/api/tickets/{ticket}", headers=auth).json()
    assert one["state"] == "queued" and one["repository"] == "Codertocat/Hello-World"
    assert one["requested_by"] == "Codertocat" and one["number"] == 1


def test_a_poisoned_delivery_is_refused_alone(bot: tuple[str, Path]) -> None:
    """A lone surrogate (valid JSON, not storable text) is a 400, not a failed batch.

    Decoded, it would reach the store inside a batch with the deliveries that
    arrived beside it, and its encoding error would fail them all.
    """
    url, db = bot

    def body(number: int, title: str) -> bytes:
        data = labeled()
        data["issue"].update(number=number, title=title)
        return json.dumps(data).encode()

    async def together() -> list[int]:
        bodies = [body(1, "bad \ud800"), body(2, "good"), body(3, "good too")]
        async with httpx.AsyncClient(base_url=url) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/webhook", content=b, headers=headers("issues", b, SECRET))
                    for b in bodies
                )
            )
        return [a.status_code for a in answers]

    assert asyncio.run(together()) == [400, 202, 202]
    assert sorted(r[4] for r in rows(db)) == [2, 3]
