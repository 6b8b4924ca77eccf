"""Narrowing a boundary the matrix left wide: test the releases in the gap.

With an explicit version list (``["1.1.5", "1.5.3", "2.0.3"]``), a pass on 1.5.3 and a failure
on 2.0.3 say only that the boundary lies somewhere between; the range stops at ``<=1.5.3``
(the evidence rule). A refine step lists the index's releases strictly between the two (as
the matrix's other settings filter them: prereleases, yanked), plans a cell for each on every
line that reached the gap (the same Python, CUDA variant and other pins as the cells at its
ends), and hands them to bisect, which runs a few of them to find the first failing release.
The interval is then known to hold every release, so the bound may reach the next one
(``<2.0.0``). Pure functions: the scheduler runs the cells.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.version import Version

from ..index.pages import Release
from ..model import RangeJSON
from .cell import Cell, MatrixPlan, cell_id, covered
from .matrix import PackageAxis


@dataclass(frozen=True)
class Gap:
    """Releases of ``axis`` strictly between ``low`` and ``high`` were never run."""

    axis: str
    low: str
    high: str


def gaps(ranges: Mapping[str, RangeJSON], plan: MatrixPlan) -> list[Gap]:
    """The project's upgrade gap on each package axis, and its downgrade gap (between the
    nearest failure below the oldest pass and that pass), when either may hold releases."""
    found = []
    for axis in plan.matrix.packages:
        entry = ranges.get(axis.name)
        if entry is None:
            continue
        between = entry.get("upgrade_between")
        if between:
            low, high = between
            found.append(Gap(axis.name, low, high))
        passing = sorted(entry["compatible"], key=Version)
        below = [v for v in entry["incompatible"] if passing and _lt(v, passing[0])]
        if below:
            found.append(Gap(axis.name, max(below, key=Version), passing[0]))
    return [g for g in found if not covered(plan.dense.get(g.axis, ()), g.low, g.high)]


def _lt(a: str, b: str) -> bool:
    return Version(a) < Version(b)


def releases_between(axis: PackageAxis, releases: Sequence[Release], gap: Gap) -> list[str]:
    """The index's releases strictly inside the gap, filtered as the matrix filters."""
    low, high = Version(gap.low), Version(gap.high)
    return [
        str(r.version)
        for r in sorted(releases, key=lambda r: r.version)
        if low < r.version < high
        and (axis.yanked or not r.yanked)
        and (axis.prereleases or not r.version.is_prerelease)
    ]


def refined_plan(
    plan: MatrixPlan, gap: Gap, versions: Sequence[str]
) -> tuple[MatrixPlan, list[Cell]]:
    """``plan`` with a cell for each of ``versions`` on every line that ran at an end of the
    gap, and the gap marked as holding every release; the new cells."""
    planned = set(plan.versions[gap.axis])
    wanted = [v for v in versions if v not in planned]
    templates = [
        c
        for c in plan.cells
        if c.status is None and dict(c.packages).get(gap.axis) in (gap.low, gap.high)
    ]
    seen_lines: set[tuple[Any, ...]] = set()
    known = {c.id for c in plan.cells}
    added: list[Cell] = []
    for template in templates:
        line = (template.python, template.cuda, _others(template, gap.axis))
        if line in seen_lines:
            continue
        seen_lines.add(line)
        for version in wanted:
            packages = tuple((n, version if n == gap.axis else v) for n, v in template.packages)
            new_id = cell_id(template.python, packages, template.cuda)
            if new_id not in known:
                known.add(new_id)
                added.append(replace(template, id=new_id, packages=packages))
    all_versions = sorted(planned | set(wanted), key=Version)
    dense = (*plan.dense.get(gap.axis, ()), (gap.low, gap.high))
    refined = replace(
        plan,
        cells=tuple(sorted((*plan.cells, *added), key=_order(plan))),
        versions={**plan.versions, gap.axis: tuple(all_versions)},
        dense={**plan.dense, gap.axis: dense},
    )
    return refined, added


def _others(cell: Cell, axis: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in cell.packages if n != axis)


def _order(plan: MatrixPlan) -> Callable[[Cell], tuple[Any, ...]]:
    """Cells in the plan's own order: Python, CUDA variant, then each package's version."""
    pythons = {p: i for i, p in enumerate(plan.pythons)}
    cudas = {c: i for i, c in enumerate(plan.matrix.cuda)}
    return lambda c: (
        pythons.get(c.python, len(pythons)),
        cudas.get(c.cuda or "", -1),
        *(Version(v) for _, v in c.packages),
    )
