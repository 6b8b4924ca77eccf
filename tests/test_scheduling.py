"""The scheduler: which queued cell a free slot starts, and whole runs driven through a cell
runner that answers from a table (no nox, no environments)."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from pytest_dfvc.cells.provision import Workspace
from pytest_dfvc.model import CauseJSON, CellJSON, Document, OutcomeJSON, RangeJSON
from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.publish.reports import markdown
from pytest_dfvc.publish.terminal import _range_text, cell_status, render_matrix
from pytest_dfvc.scheduler import MatrixRun, RunOptions, _next_start, _Task
from pytest_dfvc.verdicts.evidence import apply_rerun
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


Table = Callable[[str], "dict[str, Outcome] | None"]


class TableRunner:
    """Answers each cell from whether its version of ``x`` is below ``breaks`` (or from
    ``table``: the tests' outcomes for a version, None for a cell found not installable when
    installed); counts the cells it ran and reuses the ones in ``kept``."""

    def __init__(
        self,
        breaks: str = "99",
        kept: dict[str, CellJSON] | None = None,
        table: Table | None = None,
        neighbours: Callable[[str], dict[str, str]] | None = None,
        held: Callable[[str, dict[str, str]], dict[str, Outcome] | None] | None = None,
    ) -> None:
        self.breaks = Version(breaks)
        self.table = table or self._below_breaks
        self.kept = kept or {}
        # What else each version's cell resolved, and the outcomes with some of it set back.
        self.neighbours = neighbours or (lambda version: {})
        self.held = held or (lambda version, held: self.table(version))
        self.ran: list[str] = []
        self.probed: list[str] = []
        self.traced_cells: list[str] = []
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
        tests = self.table(version)
        data: CellJSON = {
            "id": cell.id,
            "python": "3.10.13",
            "packages": {"x": version},
            "cuda": None,
            "status": "unavailable",
            "cause": {"category": "install", "reason": "x needs dep>=2, constrained dep<2"},
            "resolved": {},
            "tests": [],
            "duration": 0.1,
        }
        if tests is not None:
            failed = any(o == "failed" for o in tests.values())
            data["status"], data["cause"] = ("failed" if failed else "passed"), None
            data["resolved"] = {"x": version, **self.neighbours(version)}
            data["tests"] = [{"nodeid": n, "outcome": o} for n, o in tests.items()]
        return data

    def traced(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON | None:
        """A trace cell without calls: these fake cells record none, so nothing is named."""
        with self.lock:
            self.traced_cells.append(cell.id)
        return None

    def probe(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON:
        """A counterfactual cell: the outcomes of ``held`` for the version and the packages
        set back, None for a set that does not install beside it."""
        with self.lock:
            self.probed.append(cell.id)
        version, held = dict(cell.packages)["x"], dict(cell.held)
        tests = self.held(version, held)
        data = self.run(plan, cell)
        assert data is not None
        with self.lock:
            self.ran.remove(cell.id)
        data["held"] = held
        if tests is None:
            data["status"], data["tests"] = "unavailable", []
            data["cause"] = {"category": "install", "reason": f"{held} needs x<{version}"}
            return data
        data["tests"] = [{"nodeid": n, "outcome": tests[n]} for n in nodeids if n in tests]
        data["status"] = "failed" if "failed" in tests.values() else "passed"
        data["resolved"] = {**data["resolved"], **held}
        return data

    def _below_breaks(self, version: str) -> dict[str, Outcome]:
        return {"t::a": "passed" if Version(version) < self.breaks else "failed"}

    def rerun(self, plan: MatrixPlan, cell: Cell, data: CellJSON, nodeids: list[str]) -> CellJSON:
        again = self.table(dict(cell.packages)["x"]) or {}
        judged: dict[str, OutcomeJSON] = {n: {"nodeid": n, "outcome": again[n]} for n in again}
        return apply_rerun(data, nodeids, judged)

    def fresh(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        """A run from scratch: the table as it stands now."""
        return self.run(plan, cell)

    def forget(self, plan: MatrixPlan, cell: Cell, data: CellJSON) -> None:
        self.kept[cell.id] = data

    def stop_all(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


VERSIONS = tuple(f"1.{i}.0" for i in range(16))


def _history(
    tmp_path: Path, versions: tuple[str, ...] = VERSIONS, axis: str | None = None
) -> MatrixPlan:
    """A plan of one line of ``x``: the matrix names the versions, or ``axis`` is the
    package table's own text (a specifier, its select and prereleases)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{v}"' for v in versions)
    table = axis or f"versions = [{listed}]"
    matrix = matrix_from_text(tmp_path, f'python = ["3.10"]\n[packages.x]\n{table}\n')
    cells = tuple(
        Cell("m", f"py3.10-x{v}", "3.10", (("x", v),), interpreter="/py3.10") for v in versions
    )
    return MatrixPlan(matrix, cells, {"x": versions}, ("3.10",))


