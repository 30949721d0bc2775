"""The LLM proxy and the agents' network: real servers on loopback, real Docker.

The scripted LLM plays the real provider: its `api_key` is the real key,
which only the proxy may send. What the agent would hold is the proxy's
address and a capability.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker.errors
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.config import Settings
from bot.errors import SettingsError
from bot.llm import LLMProxy, Meter, Upstream, plan, prepare, usage_of
from bot.llm.access import load_jsonc
from bot.pipeline.spec import agent_config
from bot.runner.docker import DockerRunner, container_user
from bot.runner.egress import INHIBIT, OWNER_LABEL, relay_name, relay_owner
from bot.runner.spec import AGENT_NETWORK, RELAY_HOST, RELAY_PORT, ContainerSpec
from tests.conftest import RUNNER_IMAGE
from tests.fakes.llm import ScriptedLLM, text
from tests.fakes.server import ServerThread

REAL = "sk-real-provider-key-0123456789"


# -- the plan: which provider gets which mode (pure) ---------------------------
def test_keys_from_every_source_are_proxied_and_leave_the_container() -> None:
    config = {
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "options": {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "sk-config"},
                "models": {"m": {}},
            },
            "viaenv": {"options": {"baseURL": "http://127.0.0.1:9/x", "apiKey": "{env:MY_KEY}"}},
        }
    }
    auth = {
        "anthropic": {"type": "api", "key": "sk-ant-auth"},
        "github-copilot": {"type": "oauth", "refresh": "r", "access": "a", "expires": 0},
    }
    env = {"OPENAI_API_KEY": "sk-openai", "MY_KEY": "sk-mine", "OTHER": "plain"}
    decided = plan(env, auth, config)
    up = decided.upstreams
    assert sorted(up) == ["anthropic", "fake", "openai", "viaenv"]
    assert up["fake"].base_url == "http://127.0.0.1:9/v1" and up["fake"].key == "sk-config"
    assert up["viaenv"].key == "sk-mine"
    assert up["anthropic"].base_url == "https://api.anthropic.com/v1"
    assert up["anthropic"].auth_header() == ("x-api-key", "sk-ant-auth")
    assert up["openai"].auth_header() == ("authorization", "Bearer sk-openai")
    # the container keeps only what no proxy can stand in for
    assert decided.env == {"OTHER": "plain"}
    assert decided.auth == {"github-copilot": auth["github-copilot"]}
    assert decided.config is not None
    dumped = json.dumps(decided.config)
    assert "sk-config" not in dumped and "sk-mine" not in dumped and "{env:MY_KEY}" not in dumped
    modes = {m.provider: m.mode for m in decided.modes}
    assert modes == {
        "fake": "proxied", "viaenv": "proxied", "anthropic": "proxied", "openai": "proxied",
        "github-copilot": "mounted", "OTHER": "passed",
    }  # fmt: skip
    run = decided.config_for_run("http://llm-proxy:8080", "cap")
    assert run is not None
    options = run["provider"]["fake"]["options"]
    assert options == {"baseURL": "http://llm-proxy:8080/p/fake", "apiKey": "cap"}
    inline = agent_config(decided.run_config("http://llm-proxy:8080", "cap"))
    assert inline["provider"]["openai"]["options"]["baseURL"] == "http://llm-proxy:8080/p/openai"
    assert inline["permission"] == "allow"


def test_what_cannot_be_proxied_keeps_todays_path() -> None:
    auth = {
        "anthropic": {"type": "oauth", "refresh": "r", "access": "a", "expires": 0},
        "mystery": {"type": "api", "key": "sk-mystery"},  # no base URL known anywhere
    }
    env = {"ANTHROPIC_API_KEY": "sk-unused", "GROQ_API_KEY": "sk-groq"}
    decided = plan(env, auth, None)
    assert sorted(decided.upstreams) == ["groq"]
    assert decided.upstreams["groq"].base_url == "https://api.groq.com/openai/v1"
    # the OAuth login wins for anthropic: the unused key stays out of the container
    assert decided.env == {}
    assert decided.auth == auth
    modes = {m.provider: m.mode for m in decided.modes}
    assert modes["anthropic"] == "mounted" and modes["mystery"] == "mounted"


def test_opencode_config_may_have_comments() -> None:
    text_ = '{\n  // a comment\n  "a": "http://x/y", /* more */ "b": [1, 2,],\n}\n'
    assert load_jsonc(text_) == {"a": "http://x/y", "b": [1, 2]}


def test_settings_of_the_proxy() -> None:
    s = Settings.from_environ({"AUTOCODE_AGENT_NETWORK": "internal"})
    assert (s.llm_proxy_host, s.llm_proxy_port, s.llm_proxy_url) == ("", 0, "")
    s = Settings.from_environ(
        {"AUTOCODE_LLM_PROXY_PORT": "8411", "AUTOCODE_LLM_PROXY_URL": "http://10.0.0.2:8411/"}
    )
    assert s.llm_proxy_url == "http://10.0.0.2:8411"
    with pytest.raises(SettingsError, match="AUTOCODE_LLM_PROXY_PORT"):
        Settings.from_environ({"AUTOCODE_LLM_PROXY_URL": "http://10.0.0.2:8411"})
    with pytest.raises(SettingsError, match="AUTOCODE_LLM_PROXY_URL"):
        Settings.from_environ({"AUTOCODE_LLM_PROXY_PORT": "1", "AUTOCODE_LLM_PROXY_URL": "ftp://x"})


# -- usage out of answers (pure) -----------------------------------------------
def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def test_usage_in_each_providers_shape() -> None:
    chat = sse({"choices": []}, {"choices": [], "usage": {"prompt_tokens": 10,
               "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 3}}})  # fmt: skip
    anthropic = sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 50, "output_tokens": 1,
         "cache_read_input_tokens": 7, "cache_creation_input_tokens": 2}}},
        {"type": "content_block_delta", "delta": {"text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 9}},
    )  # fmt: skip
    responses = sse(
        {"type": "response.created", "response": {"usage": None}},
        {"type": "response.completed", "response": {"usage": {"input_tokens": 30,
         "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}}}},
    )  # fmt: skip
    figures = []
    for body in (chat, anthropic, responses):
        meter = Meter("text/event-stream; charset=utf-8")
        for i in range(0, len(body), 7):  # split anywhere, as the network does
            meter.feed(body[i : i + 7])
        t = meter.finish()
        figures.append((t.input, t.output, t.reasoning, t.cache_read, t.cache_write))
    assert figures == [(10, 4, 0, 3, 0), (50, 9, 0, 7, 2), (30, 5, 2, 0, 0)]
    meter = Meter("application/json")
    meter.feed(b'{"usage": {"input_tokens": 8, ')
    meter.feed(b'"output_tokens": 2}}')
    assert (meter.finish().input, meter.tokens.output) == (8, 2)
    google = usage_of({"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1}})
    assert google is not None and (google.input, google.output) == (4, 1)


# -- the proxy, on loopback ----------------------------------------------------
@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(api_key=REAL) as server:
        yield server


@pytest.fixture
async def proxy() -> AsyncIterator[LLMProxy]:
    server = LLMProxy(host="127.0.0.1", port=0)
    await server.start()
    yield server
    await server.stop()


def chat(stream: bool = True, tools: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "scripted", "stream": stream,
                            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
    return body


async def test_the_proxy_swaps_the_capability_for_the_real_key(
    llm: ScriptedLLM, proxy: LLMProxy
) -> None:
    upstreams = {"fake": Upstream("fake", llm.base_url, REAL)}
    grant = proxy.grant(7, upstreams, lifetime=60)
    llm.script([text("Hello from the provider.")])
    url = f"{proxy.url}/p/fake/chat/completions"
    async with httpx.AsyncClient() as client:
        streamed = await client.post(
            url, json=chat(), headers={"Authorization": f"Bearer {grant.capability}"}
        )
        plain = await client.post(
            url, json=chat(stream=False, tools=False),
            headers={"Authorization": f"Bearer {grant.capability}"},
        )  # fmt: skip
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert "Hello from the provider." in streamed.text and streamed.text.endswith("[DONE]\n\n")
    assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["content"]
    seen = [r["headers"] for r in llm.requests]
    assert all(h["authorization"] == f"Bearer {REAL}" for h in seen)
    assert not any(grant.capability in json.dumps(h) for h in seen)
    assert grant.usage.requests == 2 and grant.usage.failed == 0
    assert (grant.usage.tokens.input, grant.usage.tokens.output) == (240, 60)
    assert proxy.revoke(grant) is grant.usage and proxy.live == 0


async def test_forged_stale_and_expired_capabilities_get_401(
    llm: ScriptedLLM, proxy: LLMProxy
) -> None:
    upstreams = {"fake": Upstream("fake", llm.base_url, REAL)}
    finished = proxy.grant(1, upstreams, lifetime=60)
    proxy.revoke(finished)
    short = proxy.grant(2, upstreams, lifetime=0.05)
    live = proxy.grant(3, upstreams, lifetime=60)
    await asyncio.sleep(0.1)
    url = f"{proxy.url}/p/fake/chat/completions"
    async with httpx.AsyncClient() as client:

        async def status(**headers: str) -> int:
            return (await client.post(url, json=chat(), headers=headers)).status_code

        assert await status(Authorization=f"Bearer {finished.capability}") == 401
        assert await status(Authorization=f"Bearer {short.capability}") == 401
        assert await status(Authorization="Bearer autocode-made-up") == 401
        assert await status(Authorization=f"Bearer {live.capability[:-1]}") == 401
        assert await status(**{"x-api-key": finished.capability}) == 401
        assert await status() == 401
        assert llm.requests == []  # nothing refused ever reached the provider
        answer = await client.post(
            f"{proxy.url}/p/other/chat/completions", json=chat(),
            headers={"Authorization": f"Bearer {live.capability}"},
        )  # fmt: skip
        assert answer.status_code == 404
        assert await status(Authorization=f"Bearer {live.capability}") == 200


async def test_a_spent_token_budget_stops_requests(llm: ScriptedLLM, proxy: LLMProxy) -> None:
    told: list[int] = []
    grant = proxy.grant(4, {"fake": Upstream("fake", llm.base_url, REAL)}, lifetime=60,
                        token_budget=100, on_spent=told.append)  # fmt: skip
    headers = {"Authorization": f"Bearer {grant.capability}"}
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{proxy.url}/p/fake/chat/completions", json=chat(),
                                  headers=headers)  # fmt: skip
        second = await client.post(f"{proxy.url}/p/fake/chat/completions", json=chat(),
                                   headers=headers)  # fmt: skip
    assert first.status_code == 200 and grant.usage.tokens.total == 150
    assert second.status_code == 403 and "budget" in second.json()["error"]["message"]
    assert len(llm.requests) == 1
    assert told == [150]  # the run hears of it: opencode does not stop on a 403


class Upstream2:
    """A provider that streams on command and records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.go = threading.Event()

        async def messages(request: Request) -> Response:
            body = await request.body()
            self.requests.append({"headers": dict(request.headers), "path": request.url.path,
                                  "query": request.url.query, "body": body})  # fmt: skip

            async def events() -> AsyncIterator[bytes]:
                yield (b'event: message_start\ndata: {"type":"message_start","message":'
                       b'{"usage":{"input_tokens":50,"output_tokens":1}}}\n\n')  # fmt: skip
                while not self.go.is_set():
                    await asyncio.sleep(0.01)
                yield (b'event: message_delta\ndata: {"type":"message_delta",'
                       b'"usage":{"output_tokens":7}}\n\n')  # fmt: skip

            return StreamingResponse(events(), media_type="text/event-stream")

        async def broken(request: Request) -> Response:
            key = request.headers.get("x-api-key", "")
            return JSONResponse({"error": f"overloaded; your key {key} is fine"}, 529)

        self.server = ServerThread(Starlette(routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/broken", broken, methods=["POST"]),
        ]))  # fmt: skip


