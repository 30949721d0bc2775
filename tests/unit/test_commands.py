"""The slash-command grammar: a command counts only where a reader sees it typed."""

import pytest

from bot.triggers.commands import NAMES, Command, help_text, parse_command


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/opencode fix the bug", Command("run", "fix the bug")),
        ("   /opencode fix the bug", Command("run", "fix the bug")),
        ("Hi\n\t/opencode fix the bug", Command("run", "fix the bug")),
        ("Thanks!\n/opencode fix the bug", Command("run", "fix the bug")),
        ("/opencode   fix   the bug  ", Command("run", "fix   the bug")),
        ("/opencode", Command("run")),
        ("/opencode   \n", Command("run")),
        ("/OpenCode Fix the bug", Command("run", "Fix the bug")),
        ("/OPENCODE retry", Command("retry")),
    ],
)
def test_a_command_at_the_start_of_a_line(body: str, expected: Command) -> None:
    assert parse_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "please run /opencode fix the bug",
        "- /opencode fix the bug",
        "/opencodex fix the bug",
        "/opencode-fix the bug",
        "/opencode: fix the bug",
        "opencode fix the bug",
        "Use `/opencode fix` to start a run",
        "`/opencode fix the bug`",
    ],
)
def test_not_a_command(body: str) -> None:
    assert parse_command(body) is None


@pytest.mark.parametrize(
    "body",
    [
        "> /opencode fix the bug",
        "   > /opencode fix the bug",
        ">/opencode fix the bug",
        "> > /opencode fix the bug",
        ">> /opencode fix the bug",
        "> someone wrote:\n> > /opencode fix the bug",
        # a line right after a quote is a lazy continuation: GitHub shows it inside the quote
        "> You said\n/opencode fix the bug",
    ],
)
def test_quoted_commands_do_not_count(body: str) -> None:
    assert parse_command(body) is None


def test_a_command_after_a_quote_and_a_blank_line_counts() -> None:
    body = "> /opencode do it the old way\n\n/opencode do it the new way"
    assert parse_command(body) == Command("run", "do it the new way")


@pytest.mark.parametrize(
    "body",
    [
        "```\n/opencode fix the bug\n```",
        "```python title=x.py\n/opencode fix the bug\n```",
        "~~~\n/opencode fix the bug\n~~~",
        "~~~~ shell\n/opencode fix the bug\n~~~\n/opencode still inside\n~~~~",
        "````\n```\n/opencode fix the bug\n```\n````",
        "   ```\n/opencode fix the bug\n   ```",
        "text\n```\n/opencode fix the bug",  # never closed: runs to the end
        "~~~\n/opencode fix the bug\n```\n/opencode a backtick fence does not close tildes",
    ],
)
def test_commands_in_fenced_code_do_not_count(body: str) -> None:
    assert parse_command(body) is None


def test_a_command_after_the_closing_fence_counts() -> None:
    body = "Example:\n```sh\n/opencode not this\n```\n/opencode but this"
    assert parse_command(body) == Command("run", "but this")
    tilde = "~~~\n/opencode not this\n~~~\n/opencode but this"
    assert parse_command(tilde) == Command("run", "but this")


@pytest.mark.parametrize(
    "body",
    [
        "    /opencode fix the bug",
        "Example:\n\n    /opencode fix the bug",
        "Example:\n\n\t/opencode fix the bug",
        "Example:\n\n    make test\n\n    /opencode fix the bug",
    ],
)
def test_commands_in_indented_code_do_not_count(body: str) -> None:
    assert parse_command(body) is None


def test_indentation_without_a_blank_line_continues_the_paragraph() -> None:
    # not code in markdown: the paragraph goes on, and leading spaces are allowed
    assert parse_command("Please\n    /opencode fix it") == Command("run", "fix it")


@pytest.mark.parametrize(
    "body",
    [
        "see `\n/opencode fix the bug\n` for how",
        "see ``\n/opencode fix the bug\n`` for how",
        "a `span` and ```\n/opencode fix the bug\nsee ``` here",
    ],
)
def test_commands_inside_a_multi_line_code_span_do_not_count(body: str) -> None:
    assert parse_command(body) is None


def test_an_unclosed_or_escaped_backtick_opens_no_code_span() -> None:
    assert parse_command("a lone ` here\n/opencode fix it") == Command("run", "fix it")
    assert parse_command("escaped \\`\n/opencode fix\n`") == Command("run", "fix\n`")


@pytest.mark.parametrize(
    "body",
    [
        "<!-- /opencode fix the bug -->",
        "<!--\n/opencode fix the bug\n-->",
        "<pre>\n/opencode fix the bug\n</pre>",
    ],
)
def test_commands_in_html_comments_and_pre_do_not_count(body: str) -> None:
    assert parse_command(body) is None


def test_after_an_html_comment_a_command_counts() -> None:
    body = "<!-- template:\n/opencode example\n-->\n/opencode real one"
    assert parse_command(body) == Command("run", "real one")


