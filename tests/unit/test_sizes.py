"""No module of bot/ over 300 lines and no function over 60, read with `ast`.

A subject that outgrew one module becomes a package of modules named by noun;
a function that outgrew a screen gives a cohesive piece to a helper. There is
no list of exceptions: a module or function over the limit fails here by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import ROOT

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted((ROOT / "bot").rglob("*.py"))


def _too_long(path: Path, root: Path = ROOT) -> list[str]:
    """What in `path` is over the limits, one line each naming the module or function."""
    text = path.read_text()
    where = path.relative_to(root).as_posix()
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{where}:{node.lineno}: {node.name} {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )
    return found


def test_every_module_and_function_is_within_its_size() -> None:
    too_long = [item for path in _modules() for item in _too_long(path)]
    assert not too_long, "over the size limits:\n" + "\n".join(too_long)


def test_the_check_sees_one_line_too_many(tmp_path: Path) -> None:
    """The checker itself, over a made-up module: one line over each limit fails, at it passes."""
    body = "".join(f"    x = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    functions = f"def fits() -> None:\n{body}async def long() -> None:\n{body}    x = 0\n"
    source = functions + "\n" * (MAX_MODULE_LINES + 1 - len(functions.splitlines()))
    fake = tmp_path / "bot" / "probe.py"
    fake.parent.mkdir()
    fake.write_text(source)
    long = (
        f"bot/probe.py:{MAX_FUNCTION_LINES + 1}: long {MAX_FUNCTION_LINES + 1} lines "
        f"(at most {MAX_FUNCTION_LINES})"
    )
    module = f"bot/probe.py: {MAX_MODULE_LINES + 1} lines (at most {MAX_MODULE_LINES})"
    assert _too_long(fake, tmp_path) == [module, long]
    fake.write_text(source.removesuffix("\n"))  # 300 lines: the module fits
    assert _too_long(fake, tmp_path) == [long]
