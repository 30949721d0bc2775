"""A small keep-alive HTTP/1.1 load generator on raw asyncio streams.

Python HTTP clients cost more CPU per request than the servers measured here,
so the load side speaks the protocol directly: pre-built requests, N
connections, one request in flight per connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Result:
    count: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    length = 0
    for line in header_lines:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def paced(host: str, port: int, requests: Sequence[bytes], rate: float) -> Result:
    """Send the requests at `rate` per second on one keep-alive connection."""
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    try:
        for index, request in enumerate(requests):
            wait = start + index / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            began = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - began)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()
    return Result(len(latencies), time.perf_counter() - start, latencies, statuses)


async def run(host: str, port: int, requests: Sequence[bytes], connections: int) -> Result:
    """Send every request once, spread over `connections` keep-alive connections."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    request = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                began = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return Result(len(latencies), time.perf_counter() - began, latencies, statuses)
