"""The modes that print and exit before any session: ``--dfvc-gha`` (a GitHub Actions
matrix of the runnable cells) and ``--dfvc-init`` (a first matrix per framework)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .index.interpreters import AssumedInterpreters, InterpreterFinder
from .options import Options
from .outdir import prepare_output
from .plan.availability import IndexReader
from .plan.expand import expand_all
from .plan.init_matrix import InitError, init_matrices, report_lines
from .plan.matrix import Matrix, MatrixError
from .plan.precheck import every, precheck
from .plan.project import declares_package, project_under_test
from .publish.gha import gha_matrix, print_matrix, write_shard
from .verdicts.results import planned_cell_json


def print_gha_matrix(config: pytest.Config, options: Options, matrices: list[Matrix]) -> int:
    """``--dfvc-gha``: the matrix JSON on stdout and nothing else. Cells the pre-check finds
    not installable get no job: their shards are written here, for the merge."""
    project = project_under_test(matrices, config.rootpath)
    out = options.output_folder(project)
    prepare_output(out, out / "results.json")
    try:
        plans = expand_all(matrices, AssumedInterpreters(), out, project)
    except MatrixError as exc:
        raise pytest.UsageError(str(exc)) from None
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


def examine_machine(config: pytest.Config, options: Options) -> int:
    """``--dfvc-doctor``: the machine and what the project's matrices need."""
    from .doctor import run_doctor
    from .options import matrix_path

    start = config.invocation_params.dir
    project = next((f for f in (start, *start.parents) if declares_package(f)), start)
    where = options.matrix or matrix_path(config)
    return run_doctor(project, where, options.output_folder(project), _say)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def write_first_matrices(start: Path, options: Options) -> int:
    """``--dfvc-init``: a first matrix per framework, for the project pytest runs in."""
    project = next((f for f in (start, *start.parents) if declares_package(f)), start)
    named = [n.strip() for n in str(options.init).split(",") if n.strip()]
    try:
        written = init_matrices(project, named, InterpreterFinder(), say=_say)
    except InitError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    for line in report_lines(written, options.jobs):
        sys.stdout.write(line + "\n")
    return 0
