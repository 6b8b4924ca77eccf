"""The controller: plan the matrices, run their cells in parallel, keep every finished cell."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from .cellrunner import CellRunner, NoxCellRunner
from .cells.provision import Workspace
from .files import write_json_atomic
from .model import RAN, AuditJSON, Cause, CellJSON, Document, copy_cells
from .plan.audit import choose, differences, judged
from .plan.cell import Cell, MatrixPlan, ReleaseLister
from .plan.era import with_eras
from .plan.matrix import MatrixError
from .plan.refine import gaps, refined_plan, releases_between
from .plan.strategy import Line, build_lines, next_cells
from .rules import Rule
from .verdicts.culprit import Boundary, apply, boundaries, explain, held_cell, summary
from .verdicts.documents import document, partial_document
from .verdicts.drift import DEFAULT_ATOL, DEFAULT_RTOL
from .verdicts.evidence import rerun_wanted, settle, verdicts
from .verdicts.results import matrix_json, matrix_ranges, planned_cell_json
from .verdicts.tracing import (
    TracePair,
    apply_traces,
    carry_traces,
    traced_api,
    traces_wanted,
)
from .vocabulary import Strategy


@dataclass
class RunOptions:
    workspace: Workspace
    json_path: Path
    pytest_args: list[str]
    # Other places the run writes to inside the project (the badges folder): no input.
    outputs: tuple[Path, ...] = ()
    jobs: int = 1
    timeout: float | None = None
    rules: tuple[Rule, ...] = ()
    strategy: Strategy = "grid"
    # Reuse the results of cells whose inputs did not change (--dfvc-rerun turns it off).
    reuse: bool = True
    baselines: dict[str, dict[str, str | None]] = field(default_factory=dict)
    drift_rtol: float = DEFAULT_RTOL
    drift_atol: float = DEFAULT_ATOL
    # Test the releases inside a gap the run left (--dfvc-refine, and bisect), listed so.
    refine: bool = False
    lister: ReleaseLister | None = None
    # Each cell in its own view of the project (views.py); off only to measure its cost.
    isolate: bool = True
    # pytest's -q/-v: -1 says one line per finished cell at most, -2 nothing until the end.
    verbosity: int = 0
    # False when the plan holds only some of the matrices' cells (a --dfvc-cell job): its
    # document is no baseline for "since the last run".
    complete: bool = True
    # Run counterfactual cells where a boundary's cells differ in more than the axis
    # (culprit.py); --dfvc-no-culprit turns them off.
    culprit: bool = True
    # Trace the silent failures of each boundary on both sides (verdicts/tracing.py);
    # --dfvc-trace=off turns it off.
    trace: bool = True
    # --dfvc-audit[=N]: run N cells again from scratch and compare (audit.py); 0 for the
    # default share, None for no audit.
    audit: int | None = None
    audit_seed: int = 0


@dataclass
class _Task:
    plan: MatrixPlan
    cell: Cell

    @property
    def key(self) -> tuple[str, str]:
        return (self.plan.matrix.name, self.cell.id)


class MatrixRun:
    """Runs the cells the strategy asks for, reusing unchanged ones, and writes
    results.json after every finished cell."""

    def __init__(
        self,
        plans: Sequence[MatrixPlan],
        options: RunOptions,
        write_line: Callable[[str], None],
        runner: CellRunner | None = None,
    ) -> None:
        self.plans = list(plans)
        self.options = options
        self._write_line = write_line
        self._cells: dict[str, list[CellJSON]] = {p.matrix.name: [] for p in plans}
        self._lock = threading.Lock()
        self._runner: CellRunner = runner or NoxCellRunner(
            options.workspace,
            options.pytest_args,
            json_path=options.json_path,
            outputs=options.outputs,
            timeout=options.timeout,
            rules=options.rules,
            reuse=options.reuse,
            isolate=options.isolate,
            say=self._say,
        )
        self._started = 0
        # How many cells the run will finish, when the strategy knows (grid runs them all).
        self._total: int | None = None
        self._durations: list[float] = []
        self.stats = {"run": 0, "reused": 0, "not_run": 0}
        self._strategy = options.strategy
        self._refined: set[tuple[str, str]] = set()
        self._audited: dict[str, AuditJSON] = {}

    def execute(self) -> Document:
        """Run the cells; returns the final results document."""
        for plan in self.plans:
            for cell in plan.cells:
                if cell.status is not None:
                    self._cells[plan.matrix.name].append(planned_cell_json(cell))
        tasks = {
            t.key: t for p in self.plans for c in p.cells if c.status is None for t in [_Task(p, c)]
        }
        self._total = len(tasks) if self.options.strategy == "grid" else None
        self._runner.prepare((t.plan, t.cell) for t in tasks.values())
        self._schedule(tasks, self.options.strategy)
        if self.options.refine and self.options.lister is not None:
            refined = self._refine(self.options.lister)
            if refined:
                self._refined = set(refined)
                final = {p.matrix.name: p for p in self.plans}
                tasks = {k: _Task(final[k[0]], t.cell) for k, t in tasks.items()}
                tasks.update(refined)
                self._total = None  # bisect decides how many of them run
                self._runner.prepare((t.plan, t.cell) for t in refined.values())
                # Bisect may also want a cell the first pass left out (a bisect of its own).
                self._schedule(tasks, "bisect")
        if self.options.audit is not None:
            self._audit(tasks, self.options.audit, self.options.audit_seed)
        self._mark_not_run(tasks)
        result = document(
            [
                matrix_json(
                    p,
                    self._cells[p.matrix.name],
                    rtol=self.options.drift_rtol,
                    atol=self.options.drift_atol,
                )
                for p in self.plans
            ]
        )
        if not self.options.complete:
            result["complete"] = False
        for matrix in result["matrices"]:
            if matrix["name"] in self._audited:
                matrix["audit"] = self._audited[matrix["name"]]
        write_json_atomic(self.options.json_path, result)
        return result

    # --- scheduling ----------------------------------------------------------------------

    def _schedule(self, tasks: dict[tuple[str, str], _Task], strategy: Strategy) -> None:
        """Ask the strategy for cells, run them (jobs at a time), and ask again after each
        finished cell, until it asks for nothing more. Cells finished before (a refine step
        after the main run) count as known."""
        self._strategy = strategy
        lines = {p.matrix.name: self._lines(p) for p in self.plans}
        runnable = {p.matrix.name: [c.id for c in p.cells if c.status is None] for p in self.plans}
        outcomes: dict[str, dict[str, dict[str, bool | None]]] = {n: {} for n in runnable}
        started = {(n, c["id"]) for n, cells in self._cells.items() for c in cells}
        for plan in self.plans:
            self._learn(outcomes, plan)
        queue: list[_Task] = []
        pending: dict[Future[CellJSON | None], _Task] = {}
        jobs = max(1, self.options.jobs)

        def ask() -> list[_Task]:
            asked = []
            for name in runnable:
                running = {c for n, c in started if n == name and c not in outcomes[name]}
                wanted = next_cells(
                    strategy,
                    lines[name],
                    outcomes[name],
                    runnable[name],
                    running,
                    ways=jobs,
                )
                for cell_id in sorted(wanted, key=self._order(name)):
                    if (name, cell_id) not in started:
                        started.add((name, cell_id))
                        asked.append(tasks[(name, cell_id)])
            return asked

        reran: set[tuple[str, str]] = set()

        def rerun() -> bool:
            """Start the second runs of the boundaries the finished cells show (called once
            the strategy asks for nothing more: a failure a later cell repeats needs none);
            whether any started."""
            begun = False
            for task, data, nodeids in self._reruns_wanted(tasks, lines):
                if task.key not in reran:
                    reran.add(task.key)
                    pending[pool.submit(self._rerun_one, task, data, nodeids)] = task
                    begun = True
            return begun

        explained: set[tuple[str, str, str]] = set()

        def explain() -> bool:
            """Start the counterfactual cells of the boundaries whose cells differ in more
            than the axis (called once the reruns are done); whether any started."""
            begun = False
            for task, boundary in self._boundaries(tasks, lines) if self.options.culprit else ():
                key = (task.plan.matrix.name, boundary.failing, boundary.passing)
                if key not in explained:
                    explained.add(key)
                    pending[pool.submit(self._explain_one, task, boundary)] = task
                    begun = True
            return begun

        traced: set[tuple[str, str, str]] = set()

        def trace() -> bool:
            """Start tracing the silent failures of each boundary on both sides (called
            once the counterfactual cells are done: a failure another package explains is
            no silent break of the axis); whether any started."""
            begun = False
            for task, pair in self._traces(tasks, lines) if self.options.trace else ():
                key = (task.plan.matrix.name, pair.failing, pair.passing)
                if key not in traced:
                    traced.add(key)
                    pending[pool.submit(self._trace_one, task, pair)] = task
                    begun = True
            return begun

        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dfvc-cell") as pool:
            try:
                while True:
                    # Reused cells answer at once and may make the strategy ask for more.
                    while asked := ask():
                        for task in asked:
                            reused = self._reuse(task)
                            if reused is None:
                                queue.append(task)
                                continue
                            self._finish(task, reused, reused=True)
                            self._learn(outcomes, task.plan)
                    # Before a boundary stands, its failing tests run once more: one that
                    # passes then is flaky, and the strategy searches on; then, where the
                    # two cells differ in more than the axis, counterfactual cells say
                    # which package broke them (and the boundary may move on).
                    if not queue and not pending and not rerun() and not explain() and not trace():
                        break
                    while queue and len(pending) < jobs:
                        task = queue.pop(_next_start(queue, pending.values()))
                        pending[pool.submit(self._run_one, task)] = task
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        task = pending.pop(future)
                        if future.result() is not None:
                            self._learn(outcomes, task.plan)
            except BaseException:
                # Ctrl-C: cells already written stay in results.json; stop the running
                # ones (their results would be partial) and start no more.
                for future in pending:
                    future.cancel()
                self._runner.stop_all()
                raise
            finally:
                self._runner.close()

    def _learn(
        self, outcomes: dict[str, dict[str, dict[str, bool | None]]], plan: MatrixPlan
    ) -> None:
        """Tell the strategy what ``plan``'s finished cells say. A search gets their per-test
        verdicts, judged as the ranges judge them (module errors as their tests, tests set
        apart as not version-related left out); grid needs only which cells finished."""
        name = plan.matrix.name
        with self._lock:
            cells = list(self._cells[name])
        if self._strategy == "grid":
            outcomes[name] = {c["id"]: {} for c in cells}
            return
        outcomes[name] = verdicts(cells, plan.versions)

    def _reruns_wanted(
        self, tasks: dict[tuple[str, str], _Task], lines: dict[str, list[Line]]
    ) -> list[tuple[_Task, CellJSON, list[str]]]:
        """The boundary cells whose failing tests should run once more
        (``evidence.rerun_wanted``), with their results so far."""
        wanted: list[tuple[_Task, CellJSON, list[str]]] = []
        for plan in self.plans:
            name = plan.matrix.name
            with self._lock:
                cells = list(self._cells[name])
            found = rerun_wanted(cells, [line.cells for line in lines[name]], plan.versions)
            by_id = {c["id"]: c for c in cells}
            wanted += [
                (tasks[(name, c)], by_id[c], n) for c, n in found.items() if (name, c) in tasks
            ]
        return wanted

    def _rerun_one(self, task: _Task, data: CellJSON, nodeids: list[str]) -> CellJSON | None:
        updated = self._runner.rerun(task.plan, task.cell, data, nodeids)
        if updated is None:
            return None
        name = task.plan.matrix.name
        with self._lock:
            cells = self._cells[name]
            cells[next(i for i, c in enumerate(cells) if c is data)] = updated
            self._write_partial()
        flaky = [t["nodeid"] for t in updated["tests"] if t["outcome"] == "flaky"]
        said = f"{len(flaky)} flaky (passed when run again)" if flaky else "failed again"
        self._say(f"{name} {task.cell.id}: {len(nodeids)} failing test(s) run again: {said}")
        return updated

    def _boundaries(
        self, tasks: dict[tuple[str, str], _Task], lines: dict[str, list[Line]]
    ) -> list[tuple[_Task, Boundary]]:
        """The boundaries a counterfactual cell should explain (``culprit.boundaries``)."""
        found: list[tuple[_Task, Boundary]] = []
        for plan in self.plans:
            name = plan.matrix.name
            with self._lock:
                cells = list(self._cells[name])
            for boundary in boundaries(cells, [line.cells for line in lines[name]], plan.versions):
                if (name, boundary.failing) in tasks:
                    found.append((tasks[(name, boundary.failing)], boundary))
        return found

    def _explain_one(self, task: _Task, boundary: Boundary) -> CellJSON | None:
        """Run one boundary's counterfactual cells, one after the other (each narrows the
        last), and judge the failing cell by them."""
        nodeids = list(boundary.nodeids)

        def run(held: Mapping[str, str]) -> CellJSON | None:
            return self._runner.probe(task.plan, held_cell(task.cell, held), nodeids)

        found = explain(boundary, run)
        if found is None:
            return None
        name = task.plan.matrix.name
        with self._lock:
            cells = self._cells[name]
            index = next(i for i, c in enumerate(cells) if c["id"] == boundary.failing)
            cells[index] = updated = apply(cells[index], found)
            self._write_partial()
        self._say(f"{name} {task.cell.id}: {summary(found)}")
        return updated

    def _traces(
        self, tasks: dict[tuple[str, str], _Task], lines: dict[str, list[Line]]
    ) -> list[tuple[_Task, TracePair]]:
        """The boundaries whose silent failures to trace (``tracing.traces_wanted``)."""
        found: list[tuple[_Task, TracePair]] = []
        for plan in self.plans:
            name = plan.matrix.name
            with self._lock:
                cells = list(self._cells[name])
            for pair in traces_wanted(cells, [line.cells for line in lines[name]], plan.versions):
                if (name, pair.failing) in tasks and (name, pair.passing) in tasks:
                    found.append((tasks[(name, pair.failing)], pair))
        return found

    def _trace_one(self, task: _Task, pair: TracePair) -> CellJSON | None:
        """Trace one boundary's silent failures on its passing side, then its failing side,
        and judge the failing cell by the first call whose result changed."""
        name = task.plan.matrix.name
        passing_cell = next(c for c in task.plan.cells if c.id == pair.passing)
        nodeids = list(pair.nodeids)
        before = self._runner.traced(task.plan, passing_cell, nodeids)
        after = self._runner.traced(task.plan, task.cell, nodeids) if before else None
        if before is None or after is None:
            return None
        with self._lock:
            cells = self._cells[name]
            index = next(i for i, c in enumerate(cells) if c["id"] == pair.failing)
            cells[index] = updated = apply_traces(cells[index], before, after)
            for carried in carry_traces(cells, updated):
                cells[next(i for i, c in enumerate(cells) if c["id"] == carried["id"])] = carried
            self._write_partial()
        named = sorted({api for t in updated["tests"] if (api := traced_api(t))})
        said = f"the result of {', '.join(named)} changed" if named else "no call's result differs"
        self._say(f"{name} {task.cell.id}: traced {len(nodeids)} test(s): {said}")
        return updated

    def _audit(self, tasks: dict[tuple[str, str], _Task], count: int, seed: int) -> None:
        """Run the cells ``audit.choose`` names again from scratch, jobs at a time, and
        compare: a cell that differs becomes an ``error`` saying what its kept result or
        synced environment missed, and the fresh result is kept from now on."""
        chosen: list[tuple[_Task, CellJSON]] = []
        for plan in self.plans:
            name = plan.matrix.name
            with self._lock:
                cells = list(self._cells[name])
            ids = choose(cells, count, seed)
            by_id = {c["id"]: c for c in cells}
            chosen += [(tasks[(name, i)], by_id[i]) for i in ids if (name, i) in tasks]
            self._audited[name] = {"seed": seed, "cells": ids, "differ": []}
        if not chosen:
            return
        total = sum(len(a["cells"]) for a in self._audited.values())
        ran = sum(c["status"] in RAN for cells in self._cells.values() for c in cells)
        with ThreadPoolExecutor(max(1, self.options.jobs), thread_name_prefix="dfvc-audit") as pool:
            futures = {pool.submit(self._runner.fresh, t.plan, t.cell): (t, d) for t, d in chosen}
            try:
                for future in futures:
                    fresh = future.result()
                    if fresh is not None:
                        self._compare(*futures[future], fresh)
            except BaseException:
                self._runner.stop_all()
                raise
            finally:
                self._runner.close()
        differ = [i for a in self._audited.values() for i in a["differ"]]
        said = f"{len(differ)} differ: {', '.join(differ)}" if differ else "every one equal"
        self._say(
            f"dfvc: audit: {total} of {ran} cells run again from scratch (seed {seed}): {said}"
        )

    def _compare(self, task: _Task, kept: CellJSON, fresh: CellJSON) -> None:
        found = differences(kept, fresh)
        if not found:
            return
        name = task.plan.matrix.name
        self._runner.forget(task.plan, task.cell, fresh)
        with self._lock:
            cells = self._cells[name]
            index = next(i for i, c in enumerate(cells) if c["id"] == kept["id"])
            cells[index] = judged(kept, fresh, found)
            self._audited[name]["differ"].append(kept["id"])
            self._write_partial()
        self._say(f"{name} {kept['id']}: the audit found it differs: {'; '.join(found[:4])}")

    def _refine(self, lister: ReleaseLister) -> dict[tuple[str, str], _Task]:
        """Plan cells for the releases inside each gap the run left (an explicit version
        list's pass and failure with releases in between), for bisect to narrow."""
        added: dict[tuple[str, str], _Task] = {}
        for i, plan in enumerate(self.plans):
            cells = copy_cells(self._cells[plan.matrix.name])
            ranges = matrix_ranges(plan, cells, set(settle(cells, plan.versions)))
            for gap in gaps(ranges, plan):
                axis = next(a for a in plan.matrix.packages if a.name == gap.axis)
                try:
                    versions = releases_between(axis, lister(axis, plan.matrix), gap)
                    refined, new = refined_plan(plan, gap, versions)
                    # A refined release has an era of its own (exclude-newer = "release").
                    refined = with_eras(refined, lister)
                except MatrixError as exc:
                    self._say(
                        f"dfvc: cannot refine {gap.axis} between {gap.low} and {gap.high}: {exc}"
                    )
                    continue
                plan = refined
                eras = {c.id: c for c in plan.cells}
                new = [eras[c.id] for c in new]
                self._say(
                    f"dfvc: refining {plan.matrix.name} {gap.axis} between {gap.low} and "
                    f"{gap.high}: {len(versions)} release(s) in the gap"
                )
                for cell in new:
                    added[(plan.matrix.name, cell.id)] = _Task(plan, cell)
            self.plans[i] = plan
        # Tasks carry the final plan (its versions and dense intervals).
        final = {p.matrix.name: p for p in self.plans}
        return {k: _Task(final[k[0]], t.cell) for k, t in added.items()}

    def _order(self, matrix: str) -> Callable[[str], int]:
        order = {
            c.id: i for p in self.plans if p.matrix.name == matrix for i, c in enumerate(p.cells)
        }
        return lambda cell_id: order.get(cell_id, 0)

    def _lines(self, plan: MatrixPlan) -> list[Line]:
        axes = [a.name for a in plan.matrix.packages if len(plan.versions[a.name]) > 1]
        cells = [(c.id, _values(c)) for c in plan.cells if c.status is None]
        baselines = self.options.baselines.get(plan.matrix.name, {})
        return build_lines(cells, axes, baselines)

    def _mark_not_run(self, tasks: dict[tuple[str, str], _Task]) -> None:
        """Cells the strategy never asked for: skipped, and said so."""
        ran = {(name, c["id"]) for name, cells in self._cells.items() for c in cells}
        for key, task in tasks.items():
            if key not in ran:
                reason = (
                    "a release in a refined gap that bisect did not need"
                    if key in self._refined
                    else f"not run by the {self.options.strategy} strategy"
                )
                cell = replace(task.cell, status="skipped", cause=Cause("strategy", reason))
                self._cells[task.plan.matrix.name].append(planned_cell_json(cell))
                self.stats["not_run"] += 1

    # --- one cell ------------------------------------------------------------------------

    def _reuse(self, task: _Task) -> CellJSON | None:
        return self._runner.reuse(task.plan, task.cell)

    def _run_one(self, task: _Task) -> CellJSON | None:
        started = time.monotonic()
        data = self._runner.run(task.plan, task.cell)
        if data is not None:
            self._finish(task, data, reused=False, elapsed=time.monotonic() - started)
        return data

    def _finish(self, task: _Task, data: CellJSON, *, reused: bool, elapsed: float = 0.0) -> None:
        with self._lock:
            self._cells[task.plan.matrix.name].append(data)
            self._write_partial()
            self.stats["reused" if reused else "run"] += 1
            self._started += 1
            if not reused:
                self._durations.append(elapsed)
            progress = self._progress()
        how = "unchanged, result reused" if reused else f"{elapsed:.1f}s"
        self._say(f"{progress} {task.plan.matrix.name} {task.cell.id}: {_describe(data)} ({how})")

    def _progress(self) -> str:
        """``[5/12]``, and once three cells have run, about how long the rest will take (the
        mean cell so far, the cells left, the jobs at a time); ``[5]`` when the strategy
        decides as it goes how many cells run."""
        done = self._started
        if self._total is None:
            return f"[{done}]"
        left = max(self._total - done, 0)
        if len(self._durations) < 3 or not left:
            return f"[{done}/{self._total}]"
        mean = sum(self._durations) / len(self._durations)
        seconds = mean * math.ceil(left / max(1, self.options.jobs))
        return f"[{done}/{self._total}, about {_duration(seconds)} left]"

    def _write_partial(self) -> None:
        """Cells so far, without ranges: what survives an interrupted run."""
        write_json_atomic(self.options.json_path, partial_document(self._cells))

    def _say(self, line: str, level: int = -1) -> None:
        """A line of the run's progress, shown at ``level`` and more verbose (-1: with -q;
        0: not with -q)."""
        if self.options.verbosity < level:
            return
        with self._lock:
            self._write_line(line)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min"


def _values(cell: Cell) -> dict[str, str]:
    """Where a cell sits in the matrix: a line holds the cells that differ only in one
    package's version, so its Python and CUDA variant are held fixed along it too (under
    keys no package name can be: names hold no spaces)."""
    return {**dict(cell.packages), " python": cell.python, " cuda": cell.cuda or ""}


def _describe(cell: CellJSON) -> str:
    if cell["cause"] and not cell["tests"]:
        return f"{cell['status']}: {cell['cause']['reason']}"
    counts: dict[str, int] = {}
    for test in cell["tests"]:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no tests"
    return f"{cell['status']} ({summary})"


def _next_start(queue: Sequence[_Task], running: Iterable[_Task]) -> int:
    """Which queued cell to start: the first whose interpreter no running cell uses, so the
    slots share out the Pythons. The project's editable wheel is built once per interpreter
    by the first cell that needs it, and the others wait for it; spread this way, the builds
    for two Pythons run side by side instead of one slot idling behind the other's build."""
    busy = {t.cell.interpreter for t in running}
    return next((i for i, t in enumerate(queue) if t.cell.interpreter not in busy), 0)