async def test_streams_pass_unbuffered_with_the_providers_own_header(proxy: LLMProxy) -> None:
    upstream = Upstream2()
    with upstream.server:
        grant = proxy.grant(5, {"anthropic": Upstream(
            "anthropic", upstream.server.url + "/v1", REAL, "x-api-key")}, lifetime=60)  # fmt: skip
        headers = {"x-api-key": grant.capability, "anthropic-version": "2023-06-01",
                   "Accept-Encoding": "gzip"}  # fmt: skip
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream(
                "POST", f"{proxy.url}/p/anthropic/messages?beta=true", content=b'{"x":1}',
                headers=headers,
            ) as answer:  # fmt: skip
                chunks = answer.aiter_raw()
                began = time.monotonic()
                first = await chunks.__anext__()
                # the provider holds its second event back: the first one is here anyway
                assert b"message_start" in first and time.monotonic() - began < 2
                upstream.go.set()
                rest = b"".join([c async for c in chunks])
            assert b"message_delta" in rest
            failed = await client.post(f"{proxy.url}/p/anthropic/broken", headers=headers)
        sent = upstream.requests[0]
        assert sent["headers"]["x-api-key"] == REAL and "authorization" not in sent["headers"]
        assert sent["headers"]["anthropic-version"] == "2023-06-01"
        assert sent["headers"]["accept-encoding"] == "identity"
        assert sent["path"] == "/v1/messages" and sent["query"] == "beta=true"
        assert sent["body"] == b'{"x":1}'
        assert failed.status_code == 529  # passed on, with the echoed key masked
        assert failed.json() == {"error": "overloaded; your key *** is fine"}
        assert (grant.usage.tokens.input, grant.usage.tokens.output) == (50, 7)
        assert grant.usage.requests == 2 and grant.usage.failed == 1


