"""The trigger rules over every real payload example GitHub publishes."""

import json
from pathlib import Path

import pytest

from bot.errors import PayloadError
from bot.models import Delivery, Origin, Trigger
from bot.triggers.rules import Ignore, RuleSettings, decide
from tests.paths import PAYLOADS

RULES = RuleSettings(trigger_label="auto-code")
ALL = sorted(PAYLOADS.glob("*/*.json"))


def stored(origin: Origin) -> dict:
    """The origin as the store keeps it (JSON, defaults left out)."""
    return dict(json.loads(origin.to_json()))


def delivery(path: Path, payload: dict | None = None) -> Delivery:
    data = payload if payload is not None else json.loads(path.read_text())
    return Delivery("d-1", path.parent.name, data.get("action", ""), data)


def relabel(name: str, label: str = "auto-code", **issue: object) -> dict:
    data = json.loads((PAYLOADS / "issues" / name).read_text())
    data["label"]["name"] = label
    data["issue"].update(issue)
    return data


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_is_handled_without_error(path: Path) -> None:
    decision = decide(delivery(path), RULES)
    assert isinstance(decision, Trigger | Ignore)


def test_examples_as_published_make_no_ticket() -> None:
    # none of the published examples carries our label; a completed check suite on a
    # pull request is a follow-up only if the bot pushed its commit (the endpoint's read)
    made = [p for p in ALL if isinstance(decide(delivery(p), RULES), Trigger)]
    assert [(p.parent.name, p.name) for p in made] == [
        ("check_suite", "completed.json"),
        ("check_suite", "completed.with-organization.json"),
    ]


@pytest.mark.parametrize("name", ["labeled.json", "labeled.with-organization.json"])
def test_the_trigger_label_makes_a_ticket(name: str) -> None:
    path = PAYLOADS / "issues" / name
    data = relabel(name)
    decision = decide(delivery(path, data), RULES)
    assert isinstance(decision, Trigger)
    assert decision.kind == "label"
    assert decision.repository == data["repository"]["full_name"]
    assert decision.clone_url == data["repository"]["clone_url"]
    assert decision.number == data["issue"]["number"]
    assert decision.title == data["issue"]["title"]
    assert decision.requested_by == data["sender"]["login"]
    assert decision.is_pull_request is False


def test_label_match_ignores_case_and_follows_the_setting() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    assert isinstance(decide(delivery(path, relabel("labeled.json", "Auto-Code")), RULES), Trigger)
    custom = RuleSettings(trigger_label="bot please")
    assert isinstance(
        decide(delivery(path, relabel("labeled.json", "bot please")), custom), Trigger
    )
    assert isinstance(decide(delivery(path, relabel("labeled.json")), custom), Ignore)


def test_other_labels_bots_and_closed_issues_make_none() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    assert isinstance(decide(delivery(path, relabel("labeled.json", "bug")), RULES), Ignore)
    by_bot = relabel("labeled.json")
    by_bot["sender"].update(login="autocode[bot]", type="Bot")
    assert isinstance(decide(delivery(path, by_bot), RULES), Ignore)
    other_bot = relabel("labeled.json")
    other_bot["sender"]["type"] = "Bot"
    assert isinstance(decide(delivery(path, other_bot), RULES), Ignore)
    closed = relabel("labeled.json", state="closed")
    assert isinstance(decide(delivery(path, closed), RULES), Ignore)


def test_null_body_becomes_empty() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    decision = decide(delivery(path, relabel("labeled.json", body=None)), RULES)
    assert isinstance(decision, Trigger) and decision.body == ""


def test_installation_id_is_read_when_present() -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    data = relabel("labeled.json")
    data["installation"] = {"id": 77, "node_id": "x"}
    decision = decide(delivery(path, data), RULES)
    assert isinstance(decision, Trigger) and decision.installation_id == 77


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("issue"),
        lambda d: d["issue"].update(number="1"),
        lambda d: d.pop("repository"),
        lambda d: d["repository"].update(full_name=5),
        lambda d: d["sender"].pop("login"),
    ],
)
def test_a_matching_but_malformed_payload_is_an_error(breakage: object) -> None:
    path = PAYLOADS / "issues" / "labeled.json"
    data = relabel("labeled.json")
    breakage(data)  # type: ignore[operator]
    with pytest.raises(PayloadError):
        decide(delivery(path, data), RULES)


