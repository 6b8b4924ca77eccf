"""Expand a matrix into cells: versions from the index, ``select``, excludes, interpreters."""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from packaging.version import Version

from ..index.interpreters import InterpreterFinder
from ..index.pages import IndexUnavailable, Release, list_releases
from ..index.uvconfig import uv_sources
from ..model import Cause
from ..vocabulary import Select, Strategy
from .cell import KNOWN_PYTHONS, Cell, MatrixPlan, ReleaseLister, cell_id, unique_ids
from .era import with_eras
from .matrix import Exclude, Matrix, MatrixError, PackageAxis, load_matrices


def select_versions(versions: list[Version], select: Select) -> list[Version]:
    """Keep every version, the newest patch of each minor, or the newest of each major."""
    if select == "all":
        return sorted(versions)
    width = 2 if select == "latest-patch" else 1
    newest: dict[tuple[int, ...], Version] = {}
    for v in versions:
        key = (v.epoch, *v.release[:width])
        if key not in newest or v > newest[key]:
            newest[key] = v
    return sorted(newest.values())


def axis_versions(axis: PackageAxis, releases: list[Release]) -> list[str]:
    """The versions of one package axis the matrix asks for."""
    if isinstance(axis.versions, tuple):
        return list(axis.versions)
    chosen = [
        r.version
        for r in releases
        if (axis.yanked or not r.yanked)
        and axis.versions.contains(r.version, prereleases=axis.prereleases)
    ]
    return [str(v) for v in select_versions(chosen, axis.select)]


def with_newest(plan: MatrixPlan, lister: ReleaseLister) -> MatrixPlan:
    """The plan with the newest release of each axis its matrix lists explicitly (a list
    needs no index to plan). An index that cannot be read leaves it unknown: the ranges
    then stop at the newest pass."""
    newest = dict(plan.newest)
    for axis in plan.matrix.packages:
        if axis.name in newest:
            continue
        try:
            top = newest_release(axis, lister(axis, plan.matrix))
        except MatrixError:
            continue
        if top:
            newest[axis.name] = top
    listed_on = plan.listed_on or (datetime.date.today().isoformat() if newest else None)
    return replace(plan, newest=newest, listed_on=listed_on)


def newest_release(axis: PackageAxis, releases: Iterable[Release]) -> str:
    """The newest release the matrix's filters admit, whatever its ``versions`` say: where
    an open upper bound would have to reach."""
    admitted = [
        r.version
        for r in releases
        if (axis.yanked or not r.yanked) and (axis.prereleases or not r.version.is_prerelease)
    ]
    return str(max(admitted)) if admitted else ""


def index_releases(
    axis: PackageAxis,
    matrix: Matrix,
    cache_dir: Path | None = None,
    project: Path | None = None,
) -> list[Release]:
    """The default release lister: from where the cells' uv installs (the matrix's
    ``[install]`` settings, then uv's configuration as seen from ``project``, by default
    the matrix file's folder)."""
    install = matrix.install
    sources = uv_sources(
        project or matrix.path.parent,
        index_url=install.index_url,
        no_index=install.no_index,
        find_links=install.find_links,
    )
    try:
        return list_releases(
            axis.name,
            indexes=sources.indexes,
            find_links=sources.find_links,
            cache_dir=cache_dir,
        )
    except IndexUnavailable as exc:
        raise MatrixError(
            matrix.path, f"packages.{axis.name}.versions", str(axis.versions), str(exc)
        ) from None


def python_minors(matrix: Matrix, finder: InterpreterFinder) -> list[str]:
    """A list is taken as written; a specifier expands to the matching interpreters found here."""
    if isinstance(matrix.python, tuple):
        return list(matrix.python)
    wanted = [m for m in KNOWN_PYTHONS if matrix.python.contains(m)]
    found = finder.available_minors(wanted)
    if not found:
        raise MatrixError(
            matrix.path, "python", str(matrix.python), "no matching interpreter on this machine"
        )
    return found


