"""`.devcontainer/devcontainer.json`: image or build, environment, setup command, problems."""

from __future__ import annotations

import json

import pytest

from bot.repo_settings.devcontainer import (
    IGNORED_KEYS,
    MAX_FILE_BYTES,
    PATHS,
    Build,
    DevContainer,
    DevContainerProblem,
    devcontainer_path,
    parse_devcontainer,
    strip_jsonc,
)

IN_FOLDER = ".devcontainer/devcontainer.json"
AT_ROOT = ".devcontainer.json"
DOT = ".devcontainer"

# The shape of the official "Python 3" template (devcontainers/templates).
PYTHON_TEMPLATE = """\
// For format details, see https://aka.ms/devcontainer.json. For config options, see the
// README at: https://github.com/devcontainers/templates/tree/main/src/python
{
	"name": "Python 3",
	// Or use a Dockerfile or Docker Compose file. More info: https://containers.dev/guide/dockerfile
	"image": "mcr.microsoft.com/devcontainers/python:1-3.12-bullseye",

	// Features to add to the dev container. More info: https://containers.dev/features.
	"features": {
		"ghcr.io/devcontainers/features/node:1": {}
	},

	// Use 'forwardPorts' to make a list of ports inside the container available locally.
	// "forwardPorts": [],

	// Use 'postCreateCommand' to run commands after the container is created.
	"postCreateCommand": "pip3 install --user -r requirements.txt",

	// Configure tool-specific properties.
	"customizations": {
		"vscode": {
			"extensions": ["ms-python.python", "ms-python.vscode-pylance"],
		},
	},

	// Uncomment to connect as root instead. More info: https://aka.ms/dev-containers-non-root.
	// "remoteUser": "root"
}
"""

# The shape of the "Existing Dockerfile" template, with the build arguments of a Node+Python one.
DOCKERFILE_TEMPLATE = """\
{
	"name": "Existing Dockerfile",
	"build": {
		// Sets the run context to one level up instead of the .devcontainer folder.
		"context": "..",
		// Update the 'dockerFile' property if you aren't using the standard 'Dockerfile' filename.
		"dockerfile": "Dockerfile",
		"args": {
			"VARIANT": "3.12",
			"NODE_VERSION": "lts/*"
		}
	},
	"containerEnv": {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
	"remoteUser": "vscode"
}
"""


def parsed(text: str, path: str = IN_FOLDER) -> DevContainer:
    result = parse_devcontainer(path, text)
    assert isinstance(result, DevContainer), result
    return result


def problem(text: str, path: str = IN_FOLDER) -> str:
    result = parse_devcontainer(path, text)
    assert isinstance(result, DevContainerProblem), result
    assert result.path == path
    return result.message


def built(build: dict[str, object], path: str = IN_FOLDER) -> Build:
    result = parsed(json.dumps({"build": build}), path)
    assert result.build is not None
    return result.build


# --- the official templates -------------------------------------------------------------------


def test_the_python_template_uses_its_image_and_setup_command() -> None:
    assert parsed(PYTHON_TEMPLATE) == DevContainer(
        path=IN_FOLDER,
        image="mcr.microsoft.com/devcontainers/python:1-3.12-bullseye",
        build=None,
        container_env={},
        post_create="pip3 install --user -r requirements.txt",
        ignored=("features",),
    )


