"""The agent works in the repository's own toolchain: its dev container, end to end.

A Python repository whose `.devcontainer/devcontainer.json` builds an image
(from the locally made `debian:bookworm-slim`, with Python and pytest), whose
`containerEnv` and `postCreateCommand` the setup sees, and whose `test` runs
`python3 -m pytest`. The real opencode's first change fails the tests and its
second passes, in the derived image; a second run on the repository builds
nothing. A Dockerfile that fails to build ends the ticket with its last lines.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import REPO, SECRET, Bot, labeled_payload
from tests.fakes.llm import text, tool
from tests.webhooks import send

pytestmark = pytest.mark.docker

DEVCONTAINER = """\
// the dev container of a Python project, as VS Code writes it
{
  "name": "greeter",
  "build": {"dockerfile": "Dockerfile", "context": "..", "args": {"PYTHON_PKGS": "python3-pytest"}},
  "containerEnv": {"GREETER_MODE": "strict"},
  "postCreateCommand": "python3 -c 'import os; print(os.environ[\\"GREETER_MODE\\"])' >.mode",
  "features": {"ghcr.io/devcontainers/features/github-cli:1": {}},
}
"""

DOCKERFILE = """\
FROM debian:bookworm-slim
ARG PYTHON_PKGS
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      python3 $PYTHON_PKGS \\
 && rm -rf /var/lib/apt/lists/*
LABEL nonce={nonce}
"""

SETTINGS = """\
test: python3 -m pytest -q -p no:cacheprovider
max_attempts: 2
"""

TEST_FILE = """\
from greeter import greet


def test_greet():
    assert greet("Ada") == "Hello, Ada!"
"""


@pytest.fixture
def derived() -> Iterator[list[str]]:
    """The images a test's runs derived, removed after it."""
    made: list[str] = []
    yield made
    for image in made:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def prepare(gh: Any, dockerfile: str, number: int = 1) -> None:
    gh.add_repo(REPO, {
        "README.md": "# Greeter\n",
        ".gitignore": ".mode\n__pycache__/\n",
        ".devcontainer/devcontainer.json": DEVCONTAINER,
        ".devcontainer/Dockerfile": dockerfile,
        ".github/autocode.yml": SETTINGS,
        "test_greeter.py": TEST_FILE,
    })  # fmt: skip
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, number, title="Add greet()", body="greeter.greet(name)", user="Codertocat")


def summary(gh: Any) -> str:
    return str(gh.find_check_runs(REPO, "Auto-Code")[-1]["output"]["summary"])


def test_a_python_repository_is_tested_in_its_own_dev_container(
    make_bot: Callable[..., Bot], derived: list[str]
) -> None:
    bot = make_bot(AUTOCODE_BUILD_NETWORK="host")  # this engine's bridge has no way out
    gh, llm = bot.github, bot.llm
    prepare(gh, DOCKERFILE.format(nonce=secrets.token_hex(4)))
    llm.script([
        tool("bash", description="Look", command="cat .mode; python3 --version; "
             "echo mode=$GREETER_MODE; which pytest-3 || true"),
        tool("write", filePath="greeter.py", content="def greet(name):\n    return name\n"),
        text("Added greet()."),
        tool("write", filePath="greeter.py",
             content='def greet(name):\n    return f"Hello, {name}!"\n'),
        text("Fixed greet() so the test passes."),
    ])  # fmt: skip

    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh, 1)), timeout=600)

    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    seen = "\n".join(llm.tool_results())
    assert "strict" in seen  # postCreateCommand ran first, with containerEnv
    assert "Python 3." in seen and "mode=strict" in seen  # the agent is in the dev container
    feedback = next(p for p in llm.prompts() if "test command" in p)
    assert "python3 -m pytest" in feedback and "AssertionError" in feedback  # attempt 1 failed
    (pull,) = gh.pulls.values()
    assert "the tests pass (on attempt 2 of 2)" in pull["body"]
    assert gh.read_file(REPO, pull["head"]["ref"], "greeter.py") is not None
    assert ticket["files_changed"] == ["greeter.py"]
    first = summary(gh)
    assert "**Environment:** `autocode-derived:" in first and "(built in " in first
    assert "derived from the dev container of Codertocat/Hello-World" in first
    derived.append(first.split("`")[1])
    shown = "\n".join(
        h["output"]["summary"]
        for h in gh.check_run_history(gh.find_check_runs(REPO, "Auto-Code")[-1]["id"])
        if h.get("output")
    )
    assert "preparing the environment" in shown  # the progress said so while it was built

    # a second run on the repository builds nothing
    number = gh.repo(REPO).next_number  # pull requests take numbers too
    gh.add_issue(REPO, number, title="Another", body="Again.", user="Codertocat")
    llm.script([
        tool("write", filePath="greeter.py",
             content='def greet(name):\n    return f"Hello, {name}!"\n# again\n'),
        text("Done."),
    ])  # fmt: skip
    again = bot.wait(bot.deliver("issues", labeled_payload(gh, number)), timeout=300)
    assert again["state"] == "succeeded", (again["error"], again)
    assert "(cached, nothing built)" in summary(gh)
    assert derived[0] in summary(gh)


def test_a_dockerfile_that_fails_to_build_ends_the_ticket_with_its_last_lines(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(AUTOCODE_BUILD_NETWORK="host")
    gh = bot.github
    prepare(gh, "FROM debian:bookworm-slim\nRUN echo 'E: Unable to locate package python9' >&2; "
                "exit 100\n")  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh, 1)), timeout=300)
    assert ticket["state"] == "failed", ticket
    assert "could not be built" in ticket["error"]
    comment = next(
        c["body"] for c in gh.issue_comments(REPO, 1) if c["user"]["login"] == gh.bot_login
    )
    assert "the environment could not be prepared" in comment
    assert "E: Unable to locate package python9" in comment  # the build's last lines
    assert "Fix the Dockerfile" in comment
    assert gh.pulls == {}
    assert bot.llm.requests == []  # the agent never ran


def test_an_image_named_in_the_settings_file_runs_the_setup_agent_and_tests(
    make_bot: Callable[..., Bot], derived: list[str]
) -> None:
    base = f"autocode-test-toolchain:{secrets.token_hex(4)}"
    subprocess.run(
        ["docker", "build", "-q", "-t", base, "-"],
        check=True,
        capture_output=True,
        # a label of its own gives it an id of its own: nothing derived from it is cached
        input=(
            f"FROM debian:bookworm-slim\nRUN echo toolchain-7 > /etc/toolchain\nLABEL n={base}\n"
        ).encode(),
    )
    derived.append(base)  # removed after the test, with what was derived from it
    bot = make_bot(AUTOCODE_BUILD_NETWORK="host")
    gh, llm = bot.github, bot.llm
    gh.add_repo(REPO, {"README.md": "# Hi\n", ".github/autocode.yml": (
        f"image: {base}\nsetup:\n  - cat /etc/toolchain > .seen\n"
        "test: grep -q toolchain-7 /etc/toolchain && test -s answer.txt\n")})  # fmt: skip
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title="Answer", body="Write answer.txt", user="Codertocat")
    llm.script([
        tool("bash", description="Look", command="cat .seen /etc/toolchain; git --version"),
        tool("write", filePath="answer.txt", content="42\n"),
        text("Wrote it."),
    ])  # fmt: skip
    ticket = bot.wait(bot.deliver("issues", labeled_payload(gh, 1)), timeout=300)
    assert ticket["state"] == "succeeded", (ticket["error"], ticket)
    seen = "\n".join(llm.tool_results())
    assert seen.count("toolchain-7") >= 2 and "git version" in seen  # setup's and the agent's
    assert f"derived from {base} (built in " in summary(gh)
    derived.append(summary(gh).split("`")[1])


def test_cancel_stops_a_run_while_its_environment_is_built(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(AUTOCODE_BUILD_NETWORK="host")
    gh = bot.github
    nonce = secrets.token_hex(4)  # nothing cached: the build really runs
    prepare(gh, f"FROM debian:bookworm-slim\nRUN echo {nonce} && sleep 60\n")
    run_id = bot.deliver("issues", labeled_payload(gh, 1))
    deadline = time.monotonic() + 120
    while "preparing the environment" not in json.dumps(gh.find_check_runs(REPO, "Auto-Code")):
        assert time.monotonic() < deadline, "the progress never said it prepares the environment"
        time.sleep(0.2)
    began = time.monotonic()
    payload = gh.payload("issue_comment/created.json", repo=REPO, number=1,
                         sender="Codertocat", comment="/opencode cancel")  # fmt: skip
    assert send(bot.url, "issue_comment", payload, SECRET).status_code == 202
    ticket = bot.wait(run_id, timeout=60)
    assert ticket["state"] == "cancelled", ticket
    assert time.monotonic() - began < 15  # not after the build's minute
    assert gh.find_check_runs(REPO, "Auto-Code")[-1]["conclusion"] == "cancelled"
    assert bot.llm.requests == []  # the agent never started
