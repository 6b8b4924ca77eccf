"""Provision and run one cell: a nox session (uv backend), run by a nox worker in a process
group of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from . import editable, legacy, locks
from .cellargs import cell_environment_addopts
from .environments import base_key, environment_name, inputs_key
from .era import era_args
from .evidence import NO_TESTS, no_test_reason, status_from_tests
from .matrix import InstallOptions, Matrix
from .noxworker import NoxWorker, kill_tree
from .phases import PHASE_INSTALL, PHASE_TEST
from .plan import Cause, Cell
from .results import write_text_atomic
from .uvconfig import pypi_files_args
from .uvtool import uv_environment, uv_path
from .views import make_view

RECORDER_MODULE = "dfvc_recorder"


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

    def cell_dir(self, matrix: str, cell: Cell) -> Path:
        return self.out / "cells" / matrix / cell.id

    def install_recorder(self) -> None:
        """Copy the recorder where cells import it from; it must not import pytest_dfvc,
        whose controller code needs a newer Python than the cell may have."""
        source = Path(__file__).with_name("recorder.py")
        target = self.runtime / f"{RECORDER_MODULE}.py"
        text = source.read_text(encoding="utf-8")
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            write_text_atomic(target, text)


class RunningCells:
    """The processes of the cells running now, so an interrupted run stops them all instead
    of waiting for them (they run in sessions of their own, out of Ctrl-C's reach); and the
    nox workers idle between cells, so the next cell reuses one."""

    def __init__(self) -> None:
        self._processes: set[subprocess.Popen[Any]] = set()
        self._idle: list[NoxWorker] = []
        self._lock = threading.Lock()
        self.stopping = False

    def add(self, process: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._processes.add(process)
            stopping = self.stopping
        if stopping:
            kill_tree(process)

    def discard(self, process: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._processes.discard(process)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            running = list(self._processes)
            idle, self._idle = self._idle, []
        for process in running:
            kill_tree(process)
        for worker in idle:
            worker.kill()

    def run_nox(
        self, argv: list[str], env: dict[str, str], log_path: Path, deadline: float | None
    ) -> tuple[int, bool]:
        """One nox command line in an idle worker (or a new one); returns (exit status,
        timed out). A worker that ran out of time or died is not used again."""
        worker = self._take(env)
        self.add(worker.process)
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        try:
            code = worker.run(argv, env, str(Path.cwd()), log_path, timeout)
        except BaseException:
            worker.kill()
            raise
        finally:
            self.discard(worker.process)
        if code is not None:
            self._give(worker)
            return code, False
        timed_out = worker.alive()
        return worker.kill(), timed_out

    def warm(self, env: dict[str, str]) -> None:
        """Start a worker now when none is idle, so that its start-up overlaps other work."""
        with self._lock:
            if self._idle or self.stopping:
                return
        worker = NoxWorker(env)
        self._give(worker)

    def _take(self, env: dict[str, str]) -> NoxWorker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
        return NoxWorker(env)

    def _give(self, worker: NoxWorker) -> None:
        with self._lock:
            if not self.stopping:
                self._idle.append(worker)
                return
        worker.kill()

    def close(self) -> None:
        """End the idle workers (the run is over)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


@dataclass
class CellOutcome:
    """What running a cell produced, before aggregation."""

    status: str  # passed | failed | unavailable | error
    records: list[dict[str, Any]] = field(default_factory=list)
    cause: Cause | None = None
    duration: float = 0.0
    log: str = ""
    # How a release whose metadata uv refuses was installed (legacy.py), if one was.
    metadata_fallback: str | None = None


def session_name(matrix: str, cell: Cell) -> str:
    return f"dfvc-{matrix}-{cell.id}"


# uv's --torch-backend knows these; other frameworks take an index or a package per variant.
TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio"})


def pin_requirements(matrix: Matrix, cell: Cell) -> list[str]:
    """``numpy==1.23.5``; with a CUDA variant's substitution, ``tensorflow-cpu==2.15.0`` or
    ``jax[cuda12]==0.4.30``."""
    replaced = dict(matrix.install.variant(cell.cuda).packages)
    pins = []
    for name, version in cell.packages:
        if name in replaced:
            requirement = Requirement(replaced[name])
            extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            pins.append(f"{requirement.name}{extras}=={version}")
        else:
            pins.append(f"{name}=={version}")
    return pins


def source_args(matrix: Matrix, cell: Cell) -> list[str]:
    """Where packages come from, shared by the pre-check and the install: wheels only for
    the matrix packages, the indexes and folders of the matrix and of the cell's variant."""
    install = matrix.install
    variant = install.variant(cell.cuda)
    args = pypi_files_args(
        matrix.path.parent, index_url=install.index_url, no_index=install.no_index
    )
    pins = pin_requirements(matrix, cell)
    for pin in pins:
        args += ["--only-binary", Requirement(pin).name]
    args += index_args(install)
    args += era_args(cell, pins)
    for link in variant.find_links:
        args += ["--find-links", link]
    if variant.index_url and not install.no_index:
        # Searched before the default index: the variant's builds win (uv's first-index rule).
        args += ["--extra-index-url", variant.index_url]
    backend = variant.torch_backend
    if backend is None and cell.cuda and not variant.index_url and not variant.find_links:
        backend = cell.cuda if any(n in TORCH_FAMILY for n, _ in cell.packages) else ""
    if backend:
        args += ["--torch-backend", backend]
    return args


def index_args(install: InstallOptions) -> list[str]:
    """Where the matrix's packages, and the project's build requirements, come from."""
    args: list[str] = []
    for link in install.find_links:
        args += ["--find-links", link]
    if install.no_index:
        args.append("--no-index")
    elif install.index_url:
        args += ["--index-url", install.index_url]
    if install.exclude_newer:
        args += ["--exclude-newer", install.exclude_newer]
    return args


def install_args(
    matrix: Matrix,
    cell: Cell,
    workspace: Workspace,
    cell_dir: Path,
    *,
    prebuilt: bool = False,
    build: bool = True,
    project: bool = True,
) -> list[str]:
    """``uv pip install`` arguments: the project (unless ``project`` is false: see
    ``installs_project``) with its extras, the cell's pins (as
    overrides too, so the project's own bounds cannot veto a version under test), the
    constraints, and pytest. Matrix packages come from wheels only. With ``prebuilt``, the
    project is the editable wheel built once for the cell's interpreter, when it builds
    (``build=False``: only when an earlier cell or run built it already)."""
    install = matrix.install
    args: list[str] = []
    here = workspace.cell_project(matrix.name, cell)
    if project:
        wheel = None
        if prebuilt and cell.interpreter:
            wheel = editable.editable_wheel(
                workspace.project,
                cell.interpreter,
                workspace.runtime,
                uv_path() or "uv",
                index_args(install),
                # uv would refuse -e for a Python the project does not declare: only our own
                # wheel (without Requires-Python) tests what the matrix asks for. A view's
                # -e would build in a copy without .git (setuptools-scm needs it): the wheel
                # is built from the project and pointed at the view.
                build=build
                or workspace.snapshot is not None
                or bool(install.build_requirements)
                or not editable.declares_python(workspace.project, cell.python),
                build_requirements=install.build_requirements,
            )
        if wheel is not None and here != workspace.project:
            wheel = editable.for_view(wheel, workspace.project, here, cell_dir / "editable")
        if wheel is not None:
            args.append(editable.requirement(wheel, install.extras))
        else:
            extras = f"[{','.join(install.extras)}]" if install.extras else ""
            args += ["-e", f"{here}{extras}"]
    pins = pin_requirements(matrix, cell)
    args += [*pins, *install.requirements, "pytest"]
    # A reused environment holds exactly what its inputs ask for: --exact removes what the
    # resolution does not hold; one synced to other inputs resolves afresh (environments.py).
    args += ["--exact"]
    overrides = cell_dir / "overrides.txt"
    write_text_atomic(overrides, "".join(p + "\n" for p in pins))
    args += ["--override", str(overrides)]
    if install.constraints:
        constraints = cell_dir / "constraints.txt"
        write_text_atomic(constraints, "".join(c + "\n" for c in install.constraints))
        args += ["--constraint", str(constraints)]
    for group in install.groups:
        args += ["--group", group]
    args += source_args(matrix, cell)
    if install.resolution == "lowest-direct":
        args += ["--resolution", "lowest-direct"]
    elif install.resolution == "locked":
        args += ["--requirements", str(locked_requirements(workspace, cell, install))]
    return args


def installs_project(matrix: Matrix, project: Path) -> bool:
    """Whether cells install the project: unless the matrix says ``project = false``, when
    it declares itself a package (``editable.declares_package``). Otherwise its tests import
    it from its tree, which the cells put on the path."""
    return matrix.install.project and editable.declares_package(project)


def locked_requirements(workspace: Workspace, cell: Cell, install: InstallOptions) -> Path:
    """The project's lock as pinned requirements for this cell, minus the matrix packages
    (the cell pins those): a requirements file in the cell's folder."""
    lines = locks.locked_pins(
        workspace.project,
        workspace.runtime,
        uv_path() or "uv",
        cell.interpreter_version or cell.python,
        [n for n, _ in cell.packages],
        install.extras,
        install.groups,
    )
    target = workspace.cell_dir(cell.matrix, cell) / "locked.txt"
    write_text_atomic(target, "".join(line + "\n" for line in lines))
    return target


def in_view(args: list[str], project: Path, view: Path) -> list[str]:
    """Arguments that name paths inside the project (``/home/me/proj/tests/test_x.py``,
    ``--rootdir=/home/me/proj``) name the same paths in the cell's view."""
    if view == project:
        return list(args)
    old = str(project)
    moved = []
    for arg in args:
        name, eq, value = arg.partition("=")
        target, prefix = (value, name + eq) if eq and value.startswith(old) else (arg, "")
        if target == old or target.startswith(old + os.sep):
            arg = prefix + str(view) + target[len(old) :]
        moved.append(arg)
    return moved


def _rooted(pytest_args: list[str], here: Path) -> list[str]:
    """The cell's pytest is rooted in its view of the project, as pytest in the project
    would be: node ids relative to the project, and no conftest.py above the view (the
    project's own, which the view copies, would load twice) — also when the ini file that
    pytest finds lies above the project (a monorepo's ``mono/pytest.ini``, whose settings
    still apply). What the user gave wins."""
    rooted = []
    for option in ("--rootdir", "--confcutdir"):
        if not any(a == option or a.startswith(option + "=") for a in pytest_args):
            rooted.append(f"{option}={here}")
    return rooted


def cell_environment(matrix: Matrix) -> dict[str, str]:
    """What the cells get from us on top of the environment they inherit: ``PYTEST_ADDOPTS``
    without our options, and the matrix's ``[install] env``. The cache key holds it."""
    return {**cell_environment_addopts(), **dict(matrix.install.env)}


def session_spec(
    matrix: Matrix,
    cell: Cell,
    workspace: Workspace,
    pytest_args: list[str],
    *,
    prebuilt: bool = False,
    build: bool = True,
    environment: str | None = None,
) -> dict[str, Any]:
    """Everything nox needs to build and test one cell, as plain JSON (``prebuilt`` and
    ``build``: see ``install_args``). ``environment``: the slot environment's session name
    (``environments.py``); without one, the cell has a session and environment of its own."""
    cell_dir = workspace.cell_dir(matrix.name, cell)
    cell_dir.mkdir(parents=True, exist_ok=True)
    workspace.install_recorder()
    here = workspace.cell_project(matrix.name, cell)
    installed = installs_project(matrix, workspace.project)
    # A project that is not installed is imported from its tree, as PYTHONPATH=. would.
    tree = "" if installed else str(here)
    pythonpath = os.pathsep.join(
        p for p in (str(workspace.runtime), tree, os.environ.get("PYTHONPATH", "")) if p
    )
    install = install_args(
        matrix, cell, workspace, cell_dir, prebuilt=prebuilt, build=build, project=installed
    )
    install_env = {"UV_PYTHON_DOWNLOADS": "never"}
    return {
        "name": environment or session_name(matrix.name, cell),
        "description": f"{matrix.name}: {cell.id}",
        "python": cell.interpreter,
        "project": str(here),
        "install": install,
        "install_env": install_env,
        # For a pinned release whose metadata uv refuses (legacy.py).
        "pins": pin_requirements(matrix, cell),
        "sources": source_args(matrix, cell),
        "inputs": inputs_key(cell.interpreter, install, install_env),
        "base": base_key(
            cell.interpreter,
            install_env,
            [asdict(matrix.install), cell.cuda, cell.exclude_newer],
            [cell_dir / "constraints.txt", cell_dir / "locked.txt"],
        ),
        # The cache provider would race between cells sharing the project folder; a module
        # that fails to import is a finding, so the other modules must still run.
        "pytest_plugins": [
            "-p",
            RECORDER_MODULE,
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            *_rooted(pytest_args, here),
        ],
        "pytest": in_view(pytest_args, workspace.project, here),
        "env": {
            "DFVC_RECORDS": str(cell_dir / "records.jsonl"),
            "DFVC_CELL": json.dumps({"packages": dict(cell.packages), "cuda": cell.cuda}),
            "PYTHONPATH": pythonpath,
            **cell_environment(matrix),
        },
        "phase": str(cell_dir / "phase"),
        "envdir": str(workspace.envdir),
    }


MAX_RESTARTS = 20


def run_cell(
    matrix: Matrix,
    cell: Cell,
    workspace: Workspace,
    pytest_args: list[str],
    *,
    timeout: float | None = None,
    running: RunningCells | None = None,
    share_build: bool = True,
    slot: int | None = None,
) -> CellOutcome:
    """Build the cell's environment and run its tests through nox; never raises for a
    failure inside the cell. A test that kills the test process costs only itself: pytest
    restarts without the tests that already have an outcome, as pytest-xdist replaces a
    crashed worker. ``share_build``: build the project's editable wheel for the cells of
    this interpreter (else use one only if an earlier run built it). ``slot``: run in that
    job slot's environment for the cell's Python, synced to the cell (else one of its own)."""
    owned = running is None
    running = running or RunningCells()
    # A worker starts (Python, nox's import) while the editable wheel builds, not after.
    running.warm(_nox_env())
    try:
        if workspace.snapshot is not None:
            make_view(workspace.snapshot, workspace.view(matrix.name, cell))
        try:
            spec = session_spec(
                matrix,
                cell,
                workspace,
                pytest_args,
                prebuilt=True,
                build=share_build,
                environment=None if slot is None else environment_name(cell, slot),
            )
        except locks.LockMissing as exc:
            return CellOutcome("unavailable", cause=Cause("install", str(exc)))
        return _run_cell(spec, cell, workspace.cell_dir(matrix.name, cell), timeout, running)
    finally:
        if owned:
            running.close()


def _run_cell(
    spec: dict[str, Any],
    cell: Cell,
    cell_dir: Path,
    timeout: float | None,
    running: RunningCells,
) -> CellOutcome:
    for stale in ("records.jsonl", "phase", "deselect.txt", legacy.NOTE):
        (cell_dir / stale).unlink(missing_ok=True)
    _discard_broken_environment(cell_dir)
    write_text_atomic(cell_dir / "session.json", json.dumps([spec], indent=2))
    log_path = cell_dir / "log.txt"
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    env = _nox_env(DFVC_SESSIONS=str(cell_dir / "session.json"))
    log_path.write_text("", encoding="utf-8")
    returncode, timed_out = running.run_nox(
        _nox_arguments(spec["name"], spec["envdir"]), env, log_path, deadline
    )
    refused = _refused_release(spec, cell_dir, returncode, timed_out, log_path)
    if refused is not None and not running.stopping:
        # An old release uv refuses for its metadata: installed another way (legacy.py).
        spec = {**spec, "legacy": refused}
        write_text_atomic(cell_dir / "session.json", json.dumps([spec], indent=2))
        with log_path.open("a", encoding="utf-8") as out:
            out.write(f"dfvc > uv refuses {refused}'s metadata: installing it without it\n")
        returncode, timed_out = running.run_nox(
            _nox_arguments(spec["name"], spec["envdir"]), env, log_path, deadline
        )
    records = read_records(cell_dir / "records.jsonl")
    restarts = 0
    while (
        not timed_out
        and _read(cell_dir / "phase") == PHASE_TEST
        and not _finished(records)
        and restarts < MAX_RESTARTS
        and not running.stopping
    ):
        crashed = _crashed_test(records)
        if crashed is None:
            break  # died outside any test (at collection, say): nothing to step over
        # nox reports the test process's status in its log; a restart is run directly.
        code = _exit_code(returncode, log_path) if restarts == 0 else returncode
        _record_crash(cell_dir / "records.jsonl", crashed, code)
        returncode, timed_out = _restart_pytest(spec, cell_dir, log_path, deadline, running)
        records = read_records(cell_dir / "records.jsonl")
        restarts += 1
    log = log_path.read_text(encoding="utf-8", errors="replace")
    phase = _read(cell_dir / "phase")
    outcome = judge(cell, phase, records, returncode, timed_out, timeout, log)
    outcome.duration = time.monotonic() - started
    outcome.log = str(log_path)
    outcome.metadata_fallback = _read(cell_dir / legacy.NOTE)
    return outcome


def _refused_release(
    spec: dict[str, Any], cell_dir: Path, returncode: int, timed_out: bool, log_path: Path
) -> str | None:
    """The pin whose metadata uv refused, when that is why the install failed."""
    if timed_out or returncode == 0 or _read(cell_dir / "phase") != PHASE_INSTALL:
        return None
    if spec.get("legacy"):
        return None
    log = log_path.read_text(encoding="utf-8", errors="replace")
    return legacy.refused_pin(log, list(spec.get("pins", [])))


def _finished(records: list[dict[str, Any]]) -> bool:
    return any(r.get("kind") == "finish" for r in records)


def _crashed_test(records: list[dict[str, Any]]) -> str | None:
    """The test that was running when the process died: started, with no outcome."""
    started = [r["nodeid"] for r in records if r.get("kind") == "start"]
    done = {r["nodeid"] for r in records if r.get("kind") == "test"}
    return started[-1] if started and started[-1] not in done else None


def _exit_code(returncode: int, log_path: Path) -> int:
    """The test process's own exit status: nox reports it in its log."""
    found = re.findall(r"failed with exit code (-?\d+)", log_path.read_text(errors="replace"))
    return int(found[-1]) if found else returncode


def _record_crash(records: Path, nodeid: str, code: int) -> None:
    how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    record = {
        "kind": "test",
        "nodeid": nodeid,
        "outcome": "error",
        "when": "call",
        "exception": {
            "type": "dfvc.Crash",
            "message": f"the test process {how} during this test",
            "frames": [],
        },
    }
    with records.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _restart_pytest(
    spec: dict[str, Any],
    cell_dir: Path,
    log_path: Path,
    deadline: float | None,
    running: RunningCells,
) -> tuple[int, bool]:
    """Run the cell's pytest again in its environment, without the tests already done."""
    records = read_records(cell_dir / "records.jsonl")
    done = sorted({r["nodeid"] for r in records if r.get("kind") == "test"})
    deselect = cell_dir / "deselect.txt"
    write_text_atomic(deselect, "".join(n + "\n" for n in done))
    python = Path(_read(cell_dir / "bin") or "", "python")
    command = [str(python), "-m", "pytest", *spec["pytest_plugins"], *spec["pytest"]]
    env = dict(os.environ, **spec["env"], DFVC_DESELECT=str(deselect))
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"dfvc > restarting pytest after a crash, without {len(done)} finished tests\n")
    return _run_logged(command, env, spec["project"], log_path, deadline, running, append=True)