def test_the_dockerfile_template_builds_from_the_repository_root() -> None:
    result = parsed(DOCKERFILE_TEMPLATE)
    assert result.build == Build(
        dockerfile=".devcontainer/Dockerfile",
        context=".",
        args={"VARIANT": "3.12", "NODE_VERSION": "lts/*"},
        target="",
    )
    assert result.image == ""
    assert result.container_env == {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    assert result.post_create == ""
    assert result.ignored == ()


def test_a_file_at_the_root_has_paths_relative_to_the_root() -> None:
    text = '{"build": {"dockerfile": "docker/dev.Dockerfile"}, "postCreateCommand": "make dev"}'
    result = parsed(text, AT_ROOT)
    assert result.path == AT_ROOT
    assert result.build == Build("docker/dev.Dockerfile", ".", {})
    assert result.post_create == "make dev"


# --- build: paths -----------------------------------------------------------------------------


def test_the_context_defaults_to_the_folder_holding_the_file() -> None:
    assert built({"dockerfile": "Dockerfile"}) == Build(
        ".devcontainer/Dockerfile", ".devcontainer", {}
    )
    assert built({"dockerfile": "Dockerfile"}, AT_ROOT) == Build("Dockerfile", ".", {})
    assert built({"dockerfile": "Dockerfile", "context": ""}).context == ".devcontainer"


@pytest.mark.parametrize(
    ("build", "dockerfile", "context"),
    [
        ({"dockerfile": "../Dockerfile", "context": ".."}, "Dockerfile", "."),
        ({"dockerfile": "./docker/../Dockerfile.dev"}, f"{DOT}/Dockerfile.dev", DOT),
        ({"dockerfile": "Dockerfile", "context": "../api/"}, f"{DOT}/Dockerfile", "api"),
        ({"dockerfile": "../ci/Dockerfile", "context": "./"}, "ci/Dockerfile", DOT),
    ],
)
def test_paths_are_normalised_relative_to_the_repository_root(
    build: dict[str, object], dockerfile: str, context: str
) -> None:
    result = built(build)
    assert (result.dockerfile, result.context) == (dockerfile, context)


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        (IN_FOLDER, '{"build": {"dockerfile": "../../Dockerfile"}}',
         '`build.dockerfile` "../../Dockerfile" leaves the repository: name a path inside it, '
         "relative to .devcontainer/"),
        (IN_FOLDER, '{"build": {"dockerfile": "/etc/Dockerfile"}}',
         '`build.dockerfile` "/etc/Dockerfile" leaves the repository'),
        (IN_FOLDER, '{"build": {"dockerfile": "Dockerfile", "context": "../.."}}',
         '`build.context` "../.." leaves the repository'),
        (IN_FOLDER, '{"build": {"dockerfile": "Dockerfile", "context": "/"}}',
         '`build.context` "/" leaves the repository'),
        (AT_ROOT, '{"build": {"dockerfile": "../x"}}',
         '`build.dockerfile` "../x" leaves the repository: name a path inside it, '
         "relative to the repository root"),
        (AT_ROOT, '{"dockerFile": "Dockerfile", "context": ".."}',
         '`context` ".." leaves the repository: name a path inside it, relative to the '
         "repository root"),
        (IN_FOLDER, '{"dockerFile": "docs/../../../Dockerfile"}',
         '`dockerFile` "docs/../../../Dockerfile" leaves the repository'),
    ],
)  # fmt: skip
def test_a_path_that_leaves_the_repository_is_a_problem(path: str, text: str, message: str) -> None:
    assert message in problem(text, path)


def test_a_dockerfile_that_is_the_repository_root_is_a_problem() -> None:
    assert problem('{"build": {"dockerfile": ".."}}') == (
        '`build.dockerfile` ".." names the repository root, not a Dockerfile'
    )


PATH_WANTED = "must be a path (a non-empty string)"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ({"dockerfile": ""}, f"`build.dockerfile` {PATH_WANTED}, not a string"),
        ({"dockerfile": 3}, f"`build.dockerfile` {PATH_WANTED}, not a number"),
        ({"dockerfile": ["Dockerfile"]}, f"`build.dockerfile` {PATH_WANTED}, not a list"),
        ({"dockerfile": "Dockerfile", "context": True},
         f"`build.context` {PATH_WANTED}, not true/false"),
        ({"dockerfile": "Dockerfile", "target": 1},
         "`build.target` must be a string (a stage of the Dockerfile), not a number"),
        ({"dockerfile": "Dockerfile", "args": ["A=1"]},
         "`build.args` must be an object of names and values, not a list"),
    ],
)  # fmt: skip
def test_a_build_value_of_the_wrong_kind_is_a_problem(
    build: dict[str, object], message: str
) -> None:
    assert problem(json.dumps({"build": build})) == message