def _run(
    tmp_path: Path,
    runner: TableRunner,
    strategy: Strategy,
    jobs: int = 3,
    plan: MatrixPlan | None = None,
) -> tuple[Document, MatrixRun]:
    plan = plan or _history(tmp_path)
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


def _ranges(document: Document) -> dict[str, Any]:
    return cast("dict[str, Any]", document["matrices"][0]["ranges"]["x"])


def test_bisect_claims_what_grid_does_when_a_test_passes_on_two_releases(
    tmp_path: Path,
) -> None:
    """``t::b`` passes on 1.2 and 1.3 only: bisect used to run the ends, see the same
    failure at both, set it apart and claim ``>=1.0.0`` (issue 34, item 1)."""

    def table(version: str) -> dict[str, Outcome]:
        return {"t::a": "passed", "t::b": "passed" if version in ("1.2.0", "1.3.0") else "failed"}

    grid, _ = _run(tmp_path / "grid", TableRunner(table=table), "grid")
    bisect, _ = _run(tmp_path / "bisect", TableRunner(table=table), "bisect", jobs=2)
    assert _ranges(grid)["specifier"] == _ranges(bisect)["specifier"] == ">=1.2.0,<=1.3.0"
    assert not bisect["matrices"][0].get("not_version_related")


def test_bisect_steps_over_the_newest_releases_when_they_turn_out_not_installable(
    tmp_path: Path,
) -> None:
    """1.12 on need ``dep>=2``, which the matrix forbids; only the install finds out
    (issue 34, item 7). Grid and bisect both find the boundary at 1.8."""

    def table(version: str) -> dict[str, Outcome] | None:
        if Version(version) >= Version("1.12"):
            return None
        return {"t::a": "passed" if Version(version) < Version("1.8") else "failed"}

    grid, _ = _run(tmp_path / "grid", TableRunner(table=table), "grid")
    runner = TableRunner(table=table)
    bisect, _ = _run(tmp_path / "bisect", runner, "bisect", jobs=1)
    assert _ranges(grid)["upgrade_boundary"] == _ranges(bisect)["upgrade_boundary"] == "1.8.0"
    assert len(runner.ran) <= 10


def test_a_passing_pre_release_below_a_failing_final_is_admitted_not_a_crash(
    tmp_path: Path,
) -> None:
    """PEP 440's ``<2.0`` excludes 2.0rc1: the range used to end in INTERNALERROR
    (issue 34, item 3). Dev releases likewise."""
    for pre in ("2.0rc1", "2.0.dev1"):
        versions = ("1.0", pre, "2.0")
        axis = 'versions = ">=1.0"\nselect = "all"\nprereleases = true'
        plan = _history(tmp_path / pre, versions, axis)
        runner = TableRunner(breaks="2.0")
        document, _ = _run(tmp_path / pre, runner, "grid", plan=plan)
        x = _ranges(document)
        assert x["specifier"] == f">=1.0,<={pre}"
        assert x["compatible"] == ["1.0", pre] and x["upgrade_boundary"] == "2.0"


