"""The world of the pipeline test: GitHub in memory, git on disk, opencode replayed.

Every piece fills one of the pipeline's ports (`bot/pipeline/ports.py`), so
the bot's own code runs unchanged from the claimed ticket to its concluded
check run, without Docker or a network:

- `MemoryGitHub` is one repository's REST side in memory (comments, check
  runs, pull requests, reactions) in the shapes `RepoClient` returns, its
  branches read from a bare git repository on disk; `MemoryApp` mints its
  tokens (scoped to that repository, checked on every `repo()`).
- `LocalWorkspace` is the bot's own `Workspace`, allowed to clone from that
  bare repository over git's file transport (which the bot refuses).
- `ReplayEngine` runs containers by replaying opencode's recorded JSON
  streams (`tests/data/opencode`, recorded from the real opencode) and
  carrying out the recorded `write`/`edit` tool calls on the workspace;
  setup and test containers answer from a script. It honours `stop` the
  way `DockerRunner` does (a cancelled exit) and the idle timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.github.client import AccessToken, Identity
from bot.runner.spec import ContainerExit, ContainerSpec
from bot.workspace import Workspace
from tests.paths import DATA

RECORDINGS = DATA / "opencode"
BOT_LOGIN = "autocode[bot]"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_remote(root: Path, files: dict[str, str], branch: str = "main") -> Path:
    """A bare repository holding one commit of `files` on `branch`."""
    seed, bare = root / "seed", root / "remote.git"
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", branch)
    for path, text in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=Octo", "-c", "user.email=octo@example.com",
        "commit", "-q", "-m", "init")  # fmt: skip
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    return bare


class LocalWorkspace(Workspace):
    """The bot's Workspace, cloning from and pushing to a bare repository on disk."""

    def _env(self, token: str) -> dict[str, str]:
        env = super()._env(token)
        count = int(env["GIT_CONFIG_COUNT"])
        env[f"GIT_CONFIG_KEY_{count}"] = "protocol.file.allow"
        env[f"GIT_CONFIG_VALUE_{count}"] = "always"
        env["GIT_CONFIG_COUNT"] = str(count + 1)
        return env


class MemoryGitHub:
    """One repository's REST side, in memory; `Repository` in pipeline/ports.py."""

    def __init__(self, full_name: str, remote: Path, issue: dict[str, Any]) -> None:
        self.full_name = full_name
        self.remote = remote
        self.issues = {int(issue["number"]): issue}
        self.permissions: dict[str, str] = {}
        self.comments_by_id: dict[int, dict[str, Any]] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.reactions: list[tuple[str, int, str]] = []
        self.labels: dict[int, list[str]] = {}
        self.review_requests: dict[int, tuple[list[str], list[str]]] = {}
        self._ids = itertools.count(1000)

    # -- what the bot reads ---------------------------------------------------
    async def user_id(self, login: str) -> int:
        return 41898282 if login == BOT_LOGIN else 1

    async def permission(self, username: str) -> str:
        return self.permissions.get(username, "none")

    async def default_branch(self) -> str:
        return "main"

    async def branch_sha(self, branch: str) -> str | None:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
            cwd=self.remote, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout.strip() or None

    async def issue(self, number: int) -> dict[str, Any]:
        return self.issues[number]

    async def comments(self, number: int, limit: int = 300) -> list[dict[str, Any]]:
        found = [c for c in self.comments_by_id.values() if c["issue"] == number]
        return found[:limit]

    async def pull(self, number: int) -> dict[str, Any]:
        return self.pulls[number]

    async def find_pull(self, branch: str) -> tuple[int, str] | None:
        for number, pull in self.pulls.items():
            if pull["head"]["ref"] == branch and pull["state"] == "open":
                return number, pull["html_url"]
        return None

    # -- what the bot writes --------------------------------------------------
    async def react(self, number: int, content: str = "eyes") -> None:
        self.reactions.append(("issue", number, content))

    async def react_comment(self, comment_id: int, content: str = "eyes") -> None:
        self.reactions.append(("comment", comment_id, content))

    async def react_review_comment(self, comment_id: int, content: str = "eyes") -> None:
        self.reactions.append(("review_comment", comment_id, content))

    async def comment(self, number: int, body: str) -> int:
        comment_id = next(self._ids)
        self.comments_by_id[comment_id] = {
            "id": comment_id, "issue": number, "body": body,
            "user": {"login": BOT_LOGIN, "type": "Bot"},
        }  # fmt: skip
        return comment_id

    async def edit_comment(self, comment_id: int, body: str) -> None:
        self.comments_by_id[comment_id]["body"] = body

    async def reply_review(self, number: int, comment_id: int, body: str) -> int:
        return await self.comment(number, body)

    async def edit_review_comment(self, comment_id: int, body: str) -> None:
        await self.edit_comment(comment_id, body)

    async def create_check_run(self, data: dict[str, Any]) -> int:
        check_id = next(self._ids)
        self.check_runs[check_id] = {"status": "queued", **data}
        return check_id

    async def update_check_run(self, check_run_id: int, data: dict[str, Any]) -> None:
        self.check_runs[check_run_id].update(data)

    async def create_pull(
        self, *, title: str, head: str, base: str, body: str, draft: bool = False
    ) -> tuple[int, str]:
        assert await self.branch_sha(head) is not None, f"no branch {head} was pushed"
        number = max([*self.issues, *self.pulls]) + 1
        url = f"https://github.com/{self.full_name}/pull/{number}"
        self.pulls[number] = {
            "number": number, "title": title, "body": body, "draft": draft, "state": "open",
            "html_url": url, "head": {"ref": head}, "base": {"ref": base},
        }  # fmt: skip
        return number, url

    async def update_pull(self, number: int, *, body: str) -> None:
        self.pulls[number]["body"] = body

    async def add_labels(self, number: int, labels: list[str]) -> None:
        self.labels.setdefault(number, []).extend(labels)

    async def request_reviewers(self, number: int, *, users: list[str], teams: list[str]) -> None:
        self.review_requests[number] = (users, teams)

    # -- what the test reads ----------------------------------------------------
    def bot_comments(self) -> list[str]:
        return [c["body"] for c in self.comments_by_id.values() if c["user"]["login"] == BOT_LOGIN]

    def file_on(self, branch: str, path: str) -> str:
        return git(self.remote, "show", f"{branch}:{path}")


