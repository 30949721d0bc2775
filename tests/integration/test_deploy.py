"""Deployment files: deploy/Dockerfile, deploy/compose.yaml, deploy/kubernetes/.

The pure tests parse the files and hold them to the code: every variable
handed to a bot container is a setting that bot/config.py reads, the required
ones are set for web and worker, probes ask /healthz, and the clones' folder
is mounted at one path on both sides.

`test_compose_up_for_real` builds the bot's image from deploy/Dockerfile and
brings deploy/compose.yaml up unchanged on the real engine (web, two workers,
PostgreSQL), with its own `.env` in a temporary project directory
(`--project-directory`), sends a signed `ping` and reads /healthz, then has a
labeled issue become a pull request through the deployment: a strict fake
GitHub and the scripted LLM on the host's 127.0.0.1, a signed `issues.labeled`
to the web service, a worker that clones, runs the real opencode in an agent
container on the default `internal` network (agent → relay → the worker's LLM
proxy → the scripted LLM), pushes and opens the pull request.

How this works on a machine that reaches no container registry and whose
dockerd runs with `--iptables=false`:
- Images the compose file names but we don't build (`postgres:16`) get a local
  stand-in from tests/deploy_standins/ (Debian's PostgreSQL with an entrypoint
  honouring POSTGRES_USER/PASSWORD/DB), unless a real one is already present.
- Python packages: pip inside `docker build` cannot verify the proxy's CA that
  only the host trusts, so the test fills the build context's deploy/wheels/
  with `pip wheel` on the host (when the host's Python is the image's, 3.11)
  and the Dockerfile installs from there with `--no-index`. With an empty
  deploy/wheels/ the same Dockerfile installs from the index as usual.
- Networking: web is on compose's default network (the embedded DNS resolves
  `postgres`; its port is published on 127.0.0.1 through docker-proxy). The
  workers have the host's network, as compose.yaml gives them on every host
  (for their LLM proxy on docker0's address): so they also reach the fakes on
  the host's 127.0.0.1, and PostgreSQL on its published 127.0.0.1 port. No
  override file: everything the test changes is a value in `.env`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.config import Settings
from bot.runner.docker import DockerRunner
from tests.conftest import RUNNER_IMAGE
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.paths import PAYLOADS, ROOT
from tests.webhooks import send

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
KUBERNETES = DEPLOY / "kubernetes"
STANDINS = ROOT / "tests" / "deploy_standins"
BOT_IMAGE = "autocode-bot:latest"
STANDIN_LABEL = "autocode.test-standin"
REPO = "Codertocat/Hello-World"

# compose's own ${...} values: read by compose, never by the bot
COMPOSE_VARIABLES = {
    "POSTGRES_PASSWORD", "POSTGRES_PORT", "DOCKER_GID", "WEB_PUBLISH", "OPENCODE_DIR",
}  # fmt: skip
REQUIRED = ("AUTOCODE_WEBHOOK_SECRET", "AUTOCODE_APP_ID", "AUTOCODE_DATABASE_URL")
PRIVATE_KEY = ("AUTOCODE_PRIVATE_KEY", "AUTOCODE_PRIVATE_KEY_PATH")


def settings_names() -> set[str]:
    """Every setting the code reads: the AUTOCODE_* literals in bot/config.py, and DOCKER_HOST."""
    source = (ROOT / "bot" / "config.py").read_text()
    names = set(re.findall(r"\"(AUTOCODE_[A-Z0-9_]+)\"", source))
    if '"DOCKER_HOST"' in source:
        names.add("DOCKER_HOST")
    return names


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def compose_file() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def bot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("autocode-bot")
    }


def kubernetes_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def pod_spec(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            spec: dict[str, Any] = doc["spec"]["template"]["spec"]
            return spec
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes/")


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        if item["name"] == name:
            return dict(item)
    raise AssertionError(f"no container {name}")


def container_env(docs: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, str]:
    """A container's variables: envFrom (ConfigMap, Secret) then env; valueFrom as '<ref>'."""
    sources = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] != "Kustomization"}
    env: dict[str, str] = {}
    for ref in item.get("envFrom", []):
        if "configMapRef" in ref:
            doc = sources[("ConfigMap", ref["configMapRef"]["name"])]
            env.update(doc.get("data", {}))
        else:
            doc = sources[("Secret", ref["secretRef"]["name"])]
            env.update(doc.get("stringData", {}) or doc.get("data", {}))
    for var in item.get("env", []):
        env[var["name"]] = str(var.get("value", "<ref>"))
    return env


