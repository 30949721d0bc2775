"""GET /metrics through a real uvicorn server: intake outcomes, queue gauges, the Grafana board.

No workers run here (workers=False); the run and GitHub metrics are checked
end to end in tests/e2e/test_metrics_e2e.py.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_app
from bot.config import Settings
from bot.metrics import Metrics
from bot.store.sqlite import SQLiteStore
from tests.fakes.server import ServerThread
from tests.paths import PAYLOADS, ROOT
from tests.webhooks import headers, send

SECRET = "metrics-webhook-secret"
DASHBOARD = ROOT / "deploy" / "grafana" / "autocode.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[str]:
    settings = Settings.from_environ(
        {
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp_path / 'autocode.db'}",
        }
    )
    with ServerThread(build_app(settings, workers=False)) as server:
        yield server.url


def scrape(url: str) -> tuple[str, Samples]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def labeled(label: str = "auto-code", number: int = 1) -> dict:  # type: ignore[type-arg]
    data = json.loads((PAYLOADS / "issues" / "labeled.json").read_text())
    data["label"]["name"] = label
    data["issue"]["number"] = number
    return data  # type: ignore[no-any-return]


def declared_too_large(url: str) -> int:
    """A delivery whose Content-Length is over the limit: refused before any body is read."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\n"
            b"Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n"
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_each_intake_outcome_is_counted(bot: str) -> None:
    url = bot
    assert send(url, "issues", labeled(), SECRET, delivery="d-1").status_code == 202
    assert send(url, "issues", labeled(), SECRET, delivery="d-1").status_code == 200
    assert send(url, "issues", labeled(number=2), SECRET, delivery="d-2").status_code == 202
    assert send(url, "issues", labeled("bug"), SECRET).status_code == 200
    ping = json.loads((PAYLOADS / "ping" / "ping.json").read_text())
    assert send(url, "ping", ping, SECRET).status_code == 200
    assert send(url, "issues", labeled(), "the wrong secret").status_code == 401
    body = b"not json"
    malformed = httpx.post(f"{url}/webhook", content=body, headers=headers("issues", body, SECRET))
    assert malformed.status_code == 400
    # an unsigned request chooses its own event name: it cannot grow the label set
    forged = headers("made-up-event", b"{}", "not the secret")
    assert httpx.post(f"{url}/webhook", content=b"{}", headers=forged).status_code == 401
    assert declared_too_large(url) == 413

    text, samples = scrape(url)
    counted = {
        (dict(labels)["event"], dict(labels)["outcome"]): v
        for (name, labels), v in samples.items()
        if name == "autocode_webhooks_total"
    }
    assert counted == {
        ("issues", "ticket"): 2.0,
        ("issues", "duplicate"): 1.0,
        ("issues", "ignored"): 1.0,
        ("ping", "ignored"): 1.0,
        ("issues", "unauthorized"): 1.0,
        ("other", "unauthorized"): 1.0,
        ("issues", "malformed"): 1.0,
        ("issues", "too_large"): 1.0,
    }
    assert "made-up-event" not in text
    assert value(samples, "autocode_intake_seconds_count") == 9.0
    assert 0 < value(samples, "autocode_intake_seconds_sum") < 9.0
    assert value(samples, "autocode_intake_seconds_bucket", le="+Inf") == 9.0

    # the queue, read from the store at scrape time
    assert value(samples, "autocode_tickets", state="queued") == 2.0
    assert value(samples, "autocode_tickets", state="running") == 0.0
    assert value(samples, "autocode_queue_depth") == 2.0
    assert value(samples, "autocode_queue_oldest_seconds") > 0.0
    time.sleep(0.3)
    _, later = scrape(url)
    assert (
        value(later, "autocode_queue_oldest_seconds")
        >= value(samples, "autocode_queue_oldest_seconds") + 0.25
    )
    # nothing ran here: the run, GitHub and LLM series are there, at zero
    assert value(samples, "autocode_run_seconds_count", conclusion="success") == 0.0
    assert value(samples, "autocode_llm_tokens_total", kind="input") == 0.0
    assert value(samples, "autocode_llm_cost_dollars_total") == 0.0
    assert value(samples, "autocode_containers_running") == 0.0


def test_two_apps_in_one_process_keep_their_own_counts(tmp_path: Path) -> None:
    """Each Metrics has its own registry: nothing is global, nothing collides."""
    urls = []
    servers = []
    for name in ("one", "two"):
        settings = Settings.from_environ(
            {
                "AUTOCODE_WEBHOOK_SECRET": SECRET,
                "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp_path / name}.db",
            }
        )
        servers.append(ServerThread(build_app(settings, workers=False)).start())
        urls.append(servers[-1].url)
    try:
        send(urls[0], "issues", labeled(), SECRET)
        _, first = scrape(urls[0])
        _, second = scrape(urls[1])
        assert value(first, "autocode_webhooks_total", event="issues", outcome="ticket") == 1.0
        assert value(second, "autocode_webhooks_total", event="issues", outcome="ticket") == 0.0
        assert value(second, "autocode_queue_depth") == 0.0
    finally:
        for server in servers:
            server.stop()


def test_a_store_that_cannot_be_read_leaves_out_only_the_queue(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gone.db")
    metrics = Metrics(store)
    store.close()
    (tmp_path / "gone.db").unlink()
    (tmp_path / "gone.db").mkdir()  # the path is now a directory: SQLite cannot open it
    text = metrics.render().decode()
    assert "autocode_intake_seconds_count 0.0" in text  # the rest still answers
    assert "autocode_queue_depth" not in text


def dashboard_metric_names() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "expr" and isinstance(item, str):
                    exprs.append(item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(board)
    assert len(exprs) >= 12
    return {name for expr in exprs for name in re.findall(r"\bautocode_[a-z0-9_]+", expr)}


def test_every_metric_on_the_grafana_dashboard_is_exported(bot: str) -> None:
    send(bot, "issues", labeled(), SECRET)
    response = httpx.get(f"{bot}/metrics")
    exported = set()
    for family in text_string_to_metric_families(response.text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            exported.add(family.name + suffix)
    used = dashboard_metric_names()
    assert used, "the dashboard queries no autocode metric"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # and every metric the bot exports has a place on the board
    ours = {n for n in exported if n.startswith("autocode_") and not n.endswith("_created")}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in used}
    assert {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in ours} <= shown
