"""Containment: the agent holds nothing worth stealing, and never runs unwatched.

The whole bot, the real opencode in the real runner image on the real
Docker engine, on the `internal` network. The scripted LLM is the real
provider: its key is the real key, given to the bot in the opencode config
with the provider's real base URL, exactly as an operator would. The agent
must see only the proxy's address and its run's capability.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.runner.docker import DockerRunner, store_key
from bot.runner.spec import RELAY_HOST, RELAY_PORT
from bot.store import open_store
from tests.e2e.conftest import REPO, SECRET, Bot, labeled_payload
from tests.fakes.llm import ScriptedLLM, hang, text, tool
from tests.webhooks import send

REAL_KEY = f"sk-live-{secrets.token_hex(16)}"  # the scripted provider's own key
ANTHROPIC_KEY = f"sk-ant-api03-{secrets.token_hex(16)}"  # an auth.json API key
OPENAI_KEY = f"sk-proj-{secrets.token_hex(16)}"  # an AUTOCODE_AGENT_ENV key
OAUTH_ACCESS = f"oauth-access-{secrets.token_hex(8)}"  # a login: mounted, as documented
CAPABILITY = re.compile(r"autocode-[A-Za-z0-9_-]{43}")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: containment is about the container, not the store."""
    return f"sqlite:///{tmp_path / 'autocode.db'}"


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(api_key=REAL_KEY) as server:
        yield server


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(make_bot: Callable[..., Bot], docker_runner: DockerRunner, tmp_path: Path,
          **env: str) -> Bot:  # fmt: skip
    """A bot on the internal network, with keys in all three places a key can be."""
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({
        "anthropic": {"type": "api", "key": ANTHROPIC_KEY},
        "github-copilot": {"type": "oauth", "refresh": "oauth-refresh", "access": OAUTH_ACCESS,
                           "expires": 0},
    }))  # fmt: skip
    host = docker_runner.bridge_gateway()
    bot = make_bot(
        AUTOCODE_AGENT_NETWORK="internal",
        AUTOCODE_LLM_PROXY_PORT=str(free_port(host)),
        AUTOCODE_OPENCODE_AUTH=str(auth),
        AUTOCODE_AGENT_ENV="OPENAI_API_KEY",
        OPENAI_API_KEY=OPENAI_KEY,
        **env,
    )
    bot.extra["proxy"] = f"http://{host}:{bot.settings.llm_proxy_port}"
    return bot


def prepare(gh: Any) -> None:
    gh.add_repo(REPO, {"README.md": "# Hello World\n", "src/app.py": "print('hi')\n"})
    gh.set_permission(REPO, "Codertocat", "admin")
    for number in (1, 2):
        gh.add_issue(REPO, number, title=f"Task {number}", body="Do it.", user="Codertocat")


def probe(name: str, capability_expr: str) -> str:
    """sh: a request through the relay with a capability; prints `<name> <status line>`."""
    return (
        f"timeout 10 bash -c 'exec 3<>/dev/tcp/{RELAY_HOST}/{RELAY_PORT}; printf "
        '"GET /p/fake/models HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n" "$1" >&3; '
        f"head -1 <&3' _ {capability_expr} | sed 's/^/{name} /'"
    )


def closed(host: str, port: int) -> str:
    return (
        f"(timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null "
        f"&& echo 'reach {host}:{port} open' || echo 'reach {host}:{port} closed')"
    )


def seen_by_llm(llm: ScriptedLLM) -> str:
    return "\n".join(str(r["body"]) for r in llm.requests)