def test_no_open_upper_bound_over_releases_nobody_ran(tmp_path: Path) -> None:
    """``versions = [1.0 … 1.2]``, 1.3 to 1.5 on the index and failing: the range used to
    be ``>=1.0.0``, admitting them (issue 34, item 4). Open only when the newest pass is
    the index's newest release, and said with the day it was listed."""
    versions = ("1.0.0", "1.1.0", "1.2.0")
    plan = replace(_history(tmp_path, versions), newest={"x": "1.5.0"}, listed_on="2026-12-07")
    document, _ = _run(tmp_path, TableRunner(), "grid", plan=plan)
    assert _ranges(document)["specifier"] == ">=1.0.0,<=1.2.0"
    newest = replace(plan, newest={"x": "1.2.0"})
    document, _ = _run(tmp_path / "newest", TableRunner(), "grid", plan=newest)
    x = _ranges(document)
    assert x["specifier"] == ">=1.0.0"
    assert (x["newest_release"], x["as_of"]) == ("1.2.0", "2026-12-07")


def test_the_upgrade_boundary_and_its_gap_name_one_place(tmp_path: Path) -> None:
    """Baseline 1.5.0, 1.7.0 fails (a hole), 1.8.0 passes, 1.10.0 on fail: results.json said
    ``upgrade_boundary: 1.7.0`` and the terminal "between 1.8.0 and 1.10.0" (issue 34,
    item 9)."""

    def table(version: str) -> dict[str, Outcome]:
        v = Version(version)
        ok = v < Version("1.7") or v == Version("1.8") or Version("1.9") <= v < Version("1.10")
        return {"t::a": "passed" if ok else "failed"}

    document, _ = _run(tmp_path / "newest", TableRunner(table=table), "grid")
    assert _ranges(document)["upgrade_boundary"] == "1.10.0"  # from the newest pass
    listed = ", ".join(f'"{v}"' for v in VERSIONS)
    plan = _history(tmp_path, VERSIONS, f'versions = [{listed}]\nbaseline = "1.5.0"')
    document, _ = _run(tmp_path, TableRunner(table=table), "grid", plan=plan)
    x = _ranges(document)
    assert x["upgrade_boundary"] == "1.7.0"
    assert x["upgrade_between"] == ["1.6.0", "1.7.0"]  # below the boundary, not above 1.9.0
    assert "upgrade boundary between 1.6.0 and 1.7.0" in _range_text(cast(RangeJSON, x))


def test_cells_left_out_by_the_strategy_say_why(tmp_path: Path) -> None:
    document, _ = _run(tmp_path, TableRunner(breaks="1.9.0"), "bisect", jobs=1)
    skipped = [c for c in document["matrices"][0]["cells"] if c["status"] == "skipped"]
    assert skipped
    assert cell_status(skipped[0]) == "skipped (not run by the bisect strategy)"


class FlakyRunner(TableRunner):
    """``t::a`` breaks at 1.12.0; on 1.7.0 its first run fails once (a timeout) and passes
    when run again."""

    def __init__(self) -> None:
        super().__init__(breaks="1.12.0")
        self.reran: list[tuple[str, tuple[str, ...]]] = []

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        data = super().run(plan, cell)
        assert data is not None
        if cell.id == "py3.10-x1.7.0":
            data["status"] = "failed"
            data["tests"] = [{"nodeid": "t::a", "outcome": "failed", "cause": TIMEOUT}]
        return data

    def rerun(self, plan: MatrixPlan, cell: Cell, data: CellJSON, nodeids: list[str]) -> CellJSON:
        with self.lock:
            self.reran.append((cell.id, tuple(nodeids)))
        return super().rerun(plan, cell, data, nodeids)


TIMEOUT: CauseJSON = {
    "category": "timeout",
    "exception": "TimeoutError",
    "message": "timed out",
    "location": "t.py:3",
}


