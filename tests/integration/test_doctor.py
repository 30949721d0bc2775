"""`autocode doctor` as a subprocess: the fake GitHub, the real Docker engine and runner image.

The LLM proxy's check binds where the bot would and sends a probe container of
the runner image the agents' way (through the `internal` relay, or on the
bridge, or the host's network); the database's check only reads.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import Settings
from bot.ops.doctor import check_llm
from bot.runner.docker import DockerRunner
from bot.runner.egress import OWNER_LABEL, relay_owner
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
    "agent runtime",
    "derived images",
    "LLM credentials",
    "LLM proxy",
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


def doctor(
    cwd: Path, env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`autocode doctor` in `cwd`; afterwards nothing it started is left on the engine."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOCODE_", "DOCKER_")) and not k.endswith("_API_KEY")
    }
    command = [*prefix, sys.executable, "-m", "bot", "doctor", *args]
    with subprocess.Popen(
        command, cwd=cwd, env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert_cleaned_up(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def assert_cleaned_up(pid: int) -> None:
    """No probe container and no relay of the doctor process `pid` is left."""
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=autocode.role=doctor", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert left == [], "doctor left probe containers"
    relays = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=autocode.role=llm-relay", "--filter",
         f"label={OWNER_LABEL}={relay_owner(pid)}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert relays == [], f"doctor left relays: {relays}"


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    found = json.loads(done.stdout)
    assert isinstance(found, list)
    return {c["name"]: c for c in found}


def assert_no_secrets(done: subprocess.CompletedProcess[str], *extra: str) -> None:
    for secret in (SECRET, LLM_KEY, *extra):
        assert secret not in done.stdout + done.stderr


def test_all_checks_pass(
    tmp_path: Path, environ: dict[str, str], github: FakeGitHub, docker_runner: DockerRunner
) -> None:
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
    assert "the engine's default" in by_name["agent runtime"]["detail"]
    assert "does not exist yet: `autocode serve`" in by_name["database"]["detail"]
    credentials = by_name["LLM credentials"]["detail"]
    assert "ANTHROPIC_API_KEY" in credentials and "anthropic: proxied" in credentials
    assert "passed" not in credentials  # the key stays with the proxy, on the host
    proxy = by_name["LLM proxy"]["detail"]
    listens = f"AUTOCODE_AGENT_NETWORK=internal: can listen on {docker_runner.bridge_gateway()} "
    assert proxy.startswith(listens)
    assert "a container on the internal network, through the relay, reached it" in proxy
    assert_no_secrets(as_json)
    # a doctor creates no database: `autocode serve` does
    assert not (tmp_path / "data").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.pem", "github"]


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
    # the proxy can listen, but the probe needs the image: said, with the fix
    assert "FAIL  LLM proxy: AUTOCODE_AGENT_NETWORK=internal: can listen on" in done.stderr
    assert "whether agents reach it was not checked" in done.stderr
    assert "fix: build the runner image (`autocode runner build`), then run doctor again" in (
        done.stderr
    )


def test_a_runtime_the_engine_does_not_have(tmp_path: Path, environ: dict[str, str]) -> None:
    environ["AUTOCODE_AGENT_RUNTIME"] = "no-such-runtime"
    done = doctor(tmp_path, environ)
    assert done.returncode == 1
    assert "FAIL  agent runtime: no-such-runtime is not registered with the Docker engine" in (
        done.stderr
    )
    assert "runc" in done.stderr  # what the engine has instead
    assert "fix: install gVisor (Debian: `apt-get install runsc`)" in done.stderr
    assert '"runtimeArgs": ["--platform=ptrace", "--network=host"]' in done.stderr


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
    assert not found["LLM proxy"]["ok"]
    assert found["LLM proxy"]["fix"] == "fix the Docker engine first"


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


# --- the database: read, never created or migrated ----------------------------------


def test_doctor_on_an_empty_folder_leaves_no_database(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    del environ["AUTOCODE_DATABASE_URL"]  # the default: ./autocode.db
    folder = tmp_path / "fresh"
    folder.mkdir()
    database = checks(doctor(folder, environ, "--json"))["database"]
    assert database["ok"], database
    assert database["detail"].startswith(f"{folder / 'autocode.db'} does not exist yet")
    assert "`autocode serve` (or `autocode worker`) creates it" in database["detail"]
    assert list(folder.iterdir()) == []

    # nowhere to create it: a file where a folder should be
    (tmp_path / "a-file").write_text("")
    environ["AUTOCODE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'a-file' / 'autocode.db'}"
    database = checks(doctor(folder, environ, "--json"))["database"]
    assert not database["ok"] and "could not create it" in database["detail"]
    assert "writable" in database["fix"]


def test_an_existing_sqlite_database_is_only_read(tmp_path: Path, environ: dict[str, str]) -> None:
    from bot.store import open_store
    from bot.store.rows import migrations

    latest = max(n for n, _ in migrations("sqlite"))
    path = tmp_path / "data" / "autocode.db"
    open_store(Settings.from_environ(environ)).close()  # what `autocode serve` makes
    before = sorted(p.name for p in path.parent.iterdir())
    database = checks(doctor(tmp_path, environ, "--json"))["database"]
    assert database == {
        "name": "database", "ok": True, "fix": None,
        "detail": f"{path}, schema version {latest}",
    }  # fmt: skip
    assert sorted(p.name for p in path.parent.iterdir()) == before  # no -wal, no -shm

    with sqlite3.connect(path) as conn:  # an older bot's database: migrated at start
        conn.execute("DELETE FROM schema_migrations WHERE version > 1")
    database = checks(doctor(tmp_path, environ, "--json"))["database"]
    assert database["ok"] and "schema version 1; `autocode serve`" in database["detail"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (latest + 1,))
    database = checks(doctor(tmp_path, environ, "--json"))["database"]
    assert not database["ok"] and f"is newer than this bot's {latest}" in database["detail"]

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    environ["AUTOCODE_DATABASE_URL"] = f"sqlite:///{other}"
    database = checks(doctor(tmp_path, environ, "--json"))["database"]
    assert not database["ok"] and "tables of something else" in database["detail"]


def test_a_postgres_database_is_only_read(
    tmp_path: Path, environ: dict[str, str], postgres_url: str
) -> None:
    import psycopg

    from bot.store import open_store
    from bot.store.rows import migrations
    from tests.pg import create_database, drop_database

    url = create_database(postgres_url)
    try:
        environ["AUTOCODE_DATABASE_URL"] = url
        database = checks(doctor(tmp_path, environ, "--json"))["database"]
        assert database["ok"] and "connected, no tables yet" in database["detail"], database
        with psycopg.connect(url) as conn:  # still empty: nothing was migrated
            assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
        open_store(Settings.from_environ(environ)).close()
        database = checks(doctor(tmp_path, environ, "--json"))["database"]
        latest = max(n for n, _ in migrations("postgres"))
        assert database["ok"] and database["detail"].endswith(f", schema version {latest}")
        environ["AUTOCODE_DATABASE_URL"] = url.replace("@", "x@", 1)  # a wrong password
        database = checks(doctor(tmp_path, environ, "--json"))["database"]
        assert not database["ok"] and "cannot connect" in database["detail"]
        assert "AUTOCODE_DATABASE_URL" in database["fix"]
    finally:
        drop_database(url)


# --- the LLM proxy: where it listens, and whether the agents reach it -----------------


def test_the_proxy_on_each_agent_network(
    tmp_path: Path, environ: dict[str, str], docker_runner: DockerRunner
) -> None:
    gateway = docker_runner.bridge_gateway()
    environ["AUTOCODE_AGENT_NETWORK"] = "bridge"
    proxy = checks(doctor(tmp_path, environ, "--json"))["LLM proxy"]
    assert proxy["ok"], proxy
    assert f"a container on Docker's default bridge reached it at {gateway}:" in proxy["detail"]

    environ["AUTOCODE_AGENT_NETWORK"] = "host"
    proxy = checks(doctor(tmp_path, environ, "--json"))["LLM proxy"]
    assert proxy["ok"], proxy
    assert "a container on the host's network reached it at 127.0.0.1:" in proxy["detail"]

    environ["AUTOCODE_AGENT_NETWORK"] = "none"
    proxy = checks(doctor(tmp_path, environ, "--json"))["LLM proxy"]
    assert not proxy["ok"] and "has no network" in proxy["detail"]
    assert "AUTOCODE_AGENT_NETWORK=internal" in proxy["fix"]


def test_a_proxy_address_this_machine_does_not_have(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    environ["AUTOCODE_LLM_PROXY_HOST"] = "192.0.2.1"  # TEST-NET-1: nobody's address
    done = doctor(tmp_path, environ)
    assert done.returncode == 1
    assert (
        "FAIL  LLM proxy: AUTOCODE_AGENT_NETWORK=internal: cannot bind 192.0.2.1: it is not an "
        "address of this machine (from AUTOCODE_LLM_PROXY_HOST)"
    ) in done.stderr
    assert "fix: set AUTOCODE_LLM_PROXY_HOST (and _PORT, _URL)" in done.stderr


def test_a_proxy_url_the_agents_do_not_reach(tmp_path: Path, environ: dict[str, str]) -> None:
    """The proxy listens, but the URL the agents are given leads elsewhere: the probe says so."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    environ.update(
        AUTOCODE_LLM_PROXY_HOST="0.0.0.0",
        AUTOCODE_LLM_PROXY_PORT=str(port),
        AUTOCODE_LLM_PROXY_URL=f"http://127.0.0.1:{port}",  # the relay's own loopback
    )
    proxy = checks(doctor(tmp_path, environ, "--json"))["LLM proxy"]
    assert not proxy["ok"]
    assert proxy["detail"].startswith(
        f"AUTOCODE_AGENT_NETWORK=internal: can listen on 0.0.0.0:{port}, but a container on the "
        f"internal network, through the relay, did not reach it at 127.0.0.1:{port}: "
    )
    assert "AUTOCODE_LLM_PROXY_URL" in proxy["fix"] and "docker0" in proxy["fix"]

    del environ["AUTOCODE_LLM_PROXY_URL"]
    environ["AUTOCODE_LLM_PROXY_PORT"] = "0"
    proxy = checks(doctor(tmp_path, environ, "--json"))["LLM proxy"]
    assert not proxy["ok"] and "agents would be told to connect to 0.0.0.0:" in proxy["detail"]
    assert proxy["fix"].startswith("set AUTOCODE_LLM_PROXY_URL")