async def test_an_unreachable_provider_is_a_502(proxy: LLMProxy) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    grant = proxy.grant(6, {"gone": Upstream("gone", f"http://127.0.0.1:{port}/v1", REAL)},
                        lifetime=60)  # fmt: skip
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{proxy.url}/p/gone/chat/completions", json=chat(),
            headers={"Authorization": f"Bearer {grant.capability}"},
        )  # fmt: skip
    assert answer.status_code == 502 and "ConnectError" in answer.json()["error"]["message"]
    assert REAL not in answer.text


async def test_the_runs_files_hold_no_key(tmp_path: Path, proxy: LLMProxy) -> None:
    config = tmp_path / "opencode.json"
    config.write_text(json.dumps({"provider": {"fake": {
        "npm": "@ai-sdk/openai-compatible",
        "options": {"baseURL": "http://127.0.0.1:9/v1", "apiKey": REAL},
    }}}))  # fmt: skip
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({
        "openai": {"type": "api", "key": "sk-auth-openai"},
        "copilot": {"type": "oauth", "refresh": "r", "access": "a"},
    }))  # fmt: skip
    access = prepare(
        ticket_id=9, agent_env={"ANTHROPIC_API_KEY": "sk-env-anthropic"},
        auth_path=str(auth), config_path=str(config), proxy=proxy,
        agent_url="http://llm-proxy:8080", folder=tmp_path / "run", owner=(1000, 1000),
        lifetime=60,
    )  # fmt: skip
    assert access.grant is not None and access.env == {}
    assert sorted(access.grant.upstreams) == ["anthropic", "fake", "openai"]
    assert access.config_file is not None and access.auth_file is not None
    written = access.config_file.read_text() + access.auth_file.read_text()
    written += json.dumps(access.providers)
    for secret in (REAL, "sk-auth-openai", "sk-env-anthropic"):
        assert secret not in written
    assert access.grant.capability in written and "http://llm-proxy:8080/p/fake" in written
    assert json.loads(access.auth_file.read_text()) == {
        "copilot": {"type": "oauth", "refresh": "r", "access": "a"}
    }
    assert stat.S_IMODE(access.config_file.stat().st_mode) == 0o600
    capability = access.grant.capability
    assert access.close() is not None and access.close() is None
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{proxy.url}/p/fake/chat/completions", json=chat(),
                                   headers={"Authorization": f"Bearer {capability}"})  # fmt: skip
    assert answer.status_code == 401