def mounts(item: dict[str, Any]) -> dict[str, str]:
    """mountPath → volume name."""
    return {m["mountPath"]: m["name"] for m in item.get("volumeMounts", [])}


# --- pure: the files against the code -------------------------------------------


def test_the_settings_are_found_in_config_source() -> None:
    names = settings_names()
    for name in (*REQUIRED, *PRIVATE_KEY, "AUTOCODE_WORKDIR", "AUTOCODE_RUNNER_IMAGE"):
        assert name in names
    assert "DOCKER_HOST" in names


def test_compose_hands_the_bot_only_settings_it_reads() -> None:
    known = settings_names()
    compose = compose_file()
    services = bot_services(compose)
    assert set(services) == {"web", "worker"}
    example = env_file(ENV_EXAMPLE)
    agent_vars = {n.strip() for n in example.get("AUTOCODE_AGENT_ENV", "").split(",") if n}
    for name, service in services.items():
        assert service.get("env_file") == ".env", name
        unknown = set(service.get("environment", {})) - known
        assert not unknown, f"{name} sets variables the bot never reads: {sorted(unknown)}"
    unknown = set(example) - known - COMPOSE_VARIABLES - agent_vars
    assert not unknown, f"env.example names variables nobody reads: {sorted(unknown)}"
    substituted = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert substituted - known <= COMPOSE_VARIABLES, substituted - known
    assert set(example) >= COMPOSE_VARIABLES, "every compose variable is shown in env.example"