# --- comments, reviews and check runs --------------------------------------------------------


def example(event: str, name: str) -> tuple[Path, dict]:
    path = PAYLOADS / event / name
    return path, json.loads(path.read_text())


def comment(body: str, name: str = "created.json", **change: object) -> Delivery:
    """GitHub's issue_comment example, its comment body rewritten to `body`."""
    path, data = example("issue_comment", name)
    data["comment"]["body"] = body
    data["comment"].update(change)
    return delivery(path, data)


def decided(d: Delivery, rules: RuleSettings = RULES) -> Trigger:
    decision = decide(d, rules)
    assert isinstance(decision, Trigger), decision
    return decision


@pytest.mark.parametrize(
    "name",
    [
        "created.json",
        "created.1.json",
        "created.with-installation.json",
        "created.with-organization.json",
    ],
)
def test_a_command_in_an_issue_comment_makes_a_command_trigger(name: str) -> None:
    d = comment("Thanks!\n/opencode fix the typo\nin README.md", name)
    data = d.payload
    trigger = decided(d)
    assert trigger.kind == "command"
    assert trigger.instructions == "fix the typo\nin README.md"
    assert trigger.repository == data["repository"]["full_name"]
    assert trigger.clone_url == data["repository"]["clone_url"]
    assert trigger.installation_id == (data.get("installation") or {}).get("id")
    assert trigger.number == data["issue"]["number"]
    assert trigger.is_pull_request is False
    assert trigger.title == data["issue"]["title"]
    assert trigger.body == (data["issue"]["body"] or "")
    assert trigger.requested_by == data["comment"]["user"]["login"]
    assert trigger.origin == Origin(
        **{
            "source": "issue_comment",
            "comment_id": data["comment"]["id"],
            "comment_url": data["comment"]["html_url"],
        }
    )


def test_an_issue_comment_on_a_pull_request() -> None:
    d = comment("/opencode add a test")
    d.payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    trigger = decided(d)
    assert trigger.is_pull_request is True
    assert set(stored(trigger.origin)) == {"source", "comment_id", "comment_url"}


def test_the_commenter_asks_even_when_another_user_sent_the_event() -> None:
    d = comment("/opencode fix it")
    d.payload["comment"]["user"] = {**d.payload["comment"]["user"], "login": "alice"}
    assert decided(d).requested_by == "alice"
    d.payload["comment"]["user"] = None  # a deleted account: fall back to the sender
    assert decided(d).requested_by == d.payload["sender"]["login"]


@pytest.mark.parametrize(
    ("body", "kind", "instructions", "extra"),
    [
        ("/opencode fresh start over", "command", "start over", {"fresh": True}),
        ("/opencode ask why is this slow?", "ask", "why is this slow?", {}),
        ("/opencode retry", "retry", "", {}),
        ("/opencode cancel", "cancel", "", {}),
        ("/opencode help", "help", "", {}),
        ("/opencode frobnicate", "help", "", {"unknown": "frobnicate"}),
        ("/opencode", "command", "", {}),
    ],
)
def test_sub_commands_map_to_trigger_kinds(
    body: str, kind: str, instructions: str, extra: dict
) -> None:
    trigger = decided(comment(body))
    assert (trigger.kind, trigger.instructions) == (kind, instructions)
    assert {k: v for k, v in stored(trigger.origin).items() if k in ("fresh", "unknown")} == extra


@pytest.mark.parametrize("body", ["/opencode cancel", "/opencode ask why", "/opencode fix it"])
def test_a_command_on_a_closed_issue_still_makes_a_trigger(body: str) -> None:
    d = comment(body)
    d.payload["issue"]["state"] = "closed"
    assert isinstance(decide(d, RULES), Trigger)  # the worker decides what to do with it


