"""Bare git repositories for the fake GitHub, and `git http-backend` as CGI.

Everything shells out to the real `git`, isolated from the user's and the
system's git configuration.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROTECTED_FILE = "fake-protected-branches"

# Refuses updates of the refs listed in PROTECTED_FILE (cwd of a bare repo's hook is the repo).
PRE_RECEIVE_HOOK = f"""#!/bin/sh
[ -f {PROTECTED_FILE} ] || exit 0
status=0
while read old new ref; do
  if grep -qxF "$ref" {PROTECTED_FILE}; then
    echo "error: GH006: Protected branch update failed for $ref." >&2
    status=1
  fi
done
exit $status
"""

DEFAULT_AUTHOR = ("Fake GitHub", "noreply@fake-github.invalid")


class GitError(RuntimeError):
    """A git command failed."""


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every git process: no inherited GIT_*, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    *args: str,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        ["git", *args], cwd=cwd, input=input, env=env or git_env(), capture_output=True
    )
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int
    path: str


class BareRepo:
    """One bare repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> bytes:
        return run_git(*args, cwd=self.path, input=input, check=check, env=env).stdout

    @classmethod
    def create(cls, path: Path, default_branch: str, *, alternate: Path | None = None) -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "--bare", "-q", "-b", default_branch, str(path))
        repo = cls(path)
        repo.git("config", "http.receivepack", "true")
        repo.git("config", "receive.denyDeleteCurrent", "true")
        hook = path / "hooks" / "pre-receive"
        hook.write_text(PRE_RECEIVE_HOOK)
        hook.chmod(0o755)
        if alternate is not None:
            alternates = path / "objects" / "info" / "alternates"
            alternates.parent.mkdir(parents=True, exist_ok=True)
            alternates.write_text(str(alternate / "objects") + "\n")
        return repo

    # --- writing -------------------------------------------------------
    def commit(
        self,
        branch: str,
        files: dict[str, bytes | None],
        message: str,
        *,
        parent: str | None = None,
        author: tuple[str, str] = DEFAULT_AUTHOR,
    ) -> str:
        """Commit `files` (None deletes) on top of `parent` and point `branch` at it."""
        with tempfile.TemporaryDirectory(prefix="fakegh-index-") as tmp:
            env = git_env(
                {
                    "GIT_INDEX_FILE": str(Path(tmp) / "index"),
                    "GIT_AUTHOR_NAME": author[0],
                    "GIT_AUTHOR_EMAIL": author[1],
                    "GIT_COMMITTER_NAME": author[0],
                    "GIT_COMMITTER_EMAIL": author[1],
                }
            )
            if parent is not None:
                self.git("read-tree", parent, env=env)
            for path, content in files.items():
                if content is None:
                    self.git("update-index", "--force-remove", "--", path, env=env)
                    continue
                blob = self.git("hash-object", "-w", "--stdin", input=content).decode().strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).decode().strip()
            args = ["commit-tree", tree, "-F", "-"]
            if parent is not None:
                args += ["-p", parent]
            sha = self.git(*args, input=message.encode(), env=env).decode().strip()
        self.git("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def set_ref(self, ref: str, sha: str) -> None:
        self.git("update-ref", ref, sha)

    def set_protected(self, refs: set[str]) -> None:
        (self.path / PROTECTED_FILE).write_text("".join(f"{r}\n" for r in sorted(refs)))

    # --- reading -------------------------------------------------------
    def resolve(self, rev: str) -> str | None:
        """The commit sha `rev` names, or None."""
        if not rev or rev.startswith("-"):
            return None
        out = run_git(
            "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", cwd=self.path, check=False
        )
        if out.returncode != 0:
            return None
        return out.stdout.decode().strip() or None

    def branch_sha(self, branch: str) -> str | None:
        return self.resolve(f"refs/heads/{branch}")

    def ref_sha(self, ref: str) -> str | None:
        out = run_git("rev-parse", "--verify", "-q", ref, cwd=self.path, check=False)
        return out.stdout.decode().strip() if out.returncode == 0 else None

    def branches(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        found: dict[str, str] = {}
        for line in out.decode().splitlines():
            name, sha = line.split(" ", 1)
            found[name] = sha
        return found

    def resolve_ref_name(self, ref: str) -> str | None:
        """A branch, tag or sha as the API takes it in ?ref= → commit sha."""
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            sha = self.resolve(candidate)
            if sha is not None:
                return sha
        return None

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at `path` in `commit` ('' = the root tree)."""
        if not path:
            sha = self.git("rev-parse", f"{commit}^{{tree}}").decode().strip()
            return TreeEntry("040000", "tree", sha, 0, "")
        out = self.git("ls-tree", "-l", "-z", commit, "--", path)
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, name = item.decode().split("\t", 1)
            mode, kind, sha, size = meta.split()
            if name == path:
                return TreeEntry(mode, kind, sha, int(size) if size != "-" else 0, name)
        return None

    def list_dir(self, commit: str, path: str) -> list[TreeEntry]:
        target = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        out = self.git("ls-tree", "-l", "-z", target)
        entries = []
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, name = item.decode().split("\t", 1)
            mode, kind, sha, size = meta.split()
            full = f"{path.rstrip('/')}/{name}" if path else name
            entries.append(TreeEntry(mode, kind, sha, int(size) if size != "-" else 0, full))
        return entries

    def blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha)

    def read(self, rev: str, path: str) -> bytes | None:
        out = run_git("cat-file", "blob", f"{rev}:{path}", cwd=self.path, check=False)
        return out.stdout if out.returncode == 0 else None

    def count_commits(self, base: str, head: str) -> int:
        return int(self.git("rev-list", "--count", f"{base}..{head}").decode().strip())

    def diffstat(self, base: str, head: str) -> tuple[int, int, int]:
        """(changed files, additions, deletions) of head against its merge base with base."""
        out = self.git("diff", "--numstat", f"{base}...{head}").decode()
        files = additions = deletions = 0
        for line in out.splitlines():
            add, delete, _ = line.split("\t", 2)
            files += 1
            additions += int(add) if add != "-" else 0
            deletions += int(delete) if delete != "-" else 0
        return files, additions, deletions

    def log(self, rev: str) -> list[dict[str, object]]:
        fmt = "%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B%x1e"
        out = run_git("log", f"--format={fmt}", rev, "--", cwd=self.path, check=False)
        if out.returncode != 0:
            return []
        commits: list[dict[str, object]] = []
        for record in out.stdout.decode().split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, parents, an, ae, ad, cn, ce, cd, body = record.split("\x1f", 8)
            commits.append(
                {
                    "sha": sha,
                    "parents": parents.split(),
                    "message": body.rstrip("\n"),
                    "author_name": an,
                    "author_email": ae,
                    "committer_name": cn,
                    "committer_email": ce,
                    "author": {"name": an, "email": ae, "date": ad},
                    "committer": {"name": cn, "email": ce, "date": cd},
                }
            )
        return commits


@dataclass(frozen=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_backend(
    root: Path,
    *,
    method: str,
    path_info: str,
    query: str,
    content_type: str,
    body: bytes,
    remote_user: str,
    git_protocol: str,
    content_encoding: str,
) -> CgiResponse:
    """Run `git http-backend` once as a CGI program (blocking; call it off the event loop)."""
    env = git_env(
        {
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": remote_user,
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
    )
    if git_protocol:
        env["GIT_PROTOCOL"] = git_protocol
    if content_encoding:
        env["HTTP_CONTENT_ENCODING"] = content_encoding
    result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
    out = result.stdout
    sep = out.find(b"\r\n\r\n")
    head, rest = (out[:sep], out[sep + 4 :]) if sep >= 0 else out.partition(b"\n\n")[::2]
    status = 200 if result.returncode == 0 else 500
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return CgiResponse(status, headers, rest)
