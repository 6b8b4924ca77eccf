"""Era resolution (``[install] exclude-newer = "release"``): each cell resolves the rest of
its environment as of the upload of its newest pinned release.

A pandas 1.5 cell resolved today gets numpy 2, whose ABI break fails every old pandas cell
as ``third-party``; the question the matrix asks is whether the code worked with pandas 1.5
as people installed it then. So the cell's uv gets ``--exclude-newer`` at that upload time
(plus ``release+30d``'s days), from the upload times the index gives (PEP 700). The pinned
releases themselves are exempt (they are pinned anyway), and so is the tooling the recorder
needs in the cell (pytest and what it depends on) where the era is older than that tooling
may be.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import replace

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from ..index.pages import Release, instant
from .cell import Cell, MatrixPlan, ReleaseLister
from .matrix import Matrix, MatrixError

# The recorder runs on pytest 6 and newer; an era older than this floor would resolve a
# pytest too old for it, so pytest and its dependencies resolve as of the floor instead.
TOOLING_FLOOR = datetime.datetime(2022, 6, 1, tzinfo=datetime.timezone.utc)
TOOLING = (
    "pytest",
    "pluggy",
    "iniconfig",
    "packaging",
    "tomli",
    "exceptiongroup",
    "colorama",
    "pygments",
    "py",
    "attrs",
    "atomicwrites",
    "more-itertools",
    "importlib-metadata",
    "zipp",
    "typing-extensions",
)
# What "no limit" is for a pinned release: uv takes dates up to about this far.
_UNLIMITED = "2100-01-01T00:00:00Z"


def with_eras(plan: MatrixPlan, lister: ReleaseLister) -> MatrixPlan:
    """``plan`` with each runnable cell's era (``Cell.exclude_newer``) when the matrix asks
    for era resolution; unchanged otherwise. A pinned release the index gives no upload
    time for is a usage error naming it."""
    days = plan.matrix.install.era_days
    if days is None:
        return plan
    uploads = {axis.name: _upload_times(lister(axis, plan.matrix)) for axis in plan.matrix.packages}
    cells = tuple(_with_era(c, uploads, days, plan.matrix) for c in plan.cells)
    return replace(plan, cells=cells)


def _upload_times(releases: Sequence[Release]) -> dict[Version, str | None]:
    return {r.version: r.uploaded for r in releases}


def _with_era(
    cell: Cell, uploads: dict[str, dict[Version, str | None]], days: int, matrix: Matrix
) -> Cell:
    if cell.status is not None:
        return cell
    times = []
    for name, version in cell.packages:
        try:
            uploaded = uploads.get(name, {}).get(Version(version))
        except InvalidVersion:
            uploaded = None
        if uploaded is None:
            raise MatrixError(
                matrix.path,
                "install.exclude-newer",
                "release",
                f"{name} {version} has no upload time where it is listed from: era resolution "
                "needs an index that gives upload times (PEP 700, as PyPI does)",
            )
        times.append(instant(uploaded))
    era = max(times) + datetime.timedelta(days=days, seconds=1)
    return replace(cell, exclude_newer=_rfc3339(era))


def era_args(cell: Cell, pins: Sequence[str]) -> list[str]:
    """uv's arguments for the cell's era: everything as of it, but its pinned releases, and
    the recorder's tooling no older than ``TOOLING_FLOOR``."""
    if not cell.exclude_newer:
        return []
    args = ["--exclude-newer", cell.exclude_newer]
    for pin in pins:
        args += ["--exclude-newer-package", f"{Requirement(pin).name}={_UNLIMITED}"]
    if instant(cell.exclude_newer) < TOOLING_FLOOR:
        pinned = {Requirement(p).name for p in pins}
        for name in TOOLING:
            if name not in pinned:
                args += ["--exclude-newer-package", f"{name}={_rfc3339(TOOLING_FLOOR)}"]
    return args


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
