"""The package's layering, checked on its import graph: each wing imports only the wings
below it, the cells never import the verdicts (nor the verdicts the cells: both meet in the
shared records), the in-cell recorder imports nothing of ours, and no import goes round in a
circle. The rules are written once, here (docs/explanation/how-it-works.md draws them)."""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Collection
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "pytest_dfvc"

# The wings, top to bottom. A top-level module is the front door (the plugin, the options,
# the controller, the scheduler and the runner it drives) unless it is one of SHARED.
WINGS = ("front", "publish", "verdicts", "cells", "plan", "index", "shared", "incell")
SHARED = frozenset(
    {"model", "vocabulary", "files", "outdir", "tomlcheck", "phases", "records", "rules", "text"}
)
MAY_IMPORT: dict[str, frozenset[str]] = {
    "front": frozenset(WINGS),
    "publish": frozenset({"publish", "verdicts", "plan", "index", "shared"}),
    # A verdict is read from records (shared), never from the code that ran the cell; a
    # declared range is read by the recorder's own code, inside the cells and out.
    "verdicts": frozenset({"verdicts", "plan", "index", "shared", "incell"}),
    # A cell run returns records and judges nothing: no verdicts, no publishing.
    "cells": frozenset({"cells", "plan", "index", "shared", "incell"}),
    "plan": frozenset({"plan", "index", "shared"}),
    "index": frozenset({"index", "shared"}),
    "shared": frozenset({"shared"}),
    # Copied alone into every cell's environment, on whatever Python it has.
    "incell": frozenset(),
}


def wing(module: str) -> str:
    """``cells.cellrun`` → cells; ``model`` → shared; ``controller`` → front."""
    head = module.partition(".")[0]
    if head in WINGS:
        return head
    return "shared" if head in SHARED or module == "" else "front"


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name below it (``""`` for its
    ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> dict[str, set[str]]:
    """Which of the package's modules each module imports, anywhere in it (a function's
    import counts as much as the file's head)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join([*base, *([node.module] if node.module else [])])
                targets = _imported(stem, node.names, known)
            elif isinstance(node, ast.ImportFrom) and node.module:
                stem = node.module.removeprefix(root.name).lstrip(".")
                if node.module.split(".")[0] == root.name:
                    targets = _imported(stem, node.names, known)
            elif isinstance(node, ast.Import):
                targets = [
                    a.name.removeprefix(root.name).lstrip(".")
                    for a in node.names
                    if a.name.split(".")[0] == root.name
                ]
            found.update(t for t in targets if t in known and t != name)
        graph[name] = found
    return graph


def _imported(stem: str, names: list[ast.alias], known: Collection[str]) -> list[str]:
    """``from stem import a, b``: the modules ``stem.a`` and ``stem.b`` where they are
    modules, else ``stem`` itself (``a`` is a name in it)."""
    return [
        f"{stem}.{a.name}".lstrip(".") if f"{stem}.{a.name}".lstrip(".") in known else stem
        for a in names
    ]


def against_the_layers(graph: dict[str, set[str]]) -> list[str]:
    """Each import a rule forbids, as ``importer -> imported (wing -> wing)``."""
    broken = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            if wing(target) not in MAY_IMPORT[wing(importer)]:
                broken.append(f"{importer} -> {target} ({wing(importer)} -> {wing(target)})")
    return broken


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, once each (a depth-first search's back edges)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def outside_the_standard_library(path: Path) -> list[str]:
    """The modules a file imports that are neither the standard library's nor pytest's (nor
    packaging's, which pytest itself requires)."""
    allowed = {*sys.stdlib_module_names, "pytest", "_pytest", "packaging", "__future__"}
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." if node.level else node.module or "")
    return sorted({n for n in names if n.split(".")[0] not in allowed})


def test_every_import_goes_down_the_layers() -> None:
    assert against_the_layers(imports(PACKAGE)) == []


def test_no_import_goes_round_in_a_circle() -> None:
    assert circles(imports(PACKAGE)) == []


def test_the_wings_are_the_packages_folders() -> None:
    """A new folder is a new wing only once the rules above name it."""
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(WINGS) - {"front", "shared"}


def test_the_recorder_imports_only_the_standard_library_and_pytest() -> None:
    for path in sorted((PACKAGE / "incell").glob("*.py")):
        assert outside_the_standard_library(path) == [], path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "cells/cellrun.py",
            "from ..verdicts.evidence import status_from_tests",
            "cells.cellrun -> verdicts.evidence (cells -> verdicts)",
        ),
        (
            "verdicts/results.py",
            "from ..cells.celldir import CellDir",
            "verdicts.results -> cells.celldir (verdicts -> cells)",
        ),
        (
            "plan/precheck.py",
            "from ..cells import sessionspec",
            "plan.precheck -> cells.sessionspec (plan -> cells)",
        ),
        ("model.py", "from .plan.cell import Cell", "model -> plan.cell (shared -> plan)"),
        (
            "incell/recorder.py",
            "from pytest_dfvc.records import Record",
            "incell.recorder -> records (incell -> shared)",
        ),
        (
            "index/pages.py",
            "def later():\n    from ..publish import badges",
            "index.pages -> publish.badges (index -> publish)",
        ),
    ],
)
def test_a_broken_rule_is_found(tmp_path: Path, module: str, line: str, broken: str) -> None:
    """The check on a copy of the package with one import added against a rule: it names
    that import, and nothing else."""
    copy = tmp_path / "pytest_dfvc"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}\n")
    assert against_the_layers(imports(copy)) == [broken]


def test_a_circle_is_found(tmp_path: Path) -> None:
    """era.py once imported plan.py, which imported era.py back."""
    copy = tmp_path / "pytest_dfvc"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "plan" / "cell.py").open("a", encoding="utf-8") as f:
        f.write("\nfrom .expand import expand\n")
    assert sorted(circles(imports(copy))) == [
        ["plan.cell", "plan.expand", "plan.cell"],
        ["plan.cell", "plan.expand", "plan.era", "plan.cell"],
    ]


def test_the_recorder_importing_more_than_the_standard_library_is_found(tmp_path: Path) -> None:
    recorder = tmp_path / "recorder.py"
    recorder.write_text("import json\nimport pytest\nfrom tomli import loads\n")
    assert outside_the_standard_library(recorder) == ["tomli"]
