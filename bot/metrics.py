"""Prometheus metrics of one bot process: intake, runs, GitHub calls, LLM spend, the queue.

A Metrics object owns its CollectorRegistry, so two apps in one process
(tests, benches) never share a counter or collide on a name; it is made by
the composition root and handed to what records into it. Queue figures are
not counted as things happen: they are read from the store at scrape time,
so every process shows the one shared queue, whoever changed it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .models import Conclusion, Ticket, TicketState
from .store.base import TicketStore

log = logging.getLogger("bot.metrics")

# What an answer to POST /webhook meant.
OUTCOMES = (
    "ticket",
    "duplicate",
    "ignored",
    "unauthorized",
    "malformed",
    "too_large",
    "unavailable",
)
# GitHub's webhook event names. The event header of an unsigned request is anyone's
# to choose: anything else is counted as "other", so no caller can grow the label set.
KNOWN_EVENTS = frozenset(
    {
        "branch_protection_rule", "check_run", "check_suite", "code_scanning_alert",
        "commit_comment", "create", "delete", "dependabot_alert", "deploy_key", "deployment",
        "deployment_status", "discussion", "discussion_comment", "fork",
        "github_app_authorization", "gollum", "installation", "installation_repositories",
        "installation_target", "issue_comment", "issues", "label", "marketplace_purchase",
        "member", "membership", "merge_group", "meta", "milestone", "organization", "package",
        "page_build", "ping", "project", "project_card", "project_column", "public",
        "pull_request", "pull_request_review", "pull_request_review_comment",
        "pull_request_review_thread", "push", "registry_package", "release", "repository",
        "repository_dispatch", "security_advisory", "sponsorship", "star", "status", "team",
        "team_add", "watch", "workflow_dispatch", "workflow_job", "workflow_run",
    }
)  # fmt: skip
INTAKE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RUN_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0)


def event_label(event: str) -> str:
    return event if event in KNOWN_EVENTS else "other"


class StoreCollector:
    """Tickets by state, queue depth and the oldest queued ticket's age, read at scrape time."""

    def __init__(self, store: TicketStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self.store.counts()
            oldest = self.store.oldest_queued(self.clock())
        except Exception as exc:  # noqa: BLE001 (a scrape must answer; /healthz tells why)
            log.warning("metrics: the store cannot be read", extra={"error": str(exc)[:300]})
            return
        tickets = GaugeMetricFamily("autocode_tickets", "Tickets by state", labels=["state"])
        for state in TicketState:
            tickets.add_metric([str(state)], float(counts.get(str(state), 0)))
        yield tickets
        yield GaugeMetricFamily(
            "autocode_queue_depth", "Tickets queued, waiting for a worker",
            value=float(counts.get(str(TicketState.QUEUED), 0)),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "autocode_queue_oldest_seconds", "Seconds the oldest queued ticket has waited",
            value=oldest or 0.0,
        )  # fmt: skip


class Metrics:
    """Every metric of one process, in its own registry."""

    def __init__(
        self, store: TicketStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "autocode_webhooks", "Webhook deliveries received, by event and outcome",
            ["event", "outcome"], registry=r,
        )  # fmt: skip
        self.intake = Histogram(
            "autocode_intake_seconds", "Seconds from a delivery's arrival to its answer",
            buckets=INTAKE_BUCKETS, registry=r,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "autocode_run_seconds", "Seconds from a run's start to its final state, by conclusion",
            ["conclusion"], buckets=RUN_BUCKETS, registry=r,
        )  # fmt: skip
        self.github_requests = Counter(
            "autocode_github_requests", "GitHub REST answers, by HTTP status (retries included)",
            ["status"], registry=r,
        )  # fmt: skip
        self.rate_limit = Gauge(
            "autocode_github_rate_limit_remaining",
            "x-ratelimit-remaining of the latest GitHub answer", registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "autocode_llm_tokens", "LLM tokens the agent used, by kind", ["kind"], registry=r
        )
        self.cost = Counter(
            "autocode_llm_cost_dollars", "LLM cost the agent reported, in dollars", registry=r
        )
        self.containers = Gauge(
            "autocode_containers_running", "Agent containers this process runs now", registry=r
        )
        self.notifications_dead = Counter(
            "autocode_notifications_dead",
            "Notifications given up: their receiver kept failing for AUTOCODE_NOTIFY_GIVE_UP_HOURS",
            registry=r,
        )
        self._webhook_series: dict[tuple[str, str], Counter] = {}
        # the series a dashboard shows from the start, at zero
        for conclusion in Conclusion:
            self.run_seconds.labels(str(conclusion))
        for kind in ("input", "output"):
            self.tokens.labels(kind)
        if store is not None:
            r.register(StoreCollector(store, clock))

    # -- recording -------------------------------------------------------------
    def webhook(self, event: str, outcome: str, seconds: float) -> None:
        key = (event_label(event), outcome)
        counter = self._webhook_series.get(key)
        if counter is None:  # at most one per known event and outcome: the labels are bounded
            counter = self._webhook_series[key] = self.webhooks.labels(*key)
        counter.inc()
        self.intake.observe(seconds)

    def run_finished(self, ticket: Ticket) -> None:
        """A run's duration, tokens and cost, once, when its ticket is final."""
        conclusion = ticket.conclusion or str(ticket.state)
        if ticket.started_at is not None and ticket.finished_at is not None:
            self.run_seconds.labels(conclusion).observe(
                max(0.0, ticket.finished_at - ticket.started_at)
            )
        self.tokens.labels("input").inc(max(0, ticket.tokens_input))
        self.tokens.labels("output").inc(max(0, ticket.tokens_output))
        self.cost.inc(max(0.0, ticket.cost))

    def notification_dead(self) -> None:
        """A notification was given up (never sent again)."""
        self.notifications_dead.inc()

    def watch_containers(self, running: Callable[[], int]) -> None:
        """Read the number of running agent containers from the runner at scrape time."""
        self.containers.set_function(lambda: float(running()))

    async def _github_response(self, response: httpx.Response) -> None:
        self.github_requests.labels(str(response.status_code)).inc()
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.strip().isdigit():
            self.rate_limit.set(int(remaining))

    def github_hooks(self) -> dict[str, list[Callable[..., Any]]]:
        """httpx event hooks for githubkit's clients: every answer GitHub gives is counted."""
        return {"response": [self._github_response]}

    # -- exposing --------------------------------------------------------------
    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: Request) -> Response:
        """GET /metrics. Rendering reads the store, so it runs off the event loop."""
        return Response(await run_in_threadpool(self.render), media_type=CONTENT_TYPE_LATEST)
