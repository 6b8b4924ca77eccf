"""The controller: the plugin object of a ``--dfvc-matrix`` run, which takes over
collection and the test loop, dispatches the run's mode (a run of the matrix or of some of
its cells, a listing of its plan, a merge of CI shards), and prints the summary."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .cellrunner import ShardRunner
from .cells.provision import Workspace, start_builds
from .files import write_json_atomic
from .index.hostfacts import device_facts
from .index.interpreters import AssumedInterpreters, InterpreterFinder
from .index.uvtool import uv_cache_dir
from .model import CellJSON, Document
from .options import Options
from .outdir import check_cell_paths, is_unwritable, prepare_output, run_lock, unwritable
from .plan.audit import default_seed
from .plan.availability import IndexReader, exact_builds
from .plan.cell import MatrixPlan
from .plan.downloads import disk_plan, header_line, shortage, size_text
from .plan.expand import baselines, expand_all, release_lister
from .plan.matrix import Matrix, MatrixError
from .plan.needs import what_tests_need
from .plan.precheck import every, precheck, screen
from .plan.project import project_under_test
from .plan.torchwheels import with_torch_wheels
from .publish.gha import ShardError, load_shards, select_cells, write_shard
from .publish.reports import publish
from .publish.terminal import render_matrix
from .rules import Rule, make_rule
from .scheduler import MatrixRun, RunOptions
from .verdicts.changes import complete_copy, keep_complete, read_previous, since_last_run
from .verdicts.documents import merged_document
from .verdicts.evidence import name_where_declared
from .verdicts.suggest import classifier_notes, declared_in_pyproject, suggestions
from .vocabulary import Strategy


class Controller:
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
        self.results: Document | None = None
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
            if not is_unwritable(exc) or not self._ours(exc.filename):
                raise
            raise pytest.UsageError(unwritable(Path(exc.filename), exc)) from None

    def _check_size(self, runnable: int, strategy: Strategy, selected: bool) -> None:
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

    def _runnable(self) -> int:
        return sum(1 for p in self.plans for c in p.cells if c.status is None)

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
            for place in (
                self.out.resolve(),
                self.json_path.resolve(),
                complete_copy(self.json_path).resolve(),
                self.options.badges_folder(self.project).resolve(),
            )
        )

    def _runtestloop(self, session: pytest.Session) -> bool:
        """Plan the matrices, then the mode: merge CI shards, list the plan, or run cells
        (all of them, or the ones --dfvc-cell names, writing their shards)."""
        # Read before this run writes its own: what changed since is a scheduled run's news.
        self.previous = read_previous(self.json_path)
        damaged = self.previous.get("set_aside", []) if self.previous else []
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            self._write_line(
                f"dfvc: the last run's results in {self.json_path}: {damaged[0]}{more}; "
                "set aside, not compared"
            )
        self.plans = self._plan()
        session.testscollected = sum(len(p.cells) for p in self.plans)
        if self.options.merge is not None:
            self._merge(self.options.merge)
        elif self.options.list_only:
            self._list_plan()
            return True
        else:
            self._run()
        assert self.results is not None
        # One CI job's cell may well be unavailable: the merge judges the whole matrix.
        session.testsfailed = _failures(self.results, whole=not self.options.cells)
        return True

    def _plan(self) -> list[MatrixPlan]:
        """The matrices' cells (those --dfvc-cell names); a merge plans for the CI machines,
        where every Python is taken to exist."""
        given = self.options
        finder = AssumedInterpreters() if given.merge is not None else InterpreterFinder()
        try:
            plans = expand_all(self.matrices, finder, self._kept(), self.project)
            plans = plans if given.cells is None else select_cells(plans, given.cells)
        except (MatrixError, ShardError) as exc:
            raise pytest.UsageError(str(exc)) from None
        if given.merge is not None:
            return plans  # the jobs decided where their torch came from
        plans, said = with_torch_wheels(plans, gpu=lambda: device_facts().get("device") == "gpu")
        if said:
            self._write_line(said)
        return plans

    def _kept(self) -> Path | None:
        """Where answers from the index are kept between runs (none with --dfvc-rerun)."""
        return None if self.options.rerun else self.out

    def _reader(self) -> IndexReader:
        kept = self._kept()
        return IndexReader(self.project, None if kept is None else kept / "cache" / "index")

    def _run_options(self) -> RunOptions:
        given, strategy = self.options, self.options.strategy
        refine = given.refine or strategy == "bisect"
        if given.cells is not None and (strategy != "grid" or refine):
            # A CI job runs exactly the cells it was given: a search or a refine step in a
            # job would skip cells that have jobs, or write shards the plan does not have.
            # Searching belongs to the plan (--dfvc-gha), job by job in waves.
            self._write_line(
                f"dfvc: --dfvc-cell runs exactly the cells it names (strategy {strategy}"
                f"{' and --dfvc-refine' if given.refine else ''} apply to a full run)"
            )
            strategy, refine = "grid", False
        return RunOptions(
            workspace=Workspace(self.out, self.project),
            json_path=self.json_path,
            outputs=(given.badges_folder(self.project),),
            pytest_args=self.pytest_args,
            jobs=given.jobs,
            timeout=given.timeout,
            rules=self._project_rules(),
            strategy=strategy,
            reuse=not given.rerun,
            baselines={p.matrix.name: baselines(p.matrix, strategy) for p in self.plans},
            drift_rtol=given.drift_rtol,
            drift_atol=given.drift_atol,
            refine=refine,
            complete=given.cells is None,
            # A cell job runs exactly its cells: counterfactuals belong to a full run.
            culprit=given.culprit and given.cells is None,
            trace=given.trace and given.cells is None,
            audit=given.audit,
            audit_seed=int(os.environ.get("DFVC_AUDIT_SEED") or default_seed()),
            lister=release_lister(self._kept(), self.project),
            verbosity=given.verbosity,
        )

    def _run(self) -> None:
        """Run the runnable cells (the index alone shows most that cannot install: no
        environment is made for them), keep finished ones on an interrupt, and publish."""
        options = self._run_options()
        check_cell_paths(self.out)
        # A grid runs every runnable cell: the project's wheel can build while the index
        # is read (a run that may be refused for its size builds nothing).
        if options.strategy == "grid" and self._runnable() <= self.options.max_cells:
            start_builds(self.plans, options.workspace)
        reader = self._reader()
        self.plans = exact_builds(screen(self.plans, reader), reader)
        cells = [c for p in self.plans for c in p.cells]
        runnable = self._runnable()
        self._check_size(runnable, options.strategy, self.options.cells is not None)
        disk = disk_plan(self.plans, reader, uv_cache_dir())
        short = shortage(disk)
        if short:
            raise pytest.UsageError(short)
        if options.verbosity >= -1:
            self._write_line("")
            self._write_line(
                f"dfvc: testing {self._project_name()}: {len(cells)} cells in "
                f"{len(self.plans)} matrix file(s), {runnable} runnable, strategy "
                f"{options.strategy}, {options.jobs} at a time"
            )
            downloads = header_line(disk, runnable)
            if downloads:
                self._write_line(downloads)
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
        if self.options.cells:
            self._write_shards()
        self._publish()

    def _write_shards(self) -> None:
        assert self.results is not None
        for plan, matrix in zip(self.plans, self.results["matrices"]):
            for cell in matrix["cells"]:
                path = write_shard(self.out, plan.matrix, cell)
                self._write_line(f"dfvc: shard written to {path}")

    def _merge(self, folder: Path) -> None:
        """Results, ranges and reports from the shards of a GitHub Actions run."""
        try:
            found, notes = load_shards(folder, self.plans)
        except ShardError as exc:
            raise pytest.UsageError(str(exc)) from None
        given = self.options
        count = sum(len(v) for v in found.values())
        self._write_line(f"dfvc: merged {count} shards from {folder}")
        for note in notes:
            self._write_line(f"dfvc: {note}")
        wave = self._second_wave(found) if given.culprit else None
        self.results = wave or merged_document(
            self.plans, found, rtol=given.drift_rtol, atol=given.drift_atol
        )
        write_json_atomic(self.json_path, self.results)
        self._publish()
        self.stats = {"run": 0, "reused": 0, "not_run": 0, "merged": count}

    def _second_wave(self, found: dict[str, list[CellJSON]]) -> Document | None:
        """What a cell job cannot do, since it sees one cell: run the boundaries' failing
        tests once more and their counterfactual cells (culprit.py), here, from the shards
        (each cell's result as its job left it). Needs every runnable cell's shard and the
        Pythons of the matrix set up on this machine; without them, the merge says so and
        judges the shards as they are (None)."""
        shards = {(name, c["id"]): c for name, cells in found.items() for c in cells}
        runnable = [(p.matrix.name, c.id) for p in self.plans for c in p.cells if c.status is None]
        missing = [f"{m}/{c}" for m, c in runnable if (m, c) not in shards]
        if missing:
            self._write_line(
                f"dfvc: no second wave (second runs of boundaries, counterfactual cells): "
                f"{len(missing)} cell(s) have no shard"
            )
            return None
        try:
            plans = expand_all(self.matrices, InterpreterFinder(), self._kept(), self.project)
        except MatrixError as exc:
            raise pytest.UsageError(str(exc)) from None
        here = {(p.matrix.name, c.id) for p in plans for c in p.cells if c.status is None}
        lacking = set(runnable) - here
        absent = sorted(
            {c.python for p in plans for c in p.cells if (p.matrix.name, c.id) in lacking}
        )
        if absent:
            self._write_line(
                "dfvc: no second wave (second runs of boundaries, counterfactual cells): no "
                f"Python {', '.join(absent)} here; set it up in the merge job"
            )
            return None
        options = replace(self._run_options(), strategy="grid", refine=False, audit=None)
        runner = ShardRunner(
            shards,
            options.workspace,
            options.pytest_args,
            json_path=options.json_path,
            outputs=options.outputs,
            timeout=options.timeout,
            rules=options.rules,
            say=lambda line, level: self._write_line(line) if options.verbosity >= level else None,
        )
        run = MatrixRun(plans, options, self._write_line, runner=runner)
        with run_lock(self.out, self._write_line):
            return run.execute()

    def _publish(self) -> None:
        """report.md, report.html, badges, and the suggested specifiers."""
        assert self.results is not None
        # A module no cell has that the project declares for its tests: say where.
        needs = {n.name: (str(n.requirement), n.where) for n in what_tests_need(self.project)}
        for matrix in self.results["matrices"]:
            name_where_declared(matrix["cells"], needs)
        if self.previous is not None and self.options.cells is None:
            names = {m.get("name") for m in self.previous["matrices"]}
            for matrix in self.results["matrices"]:
                if matrix["name"] in names:
                    matrix["since_last_run"] = since_last_run(self.previous, matrix)
        write_json_atomic(self.json_path, self.results)
        if self.results.get("complete", True):
            # The baseline of the next run's news, which a partial run never replaces.
            keep_complete(self.json_path, self.results)
        declared = declared_in_pyproject(self.project)
        self.suggestions = {}
        for matrix in self.results["matrices"]:
            lines = suggestions(matrix, declared)
            lines += classifier_notes(matrix, declared.classifiers)
            self.suggestions[matrix["name"]] = lines
        widths = {
            p.matrix.name: {a.name: a.width for a in p.matrix.packages} | {"python": 2}
            for p in self.plans
        }
        self.badges = publish(
            self.results,
            self.out,
            widths,
            self.suggestions,
            self.project,
            badges=self.options.badges_folder(self.project),
        )

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

    def _precheck(self, reader: IndexReader) -> list[MatrixPlan]:
        total = sum(1 for p in self.plans for c in p.cells if c.status is None)
        self._write_line(f"dfvc: checking which of {total} cells can be installed...")
        started = time.monotonic()
        plans, counts = precheck(
            self.plans,
            self.out / "runtime",
            self.options.jobs,
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
        """--dfvc-list: every cell with its availability, checked now; nothing is built."""
        reader = self._reader()  # the pre-check's file lists serve the download count too
        self.plans = self._precheck(reader)
        disk = disk_plan(self.plans, reader, uv_cache_dir())
        downloads = header_line(disk, self._runnable())
        if downloads:
            self._write_line(downloads)
        for plan in self.plans:
            self._write_line(f"matrix {plan.matrix.name} ({plan.matrix.path}):")
            for cell in plan.cells:
                state = "runnable" if cell.status is None else cell.status
                reason = f": {cell.cause.reason}" if cell.cause else ""
                where = f" [{cell.interpreter}]" if cell.interpreter else ""
                era = f" (resolved as of {cell.exclude_newer})" if cell.exclude_newer else ""
                size = disk.per_cell.get((plan.matrix.name, cell.id))
                fetch = f" (downloads {size_text(size)})" if size else ""
                self._write_line(f"  {cell.id}  {state}{reason}{era}{fetch}{where}")

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
            f"badges in {self.options.badges_folder(self.project)} (Markdown to paste:)"
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


def _failures(results: Document, *, whole: bool) -> int:
    """Exit status: a failing cell is a finding; a cell that could not run to its end, or a
    failure inside a declared range (marker or matrix expect), is an error of the run; so is
    a ``whole`` matrix run in which no cell ran a test (nothing was tested)."""
    errors = sum(1 for m in results["matrices"] for c in m["cells"] if c["status"] == "error")
    failures = errors + sum(len(m["violations"]) for m in results["matrices"])
    if whole and nothing_tested(results) is not None:
        failures += 1
    return failures


def nothing_tested(results: Document) -> str | None:
    """One line saying why, when no cell of the run ran a test; None when some did."""
    cells = [c for m in results["matrices"] for c in m["cells"]]
    if not cells or any(c["status"] in ("passed", "failed") for c in cells):
        return None
    reasons: dict[str, int] = {}
    for cell in cells:
        cause = cell["cause"]
        said = cause.get("reason") if cause else None
        reason = f"{cell['status']}: {said or 'no reason recorded'}"
        reasons[reason] = reasons.get(reason, 0) + 1
    common, count = max(reasons.items(), key=lambda item: item[1])
    others = len(cells) - count
    more = f" ({others} other cell{'s' if others != 1 else ''} for other reasons)" if others else ""
    return (
        f"dfvc: nothing was tested: no cell ran a test. {count} of {len(cells)} cells "
        f"{common}{more}"
    )


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
