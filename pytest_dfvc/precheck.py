"""Availability pre-check: can a cell's pins be installed at all, before building anything?

``uv pip compile`` resolves the cell's pins and constraints for the cell's own interpreter,
wheels only for the matrix packages. It needs no environment and, with uv's cache, takes tens
of milliseconds; a cell that cannot resolve is ``unavailable`` with uv's reason. A cell of a
CUDA variant whose sources resolve to another variant's build (PyPI's torch is a CUDA build;
a ``cpu`` cell must not test it) is ``unavailable`` too, with the build that was found.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from .builds import mismatch, pinned
from .legacy import refused_pin
from .matrix import Matrix
from .plan import Cause, Cell, MatrixPlan
from .provision import install_failure, pin_requirements, source_args
from .results import write_text_atomic
from .uvtool import uv_environment, uv_path


def compile_command(matrix: Matrix, cell: Cell, constraints: Path | None) -> list[str]:
    command = [uv_path() or "uv", "pip", "compile", "-", "--no-header", "--quiet"]
    if cell.interpreter:
        command += ["--python", cell.interpreter]
    else:
        # Planning for other machines (GitHub Actions jobs set up their own Python).
        command += ["--python-version", cell.python]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return command + source_args(matrix, cell)


def precheck_cell(matrix: Matrix, cell: Cell, runtime: Path) -> tuple[str, Cause] | None:
    """None when the cell's pins resolve for its Python; else the cell's status
    (``unavailable``, or ``error`` when uv could not find out) and why."""
    constraints = None
    if matrix.install.constraints:
        constraints = runtime / f"constraints-{matrix.name}.txt"
        write_text_atomic(constraints, "".join(c + "\n" for c in matrix.install.constraints))
    pins = "".join(
        p + "\n" for p in (*pin_requirements(matrix, cell), *matrix.install.requirements)
    )
    try:
        result = subprocess.run(
            compile_command(matrix, cell, constraints),
            input=pins,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=uv_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "error", Cause("install", f"the pre-check could not run uv: {exc}")
    if result.returncode != 0:
        if refused_pin(result.stderr, pin_requirements(matrix, cell)):
            return None  # installed another way (legacy.py), so it runs
        return install_failure(result.stderr, cell.python, cell.cuda)
    build = mismatch(cell.cuda, pinned(result.stdout))
    if build is None:
        return None
    what = ", ".join(f"{n} {v}" for n, v in cell.packages)
    return "unavailable", Cause(
        "install",
        f"{what} has no {cell.cuda} build where this variant installs from: "
        f"it resolves to a {build.variant} build ({build.evidence})",
    )


def precheck(plans: Sequence[MatrixPlan], runtime: Path, jobs: int) -> list[MatrixPlan]:
    """The plans with every cell that cannot be installed marked ``unavailable`` (or
    ``error``, when uv could not find out: an unreachable index)."""
    runtime.mkdir(parents=True, exist_ok=True)
    work = [(p.matrix, c) for p in plans for c in p.cells if c.status is None]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        causes = list(pool.map(lambda mc: precheck_cell(mc[0], mc[1], runtime), work))
    found = {(m.name, c.id): cause for (m, c), cause in zip(work, causes) if cause is not None}
    return [
        replace(
            plan,
            cells=tuple(
                replace(
                    c,
                    status=found[(plan.matrix.name, c.id)][0],
                    cause=found[(plan.matrix.name, c.id)][1],
                )
                if (plan.matrix.name, c.id) in found
                else c
                for c in plan.cells
            ),
        )
        for plan in plans
    ]