def test_instructions_run_to_the_end_of_the_comment_verbatim() -> None:
    body = (
        "Some context first.\n"
        "/opencode rename the helper\n"
        "and update the callers:\n"
        "\n"
        "```python\n"
        "    def helper(): ...\n"
        "```\n"
        "> even quoted lines belong to the instructions\n"
    )
    assert parse_command(body) == Command(
        "run",
        "rename the helper\nand update the callers:\n\n```python\n    def helper(): ...\n```\n"
        "> even quoted lines belong to the instructions",
    )


def test_instructions_may_start_on_the_next_line() -> None:
    assert parse_command("/opencode\n  fix the bug  \n\n") == Command("run", "fix the bug")


def test_windows_line_endings() -> None:
    body = "Hi\r\n/opencode fix the bug\r\nin parse.py\r\n"
    assert parse_command(body) == Command("run", "fix the bug\nin parse.py")


def test_only_the_first_command_counts() -> None:
    body = "/opencode ask why\n/opencode cancel"
    assert parse_command(body) == Command("ask", "why\n/opencode cancel")
    body = "> /opencode cancel\n\n/opencode retry\n/opencode cancel"
    assert parse_command(body) == Command("retry", "/opencode cancel")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/opencode fresh start over, smaller", Command("fresh", "start over, smaller")),
        ("/opencode fresh", Command("fresh")),
        ("/opencode fresh\nstart over", Command("fresh", "start over")),
        ("/opencode ask why copy the list?", Command("ask", "why copy the list?")),
        ("/opencode ask: why?", Command("ask", "why?")),
        ("/opencode retry", Command("retry")),
        ("/opencode retry\nuse pytest this time", Command("retry", "use pytest this time")),
        ("/opencode cancel", Command("cancel")),
        ("/opencode cancel.", Command("cancel")),
        ("/opencode Cancel please", Command("cancel", "please")),
        ("/opencode help", Command("help")),
        ("/opencode HELP", Command("help")),
        ("/opencode\tretry", Command("retry")),
    ],
)
def test_sub_commands(body: str, expected: Command) -> None:
    assert parse_command(body) == expected


def test_an_unknown_lone_word_gets_help() -> None:
    assert parse_command("/opencode frobnicate") == Command("help", unknown="frobnicate")
    assert parse_command("/opencode frobnicate.") == Command("help", unknown="frobnicate")
    assert parse_command("/opencode frobnicate\n\n") == Command("help", unknown="frobnicate")


def test_more_than_a_lone_word_is_a_run() -> None:
    assert parse_command("/opencode fix the bug") == Command("run", "fix the bug")
    assert parse_command("/opencode refactor\nsplit bot/worker.py") == Command(
        "run", "refactor\nsplit bot/worker.py"
    )
    assert parse_command("/opencode #12") == Command("run", "#12")


def test_a_custom_command_word() -> None:
    assert parse_command("/autocode fix it", "/autocode") == Command("run", "fix it")
    assert parse_command("/AutoCode cancel", "/autocode") == Command("cancel")
    assert parse_command("/opencode fix it", "/autocode") is None
    assert parse_command("/autocoder fix it", "/autocode") is None
    # regular-expression characters in the word are literal
    assert parse_command("@bot+ fix it", "@bot+") == Command("run", "fix it")
    assert parse_command("@bottt fix it", "@bot+") is None


def test_an_empty_command_word_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_command("/opencode", " ")


def test_commands_are_frozen() -> None:
    command = Command("run")
    with pytest.raises(AttributeError):
        command.name = "cancel"  # type: ignore[misc]


def test_a_huge_hostile_comment_is_read_correctly() -> None:
    # 30 lines, each one run of 4001 backticks: they pair up, so the command is outside
    body = "\n".join(["x `" + "``" * 2000] * 30) + "\n/opencode fix it"
    assert parse_command(body) == Command("run", "fix it")
    assert parse_command("a " + "`" * 60000 + "\n/opencode fix it") == Command("run", "fix it")
    assert parse_command("a ``\n" * 5001 + "/opencode fix it\n``") is None  # 2501st span


@pytest.mark.parametrize("command", ["/opencode", "/autocode"])
def test_help_text_lists_every_command(command: str) -> None:
    text = help_text(command)
    lines = text.splitlines()
    for usage in (
        f"`{command} <instructions>`",
        f"`{command} fresh <instructions>`",
        f"`{command} ask <question>`",
        f"`{command} retry`",
        f"`{command} cancel`",
        f"`{command} help`",
    ):
        assert sum(line.startswith(f"- {usage} — ") for line in lines) == 1, usage
    assert len([line for line in lines if line.startswith("- ")]) == len(NAMES)


def test_help_text_names_the_unknown_word() -> None:
    text = help_text("/opencode", "frob`nicate")
    assert text.splitlines()[0] == "`/opencode frobnicate` is not a command I know."
    assert "frob" not in help_text("/opencode")
