"""GitHub Actions: the matrix for ``fromJSON``, one shard per cell, and the merge.

A plan job prints the matrix (``--dfvc-gha``), each matrix job runs its cells
(``--dfvc-cell=ID``) and uploads ``<dfvc-out>/shards/``, and a merge job downloads every shard
into one folder and rebuilds the results (``--dfvc-merge=DIR``), identical to a local run of
the same cells.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, cast

from ..files import write_json_atomic
from ..model import CellJSON, cell_problem
from ..plan.cell import Cell, MatrixPlan
from ..plan.matrix import Matrix
from ..verdicts.documents import SHARD_KIND, SHARD_SCHEMA, shard

# GitHub runs at most 256 jobs per matrix; past that, jobs take several cells each.
MAX_JOBS = 256
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class ShardError(Exception):
    """A shard that cannot be merged."""


def cell_ref(matrix: str, cell_id: str) -> str:
    """How a cell is named on the command line and in the GHA matrix: ``matrix/cell-id``."""
    return f"{matrix}/{cell_id}"


def matrix_digest(matrix: Matrix) -> str:
    """Shards record which version of the matrix file made them."""
    return hashlib.sha256(matrix.path.read_bytes()).hexdigest()


def runs_on(matrix: Matrix, cell: Cell) -> str | list[str]:
    labels = matrix.gha.cuda_runs_on.get(cell.cuda or "", matrix.gha.runs_on)
    return labels if isinstance(labels, str) else list(labels)


# One job of the GitHub Actions matrix ("runs-on" is no identifier: the functional form).
GhaJob = TypedDict(
    "GhaJob",
    {"cell": str, "name": str, "python": str, "runs-on": "str | list[str]", "artifact": str},
)


class GhaMatrix(TypedDict):
    include: list[GhaJob]


def gha_matrix(plans: Sequence[MatrixPlan], max_jobs: int = MAX_JOBS) -> GhaMatrix:
    """``{"include": [...]}`` with one job per runnable cell, or several cells per job when
    there are more than ``max_jobs``. A job sets up one runner and one Python, so only cells
    that share both are grouped (a 3.12 cell in a 3.11 job ran where its interpreter was
    not set up)."""
    groups: dict[tuple[str, str], list[tuple[Matrix, Cell]]] = {}
    for plan in plans:
        for cell in plan.cells:
            if cell.status is None:
                key = (json.dumps(runs_on(plan.matrix, cell)), cell.python)
                groups.setdefault(key, []).append((plan.matrix, cell))
    per_job = _cells_per_job([len(g) for g in groups.values()], max_jobs)
    include: list[GhaJob] = []
    for (runner, python), members in groups.items():
        for start in range(0, len(members), per_job):
            group = members[start : start + per_job]
            refs = [cell_ref(m.name, c.id) for m, c in group]
            first_matrix, first = group[0]
            include.append(
                {
                    "cell": ",".join(refs),
                    "name": refs[0] if len(refs) == 1 else f"{refs[0]} (+{len(refs) - 1})",
                    "python": python,
                    "runs-on": json.loads(runner),
                    "artifact": _artifact(first_matrix.name, first.id, len(refs)),
                }
            )
    return {"include": include}


def _cells_per_job(sizes: Sequence[int], max_jobs: int) -> int:
    """The fewest cells per job that keep the jobs of all groups within ``max_jobs``."""
    if not sizes:
        return 1
    per_job = max(1, math.ceil(sum(sizes) / max_jobs))
    while sum(math.ceil(n / per_job) for n in sizes) > max_jobs and per_job < max(sizes):
        per_job += 1
    return per_job


def _artifact(matrix: str, cell_id: str, count: int) -> str:
    suffix = f"-and-{count - 1}" if count > 1 else ""
    return f"dfvc-{matrix}-{cell_id}{suffix}"


def write_shard(out: Path, matrix: Matrix, cell_data: CellJSON) -> Path:
    """``<out>/shards/<matrix>-<cell id>.json``, atomically; the name is checked, never a path."""
    name = f"{matrix.name}-{cell_data['id']}"
    if not _SAFE.match(name):
        raise ShardError(f"refusing to write a shard named {name!r}")
    path = out / "shards" / f"{name}.json"
    write_json_atomic(path, shard(matrix.name, matrix_digest(matrix), cell_data))
    return path


def load_shards(
    folder: Path, plans: Sequence[MatrixPlan]
) -> tuple[dict[str, list[CellJSON]], list[str]]:
    """Every shard under ``folder``, checked against the matrices; returns the cells per
    matrix and the notes to report (duplicates, missing cells). A shard of another schema,
    another matrix, or another version of a matrix file is an error."""
    if not folder.is_dir():
        raise ShardError(f"{folder}: no such folder of shards")
    known = {p.matrix.name: p for p in plans}
    digests = {name: matrix_digest(p.matrix) for name, p in known.items()}
    cells: dict[str, dict[str, CellJSON]] = {name: {} for name in known}
    notes: list[str] = []
    for path in sorted(folder.rglob("*.json")):
        shard = _read_shard(path)
        if shard is None:
            notes.append(f"{path}: not a pytest-dfvc shard, skipped")
            continue
        name = shard.get("matrix")
        if name not in known:
            raise ShardError(
                f"{path}: a shard of matrix {name!r}, which is not among {sorted(known)}"
            )
        if shard.get("matrix_digest") != digests[name]:
            raise ShardError(f"{path}: made from another version of {known[name].matrix.path}")
        cell = shard.get("cell")
        if not isinstance(cell, dict) or not _SAFE.match(str(cell.get("id", ""))):
            raise ShardError(f"{path}: the shard's cell has no valid id")
        planned = {c.id for c in known[name].cells}
        if cell["id"] not in planned:
            raise ShardError(f"{path}: cell {cell['id']} is not in the plan of matrix {name}")
        if cell["id"] in cells[name]:
            notes.append(
                f"duplicate shard for {cell_ref(name, cell['id'])}: {path} (kept the first)"
            )
            continue
        problem = cell_problem(cell)
        if problem is not None:
            notes.append(f"{path}: {problem}; set aside")
            continue
        cells[name][cell["id"]] = cast(CellJSON, cell)
    if not any(cells.values()):
        # Nothing to merge: the results and reports already there are kept as they are.
        raise ShardError(f"{folder}: holds no pytest-dfvc shards; nothing was merged or changed")
    for plan in plans:
        for cell in plan.cells:
            if cell.status is None and cell.id not in cells[plan.matrix.name]:
                notes.append(
                    f"missing shard: {cell_ref(plan.matrix.name, cell.id)} (reported as skipped)"
                )
    return {name: list(found.values()) for name, found in cells.items()}, notes


def _read_shard(path: Path) -> Mapping[str, Any] | None:
    """The shard in ``path``; None for files that are not shards (a results file, a JSON file
    of another tool, one that is not JSON at all)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != SHARD_KIND:
        return None
    if data.get("schema") != SHARD_SCHEMA:
        raise ShardError(
            f"{path}: shard schema {data.get('schema')!r}, this pytest-dfvc reads {SHARD_SCHEMA}"
        )
    return data


def parse_cell_refs(value: str) -> list[tuple[str | None, str]]:
    """``numpy/py3.9-numpy1.23.5,py3.10-numpy2.0.2`` -> [(matrix or None, cell id), ...]."""
    refs = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        matrix, _, cell_id = part.rpartition("/")
        if not cell_id:
            raise ShardError(f"--dfvc-cell {value!r}: {part!r} names no cell")
        refs.append((matrix or None, cell_id))
    if not refs:
        raise ShardError(f"--dfvc-cell {value!r}: names no cell (write matrix/cell-id, ...)")
    return refs


def print_matrix(document: GhaMatrix) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")


def select_cells(plans: list[MatrixPlan], value: str) -> list[MatrixPlan]:
    """The plans cut down to the cells named by --dfvc-cell; an unknown name is a ShardError."""
    wanted = parse_cell_refs(value)
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
            raise ShardError(f"--dfvc-cell {cell_ref(matrix or '?', cell_id)}: {problem}")
        plan, cell = matches[0]
        kept[plan.matrix.name].append(cell)
    return [replace(p, cells=tuple(kept[p.matrix.name])) for p in plans if kept[p.matrix.name]]
