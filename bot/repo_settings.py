"""`.github/autocode.yml`: a repository's own settings for its runs (pure).

Maintainers steer the bot from a file they review like code: the model,
extra instructions, setup and test commands, attempts, protected paths, who
may ask, and how pull requests are opened. The file is validated against
`SCHEMA` (JSON Schema, so editors can use it too); every problem is reported
with the line it is on, because a comment that says only "invalid" makes a
maintainer guess. The host's own limits (`HostLimits`) are a ceiling the file
can lower but never raise.

Nothing here does I/O: the run reads the file from the commit it starts from
and hands the text to `parse`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml

from .config import Settings
from .models import Usage

PATH = ".github/autocode.yml"
MAX_FILE_BYTES = 64 * 1024
MAX_ATTEMPTS = 10
DEFAULT_ATTEMPTS = 3
DEFAULT_COMMAND_TIMEOUT = 600  # seconds one setup or test command may take
# Always protected, whatever the file says: CI definitions run with the repository's
# secrets, and the settings file itself would otherwise let an agent lift its own limits.
ALWAYS_PROTECTED = (".github/workflows/**", PATH)

_LOGIN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$"
_TEAM = r"^(?:[A-Za-z0-9][A-Za-z0-9-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$"
_COMMANDS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 4000},
    "maxItems": 20,
}
_NAMES = {"type": "array", "items": {"type": "string", "pattern": _LOGIN}, "maxItems": 100}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": PATH,
    "description": "Per-repository settings of the Auto-Code bot",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "pattern": r"^[^/\s]+/\S+$"},
        "instructions": {"type": "string", "maxLength": 20000},
        "setup": _COMMANDS,
        "test": {"type": "string", "minLength": 1, "maxLength": 4000},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
        "timeout": {"type": "integer", "minimum": 1},
        "command_timeout": {"type": "integer", "minimum": 1},
        "network": {"enum": ["none", "bridge"]},
        "protected_paths": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 500},
            "maxItems": 200,
        },
        "allowed_users": _NAMES,
        "allowed_teams": {
            "type": "array",
            "items": {"type": "string", "pattern": _TEAM},
            "maxItems": 50,
        },
        "draft": {"type": "boolean"},
        "pr_labels": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 50},
            "maxItems": 20,
        },
        "reviewers": {
            "type": "array",
            "items": {"type": "string", "pattern": _TEAM},
            "maxItems": 15,
        },
        "max_cost_per_run": {"type": "number", "exclusiveMinimum": 0},
        "max_tokens_per_run": {"type": "integer", "minimum": 1},
    },
}
KEYS = tuple(SCHEMA["properties"])
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}


@dataclass(frozen=True)
class HostLimits:
    """What this host allows; a settings file may ask for less, never for more."""

    run_timeout: int
    max_cost_per_run: float | None = None
    max_tokens_per_run: int | None = None
    network: str = "internal"  # AUTOCODE_AGENT_NETWORK
    model: str = ""

    @classmethod
    def of(cls, settings: Settings) -> HostLimits:
        return cls(
            run_timeout=settings.run_timeout,
            max_cost_per_run=settings.max_cost_per_run,
            max_tokens_per_run=settings.max_tokens_per_run,
            network=settings.agent_network,
            model=settings.model,
        )

    @property
    def containers_may_go_out(self) -> bool:
        return self.network in ("bridge", "host")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, and where."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Invalid:
    """A settings file that must not be used: nothing runs."""

    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class RepoSettings:
    """The file's values over the defaults, resolved against the host's limits."""

    found: bool = False
    model: str = ""
    instructions: str = ""
    setup: tuple[str, ...] = ()
    test: str = ""
    max_attempts: int = DEFAULT_ATTEMPTS
    run_timeout: int = 1800  # the whole run: setup, agent attempts and tests
    command_timeout: int = DEFAULT_COMMAND_TIMEOUT  # one setup or test command
    network: str = "none"  # of the setup and test containers
    protected_paths: tuple[str, ...] = ALWAYS_PROTECTED
    allowed_users: tuple[str, ...] = ()
    allowed_teams: tuple[str, ...] = ()
    draft: bool = False
    pr_labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    max_cost_per_run: float | None = None
    max_tokens_per_run: int | None = None

    @classmethod
    def defaults(cls, host: HostLimits) -> RepoSettings:
        """The settings of a repository without the file: the host's own."""
        return _resolve({}, host, found=False)

    def is_protected(self, path: str) -> bool:
        return protected(path, self.protected_paths)

    @property
    def restricts_users(self) -> bool:
        return bool(self.allowed_users or self.allowed_teams)


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
        return Invalid((_yaml_problem(exc),))
    if data is None:
        return RepoSettings.defaults(host)  # an empty file (or only comments)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1 if node is not None else 1
        return Invalid((Problem(line, "the file must be a mapping of keys (like `test: pytest`)"),))
    problems = _duplicates(node)
    for error in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.path))):
        problems.extend(_describe(error, node))
    problems.extend(_over_limits(data, node, host))
    if problems:
        ordered = sorted(set(problems), key=lambda p: (p.line or 0, p.message))
        return Invalid(tuple(ordered))
    return _resolve(data, host, found=True)