def test_build_must_be_an_object() -> None:
    assert problem('{"build": "Dockerfile"}') == (
        '`build` must be an object like {"dockerfile": "Dockerfile"}, not a string'
    )


def test_the_build_target_is_kept() -> None:
    assert built({"dockerfile": "Dockerfile", "target": "dev"}).target == "dev"


# --- build: legacy keys, and build against image ----------------------------------------------


def test_the_legacy_dockerFile_and_context_mean_build() -> None:
    text = """{
        "name": "Node.js",
        "dockerFile": "Dockerfile",  // legacy spelling, still in many repositories
        "context": "..",
        "extensions": ["dbaeumer.vscode-eslint"]
    }"""
    assert parsed(text).build == Build(".devcontainer/Dockerfile", ".", {})


def test_the_legacy_lowercase_dockerfile_means_build_too() -> None:
    assert parsed('{"dockerfile": "Dockerfile.dev"}', AT_ROOT).build == Build(
        "Dockerfile.dev", ".", {}
    )


def test_build_dockerfile_wins_over_the_legacy_key_and_build_context_over_context() -> None:
    text = """{"build": {"dockerfile": "new.Dockerfile", "context": "."},
               "dockerFile": "old", "context": ".."}"""
    assert parsed(text).build == Build(".devcontainer/new.Dockerfile", ".devcontainer", {})


def test_a_build_wins_over_an_image() -> None:
    text = '{"image": "python:3.12", "build": {"dockerfile": "Dockerfile"}}'
    result = parsed(text)
    assert result.image == ""
    assert result.build == Build(".devcontainer/Dockerfile", ".devcontainer", {})


def test_a_build_without_a_dockerfile_leaves_the_image() -> None:
    result = parsed('{"image": "node:20", "build": {"args": {"X": "1"}}}')
    assert (result.image, result.build) == ("node:20", None)


def test_a_build_without_a_dockerfile_and_no_image_is_a_problem() -> None:
    assert problem('{"build": {"context": ".."}}') == (
        "`build` names no `dockerfile`: name the Dockerfile to build "
        "(relative to the folder holding devcontainer.json), or an `image`"
    )


# --- build.args and containerEnv --------------------------------------------------------------


def test_build_args_are_strings_and_variables_are_not_expanded() -> None:
    args = {"VARIANT": 3.12, "PORT": 8080, "INSTALL_ZSH": True, "UPGRADE": False,
            "USER_HOME": "${localEnv:HOME}",
            "WORKSPACE": "${containerWorkspaceFolder}"}  # fmt: skip
    assert built({"dockerfile": "Dockerfile", "args": args}).args == {
        "VARIANT": "3.12",
        "PORT": "8080",
        "INSTALL_ZSH": "true",
        "UPGRADE": "false",
        "USER_HOME": "${localEnv:HOME}",
        "WORKSPACE": "${containerWorkspaceFolder}",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"VARIANT": None}, "`build.args.VARIANT` is null: give it a string value, or remove it"),
        ({"VARIANT": ["3.12"]}, "`build.args.VARIANT` must be a string, not a list"),
        ({"VARIANT": {"python": "3"}}, "`build.args.VARIANT` must be a string, not an object"),
    ],
)
def test_a_build_arg_that_is_not_a_string_is_a_problem(
    args: dict[str, object], message: str
) -> None:
    assert problem(json.dumps({"build": {"dockerfile": "Dockerfile", "args": args}})) == message


def test_container_env_values_are_strings_and_variables_are_not_expanded() -> None:
    text = """{
        "image": "mcr.microsoft.com/devcontainers/go:1-1.22-bookworm",
        "containerEnv": {
            "GOFLAGS": "-mod=mod",
            "CGO_ENABLED": 0,
            "DEBUG": false,
            "_PATH_2": "${containerEnv:PATH}:/opt/bin",
        },
    }"""
    assert parsed(text).container_env == {
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
        "DEBUG": "false",
        "_PATH_2": "${containerEnv:PATH}:/opt/bin",
    }


