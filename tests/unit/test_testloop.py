"""The test loop's pure parts: scripts, feedback, annotations, and how the outcome reads."""

from __future__ import annotations

import subprocess

from bot.github import render
from bot.models import Conclusion
from bot.testloop import TestAttempt, feedback_prompt, find_annotations, script, summary, tail

PYTEST = """\
============================= test session starts ==============================
collected 2 items

tests/test_app.py .F                                                      [100%]

=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(1, 2) == 4
E       assert 3 == 4
E        +  where 3 = add(1, 2)

tests/test_app.py:5: AssertionError
----------------------------- Captured stdout call -----------------------------
/usr/lib/python3/dist-packages/_pytest/python.py:194: in pytest_pyfunc_call
=========================== short test summary info ============================
FAILED tests/test_app.py::test_add - assert 3 == 4
========================= 1 failed, 1 passed in 0.03s ==========================
"""


def locations(output: str) -> list[tuple[str, int, str]]:
    return [(a["path"], a["start_line"], a["message"]) for a in find_annotations(output)]


def test_pytest_failures_become_annotations_with_their_e_lines() -> None:
    assert locations(PYTEST) == [
        ("tests/test_app.py", 5, "AssertionError\nassert 3 == 4\n+  where 3 = add(1, 2)")
    ]


def test_other_tools_formats() -> None:
    output = "\n".join(
        [
            "src/app.py:3: error: Incompatible return value type  [return-value]",  # mypy
            "src/app.py:1:8: F401 [*] `os` imported but unused",  # ruff
            "main.c:10:5: error: expected ';' before '}' token",  # gcc
            "    calc_test.go:12: got 3, want 4",  # go test
            "src/index.ts(7,3): error TS2322: Type 'string' is not assignable",  # tsc
            "/workspace/lib/util.py:9: in helper",  # an absolute path in the container
            "./lib/other.py:2: oops",
        ]
    )
    assert [(p, n) for p, n, _ in locations(output)] == [
        ("src/app.py", 3),
        ("src/app.py", 1),
        ("main.c", 10),
        ("calc_test.go", 12),
        ("src/index.ts", 7),
        ("lib/util.py", 9),
        ("lib/other.py", 2),
    ]
    assert locations(output)[1][2] == "F401 [*] `os` imported but unused"


def test_paths_outside_the_repository_and_noise_are_skipped() -> None:
    output = "\n".join(
        [
            "/usr/lib/python3.11/unittest/case.py:10: in foo",
            "../elsewhere.py:3: nope",
            "Ran 3 tests at 12:30:45",
            "see http://example.com:8080/x.html",
            "tests/test_app.py:0: zero is not a line",
        ]
    )
    assert locations(output) == []


def test_repeats_are_kept_once_and_unknown_files_can_be_filtered() -> None:
    output = "a.py:1: x\na.py:1: x again\nb.py:2: y\nvendor/c.py:3: z\n"
    found_all = [(p, n) for p, n, _ in locations(output)]
    assert found_all == [("a.py", 1), ("b.py", 2), ("vendor/c.py", 3)]
    known = {"a.py", "b.py"}
    found = find_annotations(output, known.__contains__)
    assert [a["path"] for a in found] == ["a.py", "b.py"]
    assert all(a["annotation_level"] == "failure" and a["end_line"] == a["start_line"]
               for a in found)  # fmt: skip


def test_at_most_fifty_annotations() -> None:
    output = "\n".join(f"f{i}.py:{i + 1}: failed" for i in range(80))
    assert len(find_annotations(output)) == 50


def test_the_script_runs_each_command_and_stops_at_the_first_failure() -> None:
    text = script(["echo one", "cd /tmp && echo 'two words' >&2", "exit 7", "echo never"])
    done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
    assert done.returncode == 7
    assert done.stdout.splitlines() == [
        "$ echo one", "one", "$ cd /tmp && echo 'two words' >&2", "two words", "$ exit 7",
    ]  # fmt: skip
    assert done.stderr == ""