def expand(
    matrix: Matrix, finder: InterpreterFinder, lister: ReleaseLister = index_releases
) -> MatrixPlan:
    """All cells of ``matrix``, each with its interpreter or the reason it cannot run."""
    versions: dict[str, tuple[str, ...]] = {}
    newest: dict[str, str] = {}
    for axis in matrix.packages:
        releases = [] if isinstance(axis.versions, tuple) else lister(axis, matrix)
        chosen = axis_versions(axis, releases)
        top = newest_release(axis, releases)
        if top:
            newest[axis.name] = top
        if not chosen:
            raise MatrixError(
                matrix.path,
                f"packages.{axis.name}.versions",
                str(axis.versions),
                "matches no released version",
            )
        versions[axis.name] = tuple(chosen)
    pythons = python_minors(matrix, finder)
    cudas: list[str | None] = list(matrix.cuda) or [None]
    cells = []
    for python, cuda, combo in itertools.product(
        pythons, cudas, itertools.product(*versions.values())
    ):
        packages = tuple(zip(versions, combo))
        cells.append(_plan_cell(matrix, finder, python, cuda, packages))

    plan = MatrixPlan(
        matrix=matrix,
        cells=tuple(unique_ids(cells)),
        versions=versions,
        pythons=tuple(pythons),
        newest=newest,
        listed_on=datetime.date.today().isoformat() if newest else None,
    )
    return with_eras(plan, lister)


def _plan_cell(
    matrix: Matrix,
    finder: InterpreterFinder,
    python: str,
    cuda: str | None,
    packages: tuple[tuple[str, str], ...],
) -> Cell:
    cid = cell_id(python, packages, cuda)
    base = Cell(matrix=matrix.name, id=cid, python=python, packages=packages, cuda=cuda)
    for i, rule in enumerate(matrix.exclude):
        if _excluded(rule, python, cuda, packages):
            reason = f"left out by exclude[{i}] of {matrix.path.name}"
            return replace(base, status="skipped", cause=Cause("excluded", reason))
    interpreter = finder.find(python)
    if interpreter is None:
        reason = f"no CPython {python} interpreter here (looked on PATH, in pyenv and uv)"
        return replace(base, status="unavailable", cause=Cause("install", reason))
    return replace(base, interpreter=interpreter.path, interpreter_version=interpreter.version)


def _excluded(
    rule: Exclude, python: str, cuda: str | None, packages: tuple[tuple[str, str], ...]
) -> bool:
    if rule.python is not None and not rule.python.contains(python, prereleases=True):
        return False
    if rule.cuda and cuda not in rule.cuda:
        return False
    pins = dict(packages)
    return all(spec.contains(pins[name], prereleases=True) for name, spec in rule.packages)


def plan_matrices(
    target: Path, project: Path, finder: InterpreterFinder | None = None
) -> list[MatrixPlan]:
    """Read, validate and expand every matrix at ``target`` (a file or a folder), listing
    releases afresh from where ``project``'s cells install."""
    return expand_all(load_matrices(target), finder or InterpreterFinder(), None, project)


def release_lister(out: Path | None, project: Path) -> ReleaseLister:
    """Release lists from where the cells install (``project``'s uv configuration), kept
    under ``out`` for a while."""
    index_cache = None if out is None else out / "cache" / "index"
    return lambda axis, matrix: index_releases(axis, matrix, index_cache, project)


def expand_all(
    matrices: list[Matrix], finder: InterpreterFinder, out: Path | None, project: Path
) -> list[MatrixPlan]:
    """Expand the matrices, listing releases from where ``project``'s cells install;
    ``out`` keeps the index's release lists for a while."""
    lister = release_lister(out, project)
    return [with_newest(expand(m, finder, lister), lister) for m in matrices]


def baselines(matrix: Matrix, strategy: Strategy) -> dict[str, str | None]:
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