@pytest.mark.parametrize("name", ["MY-VAR", "1ST", "A B", "", "PATH="])
def test_a_container_env_name_that_is_not_an_env_name_is_a_problem(name: str) -> None:
    text = json.dumps({"image": "python:3.12", "containerEnv": {name: "x"}})
    assert problem(text) == (
        f'`containerEnv` name "{name}" is not a valid environment variable name: '
        "letters, digits and _, not starting with a digit"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOKEN": None}, "`containerEnv.TOKEN` is null: give it a string value, or remove it"),
        ({"OPTS": {"a": 1}}, "`containerEnv.OPTS` must be a string, not an object"),
        (["A=1"], "`containerEnv` must be an object of names and values, not a list"),
    ],
)
def test_a_container_env_of_the_wrong_kind_is_a_problem(env: object, message: str) -> None:
    assert problem(json.dumps({"image": "python:3.12", "containerEnv": env})) == message


# --- postCreateCommand ------------------------------------------------------------------------


def with_post_create(command: object) -> str:
    return parsed(json.dumps({"image": "node:20", "postCreateCommand": command})).post_create


def test_a_string_post_create_command_is_a_shell_line_used_as_is() -> None:
    line = "npm ci && npm run build -- --watch=false > /tmp/build.log 2>&1"
    assert with_post_create(line) == line


def test_an_array_post_create_command_is_one_command_quoted_for_the_shell() -> None:
    command = [
        "python",
        "-m",
        "pip",
        "install",
        "-e",
        ".[test]",
        "--extra-index-url",
        "https://x/a b",
    ]
    assert with_post_create(command) == (
        "python -m pip install -e '.[test]' --extra-index-url 'https://x/a b'"
    )


def test_an_object_post_create_command_runs_each_one_after_another_in_file_order() -> None:
    commands = {"server": "npm ci", "client": ["pip", "install", "-r", "requirements dev.txt"],
                "db": "make migrate; make seed"}  # fmt: skip
    assert with_post_create(commands) == (
        "(npm ci) && pip install -r 'requirements dev.txt' && (make migrate; make seed)"
    )


def test_an_object_post_create_command_keeps_a_comment_from_swallowing_the_rest() -> None:
    commands = {"deps": "pip install -r requirements.txt  # pinned", "hooks": "pre-commit install"}
    line = with_post_create(commands)
    assert line == "(pip install -r requirements.txt  # pinned\n) && (pre-commit install)"


def test_an_object_post_create_command_of_one_command_is_that_command() -> None:
    assert with_post_create({"deps": "poetry install", "nothing": "", "none": []}) == (
        "poetry install"
    )


@pytest.mark.parametrize("command", ["", "   ", [], {}, None, {"a": "", "b": []}])
def test_an_empty_post_create_command_is_no_command(command: object) -> None:
    assert with_post_create(command) == ""


def test_variables_in_the_post_create_command_are_not_expanded() -> None:
    line = "cd ${containerWorkspaceFolder} && ./scripts/setup.sh ${localWorkspaceFolderBasename}"
    assert with_post_create(line) == line


@pytest.mark.parametrize(
    ("command", "key", "kind"),
    [
        (42, "postCreateCommand", "a number"),
        (["pip", "install", 3], "postCreateCommand", "a list holding a number"),
        ({"deps": True}, "postCreateCommand.deps", "true/false"),
        ({"deps": ["npm", None]}, "postCreateCommand.deps", "a list holding null"),
    ],
)
def test_a_post_create_command_of_the_wrong_kind_is_a_problem(
    command: object, key: str, kind: str
) -> None:
    assert problem(json.dumps({"image": "node:20", "postCreateCommand": command})) == (
        f"`{key}` must be a shell command line (a string) or a command and its "
        f"arguments (a list of strings), not {kind}"
    )


# --- image, compose, and what the file must be ------------------------------------------------