def _resolve(data: dict[str, Any], host: HostLimits, *, found: bool) -> RepoSettings:
    run_timeout = min(int(data.get("timeout") or host.run_timeout), host.run_timeout)
    command_timeout = int(data.get("command_timeout") or min(DEFAULT_COMMAND_TIMEOUT, run_timeout))
    patterns = _unique([*ALWAYS_PROTECTED, *data.get("protected_paths", ())])
    cost = data.get("max_cost_per_run", host.max_cost_per_run)
    tokens = data.get("max_tokens_per_run", host.max_tokens_per_run)
    return RepoSettings(
        found=found,
        model=str(data.get("model") or host.model),
        instructions=str(data.get("instructions") or "").strip(),
        setup=tuple(c.strip() for c in data.get("setup", ()) if c.strip()),
        test=str(data.get("test") or "").strip(),
        max_attempts=int(data.get("max_attempts", DEFAULT_ATTEMPTS)),
        run_timeout=run_timeout,
        command_timeout=min(command_timeout, run_timeout),
        network=str(data.get("network", "none")),
        protected_paths=patterns,
        allowed_users=_unique(data.get("allowed_users", ())),
        allowed_teams=_unique(data.get("allowed_teams", ())),
        draft=bool(data.get("draft", False)),
        pr_labels=_unique(data.get("pr_labels", ())),
        reviewers=_unique(data.get("reviewers", ())),
        max_cost_per_run=float(cost) if cost is not None else None,
        max_tokens_per_run=int(tokens) if tokens is not None else None,
    )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))


