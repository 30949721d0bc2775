"""`autocode doctor` as a subprocess: the fake GitHub, the real Docker engine and runner image."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import Settings
from bot.doctor import check_llm
from bot.runner.docker import DockerRunner
from bot.runner.image import OPENCODE_VERSION
from tests.conftest import RUNNER_IMAGE
from tests.fakes.github import FakeGitHub

SECRET = "doctor-webhook-secret-value"
LLM_KEY = "sk-ant-doctor-test-key-value"
NAMES = [
    "settings",
    "webhook secret",
    "GitHub App",
    "database",
    "Docker engine",
    "runner image",
    "LLM credentials",
]


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield fake


@pytest.fixture
def environ(tmp_path: Path, github: FakeGitHub, docker_runner: DockerRunner) -> dict[str, str]:
    """Settings under which every check passes."""
    key = tmp_path / "app.pem"
    key.write_bytes(github.private_key_pem)
    env = {
        "AUTOCODE_WEBHOOK_SECRET": SECRET,
        "AUTOCODE_APP_ID": str(github.app_id),
        "AUTOCODE_PRIVATE_KEY_PATH": str(key),
        "AUTOCODE_GITHUB_API_URL": github.api_url,
        "AUTOCODE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'autocode.db'}",
        "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
        "AUTOCODE_MODEL": "anthropic/claude-sonnet-4-5",
        "AUTOCODE_AGENT_ENV": "ANTHROPIC_API_KEY",
        "ANTHROPIC_API_KEY": LLM_KEY,
        "AUTOCODE_OPENCODE_AUTH": str(tmp_path / "no-auth.json"),
    }
    if docker_runner.base_url:
        env["DOCKER_HOST"] = docker_runner.base_url
    return env


def doctor(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOCODE_", "DOCKER_")) and not k.endswith("_API_KEY")
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "doctor", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    found = json.loads(done.stdout)
    assert isinstance(found, list)
    return {c["name"]: c for c in found}


def assert_no_secrets(done: subprocess.CompletedProcess[str], *extra: str) -> None:
    for secret in (SECRET, LLM_KEY, *extra):
        assert secret not in done.stdout + done.stderr


def test_all_checks_pass(tmp_path: Path, environ: dict[str, str], github: FakeGitHub) -> None:
    done = doctor(tmp_path, environ)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [f"ok    {n}" for n in NAMES]
    assert "fix:" not in done.stderr
    assert_no_secrets(done, github.private_key_pem.decode().splitlines()[1])

    as_json = doctor(tmp_path, environ, "--json")
    assert as_json.returncode == 0, as_json.stderr
    found = json.loads(as_json.stdout)
    assert [c["name"] for c in found] == NAMES
    assert all(c["ok"] and c["fix"] is None for c in found)
    by_name = {c["name"]: c for c in found}
    assert github.app_slug in by_name["GitHub App"]["detail"]
    assert f"opencode {OPENCODE_VERSION}" in by_name["runner image"]["detail"]
    assert "schema version" in by_name["database"]["detail"]
    assert "ANTHROPIC_API_KEY" in by_name["LLM credentials"]["detail"]
    assert_no_secrets(as_json)


def test_the_env_file_is_read(tmp_path: Path, environ: dict[str, str]) -> None:
    secret = environ.pop("AUTOCODE_WEBHOOK_SECRET")
    (tmp_path / ".env").write_text(f"AUTOCODE_WEBHOOK_SECRET={secret}\n")
    done = doctor(tmp_path, environ, "--json")
    assert checks(done)["webhook secret"]["ok"]


def test_a_missing_secret(tmp_path: Path, environ: dict[str, str]) -> None:
    del environ["AUTOCODE_WEBHOOK_SECRET"]
    done = doctor(tmp_path, environ)
    assert done.returncode == 1
    assert "FAIL  webhook secret: AUTOCODE_WEBHOOK_SECRET is missing" in done.stderr
    assert "      fix: set AUTOCODE_WEBHOOK_SECRET" in done.stderr
    found = checks(doctor(tmp_path, environ, "--json"))
    assert not found["webhook secret"]["ok"]
    assert [n for n, c in found.items() if not c["ok"]] == ["webhook secret"]


def test_a_wrong_key(tmp_path: Path, environ: dict[str, str]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    Path(environ["AUTOCODE_PRIVATE_KEY_PATH"]).write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    done = doctor(tmp_path, environ, "--json")
    assert done.returncode == 1
    app = checks(done)["GitHub App"]
    assert not app["ok"]
    assert "GitHub refused the App's JWT (401" in app["detail"]
    assert "AUTOCODE_PRIVATE_KEY_PATH" in app["fix"]


def test_a_key_that_is_no_key(tmp_path: Path, environ: dict[str, str]) -> None:
    Path(environ["AUTOCODE_PRIVATE_KEY_PATH"]).write_text("not a key\n")
    app = checks(doctor(tmp_path, environ, "--json"))["GitHub App"]
    assert not app["ok"] and "not a readable PEM key" in app["detail"]
    assert "AUTOCODE_PRIVATE_KEY_PATH" in app["fix"]


def test_an_unknown_runner_image(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["AUTOCODE_RUNNER_IMAGE"] = "autocode-runner:no-such-tag"
    done = doctor(tmp_path, environ)
    assert done.returncode == 1
    assert "FAIL  runner image: autocode-runner:no-such-tag is not on the Docker engine" in (
        done.stderr
    )
    assert "fix: build it with `autocode runner build`" in done.stderr
    assert "ok    Docker engine" in done.stderr


def test_a_runner_image_with_another_opencode(
    tmp_path: Path, environ: dict[str, str], docker_runner: DockerRunner
) -> None:
    tag = f"autocode-runner:doctor-{os.getpid()}"
    dockerfile = f"FROM {RUNNER_IMAGE}\nLABEL autocode.opencode.version=0.0.1\n"
    docker_runner.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        environ["AUTOCODE_RUNNER_IMAGE"] = tag
        image = checks(doctor(tmp_path, environ, "--json"))["runner image"]
    finally:
        docker_runner.client.images.remove(tag, noprune=True)
    assert not image["ok"]
    assert f"opencode 0.0.1, this bot pins {OPENCODE_VERSION}" in image["detail"]
    assert image["fix"] == "rebuild it with `autocode runner build`"


def test_docker_unreachable(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["DOCKER_HOST"] = "tcp://127.0.0.1:1"
    done = doctor(tmp_path, environ, "--json")
    assert done.returncode == 1
    found = checks(done)
    assert not found["Docker engine"]["ok"]
    assert "tcp://127.0.0.1:1" in found["Docker engine"]["detail"]
    assert "start the Docker engine" in found["Docker engine"]["fix"]
    assert not found["runner image"]["ok"]
    assert found["runner image"]["fix"] == "fix the Docker engine first"
    assert found["GitHub App"]["ok"] and found["database"]["ok"]


def test_missing_llm_credentials(tmp_path: Path, environ: dict[str, str]) -> None:
    del environ["AUTOCODE_AGENT_ENV"]
    done = doctor(tmp_path, environ, "--json")
    assert done.returncode == 1
    llm = checks(done)["LLM credentials"]
    assert not llm["ok"]
    assert "no credentials for provider anthropic" in llm["detail"]
    assert "ANTHROPIC_API_KEY" in llm["fix"] and "AUTOCODE_AGENT_ENV" in llm["fix"]
    assert_no_secrets(done)

    del environ["AUTOCODE_MODEL"]
    llm = checks(doctor(tmp_path, environ, "--json"))["LLM credentials"]
    assert not llm["ok"] and llm["fix"].startswith("set AUTOCODE_MODEL")


def test_settings_that_do_not_parse(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["AUTOCODE_AGENT_NETWORK"] = "everywhere"
    done = doctor(tmp_path, environ)
    assert done.returncode == 1
    assert done.stderr.startswith("FAIL  settings: AUTOCODE_AGENT_NETWORK must be one of")
    assert "fix: correct that setting" in done.stderr
    assert len(checks(doctor(tmp_path, environ, "--json"))) == 1


# --- where LLM credentials may come from (the check itself, no subprocess) ---------------


def llm_settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_environ({"AUTOCODE_OPENCODE_AUTH": str(tmp_path / "auth.json"), **env})


def test_llm_credentials_from_opencode_auth(tmp_path: Path) -> None:
    (tmp_path / "auth.json").write_text(json.dumps({"openai": {"type": "api", "key": "sk-x"}}))
    found = check_llm(llm_settings(tmp_path, AUTOCODE_MODEL="openai/gpt-5"))
    assert found.ok and "auth.json" in found.detail and "sk-x" not in found.detail
    missing = check_llm(llm_settings(tmp_path, AUTOCODE_MODEL="anthropic/claude-sonnet-4-5"))
    assert not missing.ok and "no anthropic entry" in missing.detail


def test_llm_credentials_from_opencode_config(tmp_path: Path) -> None:
    config = tmp_path / "opencode.json"
    config.write_text(json.dumps({"provider": {"fake": {"options": {"baseURL": "http://x"}}}}))
    settings = llm_settings(
        tmp_path, AUTOCODE_MODEL="fake/scripted", AUTOCODE_OPENCODE_CONFIG=str(config)
    )
    assert check_llm(settings).ok
    config.write_text("{not json")
    broken = check_llm(settings)
    assert not broken.ok and "not valid JSON" in broken.detail


def test_llm_credentials_from_agent_env(tmp_path: Path) -> None:
    settings = llm_settings(
        tmp_path,
        AUTOCODE_MODEL="google/gemini-2.5-pro",
        AUTOCODE_AGENT_ENV="GEMINI_API_KEY",
        GEMINI_API_KEY="g-secret",
    )
    found = check_llm(settings)
    assert found.ok and "GEMINI_API_KEY" in found.detail and "g-secret" not in found.detail
    odd = check_llm(llm_settings(tmp_path, AUTOCODE_MODEL="claude"))
    assert not odd.ok and "not provider/model" in odd.detail
