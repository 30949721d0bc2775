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

- `schema`: the keys, defaults and caps; `settings`: the resolved values and
  the host's limits; `parser`: text → settings or `Invalid`; `problems` and
  `nodes`: what is wrong, on which line; `paths`: protected globs;
  `budgets`: tokens and cost a run may spend.
"""

from __future__ import annotations

from .budgets import budget_reached
from .parser import parse
from .paths import protected, split_protected
from .problems import Invalid, Problem
from .schema import (
    ALWAYS_PROTECTED,
    DEFAULT_ATTEMPTS,
    DEFAULT_COMMAND_TIMEOUT,
    KEYS,
    MAX_ATTEMPTS,
    MAX_FILE_BYTES,
    PATH,
    SCHEMA,
)
from .settings import HostLimits, RepoSettings, team_ref

__all__ = [
    "ALWAYS_PROTECTED",
    "DEFAULT_ATTEMPTS",
    "DEFAULT_COMMAND_TIMEOUT",
    "KEYS",
    "MAX_ATTEMPTS",
    "MAX_FILE_BYTES",
    "PATH",
    "SCHEMA",
    "HostLimits",
    "Invalid",
    "Problem",
    "RepoSettings",
    "budget_reached",
    "parse",
    "protected",
    "split_protected",
    "team_ref",
]
