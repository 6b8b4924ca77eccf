"""The controller: plan the matrices, run their cells in parallel, keep every finished cell."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnose import Rule
from .interpreters import InterpreterFinder
from .matrix import find_matrix_files, load_matrix
from .plan import Cell, MatrixPlan, expand
from .provision import CellOutcome, RunningCells, Workspace, run_cell
from .results import cell_json, matrix_json, planned_cell_json, results_json, write_json_atomic


def plan_matrices(target: Path, finder: InterpreterFinder | None = None) -> list[MatrixPlan]:
    """Read, validate and expand every matrix at ``target`` (a file or a folder)."""
    finder = finder or InterpreterFinder()
    matrices = [load_matrix(path) for path in find_matrix_files(target)]
    names = [m.name for m in matrices]
    for m in matrices:
        if names.count(m.name) > 1:
            from .matrix import MatrixError

            raise MatrixError(m.path, "name", m.name, "another matrix file has the same name")
    return [expand(m, finder) for m in matrices]


@dataclass
class RunOptions:
    workspace: Workspace
    json_path: Path
    pytest_args: list[str]
    jobs: int = 1
    timeout: float | None = None
    rules: tuple[Rule, ...] = ()


@dataclass
class _Progress:
    total: int
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class MatrixRun:
    """Runs the planned cells and writes results.json after every finished cell."""

    def __init__(
        self, plans: Sequence[MatrixPlan], options: RunOptions, write_line: Callable[[str], None]
    ) -> None:
        self.plans = list(plans)
        self.options = options
        self._write_line = write_line
        self._cells: dict[str, list[dict[str, Any]]] = {p.matrix.name: [] for p in plans}
        self._lock = threading.Lock()
        self._running = RunningCells()
        runnable = sum(1 for p in plans for c in p.cells if c.status is None)
        self._progress = _Progress(total=runnable)

    def execute(self) -> dict[str, Any]:
        """Run every runnable cell; returns the final results document."""
        for plan in self.plans:
            for cell in plan.cells:
                if cell.status is not None:
                    self._cells[plan.matrix.name].append(planned_cell_json(cell))
        work = [(p, c) for p in self.plans for c in p.cells if c.status is None]
        if work:
            self.options.workspace.install_recorder()
        self._run_all(work)
        document = results_json([matrix_json(p, self._cells[p.matrix.name]) for p in self.plans])
        write_json_atomic(self.options.json_path, document)
        return document

    def _run_all(self, work: list[tuple[MatrixPlan, Cell]]) -> None:
        jobs = max(1, self.options.jobs)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dfvc-cell") as pool:
            pending: set[Future[None]] = set()
            queue = list(reversed(work))
            try:
                while queue or pending:
                    while queue and len(pending) < jobs:
                        plan, cell = queue.pop()
                        pending.add(pool.submit(self._run_one, plan, cell))
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
            except BaseException:
                # Ctrl-C: cells already written stay in results.json; stop the running
                # ones (their results would be partial) and queue no more.
                queue.clear()
                for future in pending:
                    future.cancel()
                self._running.stop_all()
                raise

    def _run_one(self, plan: MatrixPlan, cell: Cell) -> None:
        started = time.monotonic()
        self._say(f"{plan.matrix.name} {cell.id}: provisioning and testing")
        outcome = run_cell(
            plan.matrix,
            cell,
            self.options.workspace,
            self.options.pytest_args,
            timeout=self.options.timeout,
            running=self._running,
        )
        if self._running.stopping:
            return  # interrupted: a cell stopped half-way is not a result
        data = _outcome_json(cell, outcome, self.options.rules)
        with self._lock:
            self._cells[plan.matrix.name].append(data)
            self._write_partial()
        with self._progress.lock:
            self._progress.done += 1
            done = self._progress.done
        elapsed = time.monotonic() - started
        self._say(
            f"[{done}/{self._progress.total}] {plan.matrix.name} {cell.id}: "
            f"{_describe(data)} ({elapsed:.1f}s)"
        )

    def _write_partial(self) -> None:
        """Cells so far, without ranges: what survives an interrupted run."""
        partial = {
            "schema": 1,
            "complete": False,
            "matrices": [
                {"name": name, "cells": cells, "ranges": {}, "drift": []}
                for name, cells in self._cells.items()
            ],
        }
        write_json_atomic(self.options.json_path, partial)

    def _say(self, line: str) -> None:
        with self._lock:
            self._write_line(line)


def _outcome_json(cell: Cell, outcome: CellOutcome, rules: tuple[Rule, ...]) -> dict[str, Any]:
    cause = None
    if outcome.cause is not None:
        cause = {"category": outcome.cause.category, "reason": outcome.cause.reason}
    return cell_json(
        cell,
        outcome.status,
        outcome.records,
        cause=cause,
        duration=outcome.duration,
        log=outcome.log,
        rules=rules,
    )


def _describe(cell: dict[str, Any]) -> str:
    if cell["cause"] and not cell["tests"]:
        return f"{cell['status']}: {cell['cause']['reason']}"
    counts: dict[str, int] = {}
    for test in cell["tests"]:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no tests"
    return f"{cell['status']} ({summary})"
