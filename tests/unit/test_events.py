"""bot/runner/events.py over real opencode 1.18.33 event streams (tests/data/opencode).

Each recording has a .meta.json with the script the scripted LLM followed,
the exit code and the workspace's `git status`: the expectations below come
from there (what the model was told to do and report), never from the parser.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from bot.runner.events import Transcript, error_message, parse_line
from tests.paths import DATA

RECORDINGS = DATA / "opencode"
SCENARIOS = (
    "success",
    "edit",
    "no_change",
    "tool_refused",
    "provider_error",
    "session_first",
    "session_second",
)
EDITING_TOOLS = ("write", "edit")


@cache
def lines(name: str) -> tuple[str, ...]:
    return tuple((RECORDINGS / f"{name}.jsonl").read_text().splitlines(keepends=True))


@cache
def meta(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / f"{name}.meta.json").read_text()))


def transcript(name: str) -> Transcript:
    fed = Transcript()
    for line in lines(name):
        fed.feed(line)
    return fed


def asked(name: str) -> list[dict[str, Any]]:
    """The script's steps opencode asked the model for (it may stop before the last)."""
    script: list[dict[str, Any]] = meta(name)["script"]
    return script[: len(script) - meta(name)["script_steps_left"]]


def tool_steps(name: str) -> list[dict[str, Any]]:
    return [s for s in asked(name) if s["kind"] == "tool"]


def changed_by_script(name: str) -> list[str]:
    return [s["arguments"]["filePath"] for s in tool_steps(name) if s["tool"] in EDITING_TOOLS]


def git_paths(name: str) -> list[str]:
    return [line[3:] for line in meta(name)["git_status"]]


def test_every_scenario_was_recorded_from_opencode() -> None:
    for name in SCENARIOS:
        assert lines(name), name
        assert meta(name)["scenario"] == name
        for line in lines(name):  # stdout verbatim: one JSON event per line
            assert isinstance(json.loads(line), dict), (name, line)


@pytest.mark.parametrize(
    ("name", "files"),
    [("success", ["hello.txt"]), ("edit", ["src/app.py"]), ("no_change", [])],
)
def test_the_files_the_agent_changed(name: str, files: list[str]) -> None:
    assert changed_by_script(name) == files  # the recording is the scenario it claims
    assert git_paths(name) == files  # and the workspace shows exactly that
    assert transcript(name).files == files


def test_a_refused_or_failed_run_changed_nothing() -> None:
    for name in ("tool_refused", "provider_error"):
        assert git_paths(name) == []
        assert transcript(name).files == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_final_text_is_the_models_last_answer(name: str) -> None:
    answers = [s["text"] for s in asked(name) if s["kind"] == "text"]
    assert transcript(name).final_text == (answers[-1] if answers else "")


def test_the_last_of_several_answers_is_final() -> None:
    (recorded,) = [line for line in lines("no_change") if '"type":"text"' in line]
    fed = Transcript()
    for answer in ("first thoughts", "  the answer  \n", "   "):
        raw = json.loads(recorded)
        raw["part"]["text"] = answer
        fed.feed(json.dumps(raw))
    assert fed.texts == ["first thoughts", "  the answer  \n"]  # blank text is no answer
    assert fed.final_text == "the answer"


def test_the_scripted_answers_arrived() -> None:
    assert transcript("success").final_text == "I created hello.txt and checked its content."
    assert transcript("edit").final_text == "greet() now ends with an exclamation mark."
    assert transcript("no_change").final_text == (
        "src/app.py defines greet(name), which says hello to name."
    )


@pytest.mark.parametrize("name", SCENARIOS)
def test_usage_sums_what_the_llm_reported(name: str) -> None:
    reported = [s["usage"] for s in asked(name) if "usage" in s]
    price = meta(name)["price_per_million_tokens"]
    tokens_in = sum(u["prompt_tokens"] for u in reported)
    tokens_out = sum(u["completion_tokens"] for u in reported)
    usage = transcript(name).usage
    assert (usage.input, usage.output) == (tokens_in, tokens_out)
    assert (usage.reasoning, usage.cache_read, usage.cache_write) == (0, 0, 0)
    assert usage.total == tokens_in + tokens_out
    expected_cost = (tokens_in * price["input"] + tokens_out * price["output"]) / 1e6
    assert usage.cost == pytest.approx(expected_cost, rel=1e-6)
    if name != "provider_error":
        assert usage.cost > 0


def test_each_step_finish_carries_that_steps_tokens_and_price() -> None:
    price = meta("success")["price_per_million_tokens"]
    finishes = [e for e, _ in map(parse_line, lines("success")) if e and e.kind == "finish"]
    reported = [s["usage"] for s in asked("success")]
    assert len(finishes) == len(reported) == 3
    for event, usage in zip(finishes, reported, strict=True):
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
        assert event.tokens == prompt + completion
        cost = (prompt * price["input"] + completion * price["output"]) / 1e6
        assert event.cost == pytest.approx(cost, rel=1e-6)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_session_id_is_found(name: str) -> None:
    assert re.fullmatch(r"ses_[0-9A-Za-z]+", transcript(name).session_id)


def test_a_continued_session_keeps_its_id() -> None:
    first, second = transcript("session_first"), transcript("session_second")
    assert meta("session_first")["session_arg"] == ""
    assert first.session_id == meta("session_second")["session_arg"]  # what --session was given
    assert second.session_id == first.session_id
    other = {transcript(n).session_id for n in ("success", "edit", "no_change")}
    assert first.session_id not in other
    assert len(other) == 3


