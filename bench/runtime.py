"""What gVisor costs: runc and runsc side by side, on one engine.

    python -m bench.runtime [--starts 10] [--runs 3] [--docker-host unix://…]

Without `--docker-host`, starts a private dockerd (its own socket, data and
exec roots, and a bridge of its own; needs root) with `runsc` registered as
the README says, and copies the runner image into it. Measures, under each
runtime:

- container start: create + start of a hardened runner-image container that
  runs `true`, and the whole create → removed, over `--starts` containers;
- the whole scripted run: bench.e2e's ticket (signed webhook → completed
  check run, the real opencode writing one file) over `--runs` tickets.

Prints medians in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.e2e import measure
from bot.runner.docker import DockerRunner, container_user
from bot.runner.spec import ContainerSpec

RUNNER_IMAGE = "autocode-runner:latest"
RUNTIMES = ("runc", "runsc")


def starts(runner: DockerRunner, runtime: str, count: int) -> tuple[float, float]:
    """Median create+start and create→removed seconds of `count` trivial containers."""
    started, whole = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(count):
            spec = ContainerSpec(
                image=RUNNER_IMAGE,
                command=["true"],
                workspace=Path(tmp),
                ticket_id=990900 + n,
                network="none",
                user=container_user(),
                timeout=60,
                idle_timeout=60,
                runtime=runtime,
                role="bench",
            )
            exit_ = asyncio.run(runner.run(spec, lambda _line: None, asyncio.Event()))
            if exit_.exit_code != 0:
                raise SystemExit(f"{runtime}: the container exited {exit_.exit_code}")
            started.append(exit_.start_seconds)
            whole.append(exit_.seconds)
    return statistics.median(started), statistics.median(whole)


@contextlib.contextmanager
def engine(docker_host: str) -> Iterator[str]:
    if docker_host:
        yield docker_host
        return
    from tests import engines

    with engines.private_engine(
        "acbr-", 217, runtimes={"runsc": engines.RUNSC}, images=(RUNNER_IMAGE,)
    ) as made:
        yield made.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--docker-host", default="", help="an engine with runsc registered")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    with engine(args.docker_host) as url:
        runner = DockerRunner(url)
        for runtime in RUNTIMES:
            start, whole = starts(runner, runtime, args.starts)
            timed = measure(args.runs, DOCKER_HOST=url, AUTOCODE_AGENT_RUNTIME=runtime)
            rows[runtime] = [
                start,
                whole,
                statistics.median(r["container_start"] for r in timed),
                statistics.median(r["agent"] for r in timed),
                statistics.median(r["total"] for r in timed),
            ]
    labels = (
        "container create+start",
        "container create→removed",
        "run: agent container start",
        "run: agent (opencode's time)",
        "run: webhook → check run",
    )
    out = [f"{'median seconds':<30}" + "".join(f"{r:>10}" for r in RUNTIMES)]
    for i, label in enumerate(labels):
        out.append(f"{label:<30}" + "".join(f"{rows[r][i]:>10.2f}" for r in RUNTIMES))
    out.append(f"containers: {args.starts} per runtime; scripted runs: {args.runs} per runtime")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
