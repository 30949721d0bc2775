"""The agent's memory across runs: one opencode data directory per issue or pull request.

opencode keeps a session (every message, tool call and result) in its data
directory, `~/.local/share/opencode`. Mounting the same host directory there
in every container of an issue lets a later run continue with
`opencode run --session <id>`: the agent sees what it did and was told. The
session id is written by the host beside that directory, never inside it,
so the agent cannot point a later run at something else. A pull request the
bot opened for issue N (branch `autocode/issue-N`) shares issue N's session.

Only one run at a time may use a session: a second one (an issue and its
pull request running at once) gets a throw-away directory instead. Sessions
unused for `AUTOCODE_SESSION_TTL_DAYS` are removed by `sweep`. They live on
the host that ran them: with workers on several hosts a follow-up that lands
elsewhere starts a new session.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("bot.memory")

ISSUE_BRANCH = re.compile(r"^autocode/issue-(\d+)$")  # run.branch_for's branches
SESSION_FILE = "session.json"
DATA = "data"
LOCK = "lock"
SCRATCH = ".scratch"
CREDENTIALS = ("auth.json",)  # copied in by the image's entrypoint; never kept
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def session_key(repository: str, number: int, is_pull_request: bool, head_ref: str = "") -> str:
    """`owner/name/issue-N` or `owner/name/pr-N`: where an issue's or PR's session lives.

    A pull request on the bot's branch `autocode/issue-N` continues issue N's
    session: the follow-up on the PR is the same conversation.
    """
    owner, _, name = repository.lower().partition("/")
    match = ISSUE_BRANCH.match(head_ref) if is_pull_request else None
    if match is not None:
        leaf = f"issue-{int(match.group(1))}"
    else:
        leaf = f"{'pr' if is_pull_request else 'issue'}-{int(number)}"
    return "/".join([_safe(owner), _safe(name), leaf])


def _safe(part: str) -> str:
    """A path segment that cannot climb out of the sessions directory."""
    if _SAFE.match(part) and part not in (".", ".."):
        return part
    return "x-" + hashlib.sha256(part.encode()).hexdigest()[:16]


def expired(last_used: Iterable[tuple[str, float]], now: float, ttl_days: float) -> list[str]:
    """The keys whose session was last used more than `ttl_days` before `now`."""
    limit = now - ttl_days * 86400
    return sorted(key for key, used in last_used if used < limit)


@dataclass
class Session:
    """One run's hold on a session directory."""

    key: str
    root: Path
    session_id: str = ""  # empty: opencode starts a new session
    persistent: bool = True  # False: a throw-away directory, removed when the run ends
    _lock: int | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """Mounted as the agent's `~/.local/share/opencode`."""
        return self.root / DATA


class SessionStore:
    """Session directories under one root on this host (`AUTOCODE_WORKDIR/sessions`)."""

    def __init__(self, root: Path, uid: int | None = None, gid: int | None = None) -> None:
        self.root = root
        self.uid = uid
        self.gid = gid

    # -- one run ---------------------------------------------------------------
    def open(self, key: str, *, fresh: bool = False) -> Session:
        """Take the session of `key` for a run; `fresh` forgets what it held."""
        root = self.root / key
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.info("session busy; this run gets a throw-away one", extra={"session": key})
            scratch = self.root / SCRATCH / uuid.uuid4().hex
            self._prepare(scratch / DATA)
            return Session(key, scratch, persistent=False)
        session = Session(key, root, _lock=fd)
        if fresh:
            shutil.rmtree(session.data_dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (root / SESSION_FILE).unlink()
        else:
            session.session_id = self._read_id(root)
        self._prepare(session.data_dir)
        return session

    def save(self, session: Session, session_id: str, now: float | None = None) -> None:
        """Remember the id opencode reported, for the next run of this issue."""
        session.session_id = session_id
        if not session.persistent or not session_id:
            return
        record = {"id": session_id, "updated": now if now is not None else time.time()}
        tmp = session.root / f"{SESSION_FILE}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(session.root / SESSION_FILE)

    def scrub(self, session: Session) -> None:
        """Remove credentials the container copied into the data directory."""
        for name in CREDENTIALS:
            with contextlib.suppress(FileNotFoundError):
                (session.data_dir / name).unlink()

    def close(self, session: Session, now: float | None = None) -> None:
        """Give the session back (or remove a throw-away one); the run counts as its last use."""
        self.scrub(session)
        if session.persistent:
            if session.session_id:
                self.save(session, session.session_id, now)
            with contextlib.suppress(OSError):
                os.utime(session.root)
        else:
            shutil.rmtree(session.root, ignore_errors=True)
        if session._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(session._lock, fcntl.LOCK_UN)
            os.close(session._lock)
            session._lock = None

    # -- housekeeping ----------------------------------------------------------
    def last_used(self) -> list[tuple[str, float]]:
        """Every kept session and when a run last used it."""
        found: list[tuple[str, float]] = []
        if not self.root.is_dir():
            return found
        for leaf in self.root.glob("*/*/*"):
            if not leaf.is_dir() or leaf.is_symlink() or leaf.parts[-3] == SCRATCH:
                continue
            key = "/".join(leaf.parts[-3:])
            found.append((key, self._used_at(leaf)))
        return found

    def sweep(self, now: float, ttl_days: float) -> list[str]:
        """Remove sessions unused for `ttl_days`; skip those a run holds right now."""
        removed = []
        for scratch in (self.root / SCRATCH).glob("*"):
            if now - self._used_at(scratch) > 86400:  # a crashed run's throw-away session
                shutil.rmtree(scratch, ignore_errors=True)
                removed.append(f"{SCRATCH}/{scratch.name}")
        for key in expired(self.last_used(), now, ttl_days):
            path = self.root / key
            try:
                fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                shutil.rmtree(path, ignore_errors=True)
            finally:
                os.close(fd)
            removed.append(key)
            for parent in (path.parent, path.parent.parent):
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only when empty
        if removed:
            log.info("removed old agent sessions", extra={"sessions": removed, "ttl": ttl_days})
        return removed

    # -- helpers ---------------------------------------------------------------
    def _prepare(self, data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        if self.uid is not None and os.getuid() == 0:
            os.lchown(data, self.uid, self.gid if self.gid is not None else self.uid)

    @staticmethod
    def _read_id(root: Path) -> str:
        try:
            record = json.loads((root / SESSION_FILE).read_text())
        except (OSError, ValueError):
            return ""
        value = record.get("id") if isinstance(record, dict) else None
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,200}", value):
            return value
        return ""

    @staticmethod
    def _used_at(path: Path) -> float:
        try:
            record = json.loads((path / SESSION_FILE).read_text())
            if isinstance(record, dict) and isinstance(record.get("updated"), int | float):
                return float(record["updated"])
        except (OSError, ValueError):
            pass
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0


def session_store(workdir: str, owner: tuple[int, int]) -> SessionStore:
    """This host's agent sessions: beside the clones, owned by the agent's user."""
    return SessionStore(Path(workdir).resolve() / "sessions", *owner)