@pytest.mark.parametrize("strategy", ["grid", "bisect"])
def test_a_failure_that_passes_when_run_again_is_flaky_never_a_boundary(
    tmp_path: Path, strategy: Strategy
) -> None:
    """A test timing out once on 1.7.0 in a history whose boundary is 1.12.0: bisect said
    ``<1.7`` and inferred 1.8-1.14 incompatible (issue 34, item 8). The boundary cells'
    failing tests run once more before a boundary is reported."""
    runner = FlakyRunner()
    # One at a time, bisect's first probe between the ends is 1.7.0.
    document, _ = _run(tmp_path, runner, strategy, jobs=1 if strategy == "bisect" else 2)
    x = _ranges(document)
    assert x["upgrade_boundary"] == "1.12.0"
    cells = {c["id"]: c for c in document["matrices"][0]["cells"]}
    flaky = cells["py3.10-x1.7.0"]
    assert flaky["tests"][0]["outcome"] == "flaky"
    assert flaky["tests"][0]["first_run"]["cause"] == TIMEOUT
    assert flaky["status"] == "passed" and flaky["rerun"] == ["t::a"]
    # The boundary's failure repeats on 1.13.0 and later (the same failure): already
    # confirmed, it is not run again.
    confirmed = cells["py3.10-x1.12.0"]
    assert confirmed["tests"][0]["outcome"] == "failed" and "rerun" not in confirmed
    # Each boundary cell ran its failing tests once more, no cell twice.
    assert len(runner.reran) == len({c for c, _ in runner.reran})
    assert "1.7.0" not in x["incompatible"]


def test_flaky_tests_are_shown_as_such(tmp_path: Path) -> None:
    document, _ = _run(tmp_path, FlakyRunner(), "grid")
    matrix = document["matrices"][0]
    lines = render_matrix(matrix)
    assert "flaky (failed, then passed when run again; counted neither way):" in lines
    assert "  t::a · py3.10-x1.7.0 · first run: TimeoutError timed out" in lines
    assert "🔁" in markdown(document, {})


class OnceRunner(TableRunner):
    """``t::a`` passes below ``cut``; the cell of index ``flaky`` fails its first run."""

    def __init__(self, versions: tuple[str, ...], cut: int, flaky: int) -> None:
        super().__init__(
            table=lambda v: {"t::a": "passed" if versions.index(v) < cut else "failed"}
        )
        self.flaky = f"py3.10-x{versions[flaky]}"

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        data = super().run(plan, cell)
        if data is not None and cell.id == self.flaky:
            data["status"] = "failed"
            data["tests"] = [{"nodeid": "t::a", "outcome": "failed", "cause": TIMEOUT}]
        return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 16), st.data())
def test_a_flaky_failure_never_becomes_a_boundary(n: int, data: st.DataObject) -> None:
    """Random histories with one boundary (or none) and one failure that does not repeat:
    grid, walk and bisect report the real boundary, and the flaky version is never
    incompatible."""
    versions = tuple(f"1.{i}.0" for i in range(n))
    cut = data.draw(st.integers(1, n))
    flaky = data.draw(st.integers(0, n - 1))
    strategy: Strategy = data.draw(st.sampled_from(["grid", "walk", "bisect"]))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        plan = _history(root, versions)
        document, _ = _run(root, OnceRunner(versions, cut, flaky), strategy, plan=plan)
    x = _ranges(document)
    truth = versions[cut] if cut < n else None
    if x["upgrade_boundary"] is not None:
        assert x["upgrade_boundary"] == truth
    # A flaky pass is no pass: with no other passing version there is no boundary to find.
    if strategy != "walk" and not (cut == 1 and flaky == 0):
        assert x["upgrade_boundary"] == truth
    assert x["downgrade_boundary"] is None
    if flaky < cut:
        assert versions[flaky] not in x["incompatible"]


