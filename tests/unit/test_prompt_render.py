from bot.github import render
from bot.models import Conclusion, Usage
from bot.runner.prompt import RULES, ThreadComment, build_prompt, ticket_prompt


def test_prompt_holds_the_issue_thread_and_rules() -> None:
    prompt = build_prompt(
        repository="octo/hello",
        number=7,
        title="Fix  the\nspelling",
        body="It says commmit.",
        comments=[ThreadComment("alice", "Also check the README"), ThreadComment("bob", "+1")],
    )
    assert prompt.startswith("Resolve issue #7 of the repository octo/hello.")
    assert "Title: Fix the spelling" in prompt
    assert "It says commmit." in prompt
    assert prompt.index("@alice") < prompt.index("@bob")
    assert prompt.endswith(RULES)
    assert "Do not run git commit, git push" in prompt


def test_instructions_lead_the_prompt() -> None:
    prompt = build_prompt(
        repository="o/r", number=1, title="t", body="", instructions="Rename foo to bar"
    )
    assert prompt.startswith("Your task:\nRename foo to bar")
    assert "(empty)" in prompt


def test_huge_input_is_cut_but_keeps_the_rules() -> None:
    prompt = build_prompt(
        repository="o/r",
        number=1,
        title="t",
        body="x" * 100_000,
        comments=[ThreadComment("a", "y" * 10_000)] * 30,
    )
    assert len(prompt) <= 60_000
    assert prompt.endswith(RULES)


def test_outcome_comment_links_the_pr_and_carries_the_marker() -> None:
    outcome = render.Outcome(
        Conclusion.SUCCESS,
        "opened pull request #9",
        pr_url="https://github.com/o/r/pull/9",
        files=["a.py", "b.py"],
        usage=Usage(input=1200, output=80, cost=0.0123),
        seconds=75,
    )
    body = render.outcome_comment(5, outcome)
    assert body.startswith(render.marker(5))
    assert "https://github.com/o/r/pull/9" in body and "`a.py`" in body
    assert "1,200 input + 80 output tokens" in body and "$0.0123" in body and "1m 15s" in body


def test_check_output_fits_githubs_limits() -> None:
    outcome = render.Outcome(
        Conclusion.FAILURE, "the agent failed", reason="boom", output_tail=["x" * 1000] * 200
    )
    output = render.check_output(outcome)
    assert output["title"] == "the agent failed"
    assert len(output["summary"]) <= 65535 and len(output["text"]) <= 65535
    assert "boom" in output["summary"]


def test_progress_comment_shows_phase_and_last_step() -> None:
    body = render.progress_comment(3, "agent", 42, "write src/app.py")
    assert "- [x] Queued" in body and "- [x] Preparing the workspace" in body
    assert "**Agent working** — write src/app.py" in body and "42s" in body
    assert "- [ ] Pushing the branch" in body


def test_pr_body_closes_the_issue() -> None:
    body = render.pr_body(
        render.pr_intro(12), render.Outcome(Conclusion.SUCCESS, "", files=["x"]), "Did it."
    )
    assert body.startswith("Closes #12")
    assert "Did it." in body


def test_commit_message_names_the_issue() -> None:
    message = render.commit_message(12, "Fix   spelling")
    assert message.splitlines()[0] == "Auto-Code: Fix spelling"
    assert "#12" in message


def test_an_ask_is_told_to_answer_and_change_nothing() -> None:
    asked = build_prompt(
        repository="o/r", number=3, title="Why?", body="How does X work?", ask=True
    )
    assert asked.startswith("Answer the question below about this repository.")
    assert "read-only" in asked and asked.endswith(RULES)
    plain = build_prompt(repository="o/r", number=3, title="Why?", body="How does X work?")
    assert "Answer the question" not in plain


def test_the_python_apis_ticket_prompt_holds_the_ticket_and_the_rules() -> None:
    prompt = ticket_prompt(
        repository="o/r",
        title="  Add   a discount  ",
        description="Customers get 10% off.",
        ticket_type="feature",
        priority="high",
    )
    assert prompt.startswith("Work on this feature ticket (priority: high) in the repository o/r.")
    assert "Title: Add a discount" in prompt and "Customers get 10% off." in prompt
    assert prompt.endswith(RULES)
    empty = ticket_prompt(
        repository="o/r", title="T", description=" ", ticket_type="bug", priority="low"
    )
    assert "Description:\n(empty)" in empty
    long = ticket_prompt(
        repository="o/r", title="T", description="x" * 30_000, ticket_type="bug", priority="low"
    )
    assert "[… cut]" in long and len(long) < 30_000
