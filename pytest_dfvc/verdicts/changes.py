"""What broke since the last run: a scheduled run's news.

The results file of the previous run (read before this run writes its own) is compared with
this one, matrix by matrix: a test that fails in a cell the last run did not have (usually a
release new on the index) or that passed in the same cell last time is news; so is one that
failed last time and passes now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from ..files import write_json_atomic
from ..model import (
    Break,
    Changes,
    Document,
    Fixed,
    MatrixJSON,
    OutcomeJSON,
    cell_problem,
    failing,
)


def read_previous(path: Path) -> Document | None:
    """The last run's results, or None (no file, or one this version cannot read). A
    partial one (an interrupted run, a --dfvc-cell job) gives way to the last complete run's
    kept copy, when there is one: a partial run never becomes the baseline."""
    data = _read(path)
    if data is not None and data.get("complete") is False:
        kept = _read(complete_copy(path))
        if kept is not None and kept.get("complete") is not False:
            return kept
    return data


def complete_copy(path: Path) -> Path:
    """Where the last complete run's results are kept beside ``path``."""
    return path.with_name(f".{path.stem}.complete{path.suffix}")


def keep_complete(path: Path, document: Document) -> None:
    write_json_atomic(complete_copy(path), document)


def _read(path: Path) -> Document | None:
    """The results in ``path``, with what is damaged set aside (matrices that are no
    objects, cells that ``model.cell_problem`` finds wrong); said in ``set_aside``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("matrices"), list):
        return None
    problems: list[str] = []
    matrices = []
    for matrix in data["matrices"]:
        if not isinstance(matrix, dict) or not isinstance(matrix.get("name"), str):
            problems.append("a matrix that is no object with a name")
            continue
        found = matrix.get("cells")
        cells: list[object] = found if isinstance(found, list) else []
        kept = [c for c in cells if cell_problem(c) is None]
        problems += [str(cell_problem(c)) for c in cells if cell_problem(c) is not None]
        matrices.append({**matrix, "cells": kept})
    document = cast(Document, {**data, "matrices": matrices})
    if problems:
        document["set_aside"] = problems
    return document


def since_last_run(previous: Document, matrix: MatrixJSON) -> Changes:
    """``{"breaks": [...], "fixed": [...]}`` for one matrix against the last run's."""
    before = next((m for m in previous["matrices"] if m.get("name") == matrix["name"]), None)
    old_cells = {c["id"]: c for c in (before.get("cells", []) if before else [])}
    # An interrupted run's file holds only the cells it finished: a cell missing there is
    # not news.
    partial = previous.get("complete") is False
    breaks: list[Break] = []
    fixed: list[Fixed] = []
    for cell in matrix["cells"]:
        old = old_cells.get(cell["id"])
        if old is None and partial:
            continue
        old_outcomes = {t["nodeid"]: t["outcome"] for t in old.get("tests", [])} if old else {}
        new_cell = old is None or old.get("status") in (None, "skipped", "unavailable")
        broken: list[OutcomeJSON] = []
        mended: list[str] = []
        for test in cell["tests"]:
            was = old_outcomes.get(test["nodeid"])
            if failing(test["outcome"]) and (new_cell or was == "passed"):
                broken.append(test)
            elif test["outcome"] == "passed" and failing(was):
                mended.append(test["nodeid"])
        if broken:
            breaks.append(
                {
                    "cell": cell["id"],
                    "packages": dict(cell["packages"]),
                    "new_cell": new_cell,
                    "tests": [t["nodeid"] for t in broken],
                    "causes": _causes(broken),
                }
            )
        if mended:
            fixed.append({"cell": cell["id"], "tests": mended})
    return {"breaks": breaks, "fixed": fixed}


def _causes(tests: Sequence[OutcomeJSON]) -> list[str]:
    found = []
    for test in tests:
        cause = test.get("cause")
        text = cause["category"] if cause else "failed"
        if cause and cause.get("api"):
            text += f": {cause['api']}"
        if text not in found:
            found.append(text)
    return found


def change_lines(changes: Changes | None) -> list[str]:
    """``numpy 2.3.0 (new since the last run) breaks test_a, test_b (missing-api: numpy.foo)``."""
    if not changes:
        return []
    lines = []
    for entry in changes["breaks"]:
        what = ", ".join(f"{n} {v}" for n, v in entry["packages"].items()) or entry["cell"]
        tests = [t.rsplit("::", 1)[-1] for t in entry["tests"]]
        shown = ", ".join(tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
        if entry["new_cell"]:
            lines.append(
                f"  {what} (new since the last run, {entry['cell']}) breaks {shown} "
                f"({'; '.join(entry['causes'])})"
            )
        else:
            lines.append(
                f"  {entry['cell']}: {shown} passed in the last run and fail now "
                f"({'; '.join(entry['causes'])})"
            )
    for fixed in changes["fixed"]:
        mended = ", ".join(t.rsplit("::", 1)[-1] for t in fixed["tests"][:3])
        lines.append(f"  {fixed['cell']}: {mended} failed in the last run and pass now")
    return lines
