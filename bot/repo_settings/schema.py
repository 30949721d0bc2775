"""The shape of `.github/autocode.yml`: its keys as JSON Schema, its defaults and caps.

`SCHEMA` is what editors can use too; the validator and the words for a
value of the wrong type are built from it once, here.
"""

from __future__ import annotations

from typing import Any

import jsonschema

PATH = ".github/autocode.yml"
MAX_FILE_BYTES = 64 * 1024
MAX_ATTEMPTS = 10
DEFAULT_ATTEMPTS = 3
DEFAULT_COMMAND_TIMEOUT = 600  # seconds one setup or test command may take
MAX_CI_FIX_ATTEMPTS = 5  # follow-ups (failed checks, reviews) one pull request may get
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
        # the image the setup, agent and test containers derive from (a Docker reference)
        "image": {"type": "string", "pattern": r"^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$"},
        # the bot's own pull requests: fixes after failed checks, answers to reviews
        "ci_fix_attempts": {"type": "integer", "minimum": 0, "maximum": MAX_CI_FIX_ATTEMPTS},
        "on_review": {"enum": ["changes_requested", "off"]},
    },
}
KEYS = tuple(SCHEMA["properties"])
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}
PATTERN_WORDS = {
    "model": "of the form `provider/model`",
    "allowed_users": "a GitHub login",
    "allowed_teams": "a team slug (`team` or `org/team`)",
    "reviewers": "a GitHub login or a team (`org/team`)",
    "image": "an image reference such as `python:3.12-slim` or `ghcr.io/org/image@sha256:…`",
}
