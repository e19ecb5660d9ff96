"""The package's shape: no import circle among its modules (counting the imports made for type checking
and inside functions too: a circle that only works because one side imports late is still a circle), no
module over 400 lines and no function over 50."""

from __future__ import annotations

import ast
import graphlib

from tests.conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"


def module_name(path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (``from a.b import c`` names ``a.b.c`` when that is a
    module, else ``a.b``)."""
    modules = {module_name(p): p for p in (SRC / "vans_pipelines").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.update(
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                )
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 50 and graph["vans_pipelines.training.grpo_vdm"]  # the walk sees the package
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import circle: {' -> '.join(err.args[1])}") from None


def test_no_relative_imports_hide_from_the_check():
    relative = [
        str(p.relative_to(SRC))
        for p in (SRC / "vans_pipelines").rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative, f"relative imports (use absolute ones): {relative}"


def test_modules_and_functions_stay_small():
    too_long = []
    for path in (SRC / "vans_pipelines").rglob("*.py"):
        text = path.read_text()
        name = str(path.relative_to(SRC))
        if len(text.splitlines()) > 400:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 50:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    assert not too_long, "over 400 lines a module or 50 a function:\n" + "\n".join(too_long)
