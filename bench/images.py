"""What a repository's own image costs: the derived agent image, built and then cached.

    python -m bench.images [--network host]

A dev container whose Dockerfile installs Python and pytest on the local
`debian:bookworm-slim` (made unique, so nothing is cached from before) is
prepared three times on the local engine: the first time (the dev
container's build and the derived image's), the second (all cached), and
the derived image alone from an image that is already there. Prints seconds
and the images' sizes; removes what it made.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from bot.runner.docker import DockerRunner
from bot.runner.recipe import BuildRecipe

RUNNER_IMAGE = "autocode-runner:latest"
DOCKERFILE = """\
FROM debian:bookworm-slim
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      python3 python3-pytest \\
 && rm -rf /var/lib/apt/lists/*
LABEL bench={nonce}
"""


def size_mb(image: str) -> float:
    done = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout.strip()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--network", default="host", help="the builds' network (host here)")
    args = parser.parse_args()
    runner = DockerRunner()
    made: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        (tree / ".devcontainer").mkdir()
        (tree / ".devcontainer" / "Dockerfile").write_text(
            DOCKERFILE.format(nonce=secrets.token_hex(4))
        )
        build = BuildRecipe(".devcontainer/Dockerfile", ".")
        try:
            first = runner.prepare_image("bench/app", RUNNER_IMAGE, build=build,
                                         work_tree=tree, network=args.network)  # fmt: skip
            made.append(first.image)
            second = runner.prepare_image("bench/app", RUNNER_IMAGE, build=build,
                                          work_tree=tree, network=args.network)  # fmt: skip
            base = f"autocode-bench-base:{secrets.token_hex(4)}"
            subprocess.run(
                ["docker", "build", "-q", "-t", base, "-"],
                check=True,
                capture_output=True,
                input=b"FROM debian:bookworm-slim\nLABEL b=1\n",
            )
            made.append(base)
            plain = runner.prepare_image("bench/app", RUNNER_IMAGE, image=base,
                                         network=args.network)  # fmt: skip
            made.append(plain.image)
            rows = [
                ("dev container: Dockerfile build + derived image", first.seconds, first.built),
                ("dev container again (cached)", second.seconds, second.built),
                ("an existing image: derived image alone", plain.seconds, plain.built),
            ]
            out = [f"{'seconds':<50}{'':>8}  built"]
            out += [f"{name:<50}{seconds:>8.2f}  {built}" for name, seconds, built in rows]
            out.append(f"derived image (Python dev container): {size_mb(first.image):.0f} MB; "
                       f"runner image: {size_mb(RUNNER_IMAGE):.0f} MB")  # fmt: skip
            sys.stdout.write("\n".join(out) + "\n")
        finally:
            for image in reversed(made):
                subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


if __name__ == "__main__":
    main()