@pytest.mark.parametrize(
    "name",
    [
        "edited.json",
        "edited.with-organization.json",
        "deleted.json",
        "deleted.with-organization.json",
    ],
)
def test_edited_and_deleted_comments_are_ignored(name: str) -> None:
    decision = decide(comment("/opencode fix the bug", name), RULES)
    assert isinstance(decision, Ignore)


@pytest.mark.parametrize(
    "user",
    [
        {"login": "autocode[bot]", "type": "Bot"},
        {"login": "dependabot[bot]", "type": "User"},
        {"login": "some-ci", "type": "Bot"},
    ],
)
def test_a_comment_by_a_bot_is_ignored(user: dict) -> None:
    d = comment("/opencode fix the bug")
    d.payload["comment"]["user"] = {**d.payload["comment"]["user"], **user}
    assert isinstance(decide(d, RULES), Ignore)
    d.payload["sender"] = {**d.payload["sender"], **user}
    assert isinstance(decide(d, RULES), Ignore)


def test_a_comment_an_app_wrote_for_a_user_is_ignored() -> None:
    d = comment("/opencode fix the bug", performed_via_github_app={"id": 1, "slug": "x"})
    assert isinstance(decide(d, RULES), Ignore)


@pytest.mark.parametrize(
    "body",
    [
        "> /opencode fix the bug\n\nI agree with this.",
        "Run it like this:\n\n```\n/opencode fix the bug\n```",
        "Type `/opencode fix the bug` to start",
        "You are totally right! I'll get this fixed right away.",
        "",
    ],
)
def test_comments_without_a_command_are_ignored(body: str) -> None:
    assert isinstance(decide(comment(body), RULES), Ignore)


def test_a_null_comment_body_is_ignored() -> None:
    d = comment("x")
    d.payload["comment"]["body"] = None
    assert isinstance(decide(d, RULES), Ignore)


def test_a_custom_command_name() -> None:
    rules = RuleSettings(command="/autocode")
    trigger = decided(comment("/autocode ask what is this?"), rules)
    assert (trigger.kind, trigger.instructions) == ("ask", "what is this?")
    assert isinstance(decide(comment("/opencode fix the bug"), rules), Ignore)


@pytest.mark.parametrize("name", ["created.json", "created.with-organization.json"])
def test_a_review_comment_carries_the_diff_position(name: str) -> None:
    path, data = example("pull_request_review_comment", name)
    data["comment"]["body"] = "/opencode use a constant here"
    trigger = decided(delivery(path, data))
    note, pull = data["comment"], data["pull_request"]
    assert trigger.kind == "command"
    assert trigger.instructions == "use a constant here"
    assert (trigger.number, trigger.is_pull_request) == (pull["number"], True)
    assert (trigger.title, trigger.body) == (pull["title"], pull["body"])
    assert trigger.requested_by == note["user"]["login"]
    assert trigger.installation_id == data["installation"]["id"]
    assert trigger.origin == Origin(
        **{
            "source": "review_comment",
            "comment_id": note["id"],
            "comment_url": note["html_url"],
            "path": "README.md",
            "line": note["line"],
            "start_line": None,
            "original_line": note["original_line"],
            "side": "RIGHT",
            "diff_hunk": note["diff_hunk"],
            "commit_id": note["commit_id"],
            "head_ref": pull["head"]["ref"],
            "head_repo": pull["head"]["repo"]["full_name"],
            "base_ref": pull["base"]["ref"],
            "head_sha": pull["head"]["sha"],
        }
    )


def test_a_review_comment_reply_and_a_deleted_fork() -> None:
    path, data = example("pull_request_review_comment", "created.json")
    data["comment"].update(body="/opencode retry", in_reply_to_id=284312600, start_line=260)
    data["pull_request"]["head"]["repo"] = None  # the fork was deleted
    trigger = decided(delivery(path, data))
    assert trigger.kind == "retry"
    assert trigger.origin.in_reply_to_id == 284312600
    assert trigger.origin.start_line == 260
    assert trigger.origin.head_repo is None


