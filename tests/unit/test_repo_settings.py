"""`.github/autocode.yml`: validation with lines, host limits, protected paths, who may ask."""

from __future__ import annotations

import jsonschema
import pytest

from bot.config import Settings
from bot.models import Usage
from bot.repo_settings import (
    ALWAYS_PROTECTED,
    SCHEMA,
    HostLimits,
    Invalid,
    RepoSettings,
    budget_reached,
    parse,
    protected,
    split_protected,
    team_ref,
)

HOST = HostLimits(run_timeout=1800, max_cost_per_run=5.0, max_tokens_per_run=100_000,
                  network="bridge", model="anthropic/claude")  # fmt: skip

GOOD = """\
# settings of the bot, reviewed like code
model: openai/gpt-5
instructions: |
  Use type hints.
  Run the formatter.
setup:
  - pip install -e '.[test]'
test: python -m pytest -q
max_attempts: 4
timeout: 900
command_timeout: 300
network: bridge
protected_paths:
  - migrations/**
  - "*.pem"
allowed_users: [alice, bob]
allowed_teams: [backend, other-org/reviewers]
draft: true
pr_labels: [autocode, needs-review]
reviewers: [carol, my-org/core]
max_cost_per_run: 1.5
max_tokens_per_run: 50000
"""


def problems(text: str, host: HostLimits = HOST) -> list[str]:
    result = parse(text, host)
    assert isinstance(result, Invalid), result
    return [str(p) for p in result.problems]


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_key_is_read() -> None:
    settings = parse(GOOD, HOST)
    assert isinstance(settings, RepoSettings)
    assert settings.found
    assert settings.model == "openai/gpt-5"
    assert settings.instructions == "Use type hints.\nRun the formatter."
    assert settings.setup == ("pip install -e '.[test]'",)
    assert settings.test == "python -m pytest -q"
    assert settings.max_attempts == 4
    assert settings.run_timeout == 900 and settings.command_timeout == 300
    assert settings.network == "bridge"
    assert settings.protected_paths == (*ALWAYS_PROTECTED, "migrations/**", "*.pem")
    assert settings.allowed_users == ("alice", "bob")
    assert settings.allowed_teams == ("backend", "other-org/reviewers")
    assert settings.draft is True
    assert settings.pr_labels == ("autocode", "needs-review")
    assert settings.reviewers == ("carol", "my-org/core")
    assert settings.max_cost_per_run == 1.5 and settings.max_tokens_per_run == 50000


@pytest.mark.parametrize("text", [None, "", "# only a comment\n", "---\n"])
def test_no_file_or_an_empty_one_means_the_hosts_defaults(text: str | None) -> None:
    settings = parse(text, HOST)
    assert isinstance(settings, RepoSettings)
    assert settings.found is False
    assert settings.model == "anthropic/claude"
    assert settings.test == "" and settings.setup == ()
    assert settings.max_attempts == 3
    assert settings.run_timeout == 1800 and settings.command_timeout == 600
    assert settings.network == "none"
    assert settings.protected_paths == ALWAYS_PROTECTED
    assert settings.max_cost_per_run == 5.0 and settings.max_tokens_per_run == 100_000
    assert settings == RepoSettings.defaults(HOST)


def test_the_defaults_follow_the_host_settings() -> None:
    host = HostLimits.of(Settings(run_timeout=120, max_tokens_per_run=10, model="x/y"))
    settings = RepoSettings.defaults(host)
    assert settings.run_timeout == 120 and settings.command_timeout == 120
    assert settings.max_tokens_per_run == 10 and settings.max_cost_per_run is None
    assert settings.model == "x/y"


def test_not_yaml_names_the_line() -> None:
    found = problems("test: pytest\nsetup:\n  - one\n - two\n")
    assert len(found) == 1
    assert found[0].startswith("line 4: this is not valid YAML")


