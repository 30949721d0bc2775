"""Record the real opencode's `--format json` event stream for the parser's tests.

    python -m tests.record_opencode tests/data/opencode [SCENARIO ...]

For each scenario a `ScriptedLLM` on 127.0.0.1 answers opencode's requests
with a fixed script; opencode runs in the runner image with the agent's
hardening (uid 1000, no capabilities, read-only root, tmpfs home, Docker's
init) on a small git repository mounted at /workspace, reaching the scripted
server through `--network host`. Its stdout goes verbatim to
OUTDIR/<scenario>.jsonl; the exit code, the workspace's `git status
--porcelain`, the script the model followed and the tokens' prices go to
OUTDIR/<scenario>.meta.json, so the tests derive their expectations from what
the model was told to do rather than from the parser's output.

The only things replaced in the recordings are the scripted server's port
(random per run) and the host's temporary folders, if they appear at all.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.pipeline.spec import agent_config
from tests.fakes.llm import ScriptedLLM, Step, error, text, tool

MODEL = "fake/scripted"
RUNNER_IMAGE = os.environ.get("AUTOCODE_TEST_RUNNER_IMAGE", "autocode-runner:latest")
PORT_STANDIN = "127.0.0.1:8080"  # what the scripted server's random port becomes
# $ per million tokens, given to opencode as the model's price so that it reports a cost
PRICE = {"input": 3.0, "output": 15.0}
RUN_TIMEOUT = 240.0

APP_PY = '''"""A tiny app."""


def greet(name: str) -> str:
    return "Hello, " + name


if __name__ == "__main__":
    print(greet("world"))
'''
README = "# demo\n\nA small repository the agent works on.\n"


def used(step: Step, prompt_tokens: int, completion_tokens: int) -> Step:
    """`step`, reporting its own token counts (the recordings' sums must tell steps apart)."""
    return replace(step, usage=(prompt_tokens, completion_tokens))


@dataclass(frozen=True)
class Scenario:
    name: str
    prompt: str
    steps: tuple[Step, ...]
    # the `permission` of opencode's config; None: opencode's own defaults
    permission: Any = "allow"
    note: str = ""
    files: dict[str, str] = field(default_factory=dict)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "success",
        "Create hello.txt saying hello, then show it.",
        (
            used(tool("write", filePath="hello.txt", content="hello from the agent\n"), 1101, 21),
            used(tool("bash", command="cat hello.txt", description="Show hello.txt"), 1202, 32),
            used(text("I created hello.txt and checked its content."), 1303, 43),
        ),
        note="write hello.txt, bash `cat hello.txt`, final text",
    ),
    Scenario(
        "edit",
        "Make greet() in src/app.py end with an exclamation mark.",
        (
            used(tool("read", filePath="src/app.py"), 2101, 11),
            used(
                tool(
                    "edit",
                    filePath="src/app.py",
                    oldString='return "Hello, " + name',
                    newString='return "Hello, " + name + "!"',
                ),
                2202,
                52,
            ),
            used(text("greet() now ends with an exclamation mark."), 2303, 23),
        ),
        note="read src/app.py, edit it, final text",
    ),
    Scenario(
        "no_change",
        "What does src/app.py do? Do not change anything.",
        (used(text("src/app.py defines greet(name), which says hello to name."), 3101, 61),),
        note="a plain text answer, no tool",
    ),
    Scenario(
        "tool_refused",
        "Show the machine's hostname.",
        (
            used(
                tool("bash", command="cat /etc/hostname", description="Read the hostname"), 4101, 41
            ),
            used(text("I was not allowed to read /etc/hostname."), 4202, 22),
        ),
        permission=None,
        note=(
            "a bash command reading a file outside the working directory, which opencode "
            "refuses in `run` mode under its default permissions (the bot's `permission: "
            "allow` would let it run); the script's text is never asked for: opencode ends "
            "the run after the refusal"
        ),
    ),
    Scenario(
        "provider_error",
        "Create hello.txt.",
        (error(401),),
        note="the LLM answers every request with HTTP 401",
    ),
    Scenario(
        "session_first",
        "Write notes.txt with one line: first.",
        (
            used(tool("write", filePath="notes.txt", content="first\n"), 5101, 51),
            used(text("notes.txt holds the first line."), 5202, 12),
        ),
        note="the first run of a session: write notes.txt, final text",
    ),
    Scenario(
        "session_second",
        "Now show notes.txt.",
        (
            used(tool("bash", command="cat notes.txt", description="Show notes.txt"), 6101, 31),
            used(text("notes.txt still says first."), 6202, 42),
        ),
        note="`--session <id of session_first>` on the same workspace and opencode data",
    ),
)


def step_record(step: Step) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": step.kind}
    if step.kind == "tool":
        record |= {"tool": step.name, "arguments": step.arguments}
    elif step.kind == "text":
        record["text"] = step.text
    elif step.kind == "error":
        record |= {"status": step.status, "repeat": step.repeat}
    if step.kind in ("tool", "text"):
        record["usage"] = {"prompt_tokens": step.usage[0], "completion_tokens": step.usage[1]}
    return record


def make_workspace(root: Path) -> Path:
    work = root / "workspace"
    (work / "src").mkdir(parents=True)
    (work / "README.md").write_text(README)
    (work / "src" / "app.py").write_text(APP_PY)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    return work


def give_to_agent(path: Path) -> None:
    """Make `path` (recursively) the container user's (uid 1000), or writable by all."""
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            if os.geteuid() == 0:
                os.chown(name, 1000, 1000, follow_symlinks=False)
            elif not os.path.islink(name):
                os.chmod(name, 0o777 if os.path.isdir(name) else 0o666)