# -- the agents' network, on the real engine -----------------------------------
def host_addresses(runner: DockerRunner) -> list[str]:
    """Addresses of this machine a container might try: docker0's and the outward one."""
    found = [runner.bridge_gateway()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent: it only picks a route
            found.append(s.getsockname()[0])
        except OSError:
            pass
    return found


def probe_script(targets: list[tuple[str, int]], capability: str = "") -> str:
    """sh for the container: try each address; with a capability, HTTP through the relay too."""
    lines = []
    for host, port in targets:
        lines.append(
            f"timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null "
            f"&& echo 'open {host}:{port}' || echo 'closed {host}:{port}' &"
        )  # all at once: a dropped packet costs the whole timeout
    for name, cap in (("forged", "autocode-made-up"), ("live", capability)) if capability else ():
        lines.append(
            f"timeout 10 bash -c 'exec 3<>/dev/tcp/{RELAY_HOST}/{RELAY_PORT}; "
            f'printf "GET /p/fake/models HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n" '
            f'"$1" >&3; head -1 <&3' + "' _ " + f"{cap} | sed 's/^/{name} /'"
        )
    return "\n".join([*lines, "wait"])


def run_in(runner: DockerRunner, workspace: Path, network: str, script: str,
           relay: str = "") -> tuple[int | None, list[str]]:  # fmt: skip
    workspace.mkdir(exist_ok=True)
    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    lines: list[str] = []
    spec = ContainerSpec(
        image=RUNNER_IMAGE, command=["sh", "-c", script], workspace=workspace,
        ticket_id=990101, network=network, memory="256m", cpus=0.5, pids=64, timeout=90,
        idle_timeout=60, user=container_user(), llm_relay=relay,
    )  # fmt: skip
    result = asyncio.run(runner.run(spec, lines.append, asyncio.Event()))
    return result.exit_code, lines


def test_on_the_internal_network_only_the_proxy_is_reachable(
    docker_runner: DockerRunner, tmp_path: Path
) -> None:
    with ScriptedLLM(api_key=REAL) as llm:
        holder: dict[str, Any] = {}
        ready = threading.Event()
        done = threading.Event()

        async def serve() -> None:
            proxy = LLMProxy(host=docker_runner.bridge_gateway(), port=0)
            await proxy.start()
            holder["proxy"] = proxy
            holder["grant"] = proxy.grant(1, {"fake": Upstream("fake", llm.base_url, REAL)},
                                          lifetime=120)  # fmt: skip
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.05)
            await proxy.stop()

        thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        thread.start()
        assert ready.wait(10)
        proxy: LLMProxy = holder["proxy"]
        target = f"{proxy.host}:{proxy.port}"
        # a relay left by a bot that died: swept when a relay is made
        gone = subprocess.Popen(["true"])
        gone.wait()
        stale = docker_runner.client.containers.create(
            RUNNER_IMAGE, ["sleep", "600"], entrypoint=[], network_mode="none",
            labels={"autocode.role": "llm-relay",
                    OWNER_LABEL: relay_owner(gone.pid)},
        )  # fmt: skip
        try:
            stale.start()
            others = [(h, proxy.port) for h in host_addresses(docker_runner)]
            others += [("127.0.0.1", int(urlsplit(llm.url).port or 0)), ("1.1.1.1", 443)]
            script = probe_script(others, holder["grant"].capability)
            _, lines = run_in(docker_runner, tmp_path / "ws", "internal", script, target)
            # the agent reaches nothing but the relay, which reaches the proxy
            for host, port in others:
                assert f"closed {host}:{port}" in lines, lines
            assert any(x.startswith("forged HTTP/1.1 401") for x in lines), lines
            assert any(x.startswith("live HTTP/1.1 200") for x in lines), lines
            assert llm.requests == []  # /models is no chat request; it was proxied, not logged
            with pytest.raises(docker.errors.NotFound):
                stale.reload()
            # on the default bridge the proxy's own address is open (and so is the host)
            bridge = probe_script([(proxy.host, proxy.port)])
            _, on_bridge = run_in(docker_runner, tmp_path / "ws2", "bridge", bridge)
            assert f"open {proxy.host}:{proxy.port}" in on_bridge
            _, isolated = run_in(docker_runner, tmp_path / "ws3", "none",
                                 probe_script([(proxy.host, proxy.port)]))  # fmt: skip
            assert f"closed {proxy.host}:{proxy.port}" in isolated
        finally:
            docker_runner.egress.remove_relay(target)
            with contextlib.suppress(docker.errors.DockerException):
                stale.remove(force=True)
            done.set()
            thread.join(10)
    network = docker_runner.client.networks.get(AGENT_NETWORK)
    assert network.attrs["Internal"] and network.attrs["Options"][INHIBIT] == "true"
    assert docker_runner.running_for(990101) == []
    names = [c.name for c in docker_runner.client.containers.list(all=True)]
    assert relay_name(target) not in names


