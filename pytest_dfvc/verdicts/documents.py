"""Every form of the results document, built in one place: the finished document, the
partial one written after each cell (what an interrupted run keeps), the merged one of a
GitHub Actions run, and a shard (one cell and what it ran on, written by a CI job)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TypedDict

from ..index.hostfacts import RunnerFacts, runner_facts
from ..model import SCHEMA, Cause, CellJSON, Document, MatrixJSON
from ..plan.cell import MatrixPlan
from .drift import DEFAULT_ATOL, DEFAULT_RTOL
from .results import matrix_json, planned_cell_json

SHARD_SCHEMA = 1
SHARD_KIND = "dfvc-shard"


def document(matrices: list[MatrixJSON]) -> Document:
    """The finished document: every matrix with its ranges."""
    return {"schema": SCHEMA, "matrices": matrices}


def partial_document(cells: dict[str, list[CellJSON]]) -> Document:
    """The cells finished so far, by matrix name, without ranges: what survives an
    interrupted run (and is reused by the next)."""
    return {
        "schema": SCHEMA,
        "complete": False,
        "matrices": [
            {"name": name, "cells": found, "ranges": {}, "drift": []}
            for name, found in cells.items()
        ],
    }


def merged_document(
    plans: Sequence[MatrixPlan],
    found: Mapping[str, Sequence[CellJSON]],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> Document:
    """The document of a GitHub Actions run: each matrix from its shards' cells (``found``,
    by matrix name), with the cells that never ran as planned and the runnable cells no
    shard came back for as skipped (cause ``missing-shard``)."""
    matrices = []
    for plan in plans:
        cells = list(found.get(plan.matrix.name, ()))
        shard_ids = {c["id"] for c in cells}
        for cell in plan.cells:
            if cell.id in shard_ids:
                continue
            if cell.status is None:
                missing = Cause("missing-shard", "no shard was found for this cell")
                cell = replace(cell, status="skipped", cause=missing)
            cells.append(planned_cell_json(cell))
        matrices.append(matrix_json(plan, cells, rtol=rtol, atol=atol))
    return document(matrices)


class Shard(TypedDict):
    schema: int
    kind: str
    matrix: str
    # Which version of the matrix file made it: a merge refuses shards of another.
    matrix_digest: str
    runner: RunnerFacts
    cell: CellJSON


def shard(matrix: str, digest: str, cell: CellJSON) -> Shard:
    """One cell of a CI job, with what it ran on."""
    return {
        "schema": SHARD_SCHEMA,
        "kind": SHARD_KIND,
        "matrix": matrix,
        "matrix_digest": digest,
        "runner": runner_facts(),
        "cell": cell,
    }
