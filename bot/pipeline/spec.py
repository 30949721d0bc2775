"""The containers of a run, as data: the agent's and the setup/test commands'. No I/O.

Both run the same image, user, limits and read-only root on the same
workspace with a read-only git directory. The agent's gets opencode's
command line, its config (every tool allowed: the container is the
sandbox) and the run's LLM access; the commands' get none of that, no
session, and the network of the settings file (`none` unless it says
`bridge`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..repo_settings import RepoSettings
from ..runner.spec import RELAY_HOST, RELAY_PORT, ContainerSpec, Mount
from ..testloop import script


def agent_config(providers: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the bot itself asks of opencode in every run.

    Nobody is there to approve a tool call, and the container is the sandbox
    (no credential, read-only git directory, limits), so every tool is allowed
    inside it; without this opencode's `run` silently refuses commands that
    touch paths outside the work tree (e.g. `ls ~`). `providers` points the
    proxied providers at the LLM proxy; given inline, it outranks any
    `opencode.json` in the repository, which could otherwise send the
    capability elsewhere.
    """
    config: dict[str, Any] = {"autoupdate": False, "share": "disabled", "permission": "allow"}
    if providers:
        config["provider"] = providers
    return config


@dataclass(frozen=True)
class Site:
    """Where the containers of one run go: the workspace, the ticket, the labels."""

    work_tree: Path
    git_dir: Path
    ticket_id: int
    user: str  # uid:gid
    worker: str = ""
    store: str = ""
    image: str = ""  # the run's image ("" = the host's runner image)
    env: Mapping[str, str] = field(default_factory=dict)  # the dev container's containerEnv


@dataclass(frozen=True)
class LLMAccess:
    """The run's LLM access as the agent's container receives it."""

    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    providers: Mapping[str, Any] = field(default_factory=dict, repr=False)
    config_file: Path | None = None
    auth_file: Path | None = None
    relay: str = ""  # `internal` network: the proxy's host:port the relay forwards to


def agent_command(model: str, session_id: str, prompt: str) -> list[str]:
    command = ["opencode", "run", "--format", "json"]
    if model:
        command += ["--model", model]
    if session_id:
        command += ["--session", session_id]  # memory across runs
    command.append(prompt)
    return command


def proxy_url_for_agent(settings: Settings, proxy_url: str) -> str:
    """How the agent reaches the LLM proxy: the relay's name on `internal`, else its URL."""
    if settings.agent_network == "internal":
        return f"http://{RELAY_HOST}:{RELAY_PORT}"
    return proxy_url


def agent_spec(
    settings: Settings,
    site: Site,
    command: Sequence[str],
    llm: LLMAccess,
    *,
    timeout: float,
    read_only: bool = False,
    session_dir: Path | None = None,
    on_removed: Callable[[], None] | None = None,
) -> ContainerSpec:
    """The agent's container: opencode on the workspace, with the run's LLM access."""
    env = {
        **site.env,  # the repository's own first: the bot's variables win
        "PWD": "/workspace",
        "OPENCODE_CONFIG_CONTENT": json.dumps(agent_config(dict(llm.providers))),
        **llm.env,
    }
    mounts = [Mount(site.git_dir, "/workspace/.git", read_only=True)]
    if llm.config_file is not None:
        mounts.append(Mount(llm.config_file, "/run/autocode/opencode.json"))
        env["OPENCODE_CONFIG"] = "/run/autocode/opencode.json"
    if llm.auth_file is not None:
        mounts.append(Mount(llm.auth_file, "/run/autocode/auth.json"))
    return ContainerSpec(
        llm_relay=llm.relay,
        on_removed=on_removed,
        image=site.image or settings.runner_image,
        command=list(command),
        workspace=site.work_tree,
        ticket_id=site.ticket_id,
        environment=env,
        mounts=mounts,
        network=settings.agent_network,
        memory=settings.agent_memory,
        cpus=settings.agent_cpus,
        pids=settings.agent_pids,
        timeout=max(1.0, timeout),  # what is left of the run's time
        idle_timeout=settings.idle_timeout,
        user=site.user,
        workspace_read_only=read_only,
        worker=site.worker,
        store=site.store,
        session_dir=session_dir,
        runtime=settings.agent_runtime,
    )


def command_spec(
    settings: Settings,
    repo: RepoSettings,
    site: Site,
    commands: Sequence[str],
    role: str,
    *,
    remaining: float,
) -> ContainerSpec:
    """A container like the agent's, minus the agent, for setup or test commands."""
    limit = max(1.0, min(float(repo.command_timeout), remaining))
    return ContainerSpec(
        image=site.image or settings.runner_image,
        command=["sh", "-c", script(commands)],
        workspace=site.work_tree,
        ticket_id=site.ticket_id,
        environment={**site.env, "PWD": "/workspace", "CI": "true"},
        mounts=[Mount(site.git_dir, "/workspace/.git", read_only=True)],
        network=repo.network,
        memory=settings.agent_memory,
        cpus=settings.agent_cpus,
        pids=settings.agent_pids,
        timeout=limit,
        idle_timeout=limit,
        user=site.user,
        worker=site.worker,
        store=site.store,
        role=role,
        runtime=settings.agent_runtime,
    )