def _discard_broken_environment(cell_dir: Path) -> None:
    """An environment whose interpreter no longer runs (a half-deleted folder, an upgraded
    base Python) is removed, so nox builds it again instead of failing inside it."""
    bin_dir = _read(cell_dir / "bin")
    if not bin_dir or not Path(bin_dir).parent.exists():
        return
    try:
        ok = (
            subprocess.run(
                [str(Path(bin_dir, "python")), "-c", "pass"], capture_output=True, timeout=60
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        shutil.rmtree(Path(bin_dir).parent, ignore_errors=True)


def _nox_arguments(name: str, envdir: str) -> list[str]:
    return [
        "--noxfile",
        str(Path(__file__).with_name("_noxfile.py")),
        "--envdir",
        envdir,
        "--sessions",
        name,
        "--no-color",
    ]


def _run_logged(
    command: list[str],
    env: dict[str, str],
    cwd: str | None,
    log_path: Path,
    deadline: float | None,
    running: RunningCells,
    *,
    append: bool = False,
) -> tuple[int, bool]:
    """Run ``command`` with its output in the log; returns (exit status, timed out)."""
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.1)
    with log_path.open("a" if append else "w", encoding="utf-8") as log:
        # A session of its own, so a timeout can stop the whole tree (nox, uv, pytest).
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        running.add(process)
        try:
            return process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            kill_tree(process)
            return process.wait(), True
        except BaseException:
            kill_tree(process)
            raise
        finally:
            running.discard(process)


def _nox_env(**extra: str) -> dict[str, str]:
    """nox's environment: uv's (no interpreter downloads), with uv found beside us."""
    env = uv_environment(**extra)
    _expose_uv(env)
    return env


def _expose_uv(env: dict[str, str]) -> None:
    """nox finds uv through ``$UV`` or PATH; point it at the uv installed beside us."""
    found = uv_path()
    if found:
        env["UV"] = found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def read_records(path: Path) -> list[dict[str, Any]]:
    """The recorder's JSON lines; a line cut short by a crash is dropped."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def judge(
    cell: Cell,
    phase: str | None,
    records: list[dict[str, Any]],
    returncode: int,
    timed_out: bool,
    timeout: float | None,
    log: str,
) -> CellOutcome:
    """The cell's status from how far its session got and what the recorder wrote."""
    if timed_out:
        return CellOutcome("error", records, _timed_out(records, timeout))
    if phase in (None, PHASE_INSTALL) and returncode != 0:
        status, cause = install_failure(log, cell.python, cell.cuda)
        return CellOutcome(status, records, cause)
    finished = [r for r in records if r.get("kind") == "finish"]
    refused = pytest_error(log)
    if not finished:
        if refused:
            return CellOutcome("error", records, Cause("pytest-usage", refused))
        return CellOutcome("error", records, Cause("crash", _crash_reason(returncode, log)))
    exitstatus = finished[-1].get("exitstatus")
    if exitstatus not in (0, 1, 5):
        what = refused if refused else _tail(log)
        reason = f"pytest in the cell exited with status {exitstatus}: {what}"
        category = "pytest-usage" if exitstatus == 4 else "unknown"
        return CellOutcome("error", records, Cause(category, reason))
    tests = [r for r in records if r.get("kind") == "test"]
    verdict = status_from_tests(tests)
    if verdict is None:
        # Tests that never ran are no evidence: the cell is untested, and says why.
        deselected = int(finished[-1].get("deselected") or 0)
        return CellOutcome("skipped", records, Cause(NO_TESTS, no_test_reason(tests, deselected)))
    return CellOutcome(verdict, records)


def _timed_out(records: list[dict[str, Any]], timeout: float | None) -> Cause:
    """Name the test that was running when time ran out, and count it as an error; the tests
    before it keep their outcomes."""
    running = _crashed_test(records)
    limit = f"--dfvc-timeout={timeout:g}s" if timeout is not None else "its time limit"
    done = sum(1 for r in records if r.get("kind") == "test")
    if running is None:
        return Cause("timeout", f"the cell ran past {limit} outside any test and was stopped")
    records.append(
        {
            "kind": "test",
            "nodeid": running,
            "outcome": "error",
            "when": "call",
            "exception": {
                "type": "dfvc.Timeout",
                "message": f"the cell ran past {limit} during this test",
                "frames": [],
            },
        }
    )
    kept = f"; the {done} tests before it kept their outcomes" if done else ""
    return Cause("timeout", f"the cell ran past {limit} during {running} and was stopped{kept}")


# pytest's own words when it refuses to start: a usage error ("ERROR: file or directory not
# found: x", "ERROR: usage: ...") or argparse's ("pytest: error: unrecognized arguments").
_PYTEST_ERROR = re.compile(
    r"^(?:ERROR: (?!\s*$).+|[\w.-]+: error: .+|E?\s*pytest\.UsageError: .+)$", re.MULTILINE
)


def pytest_error(log: str) -> str | None:
    """The line in which the cell's pytest refused its arguments or configuration."""
    found = _PYTEST_ERROR.findall(log)
    return found[-1].strip()[:500] if found else None


def _crash_reason(returncode: int, log: str) -> str:
    if returncode < 0:
        return f"the test process was killed by signal {-returncode}"
    return f"the test process ended without finishing (exit status {returncode}): {_tail(log)}"


def _tail(log: str, lines: int = 3) -> str:
    kept = [line.strip() for line in log.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])[:500]


