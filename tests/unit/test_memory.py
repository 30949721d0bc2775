"""Agent sessions per issue: keys, the TTL selection, and real directories on disk."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot.memory import SessionStore, expired, session_key

DAY = 86400.0


def test_an_issue_and_the_pull_request_on_its_branch_share_a_key() -> None:
    assert session_key("Octo/Hello", 7, False) == "octo/hello/issue-7"
    assert session_key("Octo/Hello", 9, True, "autocode/issue-7") == "octo/hello/issue-7"
    assert session_key("Octo/Hello", 9, True, "feature/x") == "octo/hello/pr-9"
    assert session_key("Octo/Hello", 9, False, "autocode/issue-7") == "octo/hello/issue-9"


def test_keys_cannot_climb_out_of_the_sessions_folder() -> None:
    key = session_key("../..", 1, False)
    owner, name, leaf = key.split("/")
    assert owner.startswith("x-") and name.startswith("x-") and leaf == "issue-1"
    assert ".." not in key
    assert session_key("../etc", 1, False).split("/")[:2] == [owner, "etc"]


def test_expired_selects_sessions_unused_for_longer_than_the_ttl() -> None:
    now = 100 * DAY
    used = [("o/r/issue-1", now - 31 * DAY), ("o/r/issue-2", now - 29 * DAY),
            ("o/r/pr-3", now - 30 * DAY - 1), ("o/r/issue-4", now)]  # fmt: skip
    assert expired(used, now, 30) == ["o/r/issue-1", "o/r/pr-3"]
    assert expired(used, now, 365) == []
    assert expired([], now, 1) == []


def test_a_session_is_kept_continued_and_forgotten_on_fresh(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    first = store.open("o/r/issue-1")
    assert first.session_id == "" and first.data_dir.is_dir()
    (first.data_dir / "opencode.db").write_text("conversation")
    (first.data_dir / "auth.json").write_text("{}")  # the entrypoint's copy of a credential
    store.save(first, "ses_abc123")
    store.close(first)
    assert not (first.data_dir / "auth.json").exists()
    assert json.loads((tmp_path / "o/r/issue-1/session.json").read_text())["id"] == "ses_abc123"

    again = store.open("o/r/issue-1")
    assert again.session_id == "ses_abc123"
    assert (again.data_dir / "opencode.db").read_text() == "conversation"
    store.close(again)

    fresh = store.open("o/r/issue-1", fresh=True)
    assert fresh.session_id == "" and not (fresh.data_dir / "opencode.db").exists()
    store.close(fresh)


def test_a_session_in_use_gives_a_second_run_a_throw_away_one(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    holder = store.open("o/r/issue-1")
    store.save(holder, "ses_one")
    other = store.open("o/r/issue-1")
    assert other.persistent is False and other.session_id == ""
    assert other.data_dir.is_dir() and other.root != holder.root
    store.save(other, "ses_two")
    store.close(other)
    assert not other.root.exists()
    store.close(holder)
    assert store.open("o/r/issue-1").session_id == "ses_one"


def test_a_tampered_session_file_is_ignored(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    root = tmp_path / "o/r/issue-1"
    root.mkdir(parents=True)
    (root / "session.json").write_text(json.dumps({"id": "--fork; rm -rf /"}))
    assert store.open("o/r/issue-1").session_id == ""


def test_the_sweep_removes_old_sessions_and_keeps_new_and_busy_ones(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    now = time.time()
    for key, age in (("o/r/issue-1", 40), ("o/r/issue-2", 5), ("o/busy/issue-3", 40)):
        session = store.open(key)
        (session.data_dir / "opencode.db").write_text("x")
        store.save(session, "ses_" + key.split("-")[-1], now=now - age * DAY)
        store.close(session, now=now - age * DAY)
    old_dir = tmp_path / "o/gone/issue-9"  # a session that never got an id: its folder's age
    (old_dir / "data").mkdir(parents=True)
    os.utime(old_dir, (now - 60 * DAY, now - 60 * DAY))
    busy = store.open("o/busy/issue-3")  # a run holds it right now

    removed = store.sweep(now, 30)
    assert removed == ["o/gone/issue-9", "o/r/issue-1"]
    assert not (tmp_path / "o/r/issue-1").exists()
    assert not (tmp_path / "o/gone").exists()  # empty parents go too
    assert (tmp_path / "o/r/issue-2/data/opencode.db").exists()
    assert (tmp_path / "o/busy/issue-3").exists()
    store.close(busy, now=now)
    assert store.sweep(now, 30) == []
    assert sorted(k for k, _ in store.last_used()) == ["o/busy/issue-3", "o/r/issue-2"]
