"""The matrices' cells as nox sessions in a project's own noxfile, so that ``nox -l`` lists
the cells and CI can run one by name (the sessions' body is ``cells/session.py``, which the
controller's runs use too)::

    # noxfile.py
    from pytest_dfvc.nox import matrix_sessions

    matrix_sessions("matrices")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .cells.provision import Workspace, prepare_session
from .cells.session import register
from .plan.expand import plan_matrices


def matrix_sessions(
    target: str | os.PathLike[str] = "matrices",
    *,
    project: str | os.PathLike[str] = ".",
    out: str | os.PathLike[str] = ".dfvc",
    pytest_args: Sequence[str] = (),
) -> list[str]:
    """Register one session per runnable cell of the matrices at ``target``.

    Returns the session names (``dfvc-<matrix>-<cell id>``). Run one with
    ``nox -s NAME``; arguments after ``--`` go to the cell's pytest. A session fails when
    a test fails or none ran, as ``nox -s tests`` does, so CI that runs one fails with it.
    """
    workspace = Workspace(Path(out).resolve(), Path(project).resolve())
    names = []
    for plan in plan_matrices(Path(target), project=workspace.project):
        for cell in plan.cells:
            if cell.status is None:
                spec = prepare_session(
                    plan.matrix, cell, workspace, list(pytest_args), success_codes=(0,)
                )
                register(spec)
                names.append(spec["name"])
    return names