@pytest.mark.parametrize("text", ['{"name": "empty"}', '{"image": ""}', "{}", '{"image": null}'])
def test_no_image_and_no_build_is_a_problem(text: str) -> None:
    assert problem(text) == (
        "the file names no `image` and no `build`: the bot needs one of them "
        "to know which container to work in"
    )


NOT_AN_IMAGE = 'is not an image name like "python:3.12"'


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (["python:3.12"], '`image` must be a string like "python:3.12", not a list'),
        ("--privileged python", f'`image` "--privileged python" {NOT_AN_IMAGE}'),
        ("python:3.12 ", f'`image` "python:3.12 " {NOT_AN_IMAGE}'),
    ],
)
def test_an_image_that_is_not_an_image_name_is_a_problem(image: object, message: str) -> None:
    assert problem(json.dumps({"image": image})) == message


def test_docker_compose_is_a_problem_even_with_an_image() -> None:
    text = """{
        "name": "Rails app",
        "dockerComposeFile": ["../docker-compose.yml", "docker-compose.extend.yml"],
        "service": "app",
        "workspaceFolder": "/workspaces/${localWorkspaceFolderBasename}",
        "image": "ruby:3.3"
    }"""
    assert problem(text) == (
        "Docker Compose dev containers are not supported: name an image or a Dockerfile"
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('["python:3.12"]', "a list"),
        ('"python:3.12"', "a string"),
        ("null", "null"),
        ("3", "a number"),
    ],
)
def test_a_file_that_is_not_one_object_is_a_problem(text: str, kind: str) -> None:
    assert problem(text) == f"the file must hold one JSON object (`{{ ... }}`), not {kind}"