def test_an_unclosed_bracket_is_not_yaml() -> None:
    (found,) = problems("test: pytest\nsetup: [one, two\n")
    assert "not valid YAML" in found


def test_the_file_must_be_a_mapping() -> None:
    assert problems("- test\n- setup\n") == [
        "line 1: the file must be a mapping of keys (like `test: pytest`)"
    ]
    assert problems("just words\n")[0].startswith("line 1: the file must be a mapping")


def test_every_error_is_named_with_its_line() -> None:
    text = """\
model: gpt4
max_attempts: "3"
test: pytest
timout: 5
draft: maybe
setup: pip install .
protected_paths:
  - docs/**
  - 5
network: wifi
allowed_users: ["not a login"]
max_attempts_total: 3
"""
    assert problems(text) == [
        'line 1: `model`: "gpt4" is not of the form `provider/model`',
        "line 2: `max_attempts` must be a whole number, not text",
        "line 4: unknown key `timout` (did you mean `timeout`?)",
        "line 5: `draft` must be true or false, not text",
        "line 6: `setup` must be a list, not text (write one `- item` per line)",
        "line 9: `protected_paths[1]` must be text, not a number",
        'line 10: `network` must be one of `none`, `bridge`, not "wifi"',
        'line 11: `allowed_users[0]`: "not a login" is not a GitHub login',
        "line 12: unknown key `max_attempts_total` (did you mean `max_attempts`?)",
    ]


def test_an_unknown_key_without_a_close_one_lists_the_known_keys() -> None:
    (found,) = problems("colour: blue\n")
    assert found.startswith("line 1: unknown key `colour`; known: model, instructions")


def test_numbers_out_of_range() -> None:
    found = problems("max_attempts: 0\ntimeout: -5\nmax_cost_per_run: 0\n")
    assert found == [
        "line 1: `max_attempts` must be at least 1, not 0",
        "line 2: `timeout` must be at least 1, not -5",
        "line 3: `max_cost_per_run` must be more than 0, not 0",
    ]
    assert problems("max_attempts: 11\n") == ["line 1: `max_attempts` may be at most 10, not 11"]


def test_a_key_given_twice_is_an_error() -> None:
    # YAML would quietly keep the last one; a reviewer reads the first
    assert problems("test: a\nmax_attempts: 2\ntest: b\n") == [
        "line 3: `test` is given twice (also on line 1)"
    ]


def test_yaml_booleans_are_not_numbers() -> None:
    assert problems("max_attempts: yes\n") == [
        "line 1: `max_attempts` must be a whole number, not true/false"
    ]


def test_values_above_the_hosts_limits_are_errors() -> None:
    text = """\
timeout: 3600
max_cost_per_run: 9.5
max_tokens_per_run: 200000
command_timeout: 7200
"""
    assert problems(text) == [
        "line 1: `timeout` is 3600 seconds, more than this host allows "
        "(AUTOCODE_RUN_TIMEOUT is 1800)",
        "line 2: `max_cost_per_run` is 9.5, more than this host allows "
        "(AUTOCODE_MAX_COST_PER_RUN is 5.0)",
        "line 3: `max_tokens_per_run` is 200000, more than this host allows "
        "(AUTOCODE_MAX_TOKENS_PER_RUN is 100000)",
        "line 4: `command_timeout` is 7200 seconds, more than the run may take (1800 seconds)",
    ]


def test_a_host_without_budgets_takes_any() -> None:
    settings = parse("max_cost_per_run: 100\n", HostLimits(run_timeout=60))
    assert isinstance(settings, RepoSettings) and settings.max_cost_per_run == 100.0


def test_bridge_is_refused_where_the_host_keeps_containers_off_the_network() -> None:
    for mode in ("none", "internal"):
        host = HostLimits(run_timeout=60, network=mode)
        assert problems("network: bridge\n", host) == [
            f"line 1: `network: bridge` is more than this host allows "
            f"(AUTOCODE_AGENT_NETWORK is {mode})"
        ]
        settings = parse("network: none\n", host)
        assert isinstance(settings, RepoSettings) and settings.network == "none"


