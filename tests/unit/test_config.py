import pytest

from bot.config import Settings
from bot.errors import SettingsError


def test_embedded_defaults() -> None:
    s = Settings.from_environ({})
    assert s.database_url == "sqlite:///./autocode.db"
    assert s.sqlite_path == "./autocode.db"
    assert s.trigger_label == "auto-code" and s.command == "/opencode"
    assert s.runner_image == "autocode-runner:latest"
    assert s.github_api_url == "https://api.github.com"
    assert s.max_parallel == 2 and s.run_timeout == 1800 and s.idle_timeout == 300
    assert s.agent_network == "internal"


def test_missing_github_settings_are_named() -> None:
    missing = Settings.from_environ({}).missing_for_github()
    assert any("AUTOCODE_WEBHOOK_SECRET" in m for m in missing)
    assert any("AUTOCODE_APP_ID" in m for m in missing)
    assert any("AUTOCODE_PRIVATE_KEY" in m for m in missing)
    full = Settings.from_environ(
        {"AUTOCODE_WEBHOOK_SECRET": "s", "AUTOCODE_APP_ID": "1", "AUTOCODE_PRIVATE_KEY": "k"}
    )
    assert full.missing_for_github() == []


def test_private_key_from_a_file_and_escaped_newlines(tmp_path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    s = Settings.from_environ({"AUTOCODE_PRIVATE_KEY_PATH": str(key)})
    assert s.private_key.startswith("-----BEGIN KEY-----\nabc")
    inline = Settings.from_environ({"AUTOCODE_PRIVATE_KEY": "-----BEGIN KEY-----\\nabc"})
    assert inline.private_key == "-----BEGIN KEY-----\nabc"
    assert "abc" not in repr(s)  # secrets stay out of reprs and logs


def test_agent_env_passes_only_named_variables() -> None:
    s = Settings.from_environ(
        {"AUTOCODE_AGENT_ENV": "A_KEY, B_KEY", "A_KEY": "1", "B_KEY": "2", "C": "3"}
    )
    assert dict(s.agent_env) == {"A_KEY": "1", "B_KEY": "2"}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"AUTOCODE_MAX_PARALLEL": "two"}, "AUTOCODE_MAX_PARALLEL"),
        ({"AUTOCODE_MAX_PARALLEL": "0"}, "AUTOCODE_MAX_PARALLEL"),
        ({"AUTOCODE_RUN_TIMEOUT": "-5"}, "AUTOCODE_RUN_TIMEOUT"),
        ({"AUTOCODE_AGENT_NETWORK": "wide"}, "AUTOCODE_AGENT_NETWORK"),
        ({"AUTOCODE_GITHUB_API_URL": "ftp://x"}, "AUTOCODE_GITHUB_API_URL"),
        ({"AUTOCODE_DATABASE_URL": "mysql://x"}, "AUTOCODE_DATABASE_URL"),
        ({"AUTOCODE_AGENT_ENV": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
        ({"AUTOCODE_COMMAND": "/open code"}, "AUTOCODE_COMMAND"),
        ({"AUTOCODE_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "AUTOCODE_PRIVATE_KEY_PATH"),
    ],
)
def test_bad_settings_fail_with_a_sentence_naming_them(environ: dict, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_environ(environ)
