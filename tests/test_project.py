"""The project keeps its own promises: lint, types, pins, the README's commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from bot.runner.image import OPENCODE_VERSION
from tests.paths import ROOT


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a test dependency"
    done = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff_format_is_kept() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a test dependency"
    done = subprocess.run(
        [ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_mypy_strict_is_clean() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_one_opencode_version_everywhere() -> None:
    dockerfile = (ROOT / "Dockerfile.runner").read_text()
    assert f"ARG OPENCODE_VERSION={OPENCODE_VERSION}" in dockerfile
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"OPENCODE_VERSION={OPENCODE_VERSION}" in ci


def test_ci_runs_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b and "\n" not in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
