"""`autocode images`: the derived agent images, listed or (--prune) removed.

A derived image is a repository's own image plus what the agent needs
(`bot.runner.catalog` lists and prunes them); the settings and the words
come from `bot.cli.commands`, as for every other command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import DockerUnavailable
from ..logs import configure
from .commands import _settings, say


def cmd_images(args: argparse.Namespace) -> int:
    """List the derived agent images, or (--prune) remove the unused ones."""
    import json
    from dataclasses import asdict

    from ..runner.catalog import derived_images, table
    from ..runner.docker import DockerRunner

    if args.older_than < 0 or (args.older_than and not args.prune):
        say("autocode: --older-than takes a number of days >= 0, with --prune")
        return 2
    settings = _settings(args)
    configure(settings.log_level, settings.log_json)
    runner = DockerRunner.of(settings)
    try:
        runner.ping()
    except DockerUnavailable as exc:
        where = settings.docker_host or "the local socket"
        say(f"autocode: {exc.message}\n({where}: start it, or set DOCKER_HOST to one that runs)")
        return 1
    if args.prune:
        return _prune_images(runner.client, args)
    images = derived_images(runner.client)
    if args.json:
        sys.stdout.write(json.dumps([asdict(i) for i in images], indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(table(images) if images else ["no derived images"]) + "\n")
    return 0


def _prune_images(client: Any, args: argparse.Namespace) -> int:
    import json
    import time
    from dataclasses import asdict

    from ..runner.catalog import older_than, prune, report

    days = float(args.older_than)
    removed, skipped = prune(
        client, keep=older_than(days, time.time()) if days else lambda _: False
    )
    if args.json:
        done = {
            "removed": [asdict(i) for i in removed],
            "skipped": [{"image": asdict(i), "reason": why} for i, why in skipped],
        }
        sys.stdout.write(json.dumps(done, indent=2) + "\n")
    else:
        lines = report(removed, skipped, kept=f"created less than {days:g} days ago")
        sys.stdout.write("\n".join(lines) + "\n")
    return 0