def test_the_script_keeps_quotes_and_newlines_intact() -> None:
    command = "printf '%s|' \"a b\" 'c'\"'\"'d'\nprintf 'next line\\n'"
    done = subprocess.run(["sh", "-c", script([command])], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "a b|c'd|next line"
    assert done.stdout.startswith("$ printf '%s|' \"a b\"")  # echoed as written


def test_the_feedback_holds_the_command_and_the_end_of_the_output() -> None:
    output = "\n".join(f"line {i}" for i in range(200)) + "\nFAILED the last one"
    attempt = TestAttempt(number=1, passed=False, exit_code=2, seconds=3.0, output=output)
    prompt = feedback_prompt("make test", attempt, 3, dropped=[".github/workflows/ci.yml"])
    assert "`make test` failed with exit code 2" in prompt and "(attempt 1 of 3)" in prompt
    assert "FAILED the last one" in prompt and "line 199" in prompt and "line 100" not in prompt
    assert "`.github/workflows/ci.yml`" in prompt
    hung = TestAttempt(number=2, passed=False, exit_code=None, timed_out=True)
    assert "did not finish in time" in feedback_prompt("make test", hung, 3)


def test_tail_limits_lines_and_characters() -> None:
    assert tail("a\nb\nc\n", lines=2) == "b\nc"
    assert tail("x" * 100, chars=10) == "…" + "x" * 10


def test_attempts_and_summaries_read_well() -> None:
    failed = TestAttempt(number=1, passed=False, exit_code=1, seconds=4.2)
    passed = TestAttempt(number=2, passed=True, exit_code=0, seconds=1.0)
    hung = TestAttempt(number=1, passed=False, exit_code=None, timed_out=True, seconds=30)
    assert failed.describe(3) == "attempt 1 of 3: tests failed (exit 1) in 4s"
    assert passed.describe() == "attempt 2: tests passed in 1s"
    assert hung.describe(2) == "attempt 1 of 2: tests timed out in 30s"
    assert summary([passed], 3) == "the tests pass"
    assert summary([failed, passed], 3) == "the tests pass (on attempt 2 of 3)"
    assert summary([failed, failed], 2) == "the tests still fail after 2 attempts"
    assert summary([], 3) == ""


def test_the_outcome_shows_attempts_dropped_paths_and_errors() -> None:
    attempts = [
        TestAttempt(number=1, passed=False, exit_code=1, seconds=2, output="a.py:1: boom"),
        TestAttempt(number=2, passed=False, exit_code=1, seconds=2, output="a.py:3: boom again"),
    ]
    outcome = render.Outcome(
        Conclusion.FAILURE,
        "opened draft pull request #5; the tests still fail",
        pr_url="https://github.example/o/r/pull/5",
        files=["a.py"],
        dropped=[".github/workflows/ci.yml"],
        tests=attempts,
        test_command="pytest",
        max_attempts=2,
        draft=True,
        annotations=find_annotations(attempts[-1].output),
    )
    comment = render.outcome_comment(7, outcome)
    assert "Pull request (draft): https://github.example/o/r/pull/5" in comment
    assert "- `.github/workflows/ci.yml`" in comment
    assert "❌ Tests (`pytest`): the tests still fail after 2 attempts" in comment
    assert "- attempt 1 of 2: tests failed (exit 1) in 2s" in comment
    check = render.check_output(outcome)
    assert "attempt 2 of 2" in check["summary"]
    assert "Test output (attempt 2, `pytest`)" in check["text"] and "boom again" in check["text"]
    assert check["annotations"] == [
        {"path": "a.py", "start_line": 3, "end_line": 3, "annotation_level": "failure",
         "title": "Test failure", "message": "boom again"}
    ]  # fmt: skip
    body = render.pr_body(render.pr_intro(4), outcome, "I tried.")
    assert "### Tests" in body and "draft until they pass" in body and "boom again" in body

    invalid = render.Outcome(Conclusion.FAILURE, "bad settings", errors=["line 2: nope"])
    assert "- line 2: nope" in render.outcome_comment(7, invalid)


def test_the_progress_lists_the_attempts_under_the_test_step() -> None:
    lines = ["attempt 1 of 3: tests failed (exit 1) in 2s", "attempt 2 of 3: running `pytest` ⏳"]
    comment = render.progress_comment(1, "testing", 30, attempts=lines, with_tests=True)
    assert "- [x] Agent working" in comment
    assert "- [ ] **Running the tests** ⏳" in comment
    assert "  - attempt 1 of 3: tests failed (exit 1) in 2s" in comment
    plain = render.progress_comment(1, "agent", 3)
    assert "Running the tests" not in plain
    output = render.progress_output("testing", 30, attempts=lines)
    assert "attempt 2 of 3: running `pytest`" in output["summary"]
