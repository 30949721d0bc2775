"""Check runs and check suites: the bot's own buttons, and the checks of its pushes (pure)."""

from __future__ import annotations

from typing import Any

from ..models import Delivery, Origin, TicketKind, Trigger
from ..policy.followup import FAILED, PASSING
from ..webhook.parse import field, optional
from .base import Decision, Ignore, RuleSettings, repository_of


def ours(app: dict[str, Any] | None, rules: RuleSettings) -> bool:
    """True when a check run or suite was made by this bot's own App."""
    if app is None or not rules.app_id:
        return False
    return rules.app_id in (str(optional(app, "id", kind=int)), optional(app, "client_id"))


def check_suite(delivery: Delivery, rules: RuleSettings) -> Decision:
    """A suite of checks finished on a pull request's commit: a CI follow-up, if it is ours.

    Whether the bot pushed that commit is the endpoint's one store read; whether the
    pull request is still open, its head still that commit and the loop on, the worker's.
    """
    if delivery.action != "completed":
        return Ignore(f"check_suite.{delivery.action} is not handled")
    payload = delivery.payload
    suite = field(payload, "check_suite", kind=dict)
    app = optional(suite, "app", kind=dict)
    if ours(app, rules):
        return Ignore("the bot's own check suite")
    conclusion = str(optional(suite, "conclusion") or "")
    if conclusion not in FAILED | PASSING:
        return Ignore(f"a check suite that ended {conclusion or 'without a conclusion'}")
    pulls = optional(suite, "pull_requests", kind=list) or []
    if not pulls:  # GitHub lists only this repository's pull requests: never a fork's
        return Ignore("the check suite is on no pull request of this repository")
    repository, clone_url, installation_id = repository_of(payload)
    head_sha = field(suite, "head_sha")
    return Trigger(
        kind=TicketKind.CI_FIX,
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=field(pulls[0], "number", kind=int),
        is_pull_request=True,
        title=f"checks of {head_sha[:7]}",
        body="",
        requested_by=optional(payload, "sender", "login") or "",
        origin=Origin(
            source="check_suite",
            check_suite_id=field(suite, "id", kind=int),
            suite_app=str(optional(app or {}, "slug") or ""),
            suite_conclusion=conclusion,
            head_sha=head_sha,
            head_ref=optional(suite, "head_branch") or "",
        ),
    )


def check_run(delivery: Delivery, rules: RuleSettings) -> Decision:
    payload = delivery.payload
    if delivery.action == "rerequested":
        kind = TicketKind.RERUN
    elif delivery.action == "requested_action":
        identifier = optional(payload, "requested_action", "identifier")
        if identifier != "cancel":
            return Ignore(f"check run action {identifier!r} is not handled")
        kind = TicketKind.CANCEL
    else:
        return Ignore(f"check_run.{delivery.action} is not handled")
    check_run = field(payload, "check_run", kind=dict)
    name = field(check_run, "name")
    if name != rules.check_name:
        return Ignore(f"check run {name!r} is not ours")
    if rules.app_id and not ours(field(check_run, "app", kind=dict), rules):
        app_id = optional(check_run, "app", "id", kind=int)
        return Ignore(f"check run of app {app_id} is not ours")
    pulls = optional(check_run, "pull_requests", kind=list) or []
    number = field(pulls[0], "number", kind=int) if pulls else 0
    repository, clone_url, installation_id = repository_of(payload)
    return Trigger(
        kind=kind,
        repository=repository,
        clone_url=clone_url,
        installation_id=installation_id,
        number=number,
        is_pull_request=bool(pulls),
        title=name,
        body="",
        requested_by=field(payload, "sender", "login"),
        origin=Origin(
            source="check_run",
            check_run_id=field(check_run, "id", kind=int),
            # our ticket id, set when the bot created the check run
            external_id=optional(check_run, "external_id") or "",
            head_sha=field(check_run, "head_sha"),
        ),
    )