def test_the_agent_holds_no_provider_key(
    make_bot: Callable[..., Bot], docker_runner: DockerRunner, tmp_path: Path
) -> None:
    """A prompt-injected agent dumps everything and tries the proxy: no key, 401s."""
    bot = start(make_bot, docker_runner, tmp_path)
    gh, llm = bot.github, bot.llm
    prepare(gh)
    proxy_host, proxy_port = bot.extra["proxy"].rsplit("//", 1)[1].split(":")
    llm_port = int(llm.url.rsplit(":", 1)[1])
    snoop = "; ".join([
        "env", "echo ---", "ls -la /run/autocode ~ ~/.local/share/opencode 2>&1",
        "cat /run/autocode/opencode.json /run/autocode/auth.json 2>&1",
        "cat ~/.local/share/opencode/auth.json ~/.config/opencode/* 2>&1",
        "cat /proc/1/environ | tr '\\0' '\\n'",
        "grep -rsoh 'sk-live-[0-9a-f]*\\|sk-ant-api03-[0-9a-f]*\\|sk-proj-[0-9a-f]*' / "
        "--exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -5",
        closed(proxy_host, int(proxy_port)), closed("127.0.0.1", llm_port),
        closed(proxy_host, llm_port), closed("1.1.1.1", 443),
        probe("forged", "autocode-made-up-capability"),
        "echo snoop-done",
    ])  # fmt: skip
    llm.script([
        tool("bash", command=snoop, description="Look around"),
        tool("write", filePath="notes.txt", content="looked\n"),
        text("Done looking."),
    ])  # fmt: skip
    first = bot.wait(bot.deliver("issues", labeled_payload(gh, 1)))
    assert first["state"] == "succeeded", (first["error"], first)
    seen = seen_by_llm(llm)
    assert "snoop-done" in seen  # the dump really reached the model
    stale = set(CAPABILITY.findall(seen))
    assert len(stale) == 1, stale  # the agent saw its run's capability, and only that
    (stale_capability,) = stale
    for line in (f"reach {proxy_host}:{proxy_port} closed",
                 f"reach 127.0.0.1:{llm_port} closed", f"reach {proxy_host}:{llm_port} closed",
                 "reach 1.1.1.1:443 closed", "forged HTTP/1.1 401"):  # fmt: skip
        assert line in seen, line
    assert f"http://{RELAY_HOST}:{RELAY_PORT}/p/fake" in seen  # what the agent's config says

    # the run is over: its capability is dead, on the proxy's own port too
    answer = httpx.post(
        f"{bot.extra['proxy']}/p/fake/chat/completions",
        json={"model": "scripted", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {stale_capability}"},
    )
    assert answer.status_code == 401
    requests_before = len(llm.requests)

    # a second run tries the first run's capability, a made-up one, and its own
    llm.script([
        tool("bash", description="Try the proxy", command="; ".join([
            probe("stale", stale_capability),
            probe("forged", "autocode-" + "A" * 43),
            probe("own", "$(printenv OPENCODE_CONFIG_CONTENT | grep -o 'autocode-[A-Za-z0-9_-]*'"
                  " | head -1)"),
            "echo probes-done",
        ])),
        text("Tried."),
    ])  # fmt: skip
    second = bot.wait(bot.deliver("issues", labeled_payload(gh, 2)))
    assert second["state"] == "succeeded", (second["error"], second)
    results = "\n".join(llm.tool_results())
    assert "probes-done" in results
    assert "stale HTTP/1.1 401" in results and "forged HTTP/1.1 401" in results
    assert "own HTTP/1.1 200" in results  # a live capability does pass: the proxy is the way

    # nothing the model saw and nothing the bot logged holds a real key or a capability
    seen = seen_by_llm(llm)
    for key in (REAL_KEY, ANTHROPIC_KEY, OPENAI_KEY):
        assert key not in seen
        assert not any(key in line for line in bot.logs.lines)
    for capability in set(CAPABILITY.findall(seen)):
        assert not any(capability in line for line in bot.logs.lines)
    assert OAUTH_ACCESS in seen  # an OAuth login keeps the read-only mount (README: "mounted")
    # every request reached the provider through the proxy, with the real key swapped in
    assert len(llm.requests) > requests_before
    assert all(r["headers"]["authorization"] == f"Bearer {REAL_KEY}" for r in llm.requests)
    # the proxy counted each run's requests and usage (the run's log says so)
    store = open_store(bot.settings)
    try:
        for ticket in (first, second):
            counted = [x.message for x in store.logs(ticket["id"]) if x.kind == "llm"]
            assert len(counted) == 1 and re.match(r"[1-9]\d* LLM requests", counted[0]), counted
            assert re.search(r"[1-9]\d* input \+ [1-9]\d* output tokens", counted[0])
    finally:
        store.close()


def comment(bot: Bot, body: str, number: int) -> int:
    payload = bot.github.payload(
        "issue_comment/created.json", repo=REPO, number=number, sender="Codertocat", comment=body
    )
    response = send(bot.url, "issue_comment", payload, SECRET)
    assert response.status_code == 202, response.text
    return int(response.json()["ticket"])


def test_a_silent_agent_is_stopped_by_the_watchdog(
    make_bot: Callable[..., Bot], docker_runner: DockerRunner, tmp_path: Path
) -> None:
    idle = 10
    bot = start(make_bot, docker_runner, tmp_path, AUTOCODE_IDLE_TIMEOUT=str(idle))
    gh, llm = bot.github, bot.llm
    prepare(gh)
    arrivals: list[float] = []
    llm.on_request = lambda record: arrivals.append(float(record["time"]))
    llm.script([tool("bash", command="echo step-one", description="First step"), hang()])
    progress: list[str] = []
    try:
        ticket_id = bot.deliver("issues", labeled_payload(gh, 1))
        deadline = time.monotonic() + 180
        while bot.ticket(ticket_id)["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, "the run did not end"
            progress += [c["body"] for c in gh.issue_comments(REPO, 1)
                         if c["user"]["login"] == gh.bot_login]  # fmt: skip
            time.sleep(0.5)
        ticket = bot.ticket(ticket_id)
    finally:
        llm.release()
    assert ticket["state"] == "timed_out", ticket
    hung_at = arrivals[-1]  # the request whose answer never came
    assert ticket["finished_at"] - hung_at <= idle + 5, ticket["finished_at"] - hung_at
    # the progress comment showed elapsed time and the last step while it ran
    working = [b for b in progress if "is working on this" in b and "echo step-one" in b]
    assert working and re.search(r"working on this · \d+s", working[-1])
    final = next(c["body"] for c in gh.issue_comments(REPO, 1)
                 if c["user"]["login"] == gh.bot_login)  # fmt: skip
    assert "went silent" in final and f"{idle}s" in final and "bash echo step-one" in final
    run = gh.find_check_runs(REPO, "Auto-Code")[0]
    assert run["status"] == "completed" and run["conclusion"] == "timed_out"
    assert "went silent" in run["output"]["summary"]
    store = store_key(bot.settings.database_url)
    mine = [f"autocode.ticket={ticket_id}", f"autocode.store={store}"]
    assert docker_runner.client.containers.list(all=True, filters={"label": mine}) == []


def test_ask_on_a_fork_answers_and_pushes_nothing(
    make_bot: Callable[..., Bot], docker_runner: DockerRunner, tmp_path: Path
) -> None:
    bot = start(make_bot, docker_runner, tmp_path)
    gh, llm = bot.github, bot.llm
    prepare(gh)
    gh.allow_anonymous_git = True  # a public fork: anyone may clone it, as on GitHub
    fork = "mallory/Hello-World"
    gh.add_repo(fork, {}, fork_of=REPO, installation_id=0)
    gh.commit_file(fork, "evil", "src/app.py", "print('from the fork')\n", "Change it")
    gh.add_pull(REPO, 3, title="From a fork", body="Please merge.", user="mallory", head="evil",
                head_repo=fork)  # fmt: skip
    before = {r: dict(gh.repo(r).git.branches()) for r in (REPO, fork)}
    llm.script([
        tool("bash", command="cat src/app.py; touch x 2>&1 || echo read-only",
             description="Read"),
        text("It prints 'from the fork'."),
    ])  # fmt: skip
    ticket = bot.wait(comment(bot, "/opencode ask what does src/app.py print?", 3))
    assert ticket["state"] == "succeeded" and ticket["conclusion"] == "neutral", ticket["error"]
    results = "\n".join(llm.tool_results())
    assert "print('from the fork')" in results  # the fork's head, not the base branch
    assert "Read-only file system" in results or "read-only" in results
    answer = [c for c in gh.issue_comments(REPO, 3) if c["user"]["login"] == gh.bot_login]
    assert len(answer) == 1 and "It prints 'from the fork'." in answer[0]["body"]
    assert {r: dict(gh.repo(r).git.branches()) for r in (REPO, fork)} == before
    assert not any(r.get("service") == "git-receive-pack" for r in gh.requests)
    fetched = [r for r in gh.requests if r.get("service") == "git-upload-pack"]
    assert fetched and all(r["path"].startswith(f"/{fork}.git/") for r in fetched)
    assert all(r["auth"] == "none" for r in fetched)  # anonymous: no token went to the fork
    assert sorted(n for (repo, n) in gh.pulls if repo == REPO) == [3]
    run = gh.find_check_runs(REPO, "Auto-Code")[-1]
    assert run["conclusion"] == "neutral" and "from the fork" in run["output"]["text"]
    assert run["head_sha"] == gh.branch_sha(fork, "evil")
    # anything else on a fork is still refused: the App may push only to its own repository
    refused = bot.wait(comment(bot, "/opencode polish this", 3))
    assert refused["state"] == "failed" and "fork" in (refused["error"] or "")