def test_compose_sets_the_required_settings_and_the_shared_paths() -> None:
    compose = compose_file()
    example = env_file(ENV_EXAMPLE)
    for name, service in bot_services(compose).items():
        env = {**example, **service.get("environment", {})}
        for required in REQUIRED:
            assert env.get(required), f"{name} lacks {required}"
        assert any(env.get(k) for k in PRIVATE_KEY), f"{name} lacks the App's private key"
        assert f"@postgres:{example['POSTGRES_PORT']}/" in env["AUTOCODE_DATABASE_URL"]
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["command"][:3] == ["autocode", "serve", "--no-workers"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert worker["command"] == ["autocode", "worker"]
    # scalable: nothing that exists once per host
    assert "ports" not in worker and "container_name" not in worker
    assert "/var/run/docker.sock:/var/run/docker.sock" in worker["volumes"]
    workdir = worker["environment"]["AUTOCODE_WORKDIR"]
    assert f"{workdir}:{workdir}" in worker["volumes"], "clones: the same path on both sides"
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    for name in ("web", "worker"):
        assert compose["services"][name]["depends_on"]["postgres"]["condition"] == (
            "service_healthy"
        )


def test_compose_workers_reach_their_llm_proxy_and_the_database() -> None:
    """The worker shares the host's network: docker0's gateway is its own (the proxy's address).

    Agents, and the `internal` network's relay, live on Docker's default
    bridge; with dockerd's iptables, a worker on compose's network would be
    cut off from them. On the host's network it binds docker0's gateway, a
    free port each, and reaches PostgreSQL through its port on 127.0.0.1.
    """
    compose = compose_file()
    example = env_file(ENV_EXAMPLE)
    worker, web = compose["services"]["worker"], compose["services"]["web"]
    postgres = compose["services"]["postgres"]
    assert worker["network_mode"] == "host"
    # its own pid namespace: a relay's owner label names it (bot/runner/egress.py)
    assert "pid" not in worker, "the worker needs no view of the host's processes"
    assert "network_mode" not in web, "web stays on compose's network, published"
    # the proxy's settings: internal agents, the address found by the code, a free port each
    settings = Settings.from_environ({**example, **worker["environment"]})
    assert example["AUTOCODE_AGENT_NETWORK"] == "internal" == settings.agent_network
    assert "AUTOCODE_LLM_PROXY_HOST" in example and settings.llm_proxy_host == ""
    assert example["AUTOCODE_LLM_PROXY_PORT"] == "0" and settings.llm_proxy_port == 0
    assert settings.llm_proxy_url == ""
    # one database URL for both: `postgres` is 127.0.0.1 for the worker, and PostgreSQL
    # listens inside on the port it is published on
    assert "postgres:127.0.0.1" in worker["extra_hosts"]
    port = "${POSTGRES_PORT:-5432}"
    assert postgres["environment"]["PGPORT"] == port
    assert postgres["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"@postgres:{example['POSTGRES_PORT']}/" in example["AUTOCODE_DATABASE_URL"]
    # opencode's files for the worker, read-only, where env.example points
    assert (
        "${OPENCODE_DIR:-/etc/autocode/opencode}:/etc/autocode/opencode:ro" in (worker["volumes"])
    )
    assert example["AUTOCODE_OPENCODE_AUTH"].startswith("/etc/autocode/opencode/")


def test_kubernetes_hands_the_bot_only_settings_it_reads() -> None:
    known = settings_names()
    docs = kubernetes_docs()
    seen = 0
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = doc["spec"]["template"]["spec"]
        for item in [*spec.get("initContainers", []), *spec["containers"]]:
            if not item["image"].startswith("autocode-bot"):
                continue
            seen += 1
            env = container_env(docs, item)
            agent_vars = {n.strip() for n in env.get("AUTOCODE_AGENT_ENV", "").split(",") if n}
            unknown = set(env) - known - agent_vars
            assert not unknown, (
                f"{doc['metadata']['name']}/{item['name']} sets variables the bot never reads: "
                f"{sorted(unknown)}"
            )
    assert seen >= 3  # web, worker, pull-runner


def test_kubernetes_web_and_worker_are_complete() -> None:
    docs = kubernetes_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Secret", "ConfigMap", "Deployment", "Service", "StatefulSet"} <= kinds
    web_spec = pod_spec(docs, "Deployment", "autocode-web")
    worker_spec = pod_spec(docs, "Deployment", "autocode-worker")
    web, worker = container(web_spec, "web"), container(worker_spec, "worker")
    assert web["command"][:3] == ["autocode", "serve", "--no-workers"]
    assert worker["command"] == ["autocode", "worker"]
    for spec, item in ((web_spec, web), (worker_spec, worker)):
        env = container_env(docs, item)
        for required in REQUIRED:
            assert env.get(required), f"{item['name']} lacks {required}"
        key_path = env.get("AUTOCODE_PRIVATE_KEY_PATH", "")
        assert key_path or env.get("AUTOCODE_PRIVATE_KEY"), f"{item['name']} lacks the key"
        if key_path:
            volume = mounts(item).get(str(Path(key_path).parent))
            assert volume, f"{item['name']}: nothing is mounted at {Path(key_path).parent}"
            secret = next(v for v in spec["volumes"] if v["name"] == volume)["secret"]
            key_doc = next(
                d
                for d in docs
                if d["kind"] == "Secret" and d["metadata"]["name"] == secret["secretName"]
            )
            assert Path(key_path).name in key_doc["stringData"]
    # probes on /healthz, at the port the container listens on
    port = web["ports"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        get = web[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert get["port"] in (port["containerPort"], port["name"])
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "autocode-web"
    )
    web_labels = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "autocode-web"
    )["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == web_labels
    assert service["spec"]["ports"][0]["targetPort"] in (port["containerPort"], port["name"])
    # the worker's engine: a Unix socket shared with the sidecar, and the clones
    # at one path for the worker and for the engine that bind-mounts them
    env = container_env(docs, worker)
    docker_host = env["DOCKER_HOST"]
    workdir = env["AUTOCODE_WORKDIR"]
    dind = container(worker_spec, "dind")
    assert dind.get("restartPolicy") == "Always", "dind runs as a native sidecar"
    assert docker_host.startswith("unix://")
    socket_dir = str(Path(docker_host.removeprefix("unix://")).parent)
    assert mounts(worker)[socket_dir] == mounts(dind)[socket_dir]
    assert mounts(worker)[workdir] == mounts(dind)[workdir]
    assert f"--host={docker_host}" in dind["args"]
    pull = container(worker_spec, "pull-runner")
    assert container_env(docs, pull)["DOCKER_HOST"] == docker_host


def test_kubernetes_workers_reach_their_llm_proxy() -> None:
    """The dind sidecar's docker0 is in the pod's network namespace: the worker's proxy binds it.

    bot/llm/host.py takes the gateway of the engine at DOCKER_HOST (the
    sidecar) when the worker has that address, which it does in a pod: so the
    manifest leaves AUTOCODE_LLM_PROXY_HOST empty, keeps the pod (and the
    sidecar) off the node's network, and gives the sidecar its own bridge.
    """
    docs = kubernetes_docs()
    spec = pod_spec(docs, "Deployment", "autocode-worker")
    worker, dind = container(spec, "worker"), container(spec, "dind")
    env = container_env(docs, worker)
    settings = Settings.from_environ({**env, "AUTOCODE_PRIVATE_KEY_PATH": ""})  # a mounted file
    assert env["AUTOCODE_AGENT_NETWORK"] == "internal" == settings.agent_network
    assert env["AUTOCODE_LLM_PROXY_HOST"] == "" and settings.llm_proxy_host == ""
    assert settings.llm_proxy_url == ""
    assert not spec.get("hostNetwork"), "the sidecar's docker0 must be the pod's, not the node's"
    assert not any(a.startswith(("--bridge", "--iptables=false")) for a in dind["args"])
    # the resolver file for `internal` agents is written in the work directory: on the volume
    # the sidecar sees at the same path
    workdir = env["AUTOCODE_WORKDIR"]
    assert mounts(worker)[workdir] == mounts(dind)[workdir]
    # the provider key the agent needs is set, and stays in the worker (AUTOCODE_AGENT_ENV)
    assert settings.agent_env.get("ANTHROPIC_API_KEY")
    assert settings.model.startswith("anthropic/")


def test_the_image_listens_on_8000_and_checks_healthz() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:bookworm-slim\b", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
    assert re.search(r"^USER autocode$", dockerfile, re.M)
    assert 'CMD ["autocode", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile


# --- docker-compose itself -------------------------------------------------------


def compose_command() -> list[str]:
    """docker-compose (Debian's package, 1.29) or the `docker compose` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if done.returncode == 0:
            return ["docker", "compose"]
    pytest.fail(
        "these tests need Docker Compose: `apt-get install docker-compose` (.ci/run does)",
        pytrace=False,
    )


def clean_env() -> dict[str, str]:
    """The environment for compose: none of ours, so only the project's .env counts."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOCODE_", "POSTGRES_", "COMPOSE_")) and k not in COMPOSE_VARIABLES
    }


def run(cmd: list[str], *, timeout: float = 300, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"`{' '.join(cmd)}` exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}"
    )
    return done.stdout


def test_compose_config_is_valid(tmp_path: Path) -> None:
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    out = run(
        [*compose_command(), "-f", str(COMPOSE), "--project-directory", str(tmp_path), "config"],
        timeout=60,
    )
    config = yaml.safe_load(out)
    assert set(config["services"]) == {"web", "worker", "postgres"}
    web, worker = config["services"]["web"], config["services"]["worker"]
    assert [p["target"] for p in web["ports"]] == [8000]
    url = web["environment"]["AUTOCODE_DATABASE_URL"]
    assert url == "postgresql://autocode:change-me-as-well@postgres:5432/autocode"
    assert worker["environment"]["AUTOCODE_WEBHOOK_SECRET"] == "change-me"  # from env_file
    binds = {
        (v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2])
        for v in worker["volumes"]
    }
    assert ("/var/lib/autocode/work", "/var/lib/autocode/work") in binds
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in binds
    assert ("/etc/autocode/opencode", "/etc/autocode/opencode") in binds
    # the LLM proxy's side: the host's network, its settings from the env file
    assert worker["network_mode"] == "host" and "pid" not in worker
    assert worker["extra_hosts"] == ["postgres:127.0.0.1"]
    assert worker["environment"]["AUTOCODE_AGENT_NETWORK"] == "internal"
    assert worker["environment"]["AUTOCODE_LLM_PROXY_HOST"] == ""
    postgres = config["services"]["postgres"]
    assert postgres["environment"]["PGPORT"] == "5432"
    published = postgres["ports"][0]
    if isinstance(published, dict):  # the compose plugin's long form
        published = f"{published['host_ip']}:{published['published']}:{published['target']}"
    assert str(published).removesuffix("/tcp") == "127.0.0.1:5432:5432"


# --- the real thing --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_socket() -> Path:
    host = os.environ.get("DOCKER_HOST", "")
    path = Path(host.removeprefix("unix://")) if host.startswith("unix://") else None
    path = path or Path("/var/run/docker.sock")
    if not path.exists():
        pytest.fail(
            f"this test mounts the engine's socket into the workers; {path} is missing "
            "(start dockerd, as .ci/run does)",
            pytrace=False,
        )
    return path


def build_context(dest: Path) -> Path:
    """The repository's files the image needs, with deploy/wheels/ filled when it can be."""
    skip = shutil.ignore_patterns("__pycache__", "*.whl", ".env", "*.pem")
    for name in ("bot", "deploy"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    for name in ("pyproject.toml", "README.md", "Dockerfile.runner", ".dockerignore"):
        shutil.copy(ROOT / name, dest / name)
    if sys.version_info[:2] == (3, 11):  # the image's Python (Debian bookworm)
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        requirements = dest / "requirements.txt"
        requirements.write_text("\n".join(project["dependencies"]) + "\n")
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "-w",
                str(dest / "deploy" / "wheels"),
                "hatchling",
                "-r",
                str(requirements),
            ],
            timeout=300,
        )
    return dest