def test_a_file_over_the_size_limit_is_a_problem_counted_in_bytes() -> None:
    head = '{"image": "python:3.12"}\n// '
    fits = head + "é" * ((MAX_FILE_BYTES - len(head)) // 2)  # é is 2 bytes in UTF-8
    assert len(fits.encode()) == MAX_FILE_BYTES
    assert parsed(fits).image == "python:3.12"
    over = fits + "é"
    assert problem(over) == (
        f"the file is {MAX_FILE_BYTES + 2} bytes, more than the {MAX_FILE_BYTES} the bot reads"
    )


def test_a_byte_order_mark_is_allowed() -> None:
    assert parsed('\ufeff{"image": "python:3.12"}').image == "python:3.12"


# --- ignored keys -----------------------------------------------------------------------------


def test_keys_that_change_the_environment_are_listed_as_ignored_in_a_fixed_order() -> None:
    text = """{
        "image": "mcr.microsoft.com/devcontainers/base:ubuntu",
        "remoteEnv": {"PATH": "${containerEnv:PATH}:/home/vscode/.local/bin"},
        "mounts": ["source=${localEnv:HOME}/.ssh,target=/home/vscode/.ssh,type=bind"],
        "runArgs": ["--cap-add=SYS_PTRACE"],
        "postStartCommand": "git config --global --add safe.directory ${containerWorkspaceFolder}",
        "updateContentCommand": "npm install",
        "onCreateCommand": ["bash", ".devcontainer/on-create.sh"],
        "features": {"ghcr.io/devcontainers/features/docker-in-docker:2": {}},
        "forwardPorts": [3000],
        "remoteUser": "vscode",
        "customizations": {"vscode": {"extensions": ["esbenp.prettier-vscode"]}}
    }"""
    assert parsed(text).ignored == IGNORED_KEYS


def test_empty_ignored_keys_are_not_listed() -> None:
    text = """{"image": "python:3.12", "features": {}, "runArgs": [],
               "postStartCommand": "", "mounts": null}"""
    assert parsed(text).ignored == ()


# --- JSON with comments -----------------------------------------------------------------------


def test_slashes_inside_strings_are_not_comments() -> None:
    text = """{
        "image": "registry.example.com:5000/team/dev:latest", // the team's image
        "containerEnv": {
            "PIP_INDEX_URL": "http://example.com/x", // comment
            "GLOB": "src/**/*.py", /* a block comment */
            "NOT_A_COMMENT": "/* kept */ // kept"
        }
    }"""
    result = parsed(text)
    assert result.image == "registry.example.com:5000/team/dev:latest"
    assert result.container_env == {
        "PIP_INDEX_URL": "http://example.com/x",
        "GLOB": "src/**/*.py",
        "NOT_A_COMMENT": "/* kept */ // kept",
    }


def test_escaped_quotes_and_backslashes_do_not_end_a_string() -> None:
    text = r"""{
        "image": "python:3.12",
        "postCreateCommand": "echo \"done // really\" > /tmp/x", // a comment
        "containerEnv": {
            "WIN_DIR": "C:\\tools\\", // a backslash before the closing quote
            "QUOTE": "\"", /* and a lone escaped quote */
        },
    }"""
    result = parsed(text)
    assert result.post_create == 'echo "done // really" > /tmp/x'
    assert result.container_env == {"WIN_DIR": "C:\\tools\\", "QUOTE": '"'}


def test_trailing_commas_are_allowed_in_objects_and_arrays_even_before_a_comment() -> None:
    text = """{
        "image": "node:20",
        "postCreateCommand": ["npm", "ci",],
        "containerEnv": {"CI": "1", /* last */ },
        "runArgs": ["--init", // last
        ],
    }"""
    result = parsed(text)
    assert (result.post_create, result.container_env) == ("npm ci", {"CI": "1"})
    assert result.ignored == ("runArgs",)


def test_a_comma_after_a_comma_or_an_opening_bracket_stays_invalid() -> None:
    assert json.loads(strip_jsonc('{"a": [1,],}')) == {"a": [1]}
    for text in ('{"a": [,]}', '{"a": [1,,]}', "{,}"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(strip_jsonc(text))


def test_stripping_keeps_every_line_and_column() -> None:
    text = '{ // one\n  "a": /* two\n three */ 1, // "quoted"\n}\n'
    stripped = strip_jsonc(text)
    assert [len(line) for line in stripped.split("\n")] == [len(line) for line in text.split("\n")]
    assert stripped.split() == ["{", '"a":', "1", "}"]  # the comments and the trailing comma
    assert json.loads(stripped) == {"a": 1}


def test_a_file_with_windows_line_endings_keeps_its_lines() -> None:
    text = PYTHON_TEMPLATE.replace("\n", "\r\n")
    stripped = strip_jsonc(text)
    assert [len(line) for line in stripped.splitlines()] == [
        len(line) for line in text.splitlines()
    ]
    assert parsed(text).post_create == "pip3 install --user -r requirements.txt"


def test_invalid_json_is_a_problem_naming_line_and_column() -> None:
    text = '{\n  // the image\n  "image": "python:3.12"\n  "postCreateCommand": "make"\n}\n'
    assert problem(text) == (
        "the file is not valid JSON: Expecting ',' delimiter at line 4, column 3"
    )


def test_an_unterminated_block_comment_is_a_problem_naming_where_it_starts() -> None:
    text = '{\n  "image": "python:3.12"\n  /* "features": {}\n}\n'
    assert problem(text) == (
        "the file is not valid JSON: unterminated /* comment at line 3, column 3"
    )


def test_an_unterminated_string_is_a_problem() -> None:
    assert problem('{"image": "python:3.12}') == (
        "the file is not valid JSON: Unterminated string starting at line 1, column 11"
    )


# --- where the file is ------------------------------------------------------------------------


def test_the_file_in_the_devcontainer_folder_is_looked_for_first() -> None:
    asked: list[str] = []

    def exists(path: str) -> bool:
        asked.append(path)
        return True

    assert devcontainer_path(exists) == ".devcontainer/devcontainer.json"
    assert asked == [".devcontainer/devcontainer.json"]


def test_the_file_at_the_root_is_found_when_there_is_no_folder() -> None:
    assert devcontainer_path(lambda path: path == ".devcontainer.json") == ".devcontainer.json"
    assert devcontainer_path(lambda path: False) is None
    assert PATHS == (".devcontainer/devcontainer.json", ".devcontainer.json")
