"""What the LLM proxy adds: per request and per streamed answer, against going direct.

    python -m bench.proxy [--requests 300] [--relay]

The scripted LLM (tests/fakes/llm.py) plays the provider, in its own
process; the proxy (bot/llm/proxy.py) runs in another, with one grant, as
in a run; the client is this process. Each case is measured direct to the
scripted LLM and through the proxy, one request at a time on a kept-alive
connection, alternating so both see the same machine:

- `small`: a non-streamed request without tools (opencode's title request),
  the provider answering one JSON document;
- `small plain`: the same from an httpx client with its defaults (Nagle
  on), as a provider SDK sends it;
- `stream`: a streamed answer to a request the size opencode sends (~31 KB
  of system prompt and tool schemas), timed to the first byte and to
  `[DONE]`.

With `--relay` it also times, from inside a container of the runner image,
fresh-connection requests through the `internal` network's relay against
the same requests straight to the proxy from Docker's default bridge (needs
the Docker engine and the runner image).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]

LLM = """
import socket, sys, threading, uvicorn
from tests.fakes.llm import ScriptedLLM, text
llm = ScriptedLLM(api_key="sk-bench-real-key")
llm.on_tools = lambda body: text("streamed answer " * 256)  # ~4 KB of text per answer
# its app on a socket with Nagle off: tests/fakes/server.py makes its socket without
# IPPROTO_TCP, so asyncio leaves Nagle on and each answer waits ~40 ms for a delayed ACK
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(llm._app(), log_level="warning", lifespan="off"))
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
sys.stdin.read()
server.should_exit = True
"""

PROXY = """
import asyncio, logging, sys
logging.disable(logging.WARNING)
from bot.llm import LLMProxy, Upstream

