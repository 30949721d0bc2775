"""The whole bot against a fake GitHub and a scripted LLM, the agent in real Docker."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import build_app
from bot.config import Settings
from bot.runner.docker import DockerRunner, store_key
from tests.conftest import RUNNER_IMAGE
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM
from tests.fakes.server import ServerThread
from tests.webhooks import send

SECRET = "e2e-webhook-secret"
ADMIN = "e2e-admin-token"
REPO = "Codertocat/Hello-World"


class Recorder(logging.Handler):
    """Keeps every formatted log line of the bot, to look for leaked secrets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@dataclass
class Bot:
    url: str
    settings: Settings
    github: FakeGitHub
    llm: ScriptedLLM
    logs: Recorder
    server: ServerThread
    extra: dict[str, Any] = field(default_factory=dict)

    def deliver(self, event: str, payload: dict[str, Any], delivery: str | None = None) -> int:
        response = send(self.url, event, payload, SECRET, delivery=delivery)
        assert response.status_code == 202, response.text
        return int(response.json()["ticket"])

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        response.raise_for_status()
        return dict(response.json())

    def containers(self, ticket_id: int) -> list[str]:
        """This bot's agent containers of a ticket (other bots may share the engine)."""
        return agent_containers(self.settings.database_url, ticket_id)

    def wait(self, ticket_id: int, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ticket = self.ticket(ticket_id)
            if ticket["state"] not in ("queued", "running"):
                return ticket
            time.sleep(0.25)
        raise AssertionError(f"ticket {ticket_id} did not finish: {self.ticket(ticket_id)}")


def agent_containers(database_url: str, ticket_id: int) -> list[str]:
    """Agent containers of a ticket of the store at `database_url`, running or not."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=autocode.ticket={ticket_id}",
         "--filter", f"label=autocode.store={store_key(database_url)}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield fake


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


# Put on a test module (or test) to run it on both stores; the default is SQLite.
BOTH_STORES = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The bot's store: a SQLite file, or (with BOTH_STORES) also a fresh PostgreSQL database.

    The label-to-PR path, crashes, faults and engine outages run on both; the
    rest of the end-to-end tests exercise features above the store and run on
    SQLite to keep CI short.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autocode.db'}"
        return
    from tests.pg import create_database, drop_database

    url = create_database(request.getfixturevalue("postgres_url"))
    yield url
    drop_database(url)


@pytest.fixture
def make_bot(
    tmp_path: Path,
    github: FakeGitHub,
    llm: ScriptedLLM,
    docker_runner: DockerRunner,
    database_url: str,
) -> Iterator[Callable[..., Bot]]:
    started: list[ServerThread] = []
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)

    def start(**env: str) -> Bot:
        config = tmp_path / "opencode.json"
        config.write_text(json.dumps(llm.provider_config()))
        environ = {
            "AUTOCODE_WEBHOOK_SECRET": SECRET,
            "AUTOCODE_APP_ID": str(github.app_id),
            "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode(),
            "AUTOCODE_GITHUB_API_URL": github.api_url,
            "AUTOCODE_DATABASE_URL": database_url,
            "AUTOCODE_WORKDIR": str(tmp_path / "work"),
            "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
            "AUTOCODE_MODEL": "fake/scripted",
            "AUTOCODE_OPENCODE_CONFIG": str(config),
            "AUTOCODE_OPENCODE_AUTH": str(tmp_path / "no-auth.json"),
            "AUTOCODE_AGENT_NETWORK": "host",  # the scripted LLM listens on the host's loopback
            "AUTOCODE_ADMIN_TOKEN": ADMIN,
            "AUTOCODE_RUN_TIMEOUT": "180",
            "AUTOCODE_AGENT_MEMORY": "1g",
            **env,
        }
        settings = Settings.from_environ(environ)
        server = ServerThread(build_app(settings)).start()
        started.append(server)
        return Bot(server.url, settings, github, llm, recorder, server)

    yield start
    for server in started:
        server.stop()
    logging.getLogger().removeHandler(recorder)


def labeled_payload(
    github: FakeGitHub, number: int = 1, sender: str = "Codertocat"
) -> dict[str, Any]:
    """GitHub's own `issues/labeled` example, pointed at the fake and our label."""
    return github.payload(
        "issues/labeled.json", repo=REPO, number=number, label="auto-code", sender=sender
    )