def test_each_python_is_a_line_of_its_own(tmp_path: Path) -> None:
    """Cells of two Pythons used to make one line sorted by version (3.10's and 3.11's
    cells of one release side by side): bisect's ends were 3.10's oldest and 3.11's newest,
    and a boundary could pair cells of different Pythons. x breaks at 1.9.0 on 3.10 and at
    1.5.0 on 3.11."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{v}"' for v in VERSIONS)
    matrix = matrix_from_text(
        tmp_path, f'python = ["3.10", "3.11"]\n[packages.x]\nversions = [{listed}]\n'
    )
    cells = tuple(
        Cell("m", f"py{p}-x{v}", p, (("x", v),), interpreter=f"/py{p}")
        for p in ("3.10", "3.11")
        for v in VERSIONS
    )
    plan = MatrixPlan(matrix, cells, {"x": VERSIONS}, ("3.10", "3.11"))

    class TwoPythons(TableRunner):
        def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
            data = super().run(plan, cell)
            assert data is not None
            breaks = Version("1.9" if cell.python == "3.10" else "1.5")
            version = Version(dict(cell.packages)["x"])
            ok = version < breaks
            data["python"] = f"{cell.python}.1"
            data["status"] = "passed" if ok else "failed"
            data["tests"] = [{"nodeid": "t::a", "outcome": "passed" if ok else "failed"}]
            return data

        def rerun(
            self, plan: MatrixPlan, cell: Cell, data: CellJSON, nodeids: list[str]
        ) -> CellJSON:
            again: dict[str, OutcomeJSON] = {n: {"nodeid": n, "outcome": "failed"} for n in nodeids}
            return apply_rerun(data, nodeids, again)

    runner = TwoPythons()
    _run(tmp_path, runner, "bisect", jobs=1, plan=plan)
    ran = set(runner.ran)
    for python, boundary in (("3.10", "1.9.0"), ("3.11", "1.5.0")):
        before = VERSIONS[VERSIONS.index(boundary) - 1]
        assert {f"py{python}-x{before}", f"py{python}-x{boundary}"} <= ran
    # Each line's two ends ran, and no more than a binary search of each line needs.
    assert {"py3.10-x1.0.0", "py3.10-x1.15.0", "py3.11-x1.0.0", "py3.11-x1.15.0"} <= ran
    assert len(ran) <= 2 * 10


# --- counterfactual cells (issue 26) -------------------------------------------------------

NEIGHBOURS = ("a", "b", "c", "d")


def _moved(version: str) -> dict[str, str]:
    """From x 1.3.0 on, the resolution brings release 2 of each of four neighbours."""
    return {n: "2" if Version(version) >= Version("1.3.0") else "1" for n in NEIGHBOURS}


def _d_breaks_it(version: str, held: dict[str, str]) -> dict[str, Outcome]:
    """d 2 broke the test; x itself breaks it from 1.5.0."""
    environment = {**_moved(version), **held}
    broken = environment["d"] == "2" or Version(version) >= Version("1.5.0")
    return {"t::a": "failed" if broken else "passed"}


def test_the_package_that_changed_beside_the_axis_is_named_not_the_axis(
    tmp_path: Path,
) -> None:
    """Four neighbours move at x 1.3.0 and one of them (d) breaks the test: x 1.3.0 and
    1.4.0 pass with it set back and count as compatible; 1.5.0, which still fails with
    everything set back, is x's own break. Narrowing four packages costs ⌈log2 4⌉ + 1 = 3
    cells; the next version tries the culprit first (one cell); the axis's own break one."""
    runner = TableRunner(table=lambda v: _d_breaks_it(v, {}), neighbours=_moved, held=_d_breaks_it)
    versions = tuple(f"1.{i}.0" for i in range(6))
    document, _ = _run(tmp_path, runner, "grid", plan=_history(tmp_path, versions))
    matrix = document["matrices"][0]
    assert _ranges(document)["specifier"] == ">=1.0.0,<=1.4.0"
    cells = {c["packages"]["x"]: c for c in matrix["cells"]}
    test = cells["1.3.0"]["tests"][0]
    assert test["outcome"] == "other-package"
    assert test["cause"]["culprit"]["packages"] == {"d": {"failing": "2", "passing": "1"}}
    assert test["cause"]["distribution"] == "d" and test["cause"]["version"] == "2"
    assert len(cells["1.3.0"]["counterfactuals"]) == 3
    assert [c["held"] for c in cells["1.4.0"]["counterfactuals"]] == [{"d": "1"}]
    assert cells["1.4.0"]["tests"][0]["cause"]["culprit"]["verified"] is True
    assert [c["status"] for c in cells["1.5.0"]["counterfactuals"]] == ["failed"]
    assert cells["1.5.0"]["tests"][0]["outcome"] == "failed"
    assert len(runner.probed) == 5
    lines = render_matrix(matrix)
    assert any("passes with d 1 instead of 2" in line for line in lines), lines


