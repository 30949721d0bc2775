"""One full run, label to pull request, seen through /metrics and the notifications it sends.

The pattern of test_label_to_pr.py's first test, with a notification
receiver on 127.0.0.1: after the run the run histogram, the GitHub calls and
the LLM tokens are counted, and the receiver got the ticket's three events
in order, each signed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Bot, labeled_payload
from tests.e2e.test_label_to_pr import prepare
from tests.fakes.llm import text, tool
from tests.fakes.notify_receiver import SECRET, Receiver
from tests.fakes.server import ServerThread


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_a_run_is_counted_and_announced(make_bot: Callable[..., Bot]) -> None:
    hook = Receiver()
    with ServerThread(hook.app()) as receiver:
        bot = make_bot(AUTOCODE_NOTIFY_URLS=f"{receiver.url}/hook", AUTOCODE_NOTIFY_SECRET=SECRET)
        gh = bot.github
        prepare(gh)
        bot.llm.script(
            [
                tool("write", filePath="hello.txt", content="Hello, world!\n"),
                text("Added hello.txt."),
            ]
        )
        ticket_id = bot.deliver("issues", labeled_payload(gh))
        ticket = bot.wait(ticket_id)
        assert ticket["state"] == "succeeded", (ticket["error"], ticket)
        deadline = time.monotonic() + 30
        while len(hook.got) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)

    samples = scrape(bot.url)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("autocode_run_seconds_count", conclusion="success") == 1.0
    assert value("autocode_run_seconds_sum", conclusion="success") > 0.0
    assert value("autocode_run_seconds_count", conclusion="failure") == 0.0
    assert value("autocode_webhooks_total", event="issues", outcome="ticket") == 1.0
    github = {dict(k[1])["status"]: v for k, v in samples.items()
              if k[0] == "autocode_github_requests_total"}  # fmt: skip
    assert sum(github.values()) >= 8, github  # token, permission, branches, check run, PR, …
    assert github.get("201", 0) >= 2 and github.get("200", 0) >= 2, github
    assert value("autocode_github_rate_limit_remaining") > 0
    assert value("autocode_llm_tokens_total", kind="input") > 0
    assert value("autocode_llm_tokens_total", kind="output") > 0
    assert value("autocode_llm_tokens_total", kind="input") == ticket["tokens_input"]
    assert value("autocode_containers_running") == 0.0
    assert value("autocode_tickets", state="succeeded") == 1.0
    assert value("autocode_queue_depth") == 0.0

    assert hook.bad_signatures == 0
    assert hook.events() == [
        (ticket_id, "ticket.queued"), (ticket_id, "ticket.started"), (ticket_id, "ticket.finished"),
    ]  # fmt: skip
    finished = hook.got[2]["body"]["ticket"]
    assert finished["state"] == "succeeded" and finished["conclusion"] == "success"
    assert finished["pr_url"] == ticket["pr_url"] and finished["pr_url"]
    assert finished["tokens"]["input"] == ticket["tokens_input"] > 0
    assert finished["duration_seconds"] > 0