def git_status(work: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(work), "status", "--porcelain"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.splitlines()


def opencode_config(llm: ScriptedLLM, permission: Any) -> dict[str, Any]:
    """The bot's own config (agent_config) around the scripted provider, with prices."""
    provider = copy.deepcopy(llm.provider_config())
    for model in provider["provider"]["fake"]["models"].values():
        model["cost"] = dict(PRICE)
    config = agent_config(provider["provider"])
    config["model"] = MODEL
    if permission is None:
        del config["permission"]
    else:
        config["permission"] = permission
    return config


def docker_command(
    name: str, work: Path, config: dict[str, Any], prompt: str, *,
    data_dir: Path | None, session: str,
) -> list[str]:  # fmt: skip
    command = [
        "docker", "run", "--rm", "--name", name,
        "--user", "1000:1000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--read-only", "--tmpfs", "/tmp",
        "--tmpfs", "/home/agent:uid=1000,gid=1000,mode=0700",
        "--init", "--pids-limit", "512", "--memory", "2g", "--network", "host",
        "-v", f"{work}:/workspace", "-w", "/workspace",
        "-e", "HOME=/home/agent", "-e", "PWD=/workspace",
        "-e", f"OPENCODE_CONFIG_CONTENT={json.dumps(config)}",
    ]  # fmt: skip
    if data_dir is not None:  # as the bot keeps a session's opencode data between runs
        command += [
            "--tmpfs", "/home/agent/.local:uid=1000,gid=1000,mode=0700",
            "-v", f"{data_dir}:/home/agent/.local/share/opencode",
        ]  # fmt: skip
    command += [RUNNER_IMAGE, "opencode", "run", "--model", MODEL, "--format", "json"]
    if session:
        command += ["--session", session]
    return [*command, prompt]


def session_of(stdout: str) -> str:
    """The sessionID of the first event that has one (plain JSON, not the bot's parser)."""
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            raw = json.loads(line)
            if isinstance(raw, dict) and isinstance(raw.get("sessionID"), str):
                return str(raw["sessionID"])
    return ""


def scrub(output: str, llm: ScriptedLLM, folders: list[Path]) -> tuple[str, list[str]]:
    replaced: list[str] = []
    port = urlsplit(llm.url).netloc
    if port in output:
        output = output.replace(port, PORT_STANDIN)
        replaced.append(f"the scripted server's random port -> {PORT_STANDIN}")
    for folder in folders:
        if str(folder) in output:
            output = output.replace(str(folder), "/host-tmp")
            replaced.append(f"a host folder {folder} -> /host-tmp")
    return output, replaced


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def record(
    scenario: Scenario, outdir: Path, work: Path, *,
    data_dir: Path | None = None, session: str = "", folders: list[Path],
) -> dict[str, Any]:  # fmt: skip
    """Run opencode once on `scenario`'s script; write its .jsonl and .meta.json."""
    with ScriptedLLM() as llm:
        llm.script(scenario.steps)
        config = opencode_config(llm, scenario.permission)
        name = f"autocode-record-{scenario.name.replace('_', '-')}-{os.getpid()}"
        command = docker_command(
            name, work, config, scenario.prompt, data_dir=data_dir, session=session
        )
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
            raise
        seconds = time.monotonic() - started
        requests = list(llm.requests)
        remaining = llm.remaining
    stdout, replaced = scrub(done.stdout, llm, folders)
    stderr, _ = scrub(done.stderr, llm, folders)
    (outdir / f"{scenario.name}.jsonl").write_text(stdout)
    with_tools = [r for r in requests if r["body"].get("tools")]
    meta = {
        "scenario": scenario.name,
        "note": scenario.note,
        "prompt": scenario.prompt,
        "command": ["opencode", "run", "--model", MODEL, "--format", "json"]
        + (["--session", session] if session else [])
        + ["PROMPT"],
        "session_arg": session,
        "permission": scenario.permission,
        "price_per_million_tokens": PRICE,
        "script": [step_record(s) for s in scenario.steps],
        "script_steps_left": remaining,
        "llm_requests": len(requests),
        "llm_requests_with_tools": len(with_tools),
        "exit_code": done.returncode,
        "seconds": round(seconds, 1),
        "git_status": git_status(work),
        "stderr_tail": stderr.splitlines()[-20:],
        "replaced": replaced,
        "recorded": time.strftime("%Y-%m-%d"),
        "image": RUNNER_IMAGE,
    }
    (outdir / f"{scenario.name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(
        f"{scenario.name}: exit {done.returncode} in {seconds:.1f} s, "
        f"{len(stdout.splitlines())} lines, {len(requests)} LLM requests"
    )
    return meta


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="autocode-record-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def record_all(outdir: Path, names: list[str]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    chosen = {s.name: s for s in SCENARIOS if not names or s.name in names}
    if "session_second" in chosen and "session_first" not in chosen:
        raise SystemExit("session_second needs session_first")
    for scenario in chosen.values():
        if scenario.name == "session_second":
            continue  # recorded right after session_first, on its workspace
        with scratch() as root:
            work = make_workspace(root)
            folders = [root]
            if scenario.name != "session_first":
                give_to_agent(work)
                record(scenario, outdir, work, folders=folders)
                continue
            data = root / "opencode-data"
            data.mkdir()
            give_to_agent(root)
            first = record(scenario, outdir, work, data_dir=data, folders=folders)
            session = session_of((outdir / "session_first.jsonl").read_text())
            if not session:
                raise SystemExit(f"no sessionID in session_first: {first}")
            if "session_second" in chosen:
                second = chosen["session_second"]
                record(second, outdir, work, data_dir=data, session=session, folders=folders)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("scenarios", nargs="*", help="only these (default: all)")
    args = parser.parse_args(argv)
    record_all(args.outdir, list(args.scenarios))


if __name__ == "__main__":
    main()
