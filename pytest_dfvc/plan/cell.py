"""The plan's words: a cell (one Python, one version of each package, a CUDA variant), a
matrix's plan of cells, and their ids. Expanding a matrix into them is ``expand.py``'s work;
everything from the era to the report reads them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from packaging.version import Version

from ..index.pages import Release
from ..model import Cause
from ..vocabulary import Status
from .matrix import Matrix, PackageAxis

# CPython minors a Python specifier can expand to; only those installed here are planned.
# From 3.7: the in-cell recorder cannot run on older ones.
KNOWN_PYTHONS = tuple(f"3.{m}" for m in range(7, 16))

ReleaseLister = Callable[[PackageAxis, Matrix], list[Release]]


@dataclass(frozen=True)
class Cell:
    """One environment of the matrix: a Python, one version of each package, a CUDA variant."""

    matrix: str
    id: str
    python: str
    packages: tuple[tuple[str, str], ...]
    cuda: str | None = None
    interpreter: str | None = None
    interpreter_version: str | None = None
    # Set when the cell is known not to run before anything is built.
    status: Status | None = None
    cause: Cause | None = None
    # The cell's era (exclude-newer = "release"): what its uv resolves as of (era.py).
    exclude_newer: str | None = None
    # A counterfactual cell (culprit.py): other packages pinned to where a test passed.
    held: tuple[tuple[str, str], ...] = ()
    # Other builds of a pinned release the index holds (``1.0.0+broken`` beside ``1.0.0``):
    # ``name!=version+label`` constraints, so the pin installs the release itself.
    other_builds: tuple[str, ...] = ()
    # Where the torch family comes from, decided for the run (``plan/torchwheels.py``): "cpu"
    # for PyTorch's CPU wheels, "" for PyPI's; None leaves it to the matrix.
    torch_backend: str | None = None
    # A boundary's trace cell (verdicts/tracing.py): the recorder traces each test's calls
    # into the matrix packages.
    trace: bool = False


@dataclass(frozen=True)
class MatrixPlan:
    """A matrix with its cells and the versions each axis spans."""

    matrix: Matrix
    cells: tuple[Cell, ...]
    versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pythons: tuple[str, ...] = ()
    # Per package axis: intervals [low, high] of versions in which every release on the index
    # was planned (gaps a refine step filled), so a bound there may reach the next release.
    dense: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # Per package axis: the newest release on the index that the matrix's filters admit
    # (pre-releases, yanked), and the day it was listed; an axis whose newest passing
    # version is not it gets no open upper bound. Absent when the index was not asked.
    newest: dict[str, str] = field(default_factory=dict)
    listed_on: str | None = None


def cell_id(python: str, packages: Iterable[tuple[str, str]], cuda: str | None) -> str:
    """A stable id that is also a safe file name: ``py3.9-numpy1.23.5[-cu121]``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", _raw_id(python, packages, cuda))


def _raw_id(python: str, packages: Iterable[tuple[str, str]], cuda: str | None) -> str:
    parts = [f"py{python}", *(f"{name}{version}" for name, version in packages)]
    if cuda:
        parts.append(cuda)
    return "-".join(parts)


def unique_ids(cells: list[Cell]) -> list[Cell]:
    """Cells whose ids collide once made safe for file names (``cuda = ["a/b", "a_b"]``) each
    get a suffix from their unsafe id: stable from run to run, and no cell is lost."""
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.id] = counts.get(cell.id, 0) + 1
    renamed = []
    for cell in cells:
        if counts[cell.id] > 1:
            raw = _raw_id(cell.python, cell.packages, cell.cuda)
            suffix = hashlib.sha256(raw.encode()).hexdigest()[:6]
            cell = replace(cell, id=f"{cell.id}-{suffix}")
        renamed.append(cell)
    return renamed


def covered(dense: Sequence[tuple[str, str]], low: Version | str, high: Version | str) -> bool:
    """Whether some interval of ``dense`` holds both ``low`` and ``high``: every release
    between the two was planned."""
    return any(
        Version(a) <= Version(str(low)) and Version(str(high)) <= Version(b) for a, b in dense
    )
