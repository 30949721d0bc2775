"""First contact: `autocode serve` in an empty folder, set up in a browser, no restart.

A real `autocode serve` process starts with nothing but the GitHub URLs
(pointed at the fake GitHub) and its embedded defaults: a SQLite file in
its folder, the local Docker engine, the default `internal` agent network.
It serves the setup page; the browser creates the App through the fake's
manifest flow; the page then names the missing model; once the env file
has one, the same process takes a labeled issue to a pull request.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dotenv import dotenv_values
from playwright.sync_api import Page

from tests.browser import ARTIFACTS
from tests.conftest import RUNNER_IMAGE
from tests.e2e.conftest import REPO, labeled_payload
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.integration.test_setup import clean_env
from tests.webhooks import send

ADMIN = "first-contact-admin"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """`autocode serve` in a folder of its own, as a new user starts it."""

    def __init__(self, folder: Path, github: FakeGitHub, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder.parent / "serve.log"
        environ = clean_env(
            AUTOCODE_GITHUB_URL=github.url,
            AUTOCODE_GITHUB_API_URL=github.api_url,
            AUTOCODE_ADMIN_TOKEN=ADMIN,
            AUTOCODE_RUNNER_IMAGE=RUNNER_IMAGE,
            AUTOCODE_OPENCODE_AUTH=str(folder.parent / "no-auth.json"),
            AUTOCODE_RUN_TIMEOUT="180",
            AUTOCODE_AGENT_MEMORY="1g",
            **env,
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
                cwd=folder, env=environ, stdout=out, stderr=out,
            )  # fmt: skip

    def wait_up(self) -> httpx.Response:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"serve did not answer:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path, github: FakeGitHub) -> Iterator[Serve]:
    folder = tmp_path / "site"
    folder.mkdir()
    bot = Serve(folder, github)
    yield bot
    bot.stop()


def setup_state(html: str) -> str:
    found = re.search(r'action="[^"]*settings/apps/new\?state=([A-Za-z0-9_-]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [], list(folder.iterdir())


def test_serve_on_nothing_sets_up_in_the_browser_and_runs_a_ticket(
    serve: Serve, github: FakeGitHub, llm: ScriptedLLM, page: Page, tmp_path: Path
) -> None:
    health = serve.wait_up()
    assert health.status_code == 503
    assert health.json()["status"] == "setup"
    assert [m["what"] for m in health.json()["missing"]] == ["GitHub App"]

    # a webhook before the App exists: 503 with a message, nothing stored
    ping = github.payload("ping/ping.json")
    early = send(serve.url, "ping", ping, "any-secret")
    assert early.status_code == 503
    assert "not set up yet" in early.json()["error"]
    nothing_written(serve.folder)  # no database, no env file

    # the setup page at /: the App's manifest, the webhook URL of this server
    page.goto(serve.url + "/")
    assert page.title() == "Create the Auto-Code GitHub App"
    assert page.inner_text("#webhook-url") == f"{serve.url}/webhook"
    assert page.is_visible("#unreachable")  # 127.0.0.1 is no address for GitHub
    page.fill("input[name=webhook_url]", "https://bot.example.com/webhook")
    page.click("#options button")
    assert page.inner_text("#webhook-url") == "https://bot.example.com/webhook"
    assert not page.is_visible("#unreachable")
    page.click("#create button")
    page.wait_for_url(f"{github.url}/settings/apps/new*")
    page.click("button:has-text('Create GitHub App')")
    page.wait_for_selector("#install")
    registration = github.manifests.registrations[-1]
    assert registration.manifest["hook_attributes"]["url"] == "https://bot.example.com/webhook"
    assert registration.manifest["redirect_url"] == f"{serve.url}/callback"

    env_file = serve.folder / ".env"
    values = dotenv_values(env_file)
    assert values["AUTOCODE_APP_ID"] == str(github.app_id)
    secret = values["AUTOCODE_WEBHOOK_SECRET"]
    assert secret == registration.webhook_secret

    # the App exists; the model does not yet: a clear page, still 503 for webhooks
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        health = httpx.get(f"{serve.url}/healthz")
        if [m["what"] for m in health.json().get("missing", [])] == ["model"]:
            break
        time.sleep(0.1)
    assert health.status_code == 503, health.text
    assert [m["what"] for m in health.json()["missing"]] == ["model"], health.text
    page.goto(serve.url + "/")
    assert page.inner_text("h1") == "Auto-Code is almost ready"
    assert "AUTOCODE_MODEL" in page.inner_text("#missing")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "first-contact-model.png"), full_page=True)
    assert send(serve.url, "ping", ping, secret).status_code == 503

    # the operator adds a model and its provider to the env file; no restart
    config = tmp_path / "opencode.json"
    config.write_text(json.dumps(llm.provider_config()))
    with env_file.open("a") as out:
        out.write(f"AUTOCODE_MODEL=fake/scripted\nAUTOCODE_OPENCODE_CONFIG={config}\n")
    # a health probe alone moves it on (nobody needs to be at the page) ...
    health = httpx.get(f"{serve.url}/healthz", timeout=60)
    assert health.status_code == 200, health.text
    assert health.json()["status"] in ("ok", "degraded"), health.text
    # ... and the page's own link now leads to the dashboard, behind its sign-in
    page.click("#recheck")
    page.wait_for_url(f"{serve.url}/login*")
    health = httpx.get(f"{serve.url}/healthz")
    assert health.status_code == 200, health.text
    assert health.json()["database"] == "ok"
    assert (serve.folder / "autocode.db").exists()  # the embedded default store

    # and the same process turns a labeled issue into a pull request
    github.add_repo(REPO, {"README.md": "# Hello World\n"})
    github.set_permission(REPO, "Codertocat", "admin")
    github.add_issue(REPO, 1, title="Add a greeting", body="Add hello.txt.", user="Codertocat")
    llm.script(
        [tool("write", filePath="hello.txt", content="Hello, world!\n"), text("Added hello.txt.")]
    )
    assert send(serve.url, "ping", ping, "not-the-secret").status_code == 401
    response = send(serve.url, "issues", labeled_payload(github), secret)
    assert response.status_code == 202, response.text
    ticket = wait_ticket(serve, int(response.json()["ticket"]))
    assert ticket["state"] == "succeeded", (ticket, serve.output())
    assert github.read_file(REPO, "autocode/issue-1", "hello.txt") == "Hello, world!\n"
    assert [p for (repo, _), p in github.pulls.items() if repo == REPO]

    # one log format throughout, uvicorn's own lines included, ISO 8601 times
    lines = [line for line in serve.output().splitlines() if line.strip()]
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")
    assert any("uvicorn" in line for line in lines)
    assert all(stamp.match(line) for line in lines if not line.startswith(" ")), lines[:20]
    assert secret not in serve.output()


def wait_ticket(serve: Serve, ticket_id: int, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    auth = {"Authorization": f"Bearer {ADMIN}"}
    while time.monotonic() < deadline:
        ticket: dict[str, Any] = httpx.get(
            f"{serve.url}/api/tickets/{ticket_id}", headers=auth
        ).json()
        if ticket["state"] not in ("queued", "running"):
            return ticket
        time.sleep(0.25)
    raise AssertionError(f"ticket {ticket_id} did not finish:\n{serve.output()}")


def test_a_wrong_state_or_a_refused_code_writes_nothing(serve: Serve, github: FakeGitHub) -> None:
    assert serve.wait_up().status_code == 503
    state = setup_state(httpx.get(serve.url + "/").text)

    forged = httpx.get(f"{serve.url}/callback", params={"state": "forged", "code": "abc"})
    assert forged.status_code == 400
    assert "nothing was written" in forged.text
    refused = httpx.get(f"{serve.url}/callback", params={"state": state, "code": "unknown-code"})
    assert refused.status_code == 502
    assert "Nothing was written" in refused.text
    nothing_written(serve.folder)

    health = httpx.get(f"{serve.url}/healthz")  # still up, still waiting for its App
    assert health.status_code == 503 and health.json()["status"] == "setup"
    bad_url = httpx.get(serve.url + "/", params={"webhook_url": "ftp://x"})
    assert bad_url.status_code == 400 and "http(s) URL" in bad_url.text
    nothing_written(serve.folder)


def test_a_half_written_env_file_names_the_missing_key_file(
    tmp_path: Path, github: FakeGitHub
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    key = folder / "auto-code.private-key.pem"
    (folder / ".env").write_text(
        f"AUTOCODE_APP_ID=1\nAUTOCODE_WEBHOOK_SECRET=s\nAUTOCODE_PRIVATE_KEY_PATH={key}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", str(free_port())],
        cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert str(key) in done.stderr and "cannot be read" in done.stderr, done.stderr
