"""`autocode doctor`: check each thing a run needs, and say how to fix what is wrong.

Each check is a function returning a Check, so the CLI, tests and a future
health page share them. A check reports *where* it looked (a path, a URL, an
image tag) but never a secret's value: a doctor report gets pasted into
issues and chat.

A doctor run changes nothing it finds: the database is only read (never
created or migrated: `serve` and `worker` do that when they start), and what
the LLM proxy's check starts to try the agents' path — a socket, a probe
container, a relay, the agents' network if it was missing — is gone when it
returns. Run it where the workers run (in a Compose worker container, or the
Kubernetes worker pod): the proxy's address depends on that place.
"""

from __future__ import annotations

from collections.abc import Mapping

from .check import Check
from .database import check_database
from .engine import check_docker, check_runner_image
from .github import check_app, check_settings, check_webhook_secret
from .images import check_derived_images
from .llm import check_llm, key_variables
from .proxy import check_llm_proxy
from .runtime import check_runtime

__all__ = [
    "Check",
    "check_app",
    "check_database",
    "check_derived_images",
    "check_docker",
    "check_llm",
    "check_llm_proxy",
    "check_runner_image",
    "check_runtime",
    "check_settings",
    "check_webhook_secret",
    "key_variables",
    "run_checks",
]


# --- all of them -------------------------------------------------------------------


def run_checks(environ: Mapping[str, str]) -> list[Check]:
    """Every check in order; when the settings do not parse, only that one."""
    first, settings = check_settings(environ)
    if settings is None:
        return [first]
    docker, runner = check_docker(settings)
    image = check_runner_image(settings, runner)
    return [
        first,
        check_webhook_secret(settings),
        check_app(settings),
        check_database(settings),
        docker,
        image,
        check_runtime(settings, runner, image.ok),
        check_derived_images(settings, runner),
        check_llm(settings),
        check_llm_proxy(settings, runner, image.ok),
    ]
