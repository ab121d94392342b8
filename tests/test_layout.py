"""The package's layers, as the README draws them: imports point down, never at another module's privates."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"
# The README's table: the first name of a module path under course_lib -> its layer.
LAYERS = {
    "_checks": 0, "paths": 0,
    "boxes": 1, "nms": 1, "roi": 1, "anchors": 1, "data": 1, "losses": 1, "matching": 1,
    "metrics": 2, "plotting": 2,
    "models": 3, "classical": 3, "visualization": 3,
    "recipes": 4, "zoo": 4, "train": 4, "pretrained": 4,
    "widgets": 5, "exercises": 5, "nb": 5, "references": 5, "leaderboard": 5,
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, imported names)`` of every ``course_lib`` import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_lib"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("course_lib")]
    return found


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return LAYERS[top]


def modules():
    return [(module_name(path), path) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_has_a_layer():
    assert {name.split(".")[1] for name, _ in modules() if "." in name} <= set(LAYERS)


def test_imports_point_to_the_same_layer_or_below():
    wrong = []
    for name, path in modules():
        if name == "course_lib":
            continue
        for target, _ in imports(path):
            if target != "course_lib" and layer(target) > layer(name):
                wrong.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_private_names():
    wrong = []
    for name, path in modules():
        # A module's own package: course_lib.nms for course_lib.nms.fast; a top-level module such
        # as course_lib.boxes has no package of its own to share privates with.
        own = path.name == "__init__.py" or name.count(".") == 1
        package = name if own else name.rsplit(".", 1)[0]
        for target, names in imports(path):
            inside = target.startswith(package + ".")  # a package may use its own private files
            private_module = any(part.startswith("_") for part in target.split(".")[1:])
            if private_module and not inside and target != "course_lib._checks":
                wrong.append(f"{name} imports the private module {target}")
            for imported in names:
                if imported.startswith("_") and not inside:
                    wrong.append(f"{name} imports {target}.{imported}")
    assert not wrong, "\n".join(wrong)


def test_there_are_no_import_cycles():
    graph = {name: {target for target, _ in imports(path) if target != name} for name, path in modules()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, target]))
            if target in graph and state.get(target) is None:
                visit(target, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [])


def test_benchmarks_and_notebooks_use_public_names_only():
    import json

    root = PACKAGE.parent
    sources = {path: path.read_text() for path in (root / "benchmarks").glob("*.py")}
    for notebook in (root / "notebooks").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        sources[notebook] = "\n".join(line for line in code.splitlines() if not line.startswith(("%", "!")))
    wrong = []
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                names = [alias.name for alias in node.names]
                if any(part.startswith("_") for part in node.module.split(".")) or any(
                    name.startswith("_") for name in names
                ):
                    wrong.append(f"{path.name}: from {node.module} import {', '.join(names)}")
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_a_wrong_import(tmp_path, monkeypatch):
    # The checks above can fail: a primitive importing a widget's private helper is flagged twice.
    fake = tmp_path / "course_lib" / "boxes.py"
    fake.parent.mkdir()
    fake.write_text("from course_lib.widgets.base import _private\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "course_lib")
    import pytest

    with pytest.raises(AssertionError, match=r"course_lib.boxes \(layer 1\) imports course_lib.widgets.base"):
        test_imports_point_to_the_same_layer_or_below()
    with pytest.raises(AssertionError, match="imports course_lib.widgets.base._private"):
        test_no_module_imports_another_modules_private_names()
