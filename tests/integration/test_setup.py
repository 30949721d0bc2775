"""`autocode setup` end to end: a real subprocess, headless Chromium, the fake GitHub's flow.

The fake serves GitHub's confirm page ("Create GitHub App"), which the
browser clicks like a person would; then it redirects to the setup's
/callback, the code is converted, and the written key must sign a JWT the
fake accepts.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import jwt
import pytest
from dotenv import dotenv_values
from playwright.sync_api import Page

from bot.ops.envfile import COMMENT, update_env
from bot.ops.manifest import SetupOptions
from tests.browser import ARTIFACTS
from tests.fakes.github import FakeGitHub

WEBHOOK = "https://bot.example.com/webhook"
NAME = "Auto-Code Test"
SLUG = "auto-code-test"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as fake:
        fake.add_user("octo-org", type="Organization")
        yield fake


@dataclass
class Setup:
    """A running `autocode setup` and everything it printed."""

    proc: subprocess.Popen[str]
    cwd: Path
    url: str = ""
    stderr: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.stdout + self.stderr)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _pump(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOCODE_", "DOCKER_"))}
    env.update(extra)
    return env


@pytest.fixture
def start_setup(tmp_path: Path, github: FakeGitHub) -> Iterator[Callable[..., Setup]]:
    started: list[Setup] = []

    def start(*args: str, env_file: str | None = None, **env: str) -> Setup:
        cwd = tmp_path / "site"
        cwd.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "bot", "setup", "--port", "0", "--webhook-url", WEBHOOK]
        argv += ["--name", NAME, *args]
        if env_file is not None:
            argv += ["--env-file", env_file]
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_env(
                AUTOCODE_GITHUB_URL=github.url, AUTOCODE_GITHUB_API_URL=github.api_url, **env
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        setup = Setup(proc, cwd)
        started.append(setup)
        assert proc.stdout is not None and proc.stderr is not None
        for stream, into in ((proc.stdout, setup.stdout), (proc.stderr, setup.stderr)):
            threading.Thread(target=_pump, args=(stream, into), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"Open (http://\S+) in a browser", "".join(setup.stderr))
            if found:
                setup.url = found.group(1)
                return setup
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        setup.stop()
        raise AssertionError(f"setup did not print its URL: {setup.output()}")

    yield start
    for setup in started:
        setup.stop()


def nothing_written(cwd: Path) -> None:
    assert not (cwd / ".env").exists()
    assert not list(cwd.glob("*.pem"))
    assert not [p.name for p in cwd.iterdir() if p.name.endswith(".tmp")]


def create_on_github(page: Page, setup: Setup, github: FakeGitHub) -> None:
    """Open the setup page, send the manifest, confirm on the fake GitHub."""
    page.goto(setup.url)
    assert page.title() == "Create the Auto-Code GitHub App"
    page.click("#create button")
    page.wait_for_url(f"{github.url}/settings/apps/new*")
    assert "Create GitHub App for octocat" in page.inner_text("h1")
    assert page.input_value("input[name=name]") == NAME
    page.click("button:has-text('Create GitHub App')")


def test_setup_creates_the_app_in_a_browser(
    page: Page, github: FakeGitHub, start_setup: Callable[..., Setup], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    old_key = "-----BEGIN RSA PRIVATE KEY-----\nOLD\n-----END RSA PRIVATE KEY-----"
    (site / ".env").write_text(
        "# my settings\n"
        "AUTOCODE_MODEL=anthropic/claude-sonnet-4-5\n"
        "AUTOCODE_APP_ID=1\n"
        f'AUTOCODE_PRIVATE_KEY="{old_key}"\n'
        "AUTOCODE_ADMIN_TOKEN=keep-me\n"
    )
    (site / ".env").chmod(0o644)
    setup = start_setup()
    assert setup.url.startswith("http://127.0.0.1:")
    create_on_github(page, setup, github)

    page.wait_for_selector("#install")
    assert page.inner_text("h1") == f"GitHub App {NAME} created"
    install = page.get_attribute("#install", "href")
    assert install == f"{github.url}/apps/{SLUG}/installations/new"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "setup.png"), full_page=True)
    html_text = page.content()
    assert setup.wait() == 0, setup.output()
    assert "win over" not in html_text + setup.output()  # nothing in the environment

    registration = github.manifests.registrations[-1]
    assert registration.converted
    manifest = registration.manifest
    assert manifest["hook_attributes"]["url"] == WEBHOOK
    assert manifest["redirect_url"] == setup.url + "callback"
    assert manifest["public"] is False
    assert manifest["default_permissions"] == {
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "checks": "write",
        "metadata": "read",
        "actions": "read",
    }
    assert set(manifest["default_events"]) == {
        "issues",
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
        "check_run",
        "check_suite",
    }

    env_file = site / ".env"
    key_file = site / f"{SLUG}.private-key.pem"
    values = dotenv_values(env_file)
    assert values["AUTOCODE_APP_ID"] == str(github.app_id) == str(registration.app.id)
    assert values["AUTOCODE_CLIENT_ID"] == github.client_id
    assert values["AUTOCODE_WEBHOOK_SECRET"] == registration.webhook_secret
    assert values["AUTOCODE_PRIVATE_KEY_PATH"] == str(key_file)
    assert "AUTOCODE_PRIVATE_KEY" not in values  # it would win over the new key file
    assert values["AUTOCODE_MODEL"] == "anthropic/claude-sonnet-4-5"
    assert values["AUTOCODE_ADMIN_TOKEN"] == "keep-me"
    lines = env_file.read_text().splitlines()
    assert lines[0] == "# my settings"
    assert lines[2] == f"AUTOCODE_APP_ID={github.app_id}"  # updated in place
    assert f"{COMMENT} {SLUG} ({github.url}/apps/{SLUG})" in lines
    assert "OLD" not in env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == registration.pem

    assert registration.webhook_secret is not None
    secrets_ = [registration.webhook_secret, registration.client_secret]
    secrets_ += [line for line in registration.pem.splitlines()[1:-1]]
    output = setup.output()
    for secret in secrets_:
        assert secret and secret not in output
        assert secret not in html_text
    assert "client_secret" not in env_file.read_text().lower()
    assert registration.client_secret not in env_file.read_text()

    # The written key is the App's key now: GitHub accepts a JWT signed with it.
    now = int(time.time())
    token = jwt.encode(
        {"iat": now - 30, "exp": now + 540, "iss": values["AUTOCODE_APP_ID"]},
        key_file.read_text(),
        algorithm="RS256",
    )
    answer = httpx.get(f"{github.api_url}/app", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["slug"] == SLUG
    assert answer.json()["name"] == NAME

    page.click("#install")
    assert page.inner_text("h1") == f"Install {NAME}"

    # And `autocode doctor` with that .env sees the App and its secret.
    doctor = subprocess.run(
        [sys.executable, "-m", "bot", "doctor", "--json"],
        cwd=site,
        env=clean_env(
            AUTOCODE_GITHUB_API_URL=github.api_url,
            AUTOCODE_DATABASE_URL=f"sqlite:///{tmp_path / 'doctor.db'}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["GitHub App"]["ok"], checks["GitHub App"]
    assert SLUG in checks["GitHub App"]["detail"]
    assert checks["webhook secret"]["ok"]
    assert registration.webhook_secret not in doctor.stdout + doctor.stderr


def test_a_wrong_state_writes_nothing(
    page: Page, github: FakeGitHub, start_setup: Callable[..., Setup], tmp_path: Path
) -> None:
    setup = start_setup()
    # A real code from GitHub, but a callback that this setup did not start.
    form = {
        "manifest": json.dumps(
            SetupOptions.build(
                github_url=github.url,
                api_url=github.api_url,
                public_url="",
                webhook_url=WEBHOOK,
                name="Forged",
            ).manifest(setup.url + "callback")
        )
    }
    confirm = httpx.post(f"{github.url}/settings/apps/new?state=forged", data=form)
    registration_token = re.search(r'name="registration" value="([^"]+)"', confirm.text)
    assert registration_token is not None
    redirect = httpx.post(
        f"{github.url}/settings/apps/new/confirm",
        data={"registration": registration_token.group(1), "name": "Forged"},
    )
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(setup.url + "callback?code=") and "state=forged" in location

    answer = page.goto(location)
    assert answer is not None and answer.status == 400
    assert "not for this setup" in page.inner_text("h1")
    missing = page.goto(location.split("&state=")[0])
    assert missing is not None and missing.status == 400
    assert not github.manifests.registrations[-1].converted  # the code was never exchanged
    nothing_written(setup.cwd)
    assert setup.proc.poll() is None  # still waiting for the real answer
    setup.stop()
    assert str(github.manifests.registrations[-1].webhook_secret) not in setup.output()


def test_a_refused_conversion_writes_nothing(
    page: Page, github: FakeGitHub, start_setup: Callable[..., Setup]
) -> None:
    github.inject(
        "POST",
        r"/app-manifests/[^/]+/conversions$",
        422,
        body={"message": "Manifest conversion refused for the test"},
    )
    setup = start_setup()
    with page.expect_response(lambda r: "/callback" in r.url) as caught:
        create_on_github(page, setup, github)
    assert caught.value.status == 502
    page.wait_for_selector("#message")
    message = page.inner_text("#message")
    assert "422" in message and "Manifest conversion refused for the test" in message
    assert "Nothing was written" in message
    nothing_written(setup.cwd)
    assert setup.proc.poll() is None
    setup.stop()


def test_an_organization_app_without_a_browser(
    github: FakeGitHub, start_setup: Callable[..., Setup], tmp_path: Path
) -> None:
    """--org sends the manifest to the organization's page; the App belongs to it."""
    setup = start_setup(
        "--org", "octo-org", env_file="conf/bot.env", AUTOCODE_CLIENT_ID="Iv1.shadowing"
    )
    local = httpx.get(setup.url)
    action = re.search(r'<form id="create" method="post" action="([^"]+)"', local.text)
    manifest = re.search(r'name="manifest" value="([^"]+)"', local.text)
    assert action is not None and manifest is not None
    target = action.group(1).replace("&amp;", "&")
    assert target.startswith(f"{github.url}/organizations/octo-org/settings/apps/new?state=")
    confirm = httpx.post(target, data={"manifest": html.unescape(manifest.group(1))})
    assert confirm.status_code == 200 and "for octo-org" in confirm.text
    token = re.search(r'name="registration" value="([^"]+)"', confirm.text)
    assert token is not None
    redirect = httpx.post(
        f"{github.url}/settings/apps/new/confirm",
        data={"registration": token.group(1), "name": "Octo Org Bot"},
    )
    done = httpx.get(redirect.headers["location"])
    assert done.status_code == 200, done.text
    assert setup.wait() == 0, setup.output()
    assert "warning: AUTOCODE_CLIENT_ID is set in the environment" in setup.output()
    assert github.app.owner == "octo-org"
    env_file = setup.cwd / "conf" / "bot.env"
    values = dotenv_values(env_file)
    assert values["AUTOCODE_PRIVATE_KEY_PATH"] == str(
        setup.cwd / "conf" / "octo-org-bot.private-key.pem"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_setup_needs_a_webhook_url(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "setup", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--webhook-url" in done.stderr and "AUTOCODE_PUBLIC_URL" in done.stderr
    assert not (tmp_path / ".env").exists()


# --- the fake GitHub's side of the flow ------------------------------------------------


def valid_manifest(**changes: object) -> dict[str, object]:
    manifest = SetupOptions.build(
        github_url="https://github.com",
        api_url="https://api.github.com",
        public_url="https://bot.example.com",
        name="Strict",
    ).manifest("http://127.0.0.1:9/callback")
    manifest.update(changes)
    return manifest


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"redirect_url": None}, "redirect_url must be an http(s) URL"),
        ({"url": "ftp://x"}, "url (the App's homepage) must be an http(s) URL"),
        ({"default_permissions": {"issues": "admin"}}, "permission issues cannot be 'admin'"),
        ({"default_permissions": {"bogus": "read"}}, "unknown permission 'bogus'"),
        ({"default_events": ["issues", "nope"]}, "unknown event 'nope'"),
        ({"default_permissions": {}}, "the event issues needs one of the permissions issues"),
        ({"hook_attributes": None}, "default_events need a webhook"),
        ({"extra": 1}, "unknown manifest key 'extra'"),
        ({"public": "no"}, "public must be true or false"),
    ],
)
def test_the_fake_refuses_bad_manifests(
    github: FakeGitHub, changes: dict[str, object], problem: str
) -> None:
    manifest = valid_manifest(**changes)
    manifest = {k: v for k, v in manifest.items() if v is not None}
    answer = httpx.post(f"{github.url}/settings/apps/new", data={"manifest": json.dumps(manifest)})
    assert answer.status_code == 422
    assert problem in answer.text.replace("&#x27;", "'")