def test_a_bot_where_dockers_bridge_is_not_local(tmp_path: Path, environ: dict[str, str]) -> None:
    """As in a container on a network of its own: docker0's gateway is not ours, nor routed.

    A network namespace of its own with only a loopback (the engine is still
    reached through its Unix socket) is what a bot on Compose's network looks
    like from the inside, as far as docker0 goes: the doctor says why and
    names the fixes, as the bot's log does at start.
    """
    if os.getuid() != 0:
        pytest.fail("this test makes a network namespace: it runs as root (as CI does)")
    environ["AUTOCODE_GITHUB_API_URL"] = "http://127.0.0.1:9"  # not reachable from in there
    done = doctor(
        tmp_path,
        environ,
        "--json",
        prefix=("unshare", "--net", "sh", "-c", 'ip link set lo up; exec "$@"', "-"),
    )
    proxy = checks(done)["LLM proxy"]
    assert not proxy["ok"]
    assert "the gateway of the Docker engine's default bridge" in proxy["detail"]
    assert "is not an address of this machine" in proxy["detail"]
    assert "network_mode: host" in proxy["fix"]
    assert "set AUTOCODE_LLM_PROXY_HOST (and _PORT, _URL)" in proxy["fix"]
    assert "AUTOCODE_AGENT_NETWORK=host" in proxy["fix"]