def process_in_another_pid_namespace(pid: int) -> tuple[subprocess.Popen[bytes], int, int]:
    """A live process numbered `pid` in a pid namespace of its own (unshare): as a bot in a
    container is, whose pid numbers mean nothing in ours.

    Returns the `unshare` process (its end ends the namespace), the namespace's inode and the
    process's pid on this side.
    """
    if os.getuid() != 0:
        pytest.fail("this test makes a pid namespace: it runs as root (as CI does)")
    # in there, the next pid handed out is set to be `pid` (ns_last_pid is the namespace's own)
    script = f"echo {pid - 1} > /proc/sys/kernel/ns_last_pid; sleep 300 & wait"
    unshare = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines()
                )
                if fields["NSpid"].split() == [entry.name, str(pid)]:
                    return unshare, os.stat(entry / "ns" / "pid").st_ino, int(entry.name)
        if unshare.poll() is not None:
            break
        time.sleep(0.05)
    unshare.kill()
    unshare.wait()
    pytest.fail(f"no process numbered {pid} appeared in a new pid namespace", pytrace=False)


def test_relays_are_taken_for_dead_only_by_their_own_pid_namespace(
    docker_runner: DockerRunner,
) -> None:
    """A relay is swept (when a relay is made) if it is stopped, or if its owner label names
    this host, this process's pid namespace and a pid no process has; no other.

    Another bot on this host in a pid namespace of its own (the Compose worker: the host's
    network and name, its own pids) is played by a real process in a new pid namespace,
    numbered there as a pid that is free in ours.
    """
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid: free in our namespace
    here = socket.gethostname()
    ours = os.stat("/proc/self/ns/pid").st_ino
    unshare, theirs, _ = process_in_another_pid_namespace(gone.pid)
    assert theirs != ours
    owners = {
        "their live bot": f"{here}:{theirs}:{gone.pid}",
        "our dead bot": relay_owner(gone.pid),
        "our live bot": relay_owner(),
        "another host": f"elsewhere-{here}:{ours}:{gone.pid}",
        "an older version's": f"{here}:{gone.pid}",  # hostname:pid, namespace unknown
    }
    assert owners["our dead bot"] == f"{here}:{ours}:{gone.pid}"
    client = docker_runner.client
    stale: dict[str, Any] = {}
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{free.getsockname()[1]}"  # a relay's name of its own
    try:
        for what, owner in [*owners.items(), ("an older version's, stopped", f"{here}:1")]:
            stale[what] = client.containers.create(
                RUNNER_IMAGE, ["sleep", "600"], entrypoint=[], network_mode="none",
                labels={"autocode.role": "llm-relay", OWNER_LABEL: owner},
            )  # fmt: skip
            if what != "an older version's, stopped":
                stale[what].start()
        assert docker_runner.egress.relay(target, RUNNER_IMAGE)  # sweeps before it makes one
        left = set()
        for what, container in stale.items():
            with contextlib.suppress(docker.errors.NotFound):
                container.reload()
                left.add(what)
        assert left == {"their live bot", "our live bot", "another host", "an older version's"}
    finally:
        docker_runner.egress.remove_relay(target)
        for container in stale.values():
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        unshare.kill()
        unshare.wait()