@pytest.mark.parametrize("name", ["edited.json", "deleted.json"])
def test_edited_and_deleted_review_comments_are_ignored(name: str) -> None:
    path, data = example("pull_request_review_comment", name)
    data["comment"]["body"] = "/opencode fix it"
    assert isinstance(decide(delivery(path, data), RULES), Ignore)


def test_a_review_comment_by_a_bot_is_ignored() -> None:
    path, data = example("pull_request_review_comment", "created.json")
    data["comment"]["body"] = "/opencode fix it"
    data["comment"]["user"].update(login="autocode[bot]", type="Bot")
    assert isinstance(decide(delivery(path, data), RULES), Ignore)


@pytest.mark.parametrize("name", ["submitted.json", "submitted.with-organization.json"])
def test_a_submitted_review_with_a_command(name: str) -> None:
    path, data = example("pull_request_review", name)
    data["review"]["body"] = "Looks good except one thing.\n/opencode rename `x` to `count`"
    trigger = decided(delivery(path, data))
    review, pull = data["review"], data["pull_request"]
    assert trigger.kind == "command"
    assert trigger.instructions == "rename `x` to `count`"
    assert (trigger.number, trigger.is_pull_request) == (pull["number"], True)
    assert trigger.requested_by == review["user"]["login"]
    assert trigger.origin == Origin(
        **{
            "source": "review",
            "review_id": review["id"],
            "review_url": review["html_url"],
            "head_ref": pull["head"]["ref"],
            "head_repo": pull["head"]["repo"]["full_name"],
            "base_ref": pull["base"]["ref"],
            "head_sha": pull["head"]["sha"],
        }
    )


def test_reviews_without_a_command_or_not_submitted_are_ignored() -> None:
    path, data = example("pull_request_review", "submitted.json")
    assert data["review"]["body"] is None
    assert isinstance(decide(delivery(path, data), RULES), Ignore)
    data["review"]["body"] = "LGTM"
    assert isinstance(decide(delivery(path, data), RULES), Ignore)
    path, dismissed = example("pull_request_review", "dismissed.json")
    dismissed["review"]["body"] = "/opencode fix it"
    assert isinstance(decide(delivery(path, dismissed), RULES), Ignore)


def ours(name: str, **check_run: object) -> tuple[Path, dict]:
    """GitHub's check_run example, made into the bot's own check run for ticket 42."""
    path, data = example("check_run", name)
    data["check_run"].update(name="Auto-Code", external_id="42", **check_run)
    return path, data


@pytest.mark.parametrize("name", ["rerequested.json", "rerequested.with-organization.json"])
def test_a_rerequested_check_run_of_ours(name: str) -> None:
    path, data = ours(name)
    trigger = decided(
        delivery(path, data), RuleSettings(app_id=str(data["check_run"]["app"]["id"]))
    )
    assert trigger.kind == "rerequest"
    assert (trigger.number, trigger.is_pull_request) == (0, False)  # no pull request in it
    assert trigger.requested_by == data["sender"]["login"]
    assert (trigger.title, trigger.body, trigger.instructions) == ("Auto-Code", "", "")
    assert trigger.installation_id == data["installation"]["id"]
    assert trigger.origin == Origin(
        **{
            "source": "check_run",
            "check_run_id": data["check_run"]["id"],
            "external_id": "42",
            "head_sha": data["check_run"]["head_sha"],
        }
    )


def test_a_rerequested_check_run_on_a_pull_request() -> None:
    path, data = ours("completed.json")
    data["action"] = "rerequested"
    trigger = decided(delivery(path, data))
    assert (trigger.number, trigger.is_pull_request) == (2, True)


def test_the_cancel_button_of_our_check_run() -> None:
    path, data = ours("requested_action.json")
    data["requested_action"]["identifier"] = "cancel"
    trigger = decided(delivery(path, data), RuleSettings(app_id="25811"))
    assert trigger.kind == "cancel"
    assert (trigger.number, trigger.is_pull_request) == (26764, True)
    assert trigger.origin.external_id == "42"