class MemoryApp:
    """The App of `MemoryGitHub`: tokens for that one repository; `App` in pipeline/ports.py."""

    def __init__(self, github: MemoryGitHub) -> None:
        self.github = github
        self.tokens: list[AccessToken] = []

    async def token(self, repository: str, installation_id: int | None = None) -> AccessToken:
        assert repository == self.github.full_name, f"a token for {repository} was asked for"
        token = AccessToken(f"ghs_{len(self.tokens)}", time.time() + 3600, repository)
        self.tokens.append(token)
        return token

    async def repo(self, repository: str, installation_id: int | None = None) -> MemoryGitHub:
        await self.token(repository, installation_id)
        return self.github

    async def identity(self, repo: Any) -> Identity:
        return Identity(BOT_LOGIN, BOT_LOGIN, f"41898282+{BOT_LOGIN}@users.noreply.github.com")

    async def team_member(
        self, repository: str, installation_id: int | None, org: str, team: str, login: str
    ) -> bool:
        return False

    async def aclose(self) -> None:
        return None


@dataclass
class Replay:
    """An agent container that replays one recording (`hang`: waits to be stopped)."""

    recording: str = ""
    hang: bool = False


@dataclass
class ReplayEngine:
    """Containers by replay; `Engine` in pipeline/ports.py."""

    agents: list[Replay] = field(default_factory=list)
    commands: list[tuple[int, str]] = field(default_factory=list)  # setup/test: exit, output
    specs: list[ContainerSpec] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def ping(self) -> None:
        return None

    def remove_orphans(self, store: str, keep: Callable[[int, str], bool]) -> list[int]:
        return []

    async def run(
        self, spec: ContainerSpec, on_line: Callable[[str], None], stop: asyncio.Event
    ) -> ContainerExit:
        self.specs.append(spec)
        self.started.set()
        if spec.role != "agent":
            exit_code, output = self.commands.pop(0)
            for line in output.splitlines():
                on_line(line)
            return ContainerExit(exit_code, seconds=0.2, agent_seconds=0.1)
        replay = self.agents.pop(0)
        if replay.hang:
            return await self._hang(spec, stop)
        return await self._replay(spec, replay.recording, on_line, stop)

    async def _hang(self, spec: ContainerSpec, stop: asyncio.Event) -> ContainerExit:
        """Says nothing: stopped (cancelled) or, past the idle timeout, timed out."""
        try:
            await asyncio.wait_for(stop.wait(), timeout=spec.idle_timeout)
        except TimeoutError:
            return ContainerExit(None, timed_out=True, idle=True)
        return ContainerExit(None, cancelled=True)

    async def _replay(
        self, spec: ContainerSpec, name: str, on_line: Callable[[str], None], stop: asyncio.Event
    ) -> ContainerExit:
        meta = json.loads((RECORDINGS / f"{name}.meta.json").read_text())
        for line in (RECORDINGS / f"{name}.jsonl").read_text().splitlines(keepends=True):
            if stop.is_set():  # DockerRunner stops the container: a cancelled exit
                return ContainerExit(None, cancelled=True)
            on_line(line)
            await asyncio.sleep(0)
        if not spec.workspace_read_only:
            apply_tool_calls(spec.workspace, meta["script"])
        stderr = "\n".join(meta["stderr_tail"])
        return ContainerExit(meta["exit_code"], stderr_tail=stderr, seconds=meta["seconds"])


def apply_tool_calls(work_tree: Path, script: list[dict[str, Any]]) -> None:
    """What the recorded `write` and `edit` calls did to the recording's workspace."""
    for step in script:
        arguments = step.get("arguments") or {}
        if step["kind"] != "tool" or step["tool"] not in ("write", "edit"):
            continue
        path = work_tree / arguments["filePath"]
        if step["tool"] == "write":
            path.write_text(arguments["content"])
        else:
            text = path.read_text()
            assert arguments["oldString"] in text, f"the recorded edit does not apply to {path}"
            path.write_text(text.replace(arguments["oldString"], arguments["newString"], 1))
