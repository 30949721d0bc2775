"""The dependency order of bot/, read from the source with `ast`.

- Layers, from the inside out: pure decisions and data; adapters (each
  talks to one outside thing: a database, GitHub, Docker, git, the LLM);
  the pipeline over its ports; the entry points (intake, web, the Python
  API, operations); the composition. A module imports only from its own
  layer or inner ones (imports for type checking only aside).

- Pure modules (decisions, parsing, wording) import only other pure modules,
  the standard library's pure parts and a few parsing libraries: no sockets,
  processes, threads, event loops, databases, files or environment.
- Only the composition (`bot.cli` and its modules, `bot.__main__`) imports
  the composition root `bot.app` and the command line; nothing else imports
  `bot.cli`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT

BOT = ROOT / "bot"

PURE = {
    "bot.errors",
    "bot.models",
    "bot.config",
    "bot.envvars",
    "bot.repo_settings.devcontainer",
    "bot.repo_settings.jsonc",
    "bot.webhook.verify",
    "bot.webhook.parse",
    "bot.triggers",
    "bot.triggers.commands",
    "bot.triggers.rules",
    "bot.triggers.base",
    "bot.triggers.checks",
    "bot.policy.followup",
    "bot.runner.feedback",
    "bot.policy",
    "bot.policy.authz",
    "bot.policy.target",
    "bot.repo_settings",  # the package's __init__: the names the rest of bot/ imports
    "bot.repo_settings.budgets",
    "bot.repo_settings.nodes",
    "bot.repo_settings.parser",
    "bot.repo_settings.paths",
    "bot.repo_settings.problems",
    "bot.repo_settings.schema",
    "bot.repo_settings.settings",
    "bot.testloop",
    "bot.runner.events",
    "bot.runner.prompt",
    "bot.runner.spec",
    "bot.runner.relay",
    "bot.pipeline",  # the package's __init__ (a docstring)
    "bot.pipeline.outcomes",
    "bot.pipeline.spec",
    "bot.github",  # the package's __init__ (a docstring): importing render runs it
    "bot.github.render",  # the package's __init__: the names the rest of bot/ imports
    "bot.github.render.outcome",
    "bot.github.render.progress",
    "bot.github.render.pulls",
    "bot.github.render.replies",
    "bot.github.render.text",
}
IMPURE_STDLIB = {
    "asyncio", "socket", "subprocess", "sqlite3", "threading", "multiprocessing", "http",
    "urllib.request", "shutil", "tempfile", "signal", "select", "selectors", "io", "os",
}  # fmt: skip
THIRD_PARTY_OK = {"yaml", "jsonschema", "msgspec", "orjson"}
ENVIRON_READER = "bot.config"  # the one module that reads os.environ (and the env file)
COMPOSITION = {"bot.cli", "bot.cli.commands", "bot.cli.images", "bot.cli.__main__", "bot.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of everything `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in sorted(BOT.rglob("*.py"))}


def test_every_pure_module_exists() -> None:
    assert set(MODULES) >= PURE, sorted(PURE - set(MODULES))


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_only_pure_things(name: str) -> None:
    wrong = []
    for imported in imports(MODULES[name]):
        top = imported.split(".")[0]
        if imported.startswith("bot."):
            owner = imported if imported in MODULES else imported.rsplit(".", 1)[0]
            if owner in MODULES and owner not in PURE:
                wrong.append(imported)
        elif top in ("os", "dotenv") and name == ENVIRON_READER:
            continue
        elif top in IMPURE_STDLIB or imported in IMPURE_STDLIB or not _allowed(top):
            wrong.append(imported)
    assert not wrong, f"{name} imports {sorted(wrong)}"


def _allowed(top: str) -> bool:
    import sys

    return top in THIRD_PARTY_OK or top in sys.stdlib_module_names or top == "__future__"


def test_only_the_composition_imports_the_app_and_the_cli() -> None:
    for name, path in MODULES.items():
        if name in COMPOSITION:
            continue
        up = {i for i in imports(path) if i in ("bot.app", "bot.cli") or i.startswith("bot.cli.")}
        assert not up, f"{name} imports {sorted(up)}"


def test_the_checker_sees_relative_imports() -> None:
    """The checker itself: a relative import of an impure module is caught."""
    found = imports(MODULES["bot.policy.authz"])
    assert "bot.repo_settings" in found


STATE_WRITES = {"update", "finish", "requeue_expired"}  # a ticket's state, on a store
STATE_WRITERS = {"bot.ledger"}  # and the stores themselves (bot.store.*)


def test_only_the_ledger_writes_ticket_state() -> None:
    wrong = []
    for name, path in MODULES.items():
        if name in STATE_WRITERS or name.startswith("bot.store"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and node.attr in STATE_WRITES):
                continue
            owner = ast.unparse(node.value)
            if owner.split(".")[-1] == "store":  # self.store.update, deps.store.finish, …
                wrong.append(f"{name}: {owner}.{node.attr}")
    assert not wrong, wrong


# Longest prefix wins; a name ending in "=" is that module alone (a package's __init__).
LAYERS = (
    (
        "bot.errors", "bot.models", "bot.config", "bot.envvars", "bot.policy", "bot.triggers",
        "bot.webhook.verify", "bot.webhook.parse", "bot.repo_settings", "bot.testloop",
        "bot.runner.events", "bot.runner.prompt", "bot.runner.spec", "bot.github=",
        "bot.github.render", "bot.pipeline=", "bot.pipeline.outcomes", "bot.pipeline.spec",
    ),
    (
        "bot.store", "bot.github", "bot.runner", "bot.workspace", "bot.memory", "bot.llm",
        "bot.ledger", "bot.hooks", "bot.logs", "bot.metrics", "bot.notify",
    ),
    ("bot.pipeline",),
    ("bot.webhook", "bot.web", "bot.service", "bot.standalone", "bot.ops"),
    ("bot=", "bot.app", "bot.cli", "bot.__main__"),
)  # fmt: skip


def layer_of(name: str) -> int:
    best, length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix.endswith("=")
            prefix = prefix.rstrip("=")
            hit = name == prefix or (not exact and name.startswith(prefix + "."))
            if hit and len(prefix) > length:
                best, length = index, len(prefix)
    assert best >= 0, f"{name} is in no layer: add it to LAYERS"
    return best


def runtime_imports(path: Path) -> set[str]:
    """The bot modules `path` imports when it runs (not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(inner) for inner in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom | ast.Import):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = package[: len(package) - node.level + 1] if node.level else []
        prefix = ".".join([*base, node.module] if node.module else base)
        names = [f"{prefix}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n in MODULES)
        if any(n not in MODULES for n in names):
            found.add(prefix)  # names defined in the module `prefix` itself
    return {n for n in found if n in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_inwards(name: str) -> None:
    mine = layer_of(name)
    outward = sorted(i for i in runtime_imports(MODULES[name]) if layer_of(i) > mine)
    assert not outward, f"{name} (layer {mine}) imports outer layers: {outward}"


def test_the_layer_check_sees_an_outward_import() -> None:
    """The checker itself: the pipeline importing the composition would be caught."""
    assert layer_of("bot.pipeline.run") < layer_of("bot.app")
    assert layer_of("bot.pipeline.spec") < layer_of("bot.pipeline.run")
    assert layer_of("bot.github") == 0 and layer_of("bot.github.client") == 1
    assert "bot.pipeline.ports" in runtime_imports(MODULES["bot.pipeline.run"])
    assert "bot.pipeline.ports" not in runtime_imports(MODULES["bot.github.client"])
