"""The repository on the host: a ticket's clone (`tree`) and the git environment
that carries the token (`git_env`).
"""

from .git_env import TRANSIENT, credential_env, redact
from .tree import GIT_RETRIES, GIT_TIMEOUT, Author, Workspace, changed_paths

__all__ = [
    "GIT_RETRIES",
    "GIT_TIMEOUT",
    "TRANSIENT",
    "Author",
    "Workspace",
    "changed_paths",
    "credential_env",
    "redact",
]