def test_the_fake_codes_are_single_use_and_expire(github: FakeGitHub) -> None:
    def code_for(name: str) -> str:
        form = {"manifest": json.dumps(valid_manifest(name=name))}
        confirm = httpx.post(f"{github.url}/settings/apps/new", data=form)
        token = re.search(r'name="registration" value="([^"]+)"', confirm.text)
        assert token is not None
        redirect = httpx.post(
            f"{github.url}/settings/apps/new/confirm",
            data={"registration": token.group(1), "name": name},
        )
        assert redirect.status_code == 302
        assert "state=" not in redirect.headers["location"]  # none was sent
        found = re.search(r"code=([0-9a-f]+)", redirect.headers["location"])
        assert found is not None
        return found.group(1)

    def convert(code: str) -> httpx.Response:
        return httpx.post(f"{github.api_url}/app-manifests/{code}/conversions")

    code = code_for("First")
    first = convert(code)
    assert first.status_code == 201
    data = first.json()
    assert data["slug"] == "first" and data["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert {"client_secret", "webhook_secret", "client_id", "html_url", "owner"} <= set(data)
    assert convert(code).status_code == 404
    assert convert("0" * 40).status_code == 404
    github.manifests.code_ttl = 0
    assert convert(code_for("Second")).status_code == 404
    taken = httpx.post(
        f"{github.url}/settings/apps/new",
        data={"manifest": json.dumps(valid_manifest(name="First"))},
    )
    token = re.search(r'name="registration" value="([^"]+)"', taken.text)
    assert token is not None
    again = httpx.post(
        f"{github.url}/settings/apps/new/confirm",
        data={"registration": token.group(1), "name": "First"},
    )
    assert again.status_code == 422 and "already in use" in again.text
    unknown_org = httpx.post(
        f"{github.url}/organizations/nobody/settings/apps/new",
        data={"manifest": json.dumps(valid_manifest())},
    )
    assert unknown_org.status_code == 404


# --- the env file ---------------------------------------------------------------------


def test_update_env_keeps_other_lines_and_drops_an_inline_key(tmp_path: Path) -> None:
    text = (
        "export AUTOCODE_APP_ID=1\n"
        "# a note\n"
        'AUTOCODE_PRIVATE_KEY="-----BEGIN KEY-----\n'
        "abc\n"
        '-----END KEY-----"\n'
        "OTHER=x\n"
        "AUTOCODE_APP_ID=2\n"
        f"{COMMENT} old (https://x)\n"
    )
    new = update_env(
        text,
        {"AUTOCODE_APP_ID": "9", "AUTOCODE_WEBHOOK_SECRET": 'we"ird $ \\ value'},
        ("AUTOCODE_PRIVATE_KEY",),
        f"{COMMENT} new (https://y)",
    )
    assert new.splitlines()[:4] == [
        "AUTOCODE_APP_ID=9",
        "# a note",
        "OTHER=x",
        f"{COMMENT} new (https://y)",
    ]
    assert "abc" not in new and "AUTOCODE_APP_ID=2" not in new
    path = tmp_path / ".env"
    path.write_text(new)
    values = dotenv_values(path)
    assert values["AUTOCODE_WEBHOOK_SECRET"] == 'we"ird $ \\ value'
    assert values["OTHER"] == "x"