def test_other_requested_actions_and_check_run_events_are_ignored() -> None:
    path, data = ours("requested_action.json")  # identifier "lgtm|26764"
    assert isinstance(decide(delivery(path, data), RULES), Ignore)
    for name in ("created.json", "completed.json", "completed.1.json"):
        path, data = ours(name)
        assert isinstance(decide(delivery(path, data), RULES), Ignore)


def test_check_runs_of_another_name_or_app_are_ignored() -> None:
    path, data = example("check_run", "rerequested.json")  # "randscape" of app 2
    assert isinstance(decide(delivery(path, data), RULES), Ignore)
    path, data = ours("rerequested.json")
    assert isinstance(decide(delivery(path, data), RuleSettings(app_id="999")), Ignore)
    assert isinstance(decide(delivery(path, data), RuleSettings(app_id="2")), Trigger)
    assert isinstance(decide(delivery(path, data), RuleSettings(check_name="Other")), Ignore)
    data["check_run"]["name"] = "auto-code"  # check names are exact
    assert isinstance(decide(delivery(path, data), RULES), Ignore)


def test_a_check_run_of_ours_matched_by_client_id() -> None:
    path, data = ours("rerequested.json")
    data["check_run"]["app"]["client_id"] = "Iv1.abc"
    assert isinstance(decide(delivery(path, data), RuleSettings(app_id="Iv1.abc")), Trigger)


@pytest.mark.parametrize(
    ("event", "name", "prepare", "breakage"),
    [
        ("issue_comment", "created.json", "comment", lambda d: d.pop("issue")),
        ("issue_comment", "created.json", "comment", lambda d: d["issue"].update(number="1")),
        ("issue_comment", "created.json", "comment", lambda d: d["comment"].pop("id")),
        ("issue_comment", "created.json", "comment", lambda d: d.update(comment="x")),
        ("issue_comment", "created.json", "comment", lambda d: d["comment"].update(body=5)),
        ("issue_comment", "created.json", "comment", lambda d: d.pop("repository")),
        (
            "pull_request_review_comment",
            "created.json",
            "comment",
            lambda d: d["comment"].pop("path"),
        ),
        (
            "pull_request_review_comment",
            "created.json",
            "comment",
            lambda d: d["comment"].update(line="265"),
        ),
        (
            "pull_request_review_comment",
            "created.json",
            "comment",
            lambda d: d["pull_request"].pop("head"),
        ),
        ("pull_request_review", "submitted.json", "review", lambda d: d["review"].pop("id")),
        ("pull_request_review", "submitted.json", "review", lambda d: d.pop("pull_request")),
        ("check_run", "rerequested.json", "check_run", lambda d: d["check_run"].pop("id")),
        (
            "check_run",
            "rerequested.json",
            "check_run",
            lambda d: d["check_run"].update(pull_requests=[{"number": "2"}]),
        ),
        ("check_run", "rerequested.json", "check_run", lambda d: d["check_run"].pop("head_sha")),
        ("check_run", "rerequested.json", "check_run", lambda d: d.update(check_run=[])),
    ],
)
def test_a_malformed_command_payload_is_an_error(
    event: str, name: str, prepare: str, breakage: object
) -> None:
    path, data = example(event, name)
    if prepare == "check_run":
        data["check_run"].update(name="Auto-Code", external_id="7")
    else:
        data[prepare]["body"] = "/opencode fix the bug"
    breakage(data)  # type: ignore[operator]
    with pytest.raises(PayloadError):
        decide(delivery(path, data), RULES)


def test_a_check_run_with_a_malformed_app_is_an_error_when_the_app_is_checked() -> None:
    path, data = ours("rerequested.json")
    data["check_run"]["app"]["id"] = "2"
    with pytest.raises(PayloadError):
        decide(delivery(path, data), RuleSettings(app_id="2"))
