"""`.devcontainer/devcontainer.json`: the image a repository's own dev container uses (pure).

A repository that describes its development environment as a dev container
(https://containers.dev/implementors/json_reference/) tells the bot which
image the agent should work in: a ready `image`, or a Dockerfile to `build`
(also the legacy top-level `dockerFile` and `context`), plus `containerEnv`
and the `postCreateCommand` that prepares a fresh container.

`parse_devcontainer` gets the file's text and returns a `DevContainer`, or a
`DevContainerProblem` whose message names the key a maintainer has to fix.
The file is JSON with comments and trailing commas (`jsonc.strip_jsonc`).
Nothing here does I/O; `devcontainer_path` only asks the caller which of
`PATHS` exists.

What it does not do:
- expand variables: `${localEnv:X}`, `${containerWorkspaceFolder}` and the
  like are kept as written;
- Features (`features`) and the other keys listed in `IGNORED_KEYS`: they are
  reported in `DevContainer.ignored` so the bot can say it skipped them;
- Docker Compose (`dockerComposeFile`): that is a problem, not a fallback;
- several configurations (`.devcontainer/<name>/devcontainer.json`).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .jsonc import strip_jsonc

PATHS = (".devcontainer/devcontainer.json", ".devcontainer.json")  # looked for in this order
MAX_FILE_BYTES = 64 * 1024
# Keys that change the container but that the bot does not apply.
IGNORED_KEYS = ("features", "onCreateCommand", "updateContentCommand", "postStartCommand",
                "runArgs", "mounts", "remoteEnv")  # fmt: skip
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Build:
    """A Dockerfile to build; paths are relative to the repository root and stay inside it."""

    dockerfile: str
    context: str  # "." is the repository root
    args: Mapping[str, str]
    target: str = ""


@dataclass(frozen=True)
class DevContainer:
    """What the bot uses from a dev container file: the image, its environment, its setup."""

    path: str  # one of PATHS
    image: str = ""  # set only when there is no build
    build: Build | None = None
    container_env: Mapping[str, str] = field(default_factory=dict)
    post_create: str = ""  # one shell command line; "" when there is none
    ignored: tuple[str, ...] = ()  # keys of IGNORED_KEYS the file sets, in that order


@dataclass(frozen=True)
class DevContainerProblem:
    """A dev container file the bot cannot use, and why, naming the key to fix."""

    path: str
    message: str


class _Bad(Exception):
    """A problem found while reading the file; it becomes a `DevContainerProblem`."""


def devcontainer_path(exists: Callable[[str], bool]) -> str | None:
    """The first of `PATHS` for which `exists` says yes, or None."""
    return next((path for path in PATHS if exists(path)), None)


def parse_devcontainer(path: str, text: str) -> DevContainer | DevContainerProblem:
    """The text of the file at `path` (one of `PATHS`) → what the bot uses, or a problem."""
    try:
        return _parse(path, text)
    except _Bad as bad:
        return DevContainerProblem(path, str(bad))


def _parse(path: str, text: str) -> DevContainer:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise _Bad(f"the file is {size} bytes, more than the {MAX_FILE_BYTES} the bot reads")
    try:
        data = json.loads(strip_jsonc(text.removeprefix("\ufeff")))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        what = exc.msg.removesuffix(" at")  # "Unterminated string starting at"
        raise _Bad(f"the file is not valid JSON: {what} at {where}") from None
    if not isinstance(data, dict):
        raise _Bad(f"the file must hold one JSON object (`{{ ... }}`), not {_kind(data)}")
    if data.get("dockerComposeFile") is not None:
        raise _Bad("Docker Compose dev containers are not supported: name an image or a Dockerfile")
    # Like the reference CLI (devcontainers/cli), a Dockerfile wins over `image`:
    # with both, the image is ignored.
    build = _build(posixpath.dirname(path), data)
    return DevContainer(
        path=path,
        image="" if build else _image(data),
        build=build,
        container_env=_strings("containerEnv", data.get("containerEnv"), names=True),
        post_create=_post_create(data.get("postCreateCommand")),
        ignored=tuple(key for key in IGNORED_KEYS if data.get(key) not in (None, "", [], {})),
    )


def _build(folder: str, data: dict[str, object]) -> Build | None:
    """`build` (or the legacy `dockerFile` + `context`), None when there is no Dockerfile."""
    build = data.get("build")
    if build is None:
        build = {}
    if not isinstance(build, dict):
        raise _Bad(
            f'`build` must be an object like {{"dockerfile": "Dockerfile"}}, not {_kind(build)}'
        )
    # `build.dockerfile` is the current spelling; the top-level ones are legacy.
    named = [("build.dockerfile", build.get("dockerfile"))]
    named += [(k, data.get(k)) for k in ("dockerFile", "dockerfile")]
    key, value = next(((k, v) for k, v in named if v is not None), ("", None))
    if value is None:
        if build and not data.get("image"):
            raise _Bad(
                "`build` names no `dockerfile`: name the Dockerfile to build "
                "(relative to the folder holding devcontainer.json), or an `image`"
            )
        return None  # `build` without a Dockerfile is ignored, as by the reference CLI
    dockerfile = _inside(key, value, folder)
    if dockerfile == ".":
        raise _Bad(f'`{key}` "{value}" names the repository root, not a Dockerfile')
    context_key, context = ("build.context", build.get("context"))
    if context is None:
        context_key, context = ("context", data.get("context"))
    target = build.get("target")
    if target is not None and not isinstance(target, str):
        raise _Bad(
            f"`build.target` must be a string (a stage of the Dockerfile), not {_kind(target)}"
        )
    return Build(
        dockerfile=dockerfile,
        # An empty context is the default, as in the reference CLI.
        context=(folder or ".") if context in (None, "") else _inside(context_key, context, folder),
        args=_strings("build.args", build.get("args"), names=False),
        target=target or "",
    )


def _inside(key: str, value: object, folder: str) -> str:
    """A path relative to `folder`, as a normalised path relative to the repository root."""
    if not isinstance(value, str) or not value:
        raise _Bad(f"`{key}` must be a path (a non-empty string), not {_kind(value)}")
    where = f"{folder}/" if folder else "the repository root"
    path = posixpath.normpath(posixpath.join(folder, value))
    if value.startswith("/") or path == ".." or path.startswith("../"):
        raise _Bad(
            f'`{key}` "{value}" leaves the repository: name a path inside it, relative to {where}'
        )
    return path


def _image(data: dict[str, object]) -> str:
    image = data.get("image")
    if image is None or image == "":
        raise _Bad(
            "the file names no `image` and no `build`: the bot needs one of them "
            "to know which container to work in"
        )
    if not isinstance(image, str):
        raise _Bad(f'`image` must be a string like "python:3.12", not {_kind(image)}')
    if image.startswith("-") or any(c.isspace() for c in image):
        raise _Bad(f'`image` "{image}" is not an image name like "python:3.12"')
    return image


def _strings(key: str, value: object, *, names: bool) -> dict[str, str]:
    """An object of names → values, every value as a string; `names`: check env names."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"`{key}` must be an object of names and values, not {_kind(value)}")
    for name in value:
        if names and not _ENV_NAME.fullmatch(name):
            raise _Bad(
                f'`{key}` name "{name}" is not a valid environment variable name: '
                "letters, digits and _, not starting with a digit"
            )
    return {name: _string(f"{key}.{name}", item) for name, item in value.items()}