def test_a_work_directory_the_engine_does_not_see(tmp_path: Path, environ: dict[str, str]) -> None:
    """As for a bot in a container whose work directory is not the engine's at that path.

    The agents' resolver file is written in AUTOCODE_WORKDIR, as the clones
    are. A mount namespace of its own with a tmpfs on the work directory: the
    doctor writes the file there, the engine looks at the same path on the
    host and finds none.
    """
    if os.getuid() != 0:
        pytest.fail("this test makes a mount namespace: it runs as root (as CI does)")
    private = tmp_path / "private-work"
    private.mkdir()
    environ["AUTOCODE_WORKDIR"] = str(private)
    mount = 'mount -t tmpfs none "$AUTOCODE_WORKDIR" && exec "$@"'
    done = doctor(
        tmp_path, environ, "--json", prefix=("unshare", "--mount", "sh", "-c", mount, "-")
    )
    proxy = checks(done)["LLM proxy"]
    assert not proxy["ok"]
    assert f"the engine could not mount {private}/doctor-" in proxy["detail"]
    assert "/.agents/resolv.conf into the agent's container" in proxy["detail"]
    assert "work directory (AUTOCODE_WORKDIR)" in proxy["detail"]
    assert proxy["fix"].startswith("mount AUTOCODE_WORKDIR at the same path for the bot and")
    # it was written in the tmpfs: on this side of it no such file
    assert not any(p.is_file() for p in private.glob("*/.agents/resolv.conf*"))


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


def test_llm_credentials_say_how_the_key_reaches_the_agent(tmp_path: Path) -> None:
    """The mode comes from providers.plan, as for a run: proxied, mounted or passed."""
    login = {"anthropic": {"type": "oauth", "refresh": "r-secret", "access": "a", "expires": 1}}
    (tmp_path / "auth.json").write_text(json.dumps(login))
    mounted = check_llm(llm_settings(tmp_path, AUTOCODE_MODEL="anthropic/claude-sonnet-4-5"))
    assert mounted.ok and "anthropic: mounted (auth.json: a oauth login" in mounted.detail
    assert "read-only auth.json" in mounted.detail and "r-secret" not in mounted.detail

    passed = check_llm(
        llm_settings(
            tmp_path,
            AUTOCODE_MODEL="deepseek/deepseek-chat",
            AUTOCODE_AGENT_ENV="DEEPSEEK_API_KEY",
            DEEPSEEK_API_KEY="d-secret",
        )
    )
    assert passed.ok and passed.detail.startswith("deepseek: passed (AUTOCODE_AGENT_ENV")
    assert "gets the value itself" in passed.detail and "d-secret" not in passed.detail

    config = tmp_path / "opencode.jsonc"
    config.write_text(
        '{// comments allowed\n"provider": {"fake": {"options": '
        '{"baseURL": "http://127.0.0.1:9/v1", "apiKey": "c-secret"}}}}'
    )
    proxied = check_llm(
        llm_settings(tmp_path, AUTOCODE_MODEL="fake/scripted", AUTOCODE_OPENCODE_CONFIG=str(config))
    )
    assert proxied.ok and proxied.detail.startswith("fake: proxied (opencode config: an API key")
    assert "per-run capability" in proxied.detail and "c-secret" not in proxied.detail
