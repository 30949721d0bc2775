"""The command line's conventions: --version, defaults in --help, --env-file everywhere."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from bot.cli import main, parser
from bot.logs import JSONFormatter, KeyValueFormatter
from bot.runner.image import OPENCODE_VERSION


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert (
        capsys.readouterr().out.strip() == f"autocode {__version__} (opencode {OPENCODE_VERSION})"
    )


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["serve"], ["(default: 127.0.0.1)", "(default: 8000)", "(default: .env)"]),
        (["worker"], ["(default: 0)", "(default: .env)"]),
        (["doctor"], ["(default: .env)"]),
        (["setup"], ["(default: 3000)", "(default: .env)"]),
        (["runner", "build"], [f"(default: {OPENCODE_VERSION})", "(default: .env)"]),
        (["images"], ["(default: .env)", "(default: 0"]),
    ],
)
def test_every_help_shows_the_defaults(
    argv: list[str], shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in shown:
        assert default in text, text


@pytest.mark.parametrize(
    "command", [["serve"], ["worker"], ["doctor"], ["runner", "build"], ["images"]]
)
def test_env_file_is_accepted_alike(command: list[str]) -> None:
    args = parser().parse_args([*command, "--env-file", "conf/bot.env"])
    assert args.env_file == "conf/bot.env"


def test_a_missing_env_file_named_on_purpose_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "doctor", "--env-file", str(missing)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"the env file '{missing}' does not exist" in done.stderr
    assert list(tmp_path.iterdir()) == []  # and nothing was created


def _record(name: str = "bot.test") -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, "ticket claimed", (), None)
    record.ticket = 7
    record.color_message = "\x1b[1mticket claimed\x1b[0m"  # uvicorn adds one
    return record


def test_json_logs_have_iso_8601_times_and_the_context() -> None:
    data = json.loads(JSONFormatter().format(_record()))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["time"]), data
    assert data["message"] == "ticket claimed" and data["ticket"] == 7
    assert "color_message" not in data


def test_text_logs_have_iso_8601_times() -> None:
    line = KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s").format(_record())
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO bot.test: ticket claimed ticket=7", line
    ), line
