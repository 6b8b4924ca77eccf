"""The plugin object of a ``--dfvc-matrix`` run: it replaces collection and the test loop."""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .availability import IndexReader
from .changes import read_previous, since_last_run
from .controller import MatrixRun, RunOptions
from .diagnose import Rule, make_rule
from .editable import declares_package
from .files import write_json_atomic
from .gha import (
    ShardError,
    cell_ref,
    gha_matrix,
    load_shards,
    parse_cell_refs,
    print_matrix,
    write_shard,
)
from .init_matrix import InitError, init_matrices, report_lines
from .interpreters import AssumedInterpreters, InterpreterFinder
from .matrix import Matrix, MatrixError
from .options import Options
from .plan import Cause, Cell, MatrixPlan, ReleaseLister, expand, index_releases
from .precheck import precheck, screen
from .provision import Workspace
from .publish import publish
from .report import render_matrix
from .results import matrix_json, planned_cell_json, results_json
from .suggest import classifier_notes, declared_in_pyproject, suggestions


class MatrixSession:
    def __init__(
        self,
        config: pytest.Config,
        options: Options,
        matrices: list[Matrix],
        pytest_args: list[str],
    ) -> None:
        self.config = config
        self.options = options
        self.matrices = matrices
        self.pytest_args = pytest_args
        self.project = project_under_test(matrices, config.rootpath)
        self.out = options.output_folder(self.project)
        self.json_path = options.results_path(self.project)
        self.results: dict[str, Any] | None = None
        self.stats: dict[str, int] = {}
        self.suggestions: dict[str, list[str]] = {}
        self.badges: list[str] = []
        self.plans: list[MatrixPlan] = []

    @property
    def _terminal(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _write_line(self, line: str) -> None:
        terminal = self._terminal
        if terminal is not None:
            terminal.write_line(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        # The project's tests are collected inside each cell, not here.
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        prepare_output(self.out, self.json_path)
        try:
            return self._runtestloop(session)
        except OSError as exc:
            # An output folder that fills up or turns read-only half-way: one line naming the
            # path; every file written so far was written whole (atomic writes). Other
            # errors are not ours to rename.
            if exc.errno not in _UNWRITABLE or not self._ours(exc.filename):
                raise
            raise pytest.UsageError(unwritable(Path(exc.filename), exc)) from None

    def _check_size(self, runnable: int, strategy: str, selected: bool) -> None:
        """A grid or walk over more cells than --dfvc-max-cells is refused before anything
        is built, with the count and the ways to narrow it; a search (bisect) runs a few
        cells of any matrix, and a --dfvc-cell job runs only what it names."""
        limit = self.options.max_cells
        if strategy == "bisect" or selected or runnable <= limit:
            return
        sizes = ", ".join(
            f"{p.matrix.path.name}: {sum(1 for c in p.cells if c.status is None)}"
            for p in self.plans
        )
        raise pytest.UsageError(
            f"dfvc: {runnable} cells to run ({sizes}), more than --dfvc-max-cells={limit}. "
            'Narrow the matrix (select = "latest-patch" or "latest-minor", a tighter versions '
            "specifier, [[exclude]]), search it with --dfvc-strategy=bisect, or raise the "
            f"limit: --dfvc-max-cells={runnable}"
        )

    def _project_name(self) -> str:
        """The project under test, as the user would name it: its folder, relative to where
        pytest ran when it is below it."""
        here = self.config.invocation_params.dir
        try:
            shown = self.project.relative_to(here).as_posix()
        except ValueError:
            shown = str(self.project)
        return "the project here" if shown == "." else shown

    def _ours(self, filename: object) -> bool:
        if not isinstance(filename, str):
            return False
        path = Path(filename).resolve()
        return any(
            path == place or place in path.parents
            for place in (self.out.resolve(), self.json_path.resolve())
        )

    def _runtestloop(self, session: pytest.Session) -> bool:
        # Read before this run writes its own: what changed since is a scheduled run's news.
        self.previous = read_previous(self.json_path)
        given = self.options
        merge, rerun, cells_option, strategy = (
            given.merge,
            given.rerun,
            given.cells,
            given.strategy,
        )
        finder = AssumedInterpreters() if merge else InterpreterFinder()
        self.plans = make_plans(self.matrices, finder, None if rerun else self.out, self.project)
        if merge is not None:
            return self._merge(session, merge)
        if cells_option is not None:
            self.plans = select_cells(self.plans, cells_option)
        options = RunOptions(
            workspace=Workspace(self.out, self.project),
            json_path=self.json_path,
            pytest_args=self.pytest_args,
            jobs=given.jobs,
            timeout=given.timeout,
            rules=self._project_rules(),
            strategy=strategy,
            reuse=not rerun,
            baselines={p.matrix.name: baselines(p.matrix, strategy) for p in self.plans},
            drift_rtol=self._rtol,
            drift_atol=self._atol,
            refine=given.refine or strategy == "bisect",
            lister=release_lister(None if rerun else self.out, self.project),
            verbosity=given.verbosity,
        )
        reader = IndexReader(self.project, None if rerun else self.out / "cache" / "index")
        session.testscollected = sum(len(p.cells) for p in self.plans)
        if given.list_only:
            self.plans = self._precheck(reader, options)
            self._list_plan()
            return True
        # The index alone shows most cells that cannot install: no environment is made for them.
        self.plans = screen(self.plans, reader)
        cells = [c for p in self.plans for c in p.cells]
        runnable = sum(1 for c in cells if c.status is None)
        self._check_size(runnable, strategy, cells_option is not None)
        if options.verbosity >= -1:
            self._write_line("")
            self._write_line(
                f"dfvc: testing {self._project_name()}: {len(cells)} cells in "
                f"{len(self.plans)} matrix file(s), {runnable} runnable, strategy {strategy}, "
                f"{options.jobs} at a time"
            )
        run = MatrixRun(self.plans, options, self._write_line)
        with run_lock(self.out, self._write_line), _sigterm_as_interrupt():
            try:
                self.results = run.execute()
            except KeyboardInterrupt:
                done = run.stats["run"] + run.stats["reused"]
                self._write_line(
                    f"dfvc: interrupted; {done} finished cells are kept in {self.json_path}. "
                    "Run again to resume: finished cells are reused, not run again."
                )
                raise
        self.stats = run.stats
        if cells_option:
            self._write_shards()
        self._publish()
        # One CI job's cell may well be unavailable: the merge judges the whole matrix.
        session.testsfailed = _failures(self.results, whole=not cells_option)
        return True

    def _write_shards(self) -> None:
        assert self.results is not None
        for plan, matrix in zip(self.plans, self.results["matrices"]):
            for cell in matrix["cells"]:
                path = write_shard(self.out, plan.matrix, cell)
                self._write_line(f"dfvc: shard written to {path}")

    def _merge(self, session: pytest.Session, folder: Path) -> bool:
        """Results, ranges and reports from the shards of a GitHub Actions run."""
        try:
            found, notes = load_shards(folder, self.plans)
        except ShardError as exc:
            raise pytest.UsageError(str(exc)) from None
        matrices = []
        for plan in self.plans:
            shard_ids = {c["id"] for c in found[plan.matrix.name]}
            cells = list(found[plan.matrix.name])
            for cell in plan.cells:
                if cell.id in shard_ids:
                    continue
                if cell.status is None:
                    cell = replace(
                        cell,
                        status="skipped",
                        cause=Cause("missing-shard", "no shard was found for this cell"),
                    )
                cells.append(planned_cell_json(cell))
            matrices.append(matrix_json(plan, cells, rtol=self._rtol, atol=self._atol))
        self.results = results_json(matrices)
        write_json_atomic(self.json_path, self.results)
        self._publish()
        session.testscollected = sum(len(p.cells) for p in self.plans)
        count = sum(len(v) for v in found.values())
        self._write_line(f"dfvc: merged {count} shards from {folder}")
        for note in notes:
            self._write_line(f"dfvc: {note}")
        self.stats = {"run": 0, "reused": 0, "not_run": 0, "merged": count}
        session.testsfailed = _failures(self.results, whole=True)
        return True

    def _publish(self) -> None:
        """report.md, report.html, badges, and the suggested specifiers."""
        assert self.results is not None
        if self.previous is not None and self.options.cells is None:
            names = {m.get("name") for m in self.previous["matrices"]}
            for matrix in self.results["matrices"]:
                if matrix["name"] in names:
                    matrix["since_last_run"] = since_last_run(self.previous, matrix)
            write_json_atomic(self.json_path, self.results)
        declared = declared_in_pyproject(self.project)
        self.suggestions = {}
        for matrix in self.results["matrices"]:
            lines = suggestions(matrix, declared)
            lines += classifier_notes(matrix, declared.get("classifiers", []))
            self.suggestions[matrix["name"]] = lines
        widths = {
            p.matrix.name: {a.name: _WIDTHS.get(a.select) for a in p.matrix.packages}
            | {"python": 2}
            for p in self.plans
        }
        self.badges = publish(self.results, self.out, widths, self.suggestions, self.project)

    @property
    def _rtol(self) -> float:
        return self.options.drift_rtol

    @property
    def _atol(self) -> float:
        return self.options.drift_atol

    def _project_rules(self) -> tuple[Rule, ...]:
        """Rules from ``pytest_dfvc_rules`` implementations, checked like matrix input."""
        rules = []
        for returned in self.config.hook.pytest_dfvc_rules():
            for rule in returned or ():
                try:
                    rules.append(make_rule(rule))
                except ValueError as exc:
                    raise pytest.UsageError(str(exc)) from None
        return tuple(rules)

    def _precheck(self, reader: IndexReader, options: RunOptions) -> list[MatrixPlan]:
        total = sum(1 for p in self.plans for c in p.cells if c.status is None)
        self._write_line(f"dfvc: checking which of {total} cells can be installed...")
        started = time.monotonic()
        plans, counts = precheck(
            self.plans,
            options.workspace.runtime,
            options.jobs,
            reader=reader,
            progress=every(3.0, lambda d, t: self._write_line(f"dfvc: {d}/{t} cells checked")),
        )
        self._write_line(
            f"dfvc: {total} cells checked in {time.monotonic() - started:.1f} s: "
            f"{counts.index} from the index's file lists, {counts.kept} from answers kept "
            f"from an earlier plan, {counts.resolved} resolved with uv"
        )
        return plans

    def _list_plan(self) -> None:
        for plan in self.plans:
            self._write_line(f"matrix {plan.matrix.name} ({plan.matrix.path}):")
            for cell in plan.cells:
                state = "runnable" if cell.status is None else cell.status
                reason = f": {cell.cause.reason}" if cell.cause else ""
                where = f" [{cell.interpreter}]" if cell.interpreter else ""
                era = f" (resolved as of {cell.exclude_newer})" if cell.exclude_newer else ""
                self._write_line(f"  {cell.id}  {state}{reason}{era}{where}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.results is None:
            return
        stats = self.stats
        if "merged" not in stats:
            terminalreporter.write_line(
                f"dfvc: {stats['run']} cells run, {stats['reused']} unchanged and reused"
                + (f", {stats['not_run']} left out by the strategy" if stats["not_run"] else "")
                + (" (--dfvc-rerun runs them all again)" if stats["reused"] else "")
            )
        for matrix in self.results["matrices"]:
            terminalreporter.section(f"dfvc: {matrix['name']}", sep="=")
            for line in render_matrix(matrix, verbose=self.options.verbosity > 0):
                terminalreporter.write_line(line)
        if self.options.suggest:
            for name, lines in self.suggestions.items():
                terminalreporter.section(f"dfvc: suggested specifiers ({name})", sep="-")
                for line in lines:
                    terminalreporter.write_line(line)
        terminalreporter.write_line("")
        terminalreporter.write_line(f"results: {self.json_path}")
        terminalreporter.write_line(
            f"reports: {self.out / 'report.md'}, {self.out / 'report.html'}; "
            f"badges in {self.out / 'badges'} (Markdown to paste:)"
        )
        for line in self.badges:
            terminalreporter.write_line(f"  {line}")
        empty = nothing_tested(self.results)
        if empty is not None:
            terminalreporter.write_line("")
            terminalreporter.write_line(empty, red=True, bold=True)
        # Count cells in pytest's closing line instead of "no tests ran".
        counts: dict[str, int] = {}
        for matrix in self.results["matrices"]:
            for cell in matrix["cells"]:
                counts[cell["status"]] = counts.get(cell["status"], 0) + 1
        for status, count in counts.items():
            key = f"{'cell' if count == 1 else 'cells'} {status}"
            terminalreporter.stats.setdefault(key, []).extend(_CellTally() for _ in range(count))


_WIDTHS = {"latest-patch": 2, "latest-minor": 1}
_UNWRITABLE = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR}
)


def _failures(results: dict[str, Any], *, whole: bool) -> int:
    """Exit status: a failing cell is a finding; a cell that could not run to its end, or a
    failure inside a declared range (marker or matrix expect), is an error of the run; so is
    a ``whole`` matrix run in which no cell ran a test (nothing was tested)."""
    errors = sum(1 for m in results["matrices"] for c in m["cells"] if c["status"] == "error")
    failures = errors + sum(len(m["violations"]) for m in results["matrices"])
    if whole and nothing_tested(results) is not None:
        failures += 1
    return failures


def nothing_tested(results: dict[str, Any]) -> str | None:
    """One line saying why, when no cell of the run ran a test; None when some did."""
    cells = [c for m in results["matrices"] for c in m["cells"]]
    if not cells or any(c["status"] in ("passed", "failed") for c in cells):
        return None
    reasons: dict[str, int] = {}
    for cell in cells:
        cause = cell.get("cause") or {}
        reason = f"{cell['status']}: {cause.get('reason') or 'no reason recorded'}"
        reasons[reason] = reasons.get(reason, 0) + 1
    common, count = max(reasons.items(), key=lambda item: item[1])
    others = len(cells) - count
    more = f" ({others} other cell{'s' if others != 1 else ''} for other reasons)" if others else ""
    return (
        f"dfvc: nothing was tested: no cell ran a test. {count} of {len(cells)} cells "
        f"{common}{more}"
    )


def project_under_test(matrices: list[Matrix], rootdir: Path) -> Path:
    """The project that owns the matrix files: the nearest folder at or above them that
    declares a package (``editable.declares_package``), not looking above pytest's rootdir
    (nor above where the files and the rootdir meet); the rootdir when none does. In a
    monorepo, ``mono/pkga/matrices/`` under ``mono/pytest.ini`` tests ``pkga``, not
    ``mono``."""
    if not matrices:
        return rootdir
    start = matrices[0].path.resolve().parent
    root = rootdir.resolve()
    limit = root if root == start or root in start.parents else _common_folder(start, root)
    for folder in (start, *start.parents):
        if declares_package(folder):
            return folder
        if folder == limit:
            break
    return rootdir


def _common_folder(a: Path, b: Path) -> Path:
    return Path(os.path.commonpath([a, b]))


def make_plans(
    matrices: list[Matrix], finder: InterpreterFinder, out: Path | None, project: Path
) -> list[MatrixPlan]:
    """Expand the matrices, listing releases from where ``project``'s cells install;
    ``out`` keeps the index's release lists for a while."""
    try:
        return [expand(m, finder, release_lister(out, project)) for m in matrices]
    except MatrixError as exc:
        raise pytest.UsageError(str(exc)) from None


def release_lister(out: Path | None, project: Path) -> ReleaseLister:
    """Release lists from where the cells install (``project``'s uv configuration), kept
    under ``out`` for a while."""
    index_cache = None if out is None else out / "cache" / "index"
    return lambda axis, matrix: index_releases(axis, matrix, index_cache, project)


def select_cells(plans: list[MatrixPlan], value: str) -> list[MatrixPlan]:
    """The plans cut down to the cells named by --dfvc-cell; an unknown name is an error."""
    try:
        wanted = parse_cell_refs(value)
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None
    kept: dict[str, list[Cell]] = {p.matrix.name: [] for p in plans}
    for matrix, cell_id in wanted:
        matches = [
            (p, c)
            for p in plans
            for c in p.cells
            if c.id == cell_id and matrix in (None, p.matrix.name)
        ]
        if len(matches) != 1:
            problem = (
                "matches no cell" if not matches else "is in several matrices: write matrix/cell"
            )
            raise pytest.UsageError(f"--dfvc-cell {cell_ref(matrix or '?', cell_id)}: {problem}")
        plan, cell = matches[0]
        kept[plan.matrix.name].append(cell)
    return [replace(p, cells=tuple(kept[p.matrix.name])) for p in plans if kept[p.matrix.name]]


def prepare_output(out: Path, json_path: Path) -> None:
    """The output folders exist and take files, or one usage error names the path (exit
    status 4) before anything runs. A folder made here gets a ``.gitignore`` of ``*``, as
    pytest's own cache folder does, so ``git status`` stays clean."""
    created = not out.exists()
    for folder in dict.fromkeys((out, json_path.parent)):
        probe = folder / f".dfvc-write-check-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise pytest.UsageError(unwritable(folder, exc)) from None
    ignore = out / ".gitignore"
    if (created or out.name == ".dfvc") and not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text("# Created by pytest-dfvc: everything here is generated.\n*\n")


def unwritable(path: Path, exc: OSError) -> str:
    return (
        f"dfvc: cannot write {path}: {exc.strerror or exc}; give the results a folder that "
        "takes files (--dfvc-out, --dfvc-json)"
    )


def print_gha_matrix(config: pytest.Config, options: Options, matrices: list[Matrix]) -> int:
    """``--dfvc-gha``: the matrix JSON on stdout and nothing else. Cells the pre-check finds
    not installable get no job: their shards are written here, for the merge."""
    project = project_under_test(matrices, config.rootpath)
    out = options.output_folder(project)
    prepare_output(out, out / "results.json")
    plans = make_plans(matrices, AssumedInterpreters(), out, project)
    jobs = options.jobs
    total = sum(1 for p in plans for c in p.cells if c.status is None)

    # stderr: stdout carries the matrix and nothing else.
    progress = every(3.0, lambda d, t: sys.stderr.write(f"dfvc: {d}/{t} cells checked\n"))
    reader = IndexReader(project, None if options.rerun else out / "cache" / "index")
    plans, counts = precheck(plans, out / "runtime", jobs, reader=reader, progress=progress)
    sys.stderr.write(
        f"dfvc: {total} cells checked: {counts.index} from the index's file lists, "
        f"{counts.kept} from kept answers, {counts.resolved} resolved with uv\n"
    )
    failed = [(p.matrix.name, c) for p in plans for c in p.cells if c.status == "error"]
    if failed:
        # Nothing on stdout: the plan step fails instead of planning zero jobs.
        name, cell = failed[0]
        reason = cell.cause.reason if cell.cause else "unknown"
        sys.stderr.write(
            f"ERROR: dfvc: planning failed for {len(failed)} cell(s), {name}/{cell.id} first: "
            f"{reason}\n"
        )
        return 1
    for plan in plans:
        for cell in plan.cells:
            if cell.status == "unavailable":
                write_shard(out, plan.matrix, planned_cell_json(cell))
    print_matrix(gha_matrix(plans))
    return 0


def write_first_matrices(start: Path, options: Options) -> int:
    """``--dfvc-init``: a first matrix per framework, for the project pytest runs in."""
    project = next((f for f in (start, *start.parents) if declares_package(f)), start)
    named = [n.strip() for n in str(options.init).split(",") if n.strip()]
    try:
        written = init_matrices(project, named, InterpreterFinder())
    except InitError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    for line in report_lines(written, options.jobs):
        sys.stdout.write(line + "\n")
    return 0


def every(seconds: float, say: Callable[[int, int], object]) -> Callable[[int, int], None]:
    """``say(done, total)`` at most once per ``seconds``, first after ``seconds``, never for
    the last cell (a summary line follows)."""
    last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        if done < total and time.monotonic() - last >= seconds:
            last = time.monotonic()
            say(done, total)

    return progress


def baselines(matrix: Matrix, strategy: str) -> dict[str, str | None]:
    """Where the walk starts on each axis: the matrix's baseline, else (for walk) the version
    installed here, else None (the newest version)."""
    found: dict[str, str | None] = {}
    for axis in matrix.packages:
        baseline = axis.baseline
        if baseline is None and strategy == "walk":
            try:
                baseline = importlib.metadata.version(axis.name)
            except importlib.metadata.PackageNotFoundError:
                baseline = None
        found[axis.name] = baseline
    return found


@contextlib.contextmanager
def run_lock(out: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One matrix run at a time per output folder: two would build the same environments
    and rewrite the same results. A second run says whom it waits for, then waits."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lock"
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            say(f"dfvc: {path} is held by {holder}: waiting for that run to finish...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """CI stops jobs with SIGTERM: treat it like Ctrl-C, so running cells are stopped and
    finished ones kept, instead of dying with cells running on in their own sessions."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _CellTally:
    """Stands for one cell in ``terminalreporter.stats``; plugins that walk every report
    (hypothesis does) read ``__dict__`` and the usual report attributes."""

    when = "call"
    outcome = "passed"
    nodeid = ""
    longrepr = None
    count_towards_summary = True
    sections: tuple[Any, ...] = ()
    user_properties: tuple[Any, ...] = ()