def _string(key: str, value: object) -> str:
    """A value as the string the container gets (true/false spelled as in JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JavaScript's String(), not Python's "True"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        raise _Bad(f"`{key}` is null: give it a string value, or remove it")
    raise _Bad(f"`{key}` must be a string, not {_kind(value)}")


def _post_create(value: object) -> str:
    """`postCreateCommand` as one shell command line.

    The spec runs the commands of an object in parallel; the bot runs them one
    after another, in the file's order, each in a subshell `( ... )` when it is
    a shell line, stopping at the first that fails (`&&`).
    """
    if not isinstance(value, dict):
        return _command("postCreateCommand", value)
    lines = [(item, _command(f"postCreateCommand.{name}", item)) for name, item in value.items()]
    lines = [(item, line) for item, line in lines if line]
    if len(lines) == 1:
        return lines[0][1]
    # A newline before `)` so that a trailing `# comment` cannot swallow it.
    grouped = [
        (f"({line}\n)" if "#" in line else f"({line})") if isinstance(item, str) else line
        for item, line in lines
    ]
    return " && ".join(grouped)


def _command(key: str, value: object) -> str:
    """A string (a shell line, as is) or a list (a command and its arguments, no shell)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value if value.strip() else ""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return shlex.join(value)
    if isinstance(value, list):
        odd = next(part for part in value if not isinstance(part, str))
        kind = f"a list holding {_kind(odd)}"
    else:
        kind = _kind(value)
    raise _Bad(
        f"`{key}` must be a shell command line (a string) or a command and its "
        f"arguments (a list of strings), not {kind}"
    )


def _kind(value: object) -> str:
    """What a JSON value is, in words."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true/false"
    kinds = ((list, "a list"), (dict, "an object"), (str, "a string"))
    return next((word for kind, word in kinds if isinstance(value, kind)), "a number")
