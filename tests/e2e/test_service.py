"""`OpenCodeService.develop_ticket`: a title and a description to a pull request.

The same path as the label's, without a webhook or a store: a real clone
and push against the fake GitHub's git server with the caller's token, the
real opencode in the real runner image, driven by the scripted LLM, and the
pull request opened through the fake's REST API.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from bot import OpenCodeService
from bot.config import Settings
from bot.runner.docker import DockerRunner
from tests.conftest import RUNNER_IMAGE
from tests.e2e.conftest import Recorder
from tests.fakes.github import FakeGitHub
from tests.fakes.llm import ScriptedLLM, text, tool
from tests.integration.test_fake_github import mint

REPO = "octo-shop/storefront"


def settings_for(tmp_path: Path, github: FakeGitHub, llm: ScriptedLLM) -> Settings:
    config = tmp_path / "opencode.json"
    config.write_text(json.dumps(llm.provider_config()))
    return Settings.from_environ(
        {
            "AUTOCODE_GITHUB_API_URL": github.api_url,
            "AUTOCODE_GITHUB_URL": github.url,
            "AUTOCODE_WORKDIR": str(tmp_path / "work"),
            "AUTOCODE_RUNNER_IMAGE": RUNNER_IMAGE,
            "AUTOCODE_MODEL": "fake/scripted",
            "AUTOCODE_OPENCODE_CONFIG": str(config),
            "AUTOCODE_OPENCODE_AUTH": str(tmp_path / "no-auth.json"),
            "AUTOCODE_AGENT_NETWORK": "host",  # the scripted LLM listens on the host's loopback
            "AUTOCODE_RUN_TIMEOUT": "180",
            "AUTOCODE_AGENT_MEMORY": "1g",
        }
    )


def service_containers(worker_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=autocode.store=service",
         "--filter", f"label=autocode.worker={worker_id}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


async def test_a_ticket_becomes_a_branch_and_a_pull_request(
    tmp_path: Path, github: FakeGitHub, llm: ScriptedLLM, docker_runner: DockerRunner
) -> None:
    github.add_repo(REPO, {"README.md": "# Storefront\n", "shop/cart.py": "ITEMS = []\n"})
    token = mint(github, REPO)
    recorder = Recorder()
    logging.getLogger().addHandler(recorder)
    llm.script(
        [
            tool("bash", command="env | sort", description="Look around"),
            tool("write", filePath="shop/discount.py", content="RATE = 0.1\n"),
            text("Added shop/discount.py with a 10% rate."),
        ]
    )
    service = OpenCodeService(settings_for(tmp_path, github, llm), runner=docker_runner)
    try:
        result = await service.develop_ticket(
            ticket_title="Add a discount module!",
            ticket_description="Customers get 10% off. Put the rate in shop/discount.py.",
            ticket_type="feature",
            priority="high",
            repository_url=f"{github.url}/{REPO}",
            github_token=token,
        )
    finally:
        logging.getLogger().removeHandler(recorder)

    assert result["success"] is True, result
    assert result["error"] is None
    assert result["branch"] == "autocode/add-a-discount-module"
    assert result["files_changed"] == ["shop/discount.py"]
    assert result["output"] == "Added shop/discount.py with a 10% rate."
    assert result["tokens"]["input"] > 0 and result["tokens"]["output"] > 0
    assert result["tokens"]["total"] >= result["tokens"]["input"] + result["tokens"]["output"]
    assert isinstance(result["cost"], float)

    # the branch was pushed on top of main, and the pull request opened from it
    assert github.read_file(REPO, "autocode/add-a-discount-module", "shop/discount.py") == (
        "RATE = 0.1\n"
    )
    head = github.commit_log(REPO, "autocode/add-a-discount-module")[0]
    assert head["parents"] == [github.branch_sha(REPO, "main")]
    assert head["author_name"] == "Auto-Code"  # an installation token has no user
    assert head["message"].startswith("Auto-Code: Add a discount module!")
    pulls = [p for (repo, _), p in github.pulls.items() if repo == REPO]
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["html_url"] == result["pull_request_url"]
    assert pull["number"] == result["pull_request_number"]
    assert pull["head"]["ref"] == "autocode/add-a-discount-module"
    assert pull["base"]["ref"] == "main"
    assert pull["title"] == "Add a discount module!"
    assert "shop/discount.py" in pull["body"] and "priority: high" in pull["body"]

    # the agent got the ticket, and never the token
    prompt = next(p for p in llm.prompts() if "Title: Add a discount module!" in p)
    assert "feature ticket (priority: high)" in prompt
    assert "Customers get 10% off." in prompt
    outputs = llm.tool_results()
    assert any("HOME=/home/agent" in o for o in outputs), outputs  # `env` really ran inside
    assert all(token not in o for o in outputs)
    assert all(token not in line for line in recorder.lines)

    # nothing is left behind: no container, no clone
    assert service_containers(service.worker_id) == []
    assert list((tmp_path / "work").iterdir()) == []


async def test_a_token_github_refuses_fails_with_the_reason(
    tmp_path: Path, github: FakeGitHub, llm: ScriptedLLM, docker_runner: DockerRunner
) -> None:
    github.add_repo(REPO, {"README.md": "# Storefront\n"})
    service = OpenCodeService(settings_for(tmp_path, github, llm), runner=docker_runner)
    result = await service.develop_ticket(
        ticket_title="Anything",
        ticket_description="",
        repository_url=REPO,  # OWNER/NAME on AUTOCODE_GITHUB_URL
        github_token="ghs_" + "x" * 36,
    )
    assert result["success"] is False
    assert "401" in result["error"] and "Bad credentials" in result["error"]
    assert result["pull_request_url"] is None and result["files_changed"] == []
    assert llm.requests == []  # no agent ran
    assert github.pulls == {}


async def test_an_agent_that_changes_nothing_opens_no_pull_request(
    tmp_path: Path, github: FakeGitHub, llm: ScriptedLLM, docker_runner: DockerRunner
) -> None:
    github.add_repo(REPO, {"README.md": "# Storefront\n"})
    llm.script([text("Nothing to do: the README already says it.")])
    service = OpenCodeService(settings_for(tmp_path, github, llm), runner=docker_runner)
    result = await service.develop_ticket(
        ticket_title="Mention the storefront in the README",
        ticket_description="",
        ticket_type="docs",
        repository_url=f"{github.url}/{REPO}.git",
        github_token=mint(github, REPO),
    )
    assert result["success"] is False
    assert result["error"] == "the agent made no changes"
    assert result["output"] == "Nothing to do: the README already says it."
    assert github.branch_sha(REPO, "autocode/mention-the-storefront-in-the-readme") is None
    assert github.pulls == {}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/o/r", "must be https://HOST/OWNER/NAME"),
        ("https://user:secret@example.com/o/r", "must not carry credentials"),
        ("https://example.com/o", "must name one repository"),
        ("https://example.com/o/r/tree/main", "must name one repository"),
    ],
)
async def test_wrong_arguments_raise(
    tmp_path: Path, github: FakeGitHub, llm: ScriptedLLM, url: str, message: str
) -> None:
    service = OpenCodeService(settings_for(tmp_path, github, llm))
    with pytest.raises(ValueError, match=message):
        await service.develop_ticket(
            ticket_title="x", ticket_description="", repository_url=url, github_token="t"
        )
    with pytest.raises(ValueError, match="ticket_title"):
        await service.develop_ticket(
            ticket_title="  ", ticket_description="", repository_url=REPO, github_token="t"
        )