_REQUIRES_PYTHON = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) (?:depends on|requires) Python ?"
    r"(?P<spec>[<>=!~][^ ,]+)"
)
_NO_WHEEL = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) has no wheels with a matching "
    r"Python (?:ABI|version|implementation) tag(?: \(e\.g\., `(?P<tag>\w+)`\))?"
)
_ONLY_SDIST = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) "
    r"(?:has no usable wheels|is only available as a source)"
)
_PYTHON_VERSION = re.compile(r"current Python version \((?P<python>[\d.]+)\)")


_UNREACHABLE = re.compile(r"Failed to fetch: `?(?P<url>[^\s`]+)`?")
# Old releases whose metadata uv refuses (pandas <= 0.24: ``pytz (>=2011k)``).
_NO_VERSION = re.compile(r"there is no version of (?P<name>[\w.\[\],-]+?)==(?P<version>[^\s,]+)")


def install_failure(
    log: str, python_minor: str | None = None, cuda: str | None = None
) -> tuple[str, Cause]:
    """``("unavailable", cause)`` when uv's words are evidence that the cell cannot be
    installed here (no wheel, requires-python, a resolver conflict, metadata uv refuses, a
    version the index does not have); ``("error", cause)`` when we could not find out (an
    unreachable index, the project failing to build, anything uv did not explain)."""
    unreachable = _UNREACHABLE.search(log)
    if unreachable:
        # uv explains with indented "cause:" (or "Caused by:") lines; the last is the root.
        why = re.findall(r"(?:cause|Caused by): ([^\n]+)", log[unreachable.end() :])
        detail = f" ({why[-1].strip()})" if why else ""
        return "error", Cause("install", f"index unreachable: {unreachable['url']}{detail}")
    if _PROJECT_BUILD.search(log):
        return "error", Cause("install", project_build_reason(log))
    bad = legacy.BAD_METADATA.search(log)
    if bad:
        reason = (
            f"{bad['name']} {bad['version']} has metadata uv cannot read "
            f"({bad['requirement'].strip()}: {bad['why'].strip()})"
        )
        return "unavailable", Cause("install", reason)
    missing = _NO_VERSION.search(log)
    if missing and cuda:
        name, version = missing["name"], missing["version"]
        reason = f"{name} {version} has no {cuda} build where this variant installs from"
        return "unavailable", Cause("install", reason)
    python = _PYTHON_VERSION.search(log)
    match = _REQUIRES_PYTHON.search(log)
    if match:
        on = f" (this cell has {python.group('python')})" if python else ""
        reason = f"{match['name']} {match['version']} requires Python{match['spec']}{on}"
        return "unavailable", Cause("python-version", reason)
    match = _NO_WHEEL.search(log)
    if match:
        tag = match.group("tag") or ""
        target = (
            f"CPython {tag[2]}.{tag[3:]}"
            if tag.startswith("cp") and len(tag) > 3
            else "this Python"
        )
        reason = f"{match['name']} {match['version']} has no wheel for {target}"
        return "unavailable", Cause("python-version", reason)
    match = _ONLY_SDIST.search(log)
    if match:
        target = f"CPython {python_minor}" if python_minor else "this Python"
        reason = f"{match['name']} {match['version']} has no wheel for {target} on this platform"
        return "unavailable", Cause("python-version", reason)
    if missing:
        reason = f"{missing['name']} {missing['version']} is not on the index: {_uv_error(log)}"
        return "unavailable", Cause("install", reason[:600])
    if "No solution found" in log:
        return "unavailable", Cause("install", _uv_error(log))
    return "error", Cause("install", _uv_error(log))