@pytest.mark.parametrize("name", SCENARIOS)
def test_steps_and_tool_events(name: str) -> None:
    fed = transcript(name)
    assert fed.steps == len(tool_steps(name))
    events = [e for e, _ in map(parse_line, lines(name)) if e is not None]
    answered = [s for s in asked(name) if s["kind"] in ("tool", "text")]
    assert sum(e.kind == "step" for e in events) == len(answered)  # one step per LLM answer
    assert sum(e.kind == "finish" for e in events) == len(answered)
    tools = [e for e in events if e.kind == "tool"]
    assert [e.tool for e in tools] == [s["tool"] for s in tool_steps(name)]
    for event, step in zip(tools, tool_steps(name), strict=True):
        arguments = step["arguments"]
        assert event.target == arguments.get("filePath", arguments.get("command"))


def test_tools_that_ran_report_completed_and_their_output() -> None:
    tools = [e for e, _ in map(parse_line, lines("success")) if e and e.kind == "tool"]
    assert [e.status for e in tools] == ["completed", "completed"]
    written = tool_steps("success")[0]["arguments"]["content"]
    assert tools[1].text == written  # `cat hello.txt` printed what `write` wrote
    assert transcript("success").last_step == "wrote: " + asked("success")[-1]["text"]


def test_a_refused_tool_is_an_error_and_the_run_still_exits_0() -> None:
    assert meta("tool_refused")["exit_code"] == 0
    assert meta("tool_refused")["permission"] is None  # opencode's defaults, not the bot's
    fed = transcript("tool_refused")
    tools = [e for e, _ in map(parse_line, lines("tool_refused")) if e and e.kind == "tool"]
    refused = tool_steps("tool_refused")[0]["arguments"]["command"]
    assert [(e.tool, e.target, e.status) for e in tools] == [("bash", refused, "error")]
    assert f"[bash] {refused} (error)" in fed.tail
    assert fed.errors == []  # the run itself did not fail: judge it by diff and text
    assert fed.final_text == ""  # opencode stopped after the refusal: no answer came
    assert meta("tool_refused")["script_steps_left"] == 1


def test_a_refused_tools_reason_is_kept() -> None:
    tools = [e for e, _ in map(parse_line, lines("tool_refused")) if e and e.kind == "tool"]
    assert "rejected permission" in tools[0].text
    assert any("rejected permission" in line for line in transcript("tool_refused").tail)


def test_a_failed_write_is_not_a_changed_file() -> None:
    event = {"type": "tool_use", "part": {"tool": "write", "state": {
        "status": "error", "input": {"filePath": "x.txt"}, "error": "disk full"}}}  # fmt: skip
    fed = Transcript()
    fed.feed(json.dumps(event))
    assert fed.files == [] and fed.steps == 1


def test_a_provider_error_is_extracted() -> None:
    status = meta("provider_error")["script"][0]["status"]
    expected = f"scripted failure {status}"  # the scripted server's error body
    assert meta("provider_error")["exit_code"] != 0
    (line,) = lines("provider_error")
    event, raw = parse_line(line)
    assert raw is not None and event is not None
    assert raw["type"] == "error"
    assert error_message(raw) == expected
    assert (event.kind, event.text) == ("error", expected)
    fed = transcript("provider_error")
    assert fed.errors == [expected]
    assert fed.last_step == f"error: {expected}"
    assert f"error: {expected}" in fed.tail
    assert (fed.files, fed.texts, fed.steps) == ([], [], 0)


def test_successful_runs_report_no_error() -> None:
    for name in SCENARIOS:
        if name != "provider_error":
            assert transcript(name).errors == [], name


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"error": "plain words"}, "plain words"),
        ({"error": {"name": "APIError", "data": {"message": "in data"}}}, "in data"),
        ({"error": {"name": "APIError", "message": "on the error"}}, "on the error"),
        ({"error": {"name": "UnknownError"}}, "UnknownError"),
        ({"error": None}, "agent error"),
        ({"error": {"data": {"message": "x" * 5000}}}, "x" * 2000),
    ],
)
def test_error_message_shapes(error: dict[str, Any], message: str) -> None:
    assert error_message({"type": "error", **error}) == message


def test_non_json_lines_go_to_the_tail() -> None:
    noise = ["opencode: some warning on stdout\n", "\x1b[93m! plain log\x1b[0m\n", "[1]\n"]
    fed = Transcript()
    returned = []
    for index, line in enumerate(lines("success")):
        returned.append(fed.feed(line))
        if index < len(noise):
            assert fed.feed(noise[index]) is None
    assert fed.feed("   \n") is None
    assert all(e is not None for e in returned)
    for line in noise:
        assert line.rstrip() in fed.tail
    assert "" not in fed.tail and "   " not in fed.tail
    # the events around the noise count as they did without it
    clean = transcript("success")
    assert (fed.files, fed.final_text, fed.usage, fed.steps) == (
        clean.files,
        clean.final_text,
        clean.usage,
        clean.steps,
    )


def test_a_long_plain_line_is_cut_in_the_tail() -> None:
    fed = Transcript()
    fed.feed("y" * 2000)
    assert list(fed.tail) == ["y" * 500]


@pytest.mark.parametrize("line", ["", "not json", "[1]", "{broken", "   ", "null", "42"])
def test_parse_line_rejects_garbage(line: str) -> None:
    assert parse_line(line) == (None, None)
