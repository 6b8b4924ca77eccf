"""The scheduler: which queued cell a free slot starts, and whole runs driven through a cell
runner that answers from a table (no nox, no environments)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from packaging.version import Version

from pytest_dfvc.model import CellJSON, Document
from pytest_dfvc.plan import Cell, MatrixPlan
from pytest_dfvc.provision import Workspace
from pytest_dfvc.scheduler import MatrixRun, RunOptions, _next_start, _Task
from pytest_dfvc.vocabulary import Outcome, Strategy

from .helpers import matrix_from_text


def _task(cell_id: str, interpreter: str) -> _Task:
    cell = Cell("m", cell_id, interpreter[-4:], (("numpy", "2.1.3"),), interpreter=interpreter)
    return _Task(cast(Any, None), cell)


def test_slots_share_out_the_pythons() -> None:
    queue = [_task(f"a{i}", "/py/3.10") for i in range(3)] + [_task("b0", "/py/3.11")]
    # Nothing running: the first in order.
    assert _next_start(queue, []) == 0
    # A 3.10 cell running (building 3.10's editable wheel): the first 3.11 cell goes next.
    assert _next_start(queue, [queue[0]]) == 3
    # Every queued Python busy: order decides.
    assert _next_start(queue[:3], [queue[0]]) == 0


# --- the scheduler with a cell runner of its own: no nox, answers from a table -------------


class TableRunner:
    """Answers each cell from whether its version of ``x`` is below ``breaks``; counts the
    cells it ran and reuses the ones in ``kept``."""

    def __init__(self, breaks: str, kept: dict[str, CellJSON] | None = None) -> None:
        self.breaks = Version(breaks)
        self.kept = kept or {}
        self.ran: list[str] = []
        self.lock = threading.Lock()
        self.closed = False

    def prepare(self, cells: Iterable[tuple[MatrixPlan, Cell]]) -> None:
        pass

    def reuse(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        return self.kept.get(cell.id)

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        with self.lock:
            self.ran.append(cell.id)
        version = dict(cell.packages)["x"]
        outcome: Outcome = "passed" if Version(version) < self.breaks else "failed"
        return {
            "id": cell.id,
            "python": "3.10.13",
            "packages": {"x": version},
            "cuda": None,
            "status": outcome,
            "cause": None,
            "resolved": {"x": version},
            "tests": [{"nodeid": "t::a", "outcome": outcome}],
            "duration": 0.1,
        }

    def stop_all(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


VERSIONS = tuple(f"1.{i}.0" for i in range(16))


def _history(tmp_path: Path) -> MatrixPlan:
    listed = ", ".join(f'"{v}"' for v in VERSIONS)
    matrix = matrix_from_text(tmp_path, f'python = ["3.10"]\n[packages.x]\nversions = [{listed}]\n')
    cells = tuple(
        Cell("m", f"py3.10-x{v}", "3.10", (("x", v),), interpreter="/py3.10") for v in VERSIONS
    )
    return MatrixPlan(matrix, cells, {"x": VERSIONS}, ("3.10",))


def _run(
    tmp_path: Path, runner: TableRunner, strategy: Strategy, jobs: int = 3
) -> tuple[Document, MatrixRun]:
    plan = _history(tmp_path)
    options = RunOptions(
        workspace=Workspace(tmp_path / ".dfvc", tmp_path),
        json_path=tmp_path / "results.json",
        pytest_args=[],
        jobs=jobs,
        strategy=strategy,
        baselines={"m": {"x": None}},
    )
    lines: list[str] = []
    run = MatrixRun([plan], options, lines.append, runner=runner)
    return run.execute(), run


def test_grid_runs_every_cell_jobs_at_a_time_and_writes_the_results(tmp_path: Path) -> None:
    runner = TableRunner(breaks="1.9.0")
    document, run = _run(tmp_path, runner, "grid")
    assert sorted(runner.ran) == sorted(f"py3.10-x{v}" for v in VERSIONS)
    assert run.stats == {"run": 16, "reused": 0, "not_run": 0}
    x = document["matrices"][0]["ranges"]["x"]
    # An explicit list: releases between 1.8.0 and 1.9.0 may exist, so the bound is <=1.8.0.
    assert x["specifier"] == ">=1.0.0,<=1.8.0" and x.get("upgrade_boundary") == "1.9.0"
    assert json.loads((tmp_path / "results.json").read_text()) == document
    assert runner.closed


def test_bisect_finds_the_boundary_with_a_few_cells(tmp_path: Path) -> None:
    runner = TableRunner(breaks="1.9.0")
    document, run = _run(tmp_path, runner, "bisect", jobs=1)
    # A binary search of 16 releases: about 2*log2(16) + 2 cells, not 16.
    assert len(runner.ran) <= 10
    assert {"py3.10-x1.8.0", "py3.10-x1.9.0"} <= set(runner.ran)
    x = document["matrices"][0]["ranges"]["x"]
    assert x.get("upgrade_boundary") == "1.9.0"
    skipped = [c for c in document["matrices"][0]["cells"] if c["status"] == "skipped"]
    assert len(skipped) == run.stats["not_run"] == 16 - len(runner.ran)
    assert all(c["cause"] and c["cause"]["category"] == "strategy" for c in skipped)


def test_cells_whose_inputs_did_not_change_are_reused_not_run(tmp_path: Path) -> None:
    first = TableRunner(breaks="1.9.0")
    document, _ = _run(tmp_path, first, "grid")
    kept = {c["id"]: c for c in document["matrices"][0]["cells"][:10]}
    again = TableRunner(breaks="1.9.0", kept=kept)
    second, run = _run(tmp_path, again, "grid")
    assert run.stats == {"run": 6, "reused": 10, "not_run": 0}
    assert sorted(again.ran) == sorted(f"py3.10-x{v}" for v in VERSIONS[10:])
    assert second["matrices"][0]["ranges"] == document["matrices"][0]["ranges"]
