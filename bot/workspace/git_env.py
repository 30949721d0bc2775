"""git on the host with a token: the environment that carries it, and what git's errors say.

The installation token reaches git only through its environment: a
credential helper defined in `GIT_CONFIG_*` variables reads it from
`AUTOCODE_GIT_TOKEN`. Nothing with the token is written to disk.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# git's words for a failure that may pass: a 5xx, a dropped connection. A 401/403/404
# or a rejected push is final.
TRANSIENT = re.compile(
    r"returned error: 5\d\d|RPC failed; HTTP 5|unexpected disconnect|early EOF"
    r"|Connection (?:refused|reset|timed out)|Could not resolve host|remote end hung up"
    r"|Operation timed out|gnutls_handshake|SSL_ERROR",
    re.IGNORECASE,
)


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def credential_env(clone_url: str, token: str) -> dict[str, str]:
    """git configuration in environment variables: a credential helper for this host only."""
    parts = urlsplit(clone_url)
    origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    helper = (
        '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
        'echo "password=$AUTOCODE_GIT_TOKEN"; }; f'
    )
    settings = [
        ("credential.helper", ""),  # forget helpers from other config files
        (f"credential.{origin}.helper", helper),
        ("credential.interactive", "false"),
        ("core.hooksPath", "/dev/null"),
        ("core.fsmonitor", "false"),
        ("safe.directory", "*"),
        ("protocol.file.allow", "never"),
        ("gc.auto", "0"),
    ]
    env = {
        "GIT_CONFIG_COUNT": str(len(settings)),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "AUTOCODE_GIT_TOKEN": token,
    }
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
