"""One cell's life in the cells, in two steps: ``prepare`` (its view of the project, the
project's install — its editable wheel, its lock — and the session spec written with the
files it names) and ``run`` (its environment built and its tests run, through nox), which
returns what the session left for the verdicts. Running the session is ``cellrun``'s; the
spec's content is ``sessionspec``'s; where a run keeps its files is ``Workspace``."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..files import write_text_atomic
from ..incell import RECORDER_SOURCE
from ..index.uvtool import uv_path
from ..phases import FINDINGS_CODES
from ..plan.cell import Cell, MatrixPlan
from ..plan.matrix import Matrix
from ..plan.project import declares_package
from ..plan.uvargs import build_source_args
from ..records import CellRun
from . import editable, locks
from .celldir import CellDir
from .cellrun import run_session
from .environments import environment_name
from .sessionspec import (
    RECORDER_MODULE,
    SessionSpec,
    build_spec,
    install_inputs,
    resolved_afresh,
    session_name,
)
from .views import make_view
from .workers import RunningCells, nox_env


@dataclass(frozen=True)
class Workspace:
    """Where a run keeps its files: ``out`` (default ``.dfvc/``) inside ``project``; with a
    ``snapshot`` of the project, each cell runs in its own view of it (``views.py``)."""

    out: Path
    project: Path
    snapshot: Path | None = None

    def view(self, matrix: str, cell: Cell) -> Path:
        return self.out / "views" / matrix / cell.id

    def cell_project(self, matrix: str, cell: Cell) -> Path:
        """Where the cell runs: its view of the project, or the project itself."""
        return self.view(matrix, cell) if self.snapshot is not None else self.project

    @property
    def envdir(self) -> Path:
        return self.out / "envs"

    @property
    def runtime(self) -> Path:
        return self.out / "runtime"

    def cell_dir(self, matrix: str, cell: Cell) -> CellDir:
        return CellDir(self.out / "cells" / matrix / cell.id)

    def install_recorder(self) -> None:
        """Copy the recorder where cells import it from; it must not import pytest_dfvc,
        whose controller code needs a newer Python than the cell may have."""
        source = RECORDER_SOURCE
        target = self.runtime / f"{RECORDER_MODULE}.py"
        text = source.read_text(encoding="utf-8")
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_text_atomic(target, text)


def installs_project(matrix: Matrix, project: Path) -> bool:
    """Whether cells install the project: unless the matrix says ``project = false``, when
    it declares itself a package (``project.declares_package``). Otherwise its tests import
    it from its tree, which the cells put on the path."""
    return matrix.install.project and declares_package(project)


def project_wheel(matrix: Matrix, cell: Cell, workspace: Workspace, *, build: bool) -> Path | None:
    """The project's editable wheel for the cell's interpreter, built on first use when
    ``build`` (else only one an earlier cell or run built); None: the cell uses ``-e``."""
    if not cell.interpreter:
        return None
    install = matrix.install
    return editable.editable_wheel(
        workspace.project,
        cell.interpreter,
        workspace.runtime,
        uv_path() or "uv",
        build_source_args(matrix),
        # uv would refuse -e for a Python the project does not declare: only our own wheel
        # (without Requires-Python) tests what the matrix asks for. A view's -e would build
        # in a copy without .git (setuptools-scm needs it): the wheel is built from the
        # project and pointed at the view.
        build=build
        or workspace.snapshot is not None
        or bool(install.build_requirements)
        or not editable.declares_python(workspace.project, cell.python),
        build_requirements=install.build_requirements,
    )


def start_builds(plans: Sequence[MatrixPlan], workspace: Workspace) -> list[threading.Thread]:
    """Start building the project's editable wheel, in the background, for each interpreter
    that several runnable cells share: while the rest of the run is prepared (the index
    read, the project's snapshot taken) instead of in front of each one's first cell, which
    waits for it (the same build, under one lock) and installs it. A build that fails here
    fails the same way there, and the cells fall back to ``-e``."""
    firsts: dict[str, tuple[Matrix, Cell]] = {}
    counts: Counter[str] = Counter()
    for plan in plans:
        if not installs_project(plan.matrix, workspace.project):
            continue
        for cell in plan.cells:
            if cell.status is None and cell.interpreter:
                counts[cell.interpreter] += 1
                firsts.setdefault(cell.interpreter, (plan.matrix, cell))
    started = []
    for interpreter, (matrix, cell) in firsts.items():
        if counts[interpreter] > 1:
            thread = threading.Thread(
                target=_build_quietly, args=(matrix, cell, workspace), daemon=True
            )
            thread.start()
            started.append(thread)
    return started


def _build_quietly(matrix: Matrix, cell: Cell, workspace: Workspace) -> None:
    # Whatever goes wrong, the cell's own call meets it again and reports it.
    with contextlib.suppress(Exception):
        project_wheel(matrix, cell, workspace, build=True)


def project_requirement(
    matrix: Matrix, cell: Cell, workspace: Workspace, *, prebuilt: bool, build: bool
) -> list[str]:
    """How the cell installs the project: with ``prebuilt``, the editable wheel built once
    for the cell's interpreter, when it builds (``build=False``: only when an earlier cell
    or run built it already); else ``-e`` of its folder. Extras included."""
    install = matrix.install
    here = workspace.cell_project(matrix.name, cell)
    wheel = project_wheel(matrix, cell, workspace, build=build) if prebuilt else None
    if wheel is not None and here != workspace.project:
        cell_dir = workspace.cell_dir(matrix.name, cell)
        wheel = editable.for_view(wheel, workspace.project, here, cell_dir.editable_folder)
    if wheel is not None:
        return [editable.requirement(wheel, install.extras)]
    extras = f"[{','.join(install.extras)}]" if install.extras else ""
    return ["-e", f"{here}{extras}"]


def locked_requirements(workspace: Workspace, cell: Cell, matrix: Matrix) -> str:
    """The project's lock as pinned requirements for this cell, minus the matrix packages
    (the cell pins those)."""
    install = matrix.install
    lines = locks.locked_pins(
        workspace.project,
        workspace.runtime,
        uv_path() or "uv",
        cell.interpreter_version or cell.python,
        [n for n, _ in cell.packages],
        install.extras,
        install.groups,
    )
    return "".join(line + "\n" for line in lines)


def prepare_session(
    matrix: Matrix,
    cell: Cell,
    workspace: Workspace,
    pytest_args: list[str],
    *,
    prebuilt: bool = False,
    build: bool = True,
    environment: str | None = None,
    success_codes: tuple[int, ...] = FINDINGS_CODES,
    afresh: bool = False,
) -> SessionSpec:
    """The cell's session spec, with the files it names written to the cell's folder
    (``prebuilt`` and ``build``: see ``project_requirement``). ``environment``: the slot
    environment's session name (``environments.py``); without one, the cell has a session
    and environment of its own. ``success_codes``: the test run's statuses that are a
    successful session (a user's own noxfile wants 0 alone, as ``nox -s tests`` does)."""
    cell_dir = workspace.cell_dir(matrix.name, cell)
    cell_dir.path.mkdir(parents=True, exist_ok=True)
    workspace.install_recorder()
    installed = installs_project(matrix, workspace.project)
    project = (
        project_requirement(matrix, cell, workspace, prebuilt=prebuilt, build=build)
        if installed
        else []
    )
    locked = None
    if matrix.install.resolution == "locked":
        locked = cell_dir.locked_file
        write_text_atomic(locked, locked_requirements(workspace, cell, matrix))
    install, files = install_inputs(matrix, cell, cell_dir, project, locked, workspace.project)
    for path, text in files.items():
        write_text_atomic(path, text)
    spec = build_spec(
        matrix,
        cell,
        cell_dir,
        name=environment or session_name(matrix.name, cell),
        here=workspace.cell_project(matrix.name, cell),
        project=workspace.project,
        runtime=workspace.runtime,
        envdir=workspace.envdir,
        install=install,
        pytest_args=pytest_args,
        pythonpath_tree=not installed,
        success_codes=success_codes,
    )
    # A rerun resolves from the index afresh and reinstalls (``resolved_afresh``).
    return resolved_afresh(spec) if afresh else spec


@dataclass(frozen=True)
class Prepared:
    """A cell ready to run: its view of the project made, its session spec and the files it
    names written to its folder. ``refused``: why it cannot run at all (its project's lock
    lacks a package); nothing was written then."""

    cell: Cell
    cell_dir: CellDir
    spec: SessionSpec | None = None
    refused: str | None = None


def prepare(
    matrix: Matrix,
    cell: Cell,
    workspace: Workspace,
    pytest_args: list[str],
    *,
    running: RunningCells,
    share_build: bool = True,
    slot: int | None = None,
    afresh: bool = False,
) -> Prepared:
    """The first step of a cell's life: its view of the project and its session spec, which
    names the environment it syncs (``run`` builds it). ``share_build``: build the
    project's editable wheel for the cells of this interpreter (else use one only if an
    earlier run built it). ``slot``: the job slot whose environment for the cell's Python is
    synced to the cell (else an environment of its own). ``afresh``: resolved from the index
    afresh and reinstalled."""
    # A worker starts (Python, nox's import) while the editable wheel builds, not after.
    running.warm(nox_env())
    cell_dir = workspace.cell_dir(matrix.name, cell)
    if workspace.snapshot is not None:
        make_view(workspace.snapshot, workspace.view(matrix.name, cell))
    try:
        spec = prepare_session(
            matrix,
            cell,
            workspace,
            pytest_args,
            prebuilt=True,
            build=share_build,
            environment=None if slot is None else environment_name(cell, slot),
            afresh=afresh,
        )
    except locks.LockMissing as exc:
        return Prepared(cell, cell_dir, refused=str(exc))
    return Prepared(cell, cell_dir, spec)


def run(prepared: Prepared, *, timeout: float | None, running: RunningCells) -> CellRun:
    """The second step: build the cell's environment and run its tests through nox; never
    raises for a failure inside the cell. A test that kills the test process costs only
    itself: pytest restarts without the tests that already have an outcome, as pytest-xdist
    replaces a crashed worker. What the run left is for the verdicts (``judge.judge``)."""
    if prepared.spec is None:
        return CellRun(refused=prepared.refused)
    return run_session(prepared.spec, prepared.cell_dir, timeout, running)
