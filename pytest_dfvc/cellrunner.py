"""Run one cell for the scheduler and turn it into the results document's cell: reuse an
unchanged cell's kept result, or build and test it through nox, with the host's GPU facts
and the project's diagnosis rules.

The scheduler only sees the ``CellRunner`` protocol, so it can be driven by a runner of
another kind (its tests use one that answers from a table, with no nox).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from .cells.cache import ResultCache, above_fingerprint, cell_key, files_fingerprint
from .cells.environments import EnvironmentSlots
from .cells.provision import Workspace, installs_project, prepare, run
from .cells.resolution import Resolutions, moved
from .cells.sessionspec import RECORDER_MODULE, cell_environment
from .cells.views import project_files, take_snapshot
from .cells.workers import RunningCells
from .index.hostfacts import device_facts
from .model import RAN, CellJSON, DeviceFacts, copy_cells
from .plan.cell import Cell, MatrixPlan
from .plan.precheck import precheck_cell
from .plan.uvargs import pin_requirements, uv_variables, wrong_pins
from .records import CellRun, Record
from .rules import Rule, recorded_rules
from .verdicts.changes import complete_copy
from .verdicts.culprit import held_text
from .verdicts.evidence import apply_rerun
from .verdicts.judge import judge
from .verdicts.results import cell_json, outcome_json


class CellRunner(Protocol):
    def prepare(self, cells: Iterable[tuple[MatrixPlan, Cell]]) -> None:
        """Before the first cell: the cells the run may ask for."""

    def reuse(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        """The kept result of a cell whose inputs did not change, or None."""

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        """Build and test the cell; None when the run was interrupted meanwhile."""

    def rerun(
        self, plan: MatrixPlan, cell: Cell, data: CellJSON, nodeids: list[str]
    ) -> CellJSON | None:
        """The cell ``data`` with its failing tests ``nodeids`` run once more in the same
        environment (``evidence.apply_rerun``); None when interrupted meanwhile."""

    def probe(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON | None:
        """A counterfactual cell (``cell.held`` set back): only the tests ``nodeids``, reused
        when its inputs did not change; None when interrupted meanwhile."""

    def traced(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON | None:
        """A boundary's trace cell: the tests ``nodeids`` run in the cell's environment with
        the tracer on (each test's ``calls``), reused when its inputs did not change; None
        when interrupted meanwhile."""

    def fresh(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        """The cell run again from scratch (``--dfvc-audit``): an environment of its own,
        resolved from the index afresh and reinstalled, and a fresh view; never reused.
        None when interrupted meanwhile."""

    def forget(self, plan: MatrixPlan, cell: Cell, data: CellJSON) -> None:
        """Keep ``data`` as the cell's result from now on (an audit found the kept one
        stale)."""

    def stop_all(self) -> None:
        """Stop every running cell now (Ctrl-C)."""

    def close(self) -> None:
        """The run is over."""


class NoxCellRunner:
    """Cells built and tested through nox sessions with uv, reused from the result cache
    when their inputs did not change."""

    def __init__(
        self,
        workspace: Workspace,
        pytest_args: list[str],
        *,
        json_path: Path,
        outputs: Sequence[Path] = (),
        timeout: float | None = None,
        rules: tuple[Rule, ...] = (),
        reuse: bool = True,
        isolate: bool = True,
        say: Callable[[str, int], None] = lambda line, level: None,
    ) -> None:
        self.workspace = workspace
        self.pytest_args = pytest_args
        self._json_path = json_path
        self._outputs = tuple(outputs)
        self.timeout = timeout
        self.rules = rules
        self._reuse = reuse
        # --dfvc-rerun: every environment resolved from the index afresh and reinstalled.
        self._afresh = not reuse
        self._isolate = isolate
        self._say = say
        self._cache = ResultCache(workspace.out / "cache" / "cells")
        self._resolutions = Resolutions(workspace.runtime / "resolutions")
        # Cells whose kept result the index outdated (``_kept``).
        self._stale: set[tuple[str, str]] = set()
        self._running = RunningCells()
        self._slots = EnvironmentSlots()
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._fingerprint = ""
        self._above = ""
        self._recorder_digest = ""
        self._per_interpreter: Counter[str | None] = Counter()
        self._device: DeviceFacts = {}

    @property
    def stopping(self) -> bool:
        return self._running.stopping

    def prepare(self, cells: Iterable[tuple[MatrixPlan, Cell]]) -> None:
        """One look at the project for the whole run: its files are hashed for the cache
        key and copied into the snapshot every cell's view is made from."""
        cells = list(cells)
        self._per_interpreter.update(c.interpreter for _, c in cells)
        if any(c.cuda for _, c in cells) and not self._device:
            self._device = device_facts()
        if self._fingerprint or not cells:
            return
        workspace = self.workspace
        workspace.install_recorder()
        # What this tool writes is no input of a cell: results, their kept complete copy.
        written = [
            workspace.out,
            self._json_path,
            complete_copy(self._json_path),
            *self._outputs,
        ]
        files = project_files(workspace.project, written)
        self._fingerprint = files_fingerprint(workspace.project, files)
        self._above = above_fingerprint(workspace.project)
        if self._isolate:
            snapshot = take_snapshot(
                workspace.project, files, workspace.runtime / "snapshots", self._fingerprint
            )
            self.workspace = replace(workspace, snapshot=snapshot)
        recorder = (workspace.runtime / f"{RECORDER_MODULE}.py").read_bytes()
        # Hashed once: every cell's key includes it.
        self._recorder_digest = hashlib.sha256(recorder).hexdigest()

    def _key(self, plan: MatrixPlan, cell: Cell, nodeids: list[str] | None = None) -> str:
        return cell_key(
            plan.matrix,
            cell,
            interpreter_version=cell.interpreter_version or "",
            fingerprint=self._fingerprint,
            above=self._above,
            pytest_args=[*self.pytest_args, *(nodeids or ())],
            recorder_digest=self._recorder_digest,
            environment={**cell_environment(plan.matrix), **uv_variables()},
        )

    def reuse(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        if not self._reuse:
            return None
        return self._kept(plan, cell, self._key(plan, cell))

    def _kept(self, plan: MatrixPlan, cell: Cell, key: str) -> CellJSON | None:
        """The cell's kept result, unless the index moved since it ran: past the time its
        resolution is trusted (``resolution.py``), it is resolved again and reused only
        when every package is at the version the cell had."""
        kept = self._cache.get(plan.matrix.name, cell, key)
        if kept is None or kept["status"] not in RAN or self._resolutions.fresh(key):
            return kept
        root = self.workspace.project
        project = [str(root)] if installs_project(plan.matrix, root) else []
        scratch = self.workspace.runtime / "resolutions"
        found = moved(plan.matrix, cell, kept["resolved"], project, scratch, root)
        if found:
            # Its environment was synced to the same inputs: resolved afresh when it runs.
            with self._lock:
                self._stale.add((plan.matrix.name, cell.id))
            shown = "; ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
            self._say(
                f"{plan.matrix.name} {cell.id}: the index moved since it ran ({shown}): run again",
                -1,
            )
            return None
        self._resolutions.note(key)
        return kept

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        # A cell about to be built learns from its own install what the pre-check would say,
        # with uv's same explanation; only a CUDA variant needs the resolution first, to
        # refuse another variant's build before its tests pass under the wrong name.
        refused = precheck_cell(plan.matrix, cell, self.workspace.runtime) if cell.cuda else None
        if refused is not None:
            status, cause = refused
            data = cell_json(cell, status, [], cause=cause.to_json())
        else:
            self._say(f"{plan.matrix.name} {cell.id}: provisioning and testing", 0)
            stale = (plan.matrix.name, cell.id) in self._stale
            ran = self._in_slot(plan, cell, self.pytest_args, afresh=self._afresh or stale)
            if ran is None:
                return None  # interrupted: a cell stopped half-way is not a result
            data = _checked(plan, cell, self._judged(cell, ran))
        self._note_device(cell, data)
        self._keep(plan, cell, self._key(plan, cell), data)
        return data

    def _in_slot(
        self, plan: MatrixPlan, cell: Cell, pytest_args: list[str], *, afresh: bool
    ) -> CellRun | None:
        """The cell prepared, built and tested in a job slot's environment for its Python;
        None when the run was interrupted meanwhile."""
        with self._slots.hold(cell.interpreter or "") as slot:
            prepared = prepare(
                plan.matrix,
                cell,
                self.workspace,
                pytest_args,
                running=self._running,
                # One build of the project's editable wheel pays off from a second cell of
                # the same Python on; for one cell, its own install builds it as fast.
                share_build=self._per_interpreter.get(cell.interpreter, 0) > 1,
                slot=slot,
                afresh=afresh,
            )
            ran = run(prepared, timeout=self.timeout, running=self._running)
        return None if self._running.stopping else ran

    def _judged(self, cell: Cell, ran: CellRun) -> CellJSON:
        """What the cell's run left, handed to the verdicts: its status and causes."""
        return outcome_json(cell, ran, judge(cell, ran), self._rules(ran.records))

    def _keep(self, plan: MatrixPlan, cell: Cell, key: str, data: CellJSON) -> None:
        """Cache a result that would come out the same again; errors (crashes, timeouts)
        may not happen again: never reused."""
        if data["status"] in ("passed", "failed", "unavailable"):
            self._cache.put(plan.matrix.name, cell, key, data)
            self._resolutions.note(key)

    def rerun(
        self, plan: MatrixPlan, cell: Cell, data: CellJSON, nodeids: list[str]
    ) -> CellJSON | None:
        self._say(f"{plan.matrix.name} {cell.id}: running {len(nodeids)} failing test(s) again", 0)
        # A cell of its own name: its view, log and records beside the first run's.
        again = replace(cell, id=f"{cell.id}-again")
        ran = self._in_slot(plan, again, [*self.pytest_args, *nodeids], afresh=self._afresh)
        if ran is None:
            return None
        second = self._judged(again, ran)
        # A second run that could not judge (a crash, a timeout) leaves the failures as
        # they were, unconfirmed.
        judged = {t["nodeid"]: t for t in second["tests"]} if second["status"] in RAN else {}
        updated = apply_rerun(data, nodeids, judged)
        if updated["status"] in ("passed", "failed"):
            # Kept with its second run: a reused cell is never a failure that was flaky.
            self._cache.put(plan.matrix.name, cell, self._key(plan, cell), updated)
        return updated

    def probe(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON | None:
        key = self._key(plan, cell, nodeids)
        if self._reuse:
            kept = self._kept(plan, cell, key)
            if kept is not None:
                return kept
        held = held_text(dict(cell.held))
        self._say(f"{plan.matrix.name} {cell.id}: failing tests with {held} set back", 0)
        ran = self._in_slot(plan, cell, [*self.pytest_args, *nodeids], afresh=self._afresh)
        if ran is None:
            return None
        data = _checked(plan, cell, self._judged(cell, ran))
        self._keep(plan, cell, key, data)
        return data

    def traced(self, plan: MatrixPlan, cell: Cell, nodeids: list[str]) -> CellJSON | None:
        # A cell of its own name (its view, log and records beside the cell's), in the
        # slot's environment synced to the cell's pins.
        tracing = replace(cell, id=f"{cell.id}-trace", trace=True)
        key = self._key(plan, tracing, nodeids)
        if self._reuse:
            kept = self._kept(plan, tracing, key)
            if kept is not None:
                return kept
        self._say(f"{plan.matrix.name} {cell.id}: tracing {len(nodeids)} test(s)", 0)
        ran = self._in_slot(plan, tracing, [*self.pytest_args, *nodeids], afresh=self._afresh)
        if ran is None:
            return None
        data = _checked(plan, tracing, self._judged(tracing, ran))
        self._keep(plan, tracing, key, data)
        return data

    def fresh(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        # A cell of its own name: its own view, folder and environment (not a slot's),
        # which --reinstall and --exact make equal to a new one.
        audited = replace(cell, id=f"{cell.id}-audit")
        self._say(f"{plan.matrix.name} {cell.id}: audit, run again from scratch", 0)
        prepared = prepare(
            plan.matrix,
            audited,
            self.workspace,
            self.pytest_args,
            running=self._running,
            share_build=False,
            afresh=True,
        )
        ran = run(prepared, timeout=self.timeout, running=self._running)
        if self._running.stopping:
            return None
        data = self._judged(audited, ran)
        data["id"] = cell.id
        self._note_device(cell, data)
        return _checked(plan, cell, data)

    def forget(self, plan: MatrixPlan, cell: Cell, data: CellJSON) -> None:
        self._keep(plan, cell, self._key(plan, cell), data)

    def _note_device(self, cell: Cell, data: CellJSON) -> None:
        data["device"] = self._device
        ran = data["status"] in ("passed", "failed")
        if ran and cell.cuda not in (None, "cpu") and self._device.get("device") != "gpu":
            data["note"] = (
                f"a {data.get('build') or cell.cuda} build tested on a host without a GPU: "
                "tests marked dfvc_gpu were skipped; this is not a GPU pass"
            )

    def _rules(self, records: list[Record]) -> tuple[Rule, ...]:
        """The plugins' rules, then the project's as its cells found them; a returned value
        that is no rule is said once and left out."""
        found, problems = recorded_rules(records)
        with self._lock:
            new = [p for p in problems if p not in self._said]
            self._said.update(new)
        for problem in new:
            self._say(f"dfvc: {problem}; left out", -1)
        return (*self.rules, *(r for r in found if r not in self.rules))

    def stop_all(self) -> None:
        self._running.stop_all()

    def close(self) -> None:
        self._running.close()


class ShardRunner(NoxCellRunner):
    """The cells of a GitHub Actions run as their jobs left them (their shards, by matrix
    and cell id), for the merge's second wave: every cell is reused from its shard; the
    boundaries' second runs and counterfactual cells run here, through nox, as locally."""

    def __init__(self, shards: dict[tuple[str, str], CellJSON], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = shards

    def reuse(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        shard = self._shards.get((plan.matrix.name, cell.id))
        return copy_cells([shard])[0] if shard is not None else None

    def run(self, plan: MatrixPlan, cell: Cell) -> CellJSON | None:
        # The merge runs its second wave only when every runnable cell has a shard.
        raise AssertionError(f"{plan.matrix.name}/{cell.id}: no shard to merge")


def _checked(plan: MatrixPlan, cell: Cell, data: CellJSON) -> CellJSON:
    """The cell as an ``error`` when its environment does not hold its pins (another build
    of the version under test): its tests say nothing about the version it names."""
    pins = [*pin_requirements(plan.matrix, cell), *(f"{n}=={v}" for n, v in cell.held)]
    wrong = wrong_pins(pins, data["resolved"]) if data["status"] in RAN else []
    if wrong:
        data["status"] = "error"
        data["cause"] = {
            "category": "install",
            "reason": (
                f"{'; '.join(wrong)}: a local version label matches the pin, so the results "
                "cannot credit the version asked for; remove that build from where packages "
                "come from (or give its CUDA variant a cuda axis)"
            ),
        }
    return data