# Only the project under test is installed editable, from its folder: a failing editable
# hook, or build environment, is its build.
_PROJECT_BUILD = re.compile(
    r"build_editable|prepare_metadata_for_build_editable|"
    r"Failed to resolve requirements from `(?:setup\.py|pyproject\.toml|setup\.cfg)` build|"
    r"Failed to build `[^`]+ @ file://"
)


def project_build_reason(log: str) -> str:
    """The project's own build failed: the backend's last error line (or uv's words), and
    where to read the rest."""
    errors = re.findall(r"^\s*(\w*(?:Error|Exception)\b:? ?[^\n]*)$", log, re.MULTILINE)
    detail = f" ({errors[-1].strip()[:300]})" if errors else f" ({_uv_error(log)[:300]})"
    return (
        f"the project itself could not be built{detail}; its build backend's output is in "
        "the cell's log. Give the build what it imports ([install] build-requirements), or "
        "test the tree without installing it ([install] project = false)"
    )


# The box-drawing and cross marks uv draws its explanations with.
_TREE = r"^[\s\u00d7\u2570\u2500\u25b6\u2502]+"


def _uv_error(log: str) -> str:
    """uv's own words, shortened: the lines from its first error marker."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("\u00d7", "error:")) or "No solution found" in stripped:
            kept = [
                re.sub(r"^(error|cause|Caused by|hint):\s*", "", re.sub(_TREE, "", s).strip())
                for s in lines[i : i + 6]
            ]
            return " ".join(s for s in kept if s and not s.startswith("nox >"))[:600]
    return _tail(log) or "the environment could not be built"
