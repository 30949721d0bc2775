"""The file's text → `RepoSettings`, or `Invalid` with every problem and its line (pure)."""

from __future__ import annotations

import math
from typing import Any

import yaml

from .nodes import key_node, line_of
from .problems import Invalid, Problem, describe, duplicates, yaml_problem
from .schema import MAX_FILE_BYTES, SCHEMA, VALIDATOR
from .settings import HostLimits, RepoSettings, resolve


def parse(text: str | bytes | None, host: HostLimits) -> RepoSettings | Invalid:
    """The file's text (None: there is no file) → settings, or every problem with its line."""
    if text is None:
        return RepoSettings.defaults(host)
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            return Invalid((Problem(None, f"the file is larger than {MAX_FILE_BYTES} bytes"),))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Invalid((Problem(None, "the file is not UTF-8 text"),))
    if len(text.encode()) > MAX_FILE_BYTES:
        return Invalid((Problem(None, f"the file is larger than {MAX_FILE_BYTES} bytes"),))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else None
    except yaml.YAMLError as exc:
        return Invalid((yaml_problem(exc),))
    if data is None:
        return RepoSettings.defaults(host)  # an empty file (or only comments)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1 if node is not None else 1
        return Invalid((Problem(line, "the file must be a mapping of keys (like `test: pytest`)"),))
    problems = duplicates(node)
    for error in sorted(VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.path))):
        problems.extend(describe(error, node))
    problems.extend(_over_limits(data, node, host))
    if problems:
        ordered = sorted(set(problems), key=lambda p: (p.line or 0, p.message))
        return Invalid(tuple(ordered))
    return resolve(data, host, found=True)


def _over_limits(data: dict[str, Any], root: yaml.MappingNode, host: HostLimits) -> list[Problem]:
    """Values the schema allows but this host does not."""
    problems = []

    def at(key: str) -> int | None:
        pair = key_node(root, key)
        return line_of(pair[1]) if pair else None

    timeout = data.get("timeout")
    if isinstance(timeout, int) and timeout > host.run_timeout:
        problems.append(
            Problem(
                at("timeout"),
                f"`timeout` is {timeout} seconds, more than this host allows "
                f"(AUTOCODE_RUN_TIMEOUT is {host.run_timeout})",
            )
        )
    run_timeout = min(timeout, host.run_timeout) if isinstance(timeout, int) else host.run_timeout
    command_timeout = data.get("command_timeout")
    if isinstance(command_timeout, int) and command_timeout > run_timeout:
        problems.append(
            Problem(
                at("command_timeout"),
                f"`command_timeout` is {command_timeout} seconds, more than the run may take "
                f"({run_timeout} seconds)",
            )
        )
    for key, limit, env in (
        ("max_cost_per_run", host.max_cost_per_run, "AUTOCODE_MAX_COST_PER_RUN"),
        ("max_tokens_per_run", host.max_tokens_per_run, "AUTOCODE_MAX_TOKENS_PER_RUN"),
        ("ci_fix_attempts", host.max_ci_fix_attempts, "AUTOCODE_MAX_CI_FIX_ATTEMPTS"),
    ):
        value = data.get(key)
        schema_max = SCHEMA["properties"][key].get("maximum")
        if schema_max is not None and isinstance(value, int | float) and value > schema_max:
            continue  # the schema's own problem says so already
        if isinstance(value, int | float) and limit is not None and value > limit:
            message = f"`{key}` is {value}, more than this host allows ({env} is {limit})"
            problems.append(Problem(at(key), message))
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(at(key), f"`{key}` must be a finite number"))
    if data.get("network") == "bridge" and not host.containers_may_go_out:
        problems.append(
            Problem(
                at("network"),
                "`network: bridge` is more than this host allows "
                f"(AUTOCODE_AGENT_NETWORK is {host.network})",
            )
        )
    return problems
