"""The agent image derived from a repository's own image: its Dockerfile and its tag (pure).

The derived image is the repository's image (its `image:` in
`.github/autocode.yml`, or its dev container) plus what the agent needs and
the runner image has: the pinned opencode binary and the entrypoint that
copies the run's credentials into the agent's home, both copied from the
runner image; `git` and CA certificates where missing (installed with
apt-get or apk); a non-root user with uid 1000; git's system settings. Its
tag depends on the base image's id, the opencode version and this recipe's
version only, so a second run on the same base builds nothing.

opencode comes in a glibc and a musl build, and the runner image carries
both (the musl one gzip-compressed, image.py). The build finds the base's C
library first, in a stage of its own on the base: musl when the base's `ldd`
says so (Alpine's does), or when it has musl's dynamic loader and no glibc
one; glibc otherwise. A second stage, on the runner image, keeps only that
build (deleting the other, so nothing is copied twice), and the derived image
copies the one left as /usr/local/bin/opencode. On musl, libstdc++ (which
opencode's musl build links) is installed where missing, as git is. The
build's check of `opencode --version` fails and says so on a base neither
build runs on.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from .catalog import (
    DERIVED_REPOSITORY,
    LABEL_BASE,
    LABEL_BASE_ID,
    LABEL_DERIVED,
    LABEL_OPENCODE,
    LABEL_REPOSITORY,
)


@dataclass(frozen=True)
class BuildRecipe:
    """A Dockerfile build of the repository's (its dev container's), on its work tree."""

    dockerfile: str  # relative to the repository root
    context: str  # relative to the repository root
    args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""


@dataclass(frozen=True)
class Prepared:
    image: str  # the tag the run's containers use
    base: str  # what the repository named
    built: bool  # False: the derived image was there already
    seconds: float


RECIPE_VERSION = "2"  # bump when the Dockerfile below changes: every derived image is rebuilt
AGENT_UID = 1000

# The base's C library (`glibc` or `musl`), as the build found it; kept in the derived image.
LIBC_FILE = "/usr/local/lib/autocode/libc"
# The runner image's musl build of opencode (opencode.gz; unpacked to opencode when picked).
MUSL_DIR = "/usr/local/lib/autocode/musl"

# What the build prints when it stops on purpose: the bot turns these into advice.
NO_PACKAGE_MANAGER = "autocode: cannot install"
NO_OPENCODE = "autocode: opencode does not run on this base"
NO_MUSL_BUILD = "autocode: the runner image has no musl build of opencode"
# What it prints once it knows the base's C library (followed by `glibc` or `musl`).
LIBC_FOUND = "autocode: the base's C library is"

# Run as root on the base, with /bin/sh: which C library opencode must be built for.
_DETECT = f"""\
libc=glibc; \\
if ldd --version 2>&1 | grep -qi musl; then libc=musl; \\
elif ! ls /lib/ld-linux* /lib64/ld-linux* /lib/*-linux-gnu/ld-linux* >/dev/null 2>&1 \\
  && ls /lib/ld-musl-* >/dev/null 2>&1; then libc=musl; fi; \\
echo "{LIBC_FOUND} $libc"; \\
mkdir -p {LIBC_FILE.rsplit("/", 1)[0]} && echo "$libc" > {LIBC_FILE}"""

# Run as root on the base, with /bin/sh. Each line a shell command joined with `&&`.
_PREPARE = f"""\
need=""; \\
command -v git >/dev/null 2>&1 || need="$need git"; \\
[ -e /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"; \\
if [ "$(cat {LIBC_FILE})" = musl ] && ! [ -e /usr/lib/libstdc++.so.6 ] \\
  && ! [ -e /lib/libstdc++.so.6 ]; then need="$need libstdc++"; fi; \\
if [ -n "$need" ]; then \\
  if command -v apt-get >/dev/null 2>&1; then \\
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \\
      --no-install-recommends $need && rm -rf /var/lib/apt/lists/*; \\
  elif command -v apk >/dev/null 2>&1; then apk add --no-cache $need; \\
  else echo "{NO_PACKAGE_MANAGER}$need: the image has neither apt-get nor apk" >&2; exit 3; fi; \\
fi; \\
if ! grep -q '^[^:]*:[^:]*:{AGENT_UID}:' /etc/passwd; then \\
  if command -v useradd >/dev/null 2>&1; then \\
    useradd --uid {AGENT_UID} --create-home --home-dir /home/agent --shell /bin/sh agent; \\
  elif command -v adduser >/dev/null 2>&1; then \\
    adduser -D -u {AGENT_UID} -h /home/agent -s /bin/sh agent; \\
  else echo 'agent:x:{AGENT_UID}:{AGENT_UID}::/home/agent:/bin/sh' >> /etc/passwd; fi; \\
fi; \\
mkdir -p /home/agent /workspace && chown {AGENT_UID}:{AGENT_UID} /home/agent; \\
git config --system safe.directory '*' && \\
git config --system user.name 'Auto-Code agent' && \\
git config --system user.email 'agent@autocode.invalid'"""


def derived_tag(base_id: str, opencode_version: str) -> str:
    """The derived image's tag: the same base and opencode give the same tag."""
    key = f"{RECIPE_VERSION}\n{base_id}\n{opencode_version}".encode()
    return f"{DERIVED_REPOSITORY}:{hashlib.sha256(key).hexdigest()[:12]}"


def dockerfile(
    *, base_id: str, base: str, runner_image: str, opencode_version: str, repository: str
) -> str:
    """The derived image's Dockerfile (it needs no build context)."""
    labels = {
        LABEL_DERIVED: "1",
        LABEL_BASE: base,
        LABEL_BASE_ID: base_id,
        LABEL_OPENCODE: opencode_version,
        LABEL_REPOSITORY: repository,
    }
    label_args = " ".join(f"{k}={_quoted(v)}" for k, v in labels.items())
    return "\n".join([
        # 1. the base's C library
        f"FROM {base_id} AS autocode-base",
        "USER 0",  # by number: a base without /etc/passwd has no `root` by name
        f"RUN {_DETECT}",
        # 2. the runner image less the opencode build the base cannot run
        f"FROM {runner_image} AS autocode-opencode",
        "USER 0",
        f"COPY --from=autocode-base {LIBC_FILE} {LIBC_FILE}",
        f"RUN {_pick(opencode_version)}",
        # 3. the base with the build left (a pattern that matches nothing copies nothing)
        "FROM autocode-base",
        f"COPY --from=autocode-opencode /usr/local/bin/opencode* {MUSL_DIR}/opencode* "
        "/usr/local/bin/",
        f"COPY --from={runner_image} /usr/local/bin/autocode-agent /usr/local/bin/autocode-agent",
        f"RUN {_PREPARE}",
        f"RUN {_check(opencode_version)}",
        f"USER {AGENT_UID}",
        "ENV HOME=/home/agent OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1 "
        "OPENCODE_DISABLE_LSP_DOWNLOAD=1",
        "WORKDIR /workspace",
        f"LABEL {label_args}",
        'ENTRYPOINT ["/usr/local/bin/autocode-agent"]',
        'CMD ["opencode", "--version"]',
        "",
    ])  # fmt: skip


def _pick(opencode_version: str) -> str:
    """Run on the runner image: delete the build the base cannot run (deleting copies
    nothing), unpacking the musl one where it is the one kept."""
    missing = f"{NO_MUSL_BUILD} {opencode_version}"
    return (
        f'if [ "$(cat {LIBC_FILE})" = musl ]; then '
        f"[ -f {MUSL_DIR}/opencode.gz ] || {{ echo {shlex.quote(missing)} >&2; exit 4; }}; "
        f"gzip -d {MUSL_DIR}/opencode.gz && chmod 0755 {MUSL_DIR}/opencode "
        "&& rm /usr/local/bin/opencode; "
        f"else rm -rf {MUSL_DIR}; fi"
    )


def _check(opencode_version: str) -> str:
    """Run on the derived image: opencode says its version, or the build stops saying why."""
    return (
        'said="$(/usr/local/bin/opencode --version 2>&1)"; '
        f'test "$said" = {shlex.quote(opencode_version)} '
        f'|| {{ echo "{NO_OPENCODE} (its C library is $(cat {LIBC_FILE}); opencode is built '
        'for glibc and musl): $said" | head -5 >&2; exit 4; }'
    )


def _quoted(value: str) -> str:
    """A Dockerfile LABEL value: double-quoted, with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
