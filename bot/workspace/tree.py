"""One ticket's clone on the host: clone, branch, commit, push.

The installation token reaches git only through its environment: a
credential helper defined in `GIT_CONFIG_*` variables reads it from
`AUTOCODE_GIT_TOKEN` (`git_env` builds it). Nothing with the token is
written to disk.

The git directory lives beside the work tree, not in it. The agent's
container gets the work tree and, read-only, the git directory, so it can
read history but cannot plant hooks or config that the host's git would
later run with the token in its environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkspaceError

# also importable from here, where they were defined before
from .git_env import TRANSIENT, credential_env, redact

log = logging.getLogger("bot.workspace")

GIT_TIMEOUT = 600
GIT_RETRIES = 3  # more tries of clone and push after a transient server or network error


@dataclass(frozen=True)
class Author:
    name: str
    email: str


class Workspace:
    """One ticket's clone: `git/` (host only) and `work/` (given to the agent)."""

    def __init__(self, root: Path, clone_url: str) -> None:
        self.root = root
        self.git_dir = root / "git"
        self.work_tree = root / "work"
        self.clone_url = clone_url

    # -- plumbing ----------------------------------------------------------
    def _env(self, token: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AUTOCODE_"))}
        env = {**base, **credential_env(self.clone_url, token)}
        if self.git_dir.exists():
            env["GIT_DIR"] = str(self.git_dir)
            env["GIT_WORK_TREE"] = str(self.work_tree)
        return env

    def git(
        self, *args: str, token: str = "", check: bool = True, env: dict[str, str] | None = None
    ) -> str:
        """Run git; raise WorkspaceError with a redacted message on failure."""
        full_env = self._env(token)
        if env:
            full_env.update(env)
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=self.work_tree if self.work_tree.exists() else self.root,
                env=full_env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WorkspaceError(f"git {args[0]} took longer than {GIT_TIMEOUT}s") from None
        if check and done.returncode != 0:
            message = redact((done.stderr or done.stdout).strip(), token)[-1500:]
            raise WorkspaceError(f"git {args[0]} failed: {message}")
        return done.stdout

    def git_retrying(self, *args: str, token: str, before: Callable[[], None] | None = None) -> str:
        """`git` for network steps: retried with backoff while the failure looks transient."""
        for attempt in range(GIT_RETRIES + 1):
            if before is not None:
                before()
            try:
                return self.git(*args, token=token)
            except WorkspaceError as exc:
                if attempt == GIT_RETRIES or not TRANSIENT.search(exc.message):
                    raise
                wait = 2.0**attempt
                log.warning(
                    "git failed; retrying",
                    extra={"step": args[0], "retry": attempt + 1, "seconds": wait},
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    # -- steps -------------------------------------------------------------
    def clone(self, token: str, base_branch: str, branch: str, existing: bool) -> str:
        """Clone `base_branch` shallowly and check out `branch`; return the start commit.

        When `existing` the branch is already on the remote: work continues on top
        of it, so the later push is a fast-forward.
        """

        def fresh() -> None:
            if self.root.exists():
                shutil.rmtree(self.root)
            self.root.mkdir(parents=True)

        start = branch if existing else base_branch
        self.git_retrying(
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--no-tags",
            "--single-branch",
            "--branch",
            start,
            "--separate-git-dir",
            str(self.git_dir),
            self.clone_url,
            str(self.work_tree),
            token=token,
            before=fresh,
        )
        # the work tree's `.git` pointer file is not needed: the host names the git dir.
        pointer = self.work_tree / ".git"
        if pointer.is_file():
            pointer.unlink()
        # an empty directory in its place: the mount point of the read-only git dir,
        # which a read-only work tree (ask mode) could not create itself
        pointer.mkdir(exist_ok=True)
        if not existing:
            self.git("checkout", "--quiet", "-b", branch, token=token)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def hand_to_agent(self, uid: int, gid: int, paths: Sequence[str] | None = None) -> None:
        """Make the work tree (or only `paths` and their folders) writable by the agent's user."""
        if os.getuid() != 0:
            return
        if paths is None:
            todo = [self.work_tree, *self.work_tree.rglob("*")]
        else:
            found: dict[Path, None] = {}
            for name in paths:
                target = self.work_tree / name
                while target != self.work_tree and self.work_tree in target.parents:
                    found[target] = None
                    target = target.parent
            todo = list(found)
        for path in todo:
            try:
                os.lchown(path, uid, gid)
            except FileNotFoundError:
                continue

    def changes(self) -> list[str]:
        """Stage everything the agent left; return the changed paths."""
        self.git("add", "--all", "--", ".")
        # no rename detection: a protected file moved elsewhere must show as its deletion
        out = self.git("diff", "--cached", "--name-only", "--no-renames", "-z")
        return [p for p in out.split("\0") if p]

    def discard(self, paths: Sequence[str]) -> None:
        """Undo the agent's changes to `paths`: restore them from HEAD, remove new ones.

        Runs after `changes` (everything staged). Paths are literal, never globs;
        a new file is removed with lstat semantics, never through a symlink.
        """
        if not paths:
            return
        literal = {"GIT_LITERAL_PATHSPECS": "1"}
        listed = self.git("ls-tree", "-r", "-z", "--name-only", "HEAD", "--", *paths, env=literal)
        at_head = {p for p in listed.split("\0") if p}
        new = [p for p in paths if p not in at_head]
        if new:
            self.git("rm", "--cached", "--quiet", "--force", "-r", "--", *new, env=literal)
            for path in new:
                self._remove_new(path)
        old = [p for p in paths if p in at_head]
        if old:
            self.git("restore", "--source=HEAD", "--staged", "--worktree", "--", *old, env=literal)

    def _remove_new(self, path: str) -> None:
        target = self.work_tree
        for part in Path(path).parts[:-1]:
            target = target / part
            if target.is_symlink() or not target.is_dir():
                return  # never step through a link the agent planted
        target = target / Path(path).name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

    def exclude_untracked(self) -> list[str]:
        """Keep what setup left (a virtualenv, node_modules) out of every later commit.

        The untracked paths are added to the host-side git directory's
        `info/exclude`, which the agent cannot write.
        """
        out = self.git("ls-files", "--others", "--exclude-standard", "--directory", "-z")
        paths = [p for p in out.split("\0") if p]
        if paths:
            info = self.git_dir / "info"
            info.mkdir(exist_ok=True)
            with (info / "exclude").open("a") as exclude:
                for path in paths:
                    escaped = "".join("\\" + c if c in "*?[]!#\\ " else c for c in path)
                    exclude.write("/" + escaped + "\n")
        return paths

    def reset_to_index(self) -> list[str]:
        """Undo what a test run wrote: files back to the index, new files removed.

        Called after `changes` staged the agent's work, so the commit holds the
        agent's change and not the tests' caches and reports. Returns the paths
        written back (owned by the host's user until handed to the agent).
        """
        out = self.git("diff", "--name-only", "--no-renames", "-z")
        changed = [p for p in out.split("\0") if p]
        if changed:
            self.git("restore", "--worktree", "--", *changed, env={"GIT_LITERAL_PATHSPECS": "1"})
        self.git("clean", "-f", "-d", "-q", "--", ".")
        return changed

    def read_committed(self, path: str, limit: int) -> bytes | None:
        """A file as the start commit holds it (None: not there), never through a symlink.

        Reading the commit rather than the work tree means a symlink to a host
        file is refused instead of followed, and nothing the agent writes later
        changes what was read.
        """
        entry = self.git(
            "ls-tree", "-z", "HEAD", "--", path, env={"GIT_LITERAL_PATHSPECS": "1"}
        ).strip("\0")
        if not entry:
            return None
        mode, kind, rest = entry.split(" ", 2)
        sha = rest.split("\t", 1)[0]
        if kind != "blob" or mode not in ("100644", "100755"):
            raise WorkspaceError(f"{path} is not a regular file in the commit")
        size = int(self.git("cat-file", "-s", sha).strip())
        if size > limit:
            raise WorkspaceError(f"{path} is larger than {limit} bytes")
        done = subprocess.run(
            ["git", "cat-file", "blob", sha],
            cwd=self.work_tree,
            env=self._env(""),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise WorkspaceError(f"git cat-file failed: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def commit(self, message: str, author: Author) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        self.git("commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message, env=env)
        return self.head()

    def push(self, token: str, branch: str) -> None:
        """Push HEAD to `branch`: never forced, never another branch."""
        # safe to repeat: never forced, always the same commit
        self.git_retrying(
            "push",
            "--quiet",
            "--porcelain",
            self.clone_url,
            f"HEAD:refs/heads/{branch}",
            token=token,
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def changed_paths(paths: Sequence[str], limit: int = 500) -> list[str]:
    return list(paths[:limit])