def test_a_set_back_that_does_not_install_is_incompatible_through_it(tmp_path: Path) -> None:
    """From x 1.2.0 the neighbour d moves; set back, it does not install beside 1.2.0: the
    version is incompatible through d, said so, and its failure stays."""

    def held(version: str, held: dict[str, str]) -> dict[str, Outcome] | None:
        return None if held else _d_breaks_it(version, held)

    runner = TableRunner(
        table=lambda v: _d_breaks_it(v, {}),
        neighbours=lambda v: {"d": "2" if Version(v) >= Version("1.3.0") else "1"},
        held=held,
    )
    versions = tuple(f"1.{i}.0" for i in range(5))
    document, _ = _run(tmp_path, runner, "grid", plan=_history(tmp_path, versions))
    matrix = document["matrices"][0]
    assert _ranges(document)["specifier"] == ">=1.0.0,<=1.2.0"
    test = next(c for c in matrix["cells"] if c["packages"]["x"] == "1.3.0")["tests"][0]
    assert test["outcome"] == "failed"
    assert test["cause"]["through"]["packages"] == ["d"]
    assert any("incompatible through d" in line for line in render_matrix(matrix))
    # The next version fails beside d 2 as well: asked once, with d set back, it is
    # incompatible through d too (not "constrain d").
    later = next(c for c in matrix["cells"] if c["packages"]["x"] == "1.4.0")["tests"][0]
    assert later["cause"]["through"]["packages"] == ["d"]
    assert runner.probed == ["py3.10-x1.3.0-with-d1", "py3.10-x1.4.0-with-d1"]


def test_cells_that_differ_only_in_the_axis_run_no_counterfactual(tmp_path: Path) -> None:
    runner = TableRunner(breaks="1.7.0", neighbours=lambda v: {"d": "1"})
    _run(tmp_path, runner, "bisect")
    assert runner.probed == []


@pytest.mark.parametrize("strategy", ["bisect", "walk"])
def test_a_search_goes_on_past_a_boundary_another_package_explains(
    tmp_path: Path, strategy: Strategy
) -> None:
    """d moves at x 1.3.0 and breaks the test; x itself breaks it at 1.12.0. Without the
    counterfactual a search stops at 1.3.0; with it, it finds x's own boundary."""

    def d_then_x(version: str, held: dict[str, str]) -> dict[str, Outcome]:
        environment = {**_moved(version), **held}
        broken = environment["d"] == "2" or Version(version) >= Version("1.12.0")
        return {"t::a": "failed" if broken else "passed"}

    runner = TableRunner(table=lambda v: d_then_x(v, {}), neighbours=_moved, held=d_then_x)
    document, _ = _run(tmp_path, runner, strategy, jobs=2)
    x = _ranges(document)
    assert x["upgrade_boundary"] == "1.12.0", x
    assert "1.3.0" in x["compatible"] and "1.11.0" in x["compatible"]