def image_id(tag: str) -> str:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def ensure_standins() -> bool:
    """postgres:16 from tests/deploy_standins unless a real one is there; True: a stand-in."""
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", "postgres:16"],
        capture_output=True,
        text=True,
        check=False,
    )
    labels = json.loads(done.stdout or "null") if done.returncode == 0 else None
    if done.returncode == 0 and STANDIN_LABEL not in (labels or {}):
        return False  # the official image: use it
    run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--label",
            f"{STANDIN_LABEL}=postgres",
            "-t",
            "postgres:16",
            str(STANDINS / "postgres"),
        ],
        timeout=600,
    )
    return True


@dataclass
class Deployment:
    """deploy/compose.yaml up, and what the test talks to."""

    cmd: list[str]  # docker-compose … (with -p, -f, --project-directory)
    url: str  # the web service, published on 127.0.0.1
    workdir: Path
    env: dict[str, str]  # the .env the deployment got
    github: FakeGitHub
    llm: ScriptedLLM


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield fake


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def project(
    tmp_path: Path, docker_runner: object, github: FakeGitHub, llm: ScriptedLLM
) -> Iterator[Deployment]:
    """deploy/compose.yaml up on the real engine; always taken down with its volume."""
    if not shutil.which("docker"):
        pytest.fail("this test needs the docker CLI (Debian's docker.io)", pytrace=False)
    sock = docker_socket()
    compose = compose_command()
    ensure_standins()
    context = build_context(tmp_path / "context")
    before = image_id(BOT_IMAGE)
    run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "-f",
            str(context / "deploy" / "Dockerfile"),
            "-t",
            BOT_IMAGE,
            str(context),
        ],
        timeout=900,
    )
    if before and before != image_id(BOT_IMAGE):  # the previous build, now untagged
        subprocess.run(["docker", "rmi", before], capture_output=True, check=False)

    workdir = tmp_path / "work"
    workdir.mkdir()
    # opencode's files for the workers (OPENCODE_DIR): the scripted LLM as provider `fake`,
    # its key an `apiKey` the workers' LLM proxy keeps; no auth.json
    opencode = tmp_path / "opencode"
    opencode.mkdir()
    (opencode / "opencode.json").write_text(json.dumps(llm.provider_config()))
    for path in (workdir, opencode, opencode / "opencode.json"):
        if os.getuid() == 0:
            os.chown(path, 1000, 1000)  # the bot's user in the image
        else:
            path.chmod(0o777 if path.is_dir() else 0o644)
    directory = tmp_path / "project"
    directory.mkdir()
    port, pg_port = free_port(), free_port()
    password = f"pw-{uuid.uuid4().hex[:12]}"
    shipped = env_file(ENV_EXAMPLE)
    env = {
        "AUTOCODE_WEBHOOK_SECRET": f"deploy-test-{uuid.uuid4().hex}",
        "AUTOCODE_APP_ID": str(github.app_id),
        # one line, newlines as \n, as env.example shows
        "AUTOCODE_PRIVATE_KEY": github.private_key_pem.decode().replace("\n", "\\n"),
        "AUTOCODE_GITHUB_API_URL": github.api_url,
        "AUTOCODE_ADMIN_TOKEN": f"admin-{uuid.uuid4().hex}",
        "AUTOCODE_LEASE_SECONDS": "10",
        "AUTOCODE_DATABASE_URL": f"postgresql://autocode:{password}@postgres:{pg_port}/autocode",
        "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
        "AUTOCODE_MODEL": "fake/scripted",
        "AUTOCODE_OPENCODE_CONFIG": "/etc/autocode/opencode/opencode.json",
        "AUTOCODE_OPENCODE_AUTH": "/etc/autocode/opencode/auth.json",
        # the agents' network and the LLM proxy as env.example ships them (internal, the
        # proxy on docker0's gateway, a free port for each worker)
        **{k: shipped[k] for k in ("AUTOCODE_AGENT_NETWORK", "AUTOCODE_LLM_PROXY_HOST",
                                   "AUTOCODE_LLM_PROXY_PORT")},
        "AUTOCODE_RUN_TIMEOUT": "180",
        "AUTOCODE_AGENT_MEMORY": "1g",
        "POSTGRES_PASSWORD": password,
        "POSTGRES_PORT": str(pg_port),
        "AUTOCODE_WORKDIR": str(workdir),
        "OPENCODE_DIR": str(opencode),
        "DOCKER_GID": str(sock.stat().st_gid),
        "WEB_PUBLISH": f"127.0.0.1:{port}",
    }  # fmt: skip
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    name = f"autocode-deploy-{uuid.uuid4().hex[:8]}"
    cmd = [*compose, "-p", name, "-f", str(COMPOSE), "--project-directory", str(directory)]
    try:
        run([*cmd, "up", "-d", "--no-build", "--scale", "worker=2"], timeout=300)
        yield Deployment(cmd, f"http://127.0.0.1:{port}", workdir, env, github, llm)
    except BaseException:
        logs = subprocess.run(
            [*cmd, "logs", "--no-color", "--tail", "60"],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        sys.stderr.write(logs.stdout[-8000:])
        raise
    finally:
        subprocess.run(
            [*cmd, "down", "-v", "--remove-orphans", "-t", "10"],
            env=clean_env(),
            capture_output=True,
            check=False,
            timeout=180,
        )


def worker_owner(host_pid: str) -> str:
    """The relay owner label of the bot process whose pid on this host is `host_pid`.

    Its pid namespace (the inode of its ns/pid), which is not ours: the worker
    has no `pid: host`; and its pid in there (the last of NSpid).
    """
    namespace = os.stat(f"/proc/{host_pid}/ns/pid").st_ino
    assert namespace != os.stat("/proc/self/ns/pid").st_ino, "the worker has the host's pids"
    status = Path(f"/proc/{host_pid}/status").read_text()
    pid = next(line.split()[-1] for line in status.splitlines() if line.startswith("NSpid:"))
    return f"{socket.gethostname()}:{namespace}:{pid}"


def wait_ticket(
    url: str, admin: str, ticket_id: int, cmd: list[str], seconds: float = 300
) -> dict[str, Any]:
    """The ticket once it has ended, read through the web service's /api."""
    deadline = time.monotonic() + seconds
    ticket: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{url}/api/tickets/{ticket_id}", headers={"Authorization": f"Bearer {admin}"}
        )
        if response.status_code != 200:
            raise AssertionError(
                f"/api/tickets/{ticket_id}: {response.status_code} {response.text[:500]}\n"
                + service_logs(cmd, "web")
            )
        ticket = dict(response.json())
        if ticket["state"] not in ("queued", "running"):
            return ticket
        time.sleep(0.5)
    raise AssertionError(
        f"ticket {ticket_id} did not end: {ticket}\n" + service_logs(cmd, "worker")
    )


