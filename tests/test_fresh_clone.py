"""The unit tests pass in a fresh clone with nothing beside it.

The clone is of the committed HEAD, so a test that reads an uncommitted file,
or anything outside the repository (a folder beside it), fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT


def test_the_unit_tests_pass_in_a_fresh_clone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYTEST_"))}
    clone = tmp_path / "project"
    cloned = subprocess.run(
        ["git", "clone", "--no-hardlinks", "-q", str(ROOT), str(clone)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cloned.returncode == 0, cloned.stderr
    # nothing beside the clone: no shared folder, no other checkout
    assert list(tmp_path.iterdir()) == [clone]
    assert not (tmp_path / "shared").exists()

    # the clone's own packages are imported, not the installed (editable) ones
    env["PYTHONPATH"] = str(clone)
    where = subprocess.run(
        [sys.executable, "-c", "import bot, tests; print(bot.__file__); print(tests.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [
        str(clone / "bot" / "__init__.py"),
        str(clone / "tests" / "__init__.py"),
    ]

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    summary = done.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, report
    # a glob over a missing data folder parametrizes nothing, and pytest skips that
    assert "skipped" not in summary, report
    assert list(tmp_path.iterdir()) == [clone]
