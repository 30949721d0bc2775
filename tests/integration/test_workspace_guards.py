"""The host-side git steps behind protected paths, the settings file and the test loop.

A real git repository laid out as the bot lays out its clones (the git
directory beside the work tree), changed the way an agent or a test run would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.errors import WorkspaceError
from bot.repo_settings import ALWAYS_PROTECTED, split_protected
from bot.workspace import Workspace


def make(tmp_path: Path, files: dict[str, str]) -> Workspace:
    workspace = Workspace(tmp_path / "ticket-1", "http://127.0.0.1:1/o/r.git")
    workspace.root.mkdir(parents=True)
    subprocess.run(
        ["git", "init", "-q", "-b", "main", "--separate-git-dir", str(workspace.git_dir),
         str(workspace.work_tree)],
        check=True,
    )  # fmt: skip
    (workspace.work_tree / ".git").unlink()
    for path, content in files.items():
        target = workspace.work_tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    workspace.git("add", "--all")
    workspace.git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    return workspace


def test_protected_changes_are_undone_and_the_rest_kept(tmp_path: Path) -> None:
    workspace = make(tmp_path, {
        ".github/workflows/ci.yml": "on: push\n", "keep.txt": "old\n", "gone.txt": "bye\n",
    })  # fmt: skip
    tree = workspace.work_tree
    (tree / ".github/workflows/ci.yml").write_text("on: push\n# changed\n")
    (tree / ".github/workflows/new.yml").write_text("on: pull_request\n")
    (tree / "keep.txt").write_text("new\n")
    (tree / "gone.txt").unlink()
    (tree / "secrets").mkdir()
    (tree / "secrets" / "key").write_text("k\n")
    files = workspace.changes()
    kept, dropped = split_protected(files, (*ALWAYS_PROTECTED, "secrets/**"))
    assert kept == ["gone.txt", "keep.txt"]
    assert dropped == [".github/workflows/ci.yml", ".github/workflows/new.yml", "secrets/key"]
    workspace.discard(dropped)
    assert (tree / ".github/workflows/ci.yml").read_text() == "on: push\n"
    assert not (tree / ".github/workflows/new.yml").exists()
    assert not (tree / "secrets" / "key").exists()
    assert workspace.changes() == ["gone.txt", "keep.txt"]


def test_a_protected_file_moved_away_shows_as_its_deletion(tmp_path: Path) -> None:
    workspace = make(tmp_path, {".github/workflows/ci.yml": "on: push\n" * 20})
    tree = workspace.work_tree
    os.rename(tree / ".github/workflows/ci.yml", tree / "ci.yml")
    files = workspace.changes()
    assert sorted(files) == [".github/workflows/ci.yml", "ci.yml"]  # no rename detection
    _, dropped = split_protected(files, ALWAYS_PROTECTED)
    workspace.discard(dropped)
    assert (tree / ".github/workflows/ci.yml").exists()


def test_a_protected_folder_replaced_by_a_symlink_is_restored(tmp_path: Path) -> None:
    workspace = make(tmp_path, {".github/workflows/ci.yml": "on: push\n", "a.txt": "a\n"})
    tree = workspace.work_tree
    (tree / "evil").mkdir()
    (tree / "evil" / "ci.yml").write_text("on: push\n# evil\n")
    subprocess.run(["rm", "-rf", str(tree / ".github")], check=True)
    (tree / ".github").symlink_to("evil")
    files = workspace.changes()
    _, dropped = split_protected(files, ALWAYS_PROTECTED)
    assert ".github" in dropped and ".github/workflows/ci.yml" in dropped
    workspace.discard(dropped)
    assert not (tree / ".github").is_symlink()
    assert (tree / ".github/workflows/ci.yml").read_text() == "on: push\n"
    assert (tree / "evil" / "ci.yml").exists()  # not protected: kept
    assert sorted(workspace.changes()) == ["evil/ci.yml"]


def test_the_settings_file_is_read_from_the_commit_never_through_a_symlink(
    tmp_path: Path,
) -> None:
    workspace = make(tmp_path, {".github/autocode.yml": "test: pytest\n"})
    (workspace.work_tree / ".github/autocode.yml").write_text("test: changed later\n")
    assert workspace.read_committed(".github/autocode.yml", 1000) == b"test: pytest\n"
    assert workspace.read_committed(".github/missing.yml", 1000) is None
    with pytest.raises(WorkspaceError, match="larger than 5 bytes"):
        workspace.read_committed(".github/autocode.yml", 5)

    secret = tmp_path / "host-secret"
    secret.write_text("password\n")
    linked = make(tmp_path / "l", {"README.md": "x\n"})
    (linked.work_tree / ".github").mkdir()
    (linked.work_tree / ".github" / "autocode.yml").symlink_to(secret)
    linked.git("add", "--all")
    linked.git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "link")
    with pytest.raises(WorkspaceError, match="not a regular file"):
        linked.read_committed(".github/autocode.yml", 1000)


def test_what_the_tests_and_setup_leave_stays_out_of_the_commit(tmp_path: Path) -> None:
    workspace = make(tmp_path, {"app.py": "x = 1\n"})
    tree = workspace.work_tree
    (tree / ".venv").mkdir()  # setup's work
    (tree / ".venv" / "bin").write_text("python\n")
    assert workspace.exclude_untracked() == [".venv/"]
    (tree / "app.py").write_text("x = 2\n")  # the agent's change
    assert workspace.changes() == ["app.py"]
    (tree / "app.py").write_text("x = 3  # a test rewrote it\n")
    (tree / "report.xml").write_text("<testsuite/>\n")
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "app.pyc").write_text("\0")
    assert workspace.reset_to_index() == ["app.py"]
    assert (tree / "app.py").read_text() == "x = 2\n"
    assert not (tree / "report.xml").exists() and not (tree / "__pycache__").exists()
    assert (tree / ".venv" / "bin").exists()
    assert workspace.changes() == ["app.py"]