def service_logs(cmd: list[str], service: str) -> str:
    logs = subprocess.run(
        [*cmd, "logs", "--no-color", "--tail", "80", service],
        env=clean_env(), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return logs.stdout[-8000:]


def wait_healthy(url: str, cmd: list[str], seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/healthz", timeout=5)
            if response.status_code == 200:
                data: dict[str, Any] = response.json()
                if data.get("database") == "ok":
                    return data
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    logs = subprocess.run(
        [*cmd, "logs", "--no-color", "--tail", "40"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    raise AssertionError(f"web never became healthy at {url} ({last}):\n{logs.stdout[-4000:]}")


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_compose_up_for_real(project: Deployment, docker_runner: DockerRunner) -> None:
    cmd, url, workdir = project.cmd, project.url, project.workdir
    health = wait_healthy(url, cmd)
    assert health["database"] == "ok"

    env = env_file(Path(cmd[cmd.index("--project-directory") + 1]) / ".env")
    assert env == project.env
    ping = json.loads((PAYLOADS / "ping" / "ping.json").read_text())
    response = send(url, "ping", ping, env["AUTOCODE_WEBHOOK_SECRET"])
    assert response.status_code == 200, response.text
    assert send(url, "ping", ping, "not-the-secret").status_code == 401

    # every service up; the workers reach the engine through the mounted socket
    # and write clones where the engine (on this host) finds them, at one path
    states = {}
    for service in ("web", "worker", "postgres"):
        ids = run([*cmd, "ps", "-q", service], timeout=60).split()
        states[service] = [
            run(["docker", "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid]).strip()
            for cid in ids
        ]
    assert states == {
        "web": ["running 0"],
        "worker": ["running 0", "running 0"],
        "postgres": ["running 0"],
    }, states
    for index in ("1", "2"):
        out = run(
            [
                *cmd,
                "exec",
                "-T",
                "--index",
                index,
                "worker",
                "python3",
                "-c",
                "import docker; print(docker.from_env().ping())",
            ],
            timeout=60,
        )
        assert out.strip() == "True"
    run(
        [*cmd, "exec", "-T", "worker", "sh", "-c", 'echo clone > "$AUTOCODE_WORKDIR/probe"'],
        timeout=60,
    )
    assert (workdir / "probe").read_text() == "clone\n"
    (workdir / "probe").unlink()
    logs = run([*cmd, "logs", "--no-color", "worker"], timeout=60)
    assert "Docker engine unreachable" not in logs, logs[-3000:]

    # a labeled issue becomes a pull request through the deployment's worker
    gh, llm = project.github, project.llm
    gh.add_repo(REPO, {"README.md": "# Hello World\n"})
    gh.set_permission(REPO, "Codertocat", "admin")
    gh.add_issue(REPO, 1, title="Add a greeting file",
                 body="Please add hello.txt that greets the world.", user="Codertocat")  # fmt: skip
    llm.script(
        [
            tool("write", filePath="hello.txt", content="Hello, world!\n"),
            tool("bash", command="cat hello.txt", description="Show the file"),
            text("Added hello.txt with a friendly greeting."),
        ]
    )
    payload = gh.payload(
        "issues/labeled.json", repo=REPO, number=1, label="auto-code", sender="Codertocat"
    )
    response = send(url, "issues", payload, env["AUTOCODE_WEBHOOK_SECRET"])
    assert response.status_code == 202, response.text
    ticket = wait_ticket(url, env["AUTOCODE_ADMIN_TOKEN"], int(response.json()["ticket"]), cmd)
    assert ticket["state"] == "succeeded", (ticket.get("error"), ticket)
    assert ticket["conclusion"] == "success"

    branch = "autocode/issue-1"
    assert gh.read_file(REPO, branch, "hello.txt") == "Hello, world!\n"
    assert gh.read_file(REPO, "main", "hello.txt") is None
    pulls = [p for (repo, _), p in gh.pulls.items() if repo == REPO]
    assert len(pulls) == 1
    assert pulls[0]["head"]["ref"] == branch and pulls[0]["base"]["ref"] == "main"
    assert "Closes #1" in pulls[0]["body"]
    assert ticket["pr_url"] == pulls[0]["html_url"]
    assert ticket["files_changed"] == ["hello.txt"]

    # the model was reached through a worker's LLM proxy: the real key arrived there (the
    # agent held only a capability), and the agent's network was `internal`, by its relay
    assert len(llm.requests) >= 3
    assert {r["headers"].get("authorization") for r in llm.requests} == {f"Bearer {llm.api_key}"}
    summary = gh.find_check_runs(REPO, "Auto-Code")[0]["output"]["summary"]
    assert "LLM requests through the proxy (0 failed)" in summary
    # each worker's relay: labelled with the host's name (the worker has the host's network),
    # the worker's own pid namespace and its pid there, on the agents' network, forwarding to
    # docker0's gateway, where that worker's proxy listens
    owners = {
        worker_owner(run(["docker", "inspect", "-f", "{{.State.Pid}}", cid]).strip())
        for cid in run([*cmd, "ps", "-q", "worker"], timeout=60).split()
    }
    relays = run(
        ["docker", "ps", "--filter", "label=autocode.role=llm-relay", "--format",
         '{{.Label "autocode.relay.owner"}} {{.Label "autocode.relay.target"}} {{.Networks}}'],
        timeout=60,
    )  # fmt: skip
    mine = [line.split(" ", 1)[1] for line in relays.splitlines() if line.split(" ")[0] in owners]
    gateway = docker_runner.bridge_gateway()
    assert mine and all(
        line.startswith(f"{gateway}:") and "autocode-agents" in line for line in mine
    ), relays
    logs = run([*cmd, "logs", "--no-color", "worker"], timeout=60)
    assert "llm proxy cannot listen" not in logs, logs[-3000:]
    assert list(workdir.glob("ticket-*")) == []  # the clone is removed