# -- line numbers ------------------------------------------------------------------


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    what = f"{context}: {problem}" if context and problem else str(problem)
    return Problem(line, f"this is not valid YAML ({what})")


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _key_node(mapping: yaml.Node, key: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of `key` in a mapping node; the last one, as YAML loads it."""
    if not isinstance(mapping, yaml.MappingNode):
        return None
    found = None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and _same_key(key_node, key):
            found = (key_node, value_node)
    return found


def _same_key(node: yaml.ScalarNode, key: Any) -> bool:
    if isinstance(key, str):
        return bool(node.value == key)
    try:
        return bool(yaml.safe_load(node.value) == key)
    except yaml.YAMLError:
        return False


def _node_at(root: yaml.Node, path: Sequence[Any]) -> yaml.Node:
    """The deepest node along a JSON path (keys and list indexes)."""
    node = root
    for step in path:
        if isinstance(node, yaml.MappingNode):
            pair = _key_node(node, step)
            if pair is None:
                return node
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return node
            node = node.value[step]
        else:
            return node
    return node


def _duplicates(root: yaml.MappingNode) -> list[Problem]:
    """YAML keeps the last of two equal keys silently; a reviewer would read the first."""
    seen: dict[str, int] = {}
    problems = []
    for key_node, _ in root.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            problems.append(
                Problem(
                    line,
                    f"`{key_node.value}` is given twice (also on line {seen[key_node.value]})",
                )
            )
        else:
            seen[key_node.value] = line
    return problems


def _where(path: Sequence[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    return type(value).__name__


def _describe(error: jsonschema.ValidationError, root: yaml.MappingNode) -> list[Problem]:
    path = list(error.absolute_path)
    node = _node_at(root, path)
    where = _where(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = tuple(schema.get("properties", {}))
        problems = []
        for key in error.instance:
            if key in known:
                continue
            pair = _key_node(node, key)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else "; known: " + ", ".join(known)
            problems.append(
                Problem(
                    _line(pair[0] if pair else node),
                    f"unknown key `{key}`{hint}",
                )
            )
        return problems
    if validator == "type":
        wanted = error.validator_value
        words = (
            " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
            if isinstance(wanted, list)
            else _TYPE_WORDS.get(str(wanted), str(wanted))
        )
        message = f"`{where}` must be {words}, not {_kind(error.instance)}"
        if wanted == "array" and isinstance(error.instance, str):
            message += " (write one `- item` per line)"
    elif validator == "enum":
        allowed = error.validator_value if isinstance(error.validator_value, list) else []
        options = ", ".join(f"`{v}`" for v in allowed)
        message = f"`{where}` must be one of {options}, not {_shown(error.instance)}"
    elif validator in ("minimum", "exclusiveMinimum", "maximum"):
        bound = {"minimum": "must be at least", "exclusiveMinimum": "must be more than",
                 "maximum": "may be at most"}[str(validator)]  # fmt: skip
        message = f"`{where}` {bound} {error.validator_value}, not {_shown(error.instance)}"
    elif validator == "minLength":
        message = f"`{where}` must not be empty"
    elif validator in ("maxLength", "maxItems"):
        unit = "characters" if validator == "maxLength" else "entries"
        message = f"`{where}` may have at most {error.validator_value} {unit}"
    elif validator == "pattern":
        words = _PATTERN_WORDS.get(str(path[0]) if path else "", "valid")
        message = f"`{where}`: {_shown(error.instance)} is not {words}"
    else:
        message = f"`{where}`: {error.message}"
    return [Problem(_line(node), message)]


_PATTERN_WORDS = {
    "model": "of the form `provider/model`",
    "allowed_users": "a GitHub login",
    "allowed_teams": "a team slug (`team` or `org/team`)",
    "reviewers": "a GitHub login or a team (`org/team`)",
}


def _over_limits(data: dict[str, Any], root: yaml.MappingNode, host: HostLimits) -> list[Problem]:
    """Values the schema allows but this host does not."""
    problems = []

    def at(key: str) -> int | None:
        pair = _key_node(root, key)
        return _line(pair[1]) if pair else None

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
    ):
        value = data.get(key)
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


# -- protected paths ---------------------------------------------------------------


def _translate(pattern: str) -> str:
    """A gitignore-style glob → a regular expression over a path from the repository root."""
    pattern = pattern.strip()
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # a pattern that names a directory covers everything in it
    return prefix + "".join(out) + "(?:/.*)?"


def _literal_dirs(pattern: str) -> list[str]:
    """The directories a pattern's fixed beginning names: `.github/workflows/**` → both."""
    if "/" not in pattern.strip("/"):
        return []
    parts: list[str] = []
    for segment in pattern.strip().strip("/").split("/"):
        if any(ch in segment for ch in "*?["):
            break
        parts.append(segment)
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def protected(path: str, patterns: Sequence[str]) -> bool:
    """Whether a changed path falls under one of the protected globs.

    A path that *is* one of the directories a pattern starts with counts too:
    an agent that turns `.github` into a file or a symlink would otherwise
    replace the workflows without touching a path under them.
    """
    path = path.strip("/")
    for pattern in patterns:
        if re.fullmatch(_translate(pattern), path):
            return True
        if path in _literal_dirs(pattern):
            return True
    return False


def split_protected(paths: Iterable[str], patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(paths that may be committed, protected paths to drop)."""
    kept: list[str] = []
    dropped: list[str] = []
    for path in paths:
        (dropped if protected(path, patterns) else kept).append(path)
    return kept, dropped


# -- who may ask -------------------------------------------------------------------


def team_ref(entry: str, owner: str) -> tuple[str, str]:
    """(org, team slug) of an `allowed_teams` entry; a bare slug is in the repository's owner."""
    org, _, slug = entry.rpartition("/")
    return (org or owner), slug


# -- budgets -----------------------------------------------------------------------


def budget_reached(settings: RepoSettings, usage: Usage) -> str:
    """The budget `usage` has passed, in words for the comment; empty while within both.

    Tokens count input, output and reasoning (not cache reads, which providers
    bill at a fraction); cost is what opencode computed from the model's prices.
    """
    tokens = settings.max_tokens_per_run
    if tokens is not None and usage.total > tokens:
        return (
            f"the token budget of {tokens:,} tokens per run was reached "
            f"({usage.total:,} tokens used)"
        )
    cost = settings.max_cost_per_run
    if cost is not None and usage.cost > cost:
        return f"the cost budget of ${cost:.2f} per run was reached (${usage.cost:.4f} spent)"
    return ""