def test_a_lower_timeout_shortens_the_command_timeout_too() -> None:
    settings = parse("timeout: 100\n", HOST)
    assert isinstance(settings, RepoSettings)
    assert settings.run_timeout == 100 and settings.command_timeout == 100


def test_big_or_binary_files_are_refused() -> None:
    assert problems(b"test: x\n" + b"#" * 70_000) == ["the file is larger than 65536 bytes"]
    assert problems(b"test: \xff\xfe\n") == ["the file is not UTF-8 text"]


def test_strings_are_trimmed_and_lists_deduplicated() -> None:
    settings = parse("test: '  pytest  '\npr_labels: [a, a, b]\nsetup: ['  ', x]\n", HOST)
    assert isinstance(settings, RepoSettings)
    assert settings.test == "pytest" and settings.pr_labels == ("a", "b")
    assert settings.setup == ("x",)


# -- protected paths -------------------------------------------------------------------

PATTERNS = (*ALWAYS_PROTECTED, "*.pem", "secrets/", "config/prod/**", "docs/*.md", "**/fixtures/**")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".github/workflows/ci.yml", True),
        (".github/workflows/nested/deep.yaml", True),
        (".github/workflows", True),  # the directory replaced by a file or a symlink
        (".github", True),  # the same, one level up
        (".github/autocode.yml", True),
        (".github/CODEOWNERS", False),
        (".github/workflows-old/ci.yml", False),
        ("key.pem", True),
        ("deep/in/tree/key.pem", True),  # no slash in the pattern: any depth
        ("key.pem.txt", False),
        ("secrets/token", True),
        ("app/secrets/token", True),
        ("secretsplus/token", False),
        ("config/prod/db.yml", True),
        ("config/prod", True),
        ("app/config/prod/db.yml", False),  # a slash in the pattern: from the root
        ("docs/index.md", True),
        ("docs/api/index.md", False),  # `*` stays within one folder
        ("a/b/fixtures/x.json", True),
        ("fixtures/x.json", True),
        ("src/app.py", False),
    ],
)
def test_protected_path_matching(path: str, expected: bool) -> None:
    assert protected(path, PATTERNS) is expected


def test_question_marks_and_classes() -> None:
    assert protected("v1.lock", ["v?.lock"]) and not protected("v10.lock", ["v?.lock"])
    assert protected("a.key", ["*.[kK]ey"]) and protected("a.Key", ["*.[kK]ey"])
    assert not protected("a.xey", ["*.[!x]ey"]) and protected("a.yey", ["*.[!x]ey"])


def test_split_protected_keeps_the_order() -> None:
    kept, dropped = split_protected(["a.py", ".github/workflows/ci.yml", "b.py", "x.pem"], PATTERNS)
    assert kept == ["a.py", "b.py"] and dropped == [".github/workflows/ci.yml", "x.pem"]


# -- who may ask ----------------------------------------------------------------------


def test_team_refs_default_to_the_repositorys_owner() -> None:
    assert team_ref("core", "octo-org") == ("octo-org", "core")
    assert team_ref("other/core", "octo-org") == ("other", "core")


# -- budgets ----------------------------------------------------------------------------


def test_budgets_are_reached_only_when_passed() -> None:
    settings = RepoSettings(max_tokens_per_run=300, max_cost_per_run=0.5)
    assert budget_reached(settings, Usage(input=200, output=100)) == ""
    assert budget_reached(settings, Usage(input=200, output=101)) == (
        "the token budget of 300 tokens per run was reached (301 tokens used)"
    )
    assert budget_reached(settings, Usage(input=1, cost=0.51)) == (
        "the cost budget of $0.50 per run was reached ($0.5100 spent)"
    )
    assert budget_reached(RepoSettings(), Usage(input=10**9, cost=10**6)) == ""