async def main():
    proxy = LLMProxy(host=sys.argv[2], port=0)
    await proxy.start()
    grant = proxy.grant(1, {"fake": Upstream("fake", sys.argv[1], "sk-bench-real-key")},
                        lifetime=3600)
    print(proxy.url, grant.capability, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await proxy.stop()

asyncio.run(main())
"""


def spawn(code: str, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()


def body(tools: bool, pad: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "scripted",
        "stream": tools,
        "messages": [
            {"role": "system", "content": "x" * pad},
            {"role": "user", "content": "hello"},
        ],
    }
    if tools:
        data["tools"] = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
    return data


def kept_alive() -> httpx.Client:
    """A kept-alive client with Nagle off, as Bun's fetch (opencode) has it.

    With Nagle on, httpx's separate writes of headers and body meet the
    server's delayed ACK and every direct request waits ~40 ms, which would
    swamp the figure this bench is after.
    """
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return httpx.Client(timeout=30, transport=httpx.HTTPTransport(socket_options=nodelay))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(client: httpx.Client, url: str, auth: str, kind: str) -> tuple[float, float]:
    """(seconds to the first byte, seconds to the end) of one request."""
    headers = {"Authorization": f"Bearer {auth}"}
    payload = body(tools=kind == "stream", pad=31_000 if kind == "stream" else 0)
    began = time.perf_counter()
    with client.stream("POST", url + "/chat/completions", json=payload, headers=headers) as r:
        first = 0.0
        for _ in r.iter_raw():
            if not first:
                first = time.perf_counter() - began
        assert r.status_code == 200, r.status_code
    return first, time.perf_counter() - began


def line(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{label:<28} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   "
        f"mean {statistics.fmean(ms):7.2f} ms"
    )


def relay_figures(proxy_url: str, capability: str, requests: int) -> None:
    """Fresh-connection requests from a container, to the answer's first bytes (its status).

    Through the relay, and straight to the proxy from the default bridge:
    the difference is what the relay adds.
    """
    import asyncio

    from bot.runner.docker import DockerRunner, container_user
    from bot.runner.spec import RELAY_HOST, RELAY_PORT, ContainerSpec

    runner = DockerRunner(os.environ.get("DOCKER_HOST", ""))
    image = os.environ.get("AUTOCODE_TEST_RUNNER_IMAGE", "autocode-runner:latest")
    target = proxy_url.split("//", 1)[1]
    host, port = target.split(":")
    loop = (
        "for i in $(seq {n}); do s=$(date +%s%N); "
        "exec 3<>/dev/tcp/{host}/{port}; "
        'printf "GET /p/fake/models HTTP/1.0\\r\\nAuthorization: Bearer {cap}\\r\\n\\r\\n" >&3; '
        "head -c 12 <&3 >/dev/null; e=$(date +%s%N); exec 3<&-; echo $(( (e-s)/1000 )); done"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, network, dest_host, dest_port, relay in (
            ("container → proxy (bridge)", "bridge", host, port, ""),
            ("container → relay → proxy", "internal", RELAY_HOST, str(RELAY_PORT), target),
        ):
            ws = Path(tmp) / network
            ws.mkdir()
            if os.getuid() == 0:
                os.chown(ws, 1000, 1000)
            script = loop.format(n=requests, host=dest_host, port=dest_port, cap=capability)
            spec = ContainerSpec(
                image=image, command=["bash", "-c", script], workspace=ws, ticket_id=990301,
                network=network, memory="256m", cpus=1.0, pids=64, timeout=300,
                idle_timeout=120, user=container_user(), llm_relay=relay,
            )  # fmt: skip
            lines: list[str] = []
            asyncio.run(runner.run(spec, lines.append, asyncio.Event()))
            micros = [int(x) / 1e6 for x in lines if x.strip().isdigit()]
            print(line(label, micros[5:] or micros))
        runner.egress.remove_relay(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--relay", action="store_true", help="also through the internal relay")
    args = parser.parse_args()

    llm, (llm_url,) = spawn(LLM)
    host = "127.0.0.1"
    if args.relay:
        from bot.runner.docker import DockerRunner

        host = DockerRunner(os.environ.get("DOCKER_HOST", "")).bridge_gateway()
    proxy, (proxy_url, capability) = spawn(PROXY, llm_url, host)
    try:
        results: dict[str, list[float]] = {}
        with contextlib.ExitStack() as stack:
            direct, proxied = (stack.enter_context(kept_alive()) for _ in range(2))
            plain = [stack.enter_context(httpx.Client(timeout=30)) for _ in range(2)]
            clients = {
                "small": (direct, proxied),
                "small plain": (plain[0], plain[1]),
                "stream": (direct, proxied),
            }
            for kind, (to_llm, to_proxy) in clients.items():
                targets = (
                    ("direct", to_llm, llm_url, "sk-bench-real-key"),
                    ("proxy", to_proxy, f"{proxy_url}/p/fake", capability),
                )
                for _ in range(20):  # warm both paths
                    for _, client, url, auth in targets:
                        measure(client, url, auth, kind)
                for _ in range(args.requests):
                    for name, client, url, auth in targets:
                        first, total = measure(client, url, auth, kind)
                        results.setdefault(f"{kind} {name} total", []).append(total)
                        if kind == "stream":
                            results.setdefault(f"{kind} {name} first byte", []).append(first)
        print(f"LLM proxy overhead, {args.requests} requests per case, 127.0.0.1 "
              f"(proxy on {host})\n")  # fmt: skip
        for key in (
            "small direct total", "small proxy total",
            "small plain direct total", "small plain proxy total",
            "stream direct first byte", "stream proxy first byte",
            "stream direct total", "stream proxy total",
        ):  # fmt: skip
            print(line(key, results[key]))
        print()
        for kind, what in (
            ("small", "total"), ("small plain", "total"), ("stream", "first byte"),
            ("stream", "total"),
        ):  # fmt: skip
            added = [
                p - d
                for p, d in zip(
                    results[f"{kind} proxy {what}"], results[f"{kind} direct {what}"], strict=True
                )
            ]
            print(line(f"added: {kind} {what}", added))
        size = len(json.dumps(body(tools=True, pad=31_000)))
        print(f"\n(stream request body {size / 1024:.0f} KB, answer ~4 KB of SSE)")
        if args.relay:
            print()
            relay_figures(proxy_url, capability, min(args.requests, 200))
    finally:
        for proc in (proxy, llm):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
