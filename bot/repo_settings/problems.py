"""What is wrong with a settings file, in words and with the line it is on (pure).

A comment that says only "invalid" makes a maintainer guess: each YAML
error, key given twice and schema error becomes a `Problem` on its line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml

from .nodes import key_node, line_of, node_at
from .schema import PATTERN_WORDS, TYPE_WORDS


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


def yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    what = f"{context}: {problem}" if context and problem else str(problem)
    return Problem(line, f"this is not valid YAML ({what})")


def duplicates(root: yaml.MappingNode) -> list[Problem]:
    """YAML keeps the last of two equal keys silently; a reviewer would read the first."""
    seen: dict[str, int] = {}
    problems = []
    for key, _ in root.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        line = key.start_mark.line + 1
        if key.value in seen:
            problems.append(
                Problem(
                    line,
                    f"`{key.value}` is given twice (also on line {seen[key.value]})",
                )
            )
        else:
            seen[key.value] = line
    return problems


def describe(error: jsonschema.ValidationError, root: yaml.MappingNode) -> list[Problem]:
    """One schema error → its problems, each on the line of the value it is about."""
    path = list(error.absolute_path)
    node = node_at(root, path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys(error.instance, tuple(schema.get("properties", {})), node)
    return [Problem(line_of(node), _message(error, path))]


def _unknown_keys(
    instance: dict[Any, Any], known: tuple[str, ...], node: yaml.Node
) -> list[Problem]:
    """Keys the schema does not know, each with the known key it is closest to."""
    problems = []
    for key in instance:
        if key in known:
            continue
        pair = key_node(node, key)
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else "; known: " + ", ".join(known)
        problems.append(
            Problem(
                line_of(pair[0] if pair else node),
                f"unknown key `{key}`{hint}",
            )
        )
    return problems


def _message(error: jsonschema.ValidationError, path: Sequence[Any]) -> str:
    where = _where(path)
    validator = error.validator
    if validator == "type":
        wanted = error.validator_value
        words = (
            " or ".join(TYPE_WORDS.get(str(w), str(w)) for w in wanted)
            if isinstance(wanted, list)
            else TYPE_WORDS.get(str(wanted), str(wanted))
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
        words = PATTERN_WORDS.get(str(path[0]) if path else "", "valid")
        message = f"`{where}`: {_shown(error.instance)} is not {words}"
    else:
        message = f"`{where}`: {error.message}"
    return message


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
