"""Compatible ranges, specifiers and boundaries, computed with packaging's VersionRange.

A range admits every version that passed and none that failed among those tested; holes
become ``!=``. Versions nobody ran stay ``untested``, never passed or failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.ranges import VersionRange
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..model import RAN, Inferred, RangeJSON, combined
from ..plan.cell import covered

_OPERATOR_ORDER = {">": 0, ">=": 0, "~=": 1, "==": 1, "===": 1, "!=": 2, "<=": 3, "<": 3}


@dataclass
class Observation:
    """One cell as the range computation sees it."""

    values: Mapping[str, str]  # axis -> value, e.g. {"python": "3.9", "numpy": "1.23.5"}
    status: str  # passed | failed | error | unavailable | skipped
    tests: Mapping[str, str] = field(default_factory=dict)  # nodeid -> outcome


@dataclass
class AxisRange:
    """What is known about one axis (a package or Python) for the project or one test."""

    compatible: list[str]
    incompatible: list[str]
    untested: list[str]
    specifier: str | None
    upgrade_boundary: str | None = None
    downgrade_boundary: str | None = None
    inferred: dict[str, Inferred] = field(default_factory=dict)
    # [newest pass, oldest failure]: the upgrade boundary lies in between, untested.
    upgrade_between: list[str] | None = None

    def to_json(self) -> RangeJSON:
        return {
            "inferred": self.inferred,
            "specifier": self.specifier,
            "compatible": self.compatible,
            "incompatible": self.incompatible,
            "untested": self.untested,
            "upgrade_boundary": self.upgrade_boundary,
            "downgrade_boundary": self.downgrade_boundary,
            "upgrade_between": self.upgrade_between,
        }


def specifier_for(
    compatible: Iterable[str],
    incompatible: Iterable[str],
    width: int | None = None,
    planned: Iterable[str] = (),
    complete: bool = False,
    dense: Sequence[tuple[str, str]] = (),
    newest: str | None = None,
    asked: SpecifierSet | None = None,
) -> str | None:
    """The narrowest simple specifier admitting ``compatible`` and rejecting ``incompatible``,
    which never admits a version above the newest passing one that nobody tested.

    ``planned`` are all the versions the matrix named on this axis (tested or not). The
    upper bound stops below the next planned version above the newest pass; without
    ``width`` it is ``<NEXT`` only when ``complete`` says the plan holds every release in
    between (a specifier with ``select = "all"``), else ``<=NEWEST_PASS``: releases between
    the two were never run. ``width`` rounds bounds to that many release components (2:
    ``>=1.19,<1.24`` from 1.19.5 and 1.24.4), as a matrix of newest patches stands for whole
    minor series by the user's choice; it is dropped whenever rounding would admit a failing
    version. ``dense`` are intervals of ``planned`` known to hold every release in between
    (a gap a refine step filled), as ``complete`` says of the whole axis. ``None`` if nothing
    passed. With nothing planned above the newest pass, the bound stays open only when that
    pass is ``newest``, the newest release on the index; otherwise releases above it were
    never run, and the bound is ``<=NEWEST_PASS``; ``<`` the next series with ``width``
    when the matrix's specifier ``asked`` for the newest pass's whole series (so the pass is
    its newest patch).
    """
    good = sorted({Version(v) for v in compatible})
    bad = sorted({Version(v) for v in incompatible})
    if not good:
        return None
    above = sorted(v for v in {Version(p) for p in planned} | set(bad) if v > good[-1])
    next_above = above[0] if above else None
    exact = complete or bool(next_above and covered(dense, good[-1], next_above))
    if next_above is None and (newest is None or Version(newest) > good[-1]):
        if not width or not _whole_series(good[-1], width, asked):
            return _render(_range(good, bad, None, None, False) & _at_most(good[-1]))
        # The newest patch stands for its series, by the user's choice of ``select``.
        next_above, exact = _next_series(good[-1], width), True
    # Rounded first, then exact bounds, then ``<=NEWEST_PASS``: PEP 440's ``<2.0`` excludes
    # 2.0rc1, so a passing pre-release just below a failing final needs the last form.
    tries: list[tuple[int | None, bool]] = [(width, True)] if width else []
    tries += [(None, exact), (None, False)]
    for w, exact_next in tries:
        version_range = _range(good, bad, next_above, w, exact_next)
        if all(v in version_range for v in good) and not any(v in version_range for v in bad):
            return _render(version_range)
    raise AssertionError("an exact range always separates distinct versions")  # pragma: no cover


def upgrade_gap(
    compatible: Sequence[str],
    incompatible: Sequence[str],
    planned: Sequence[str],
    complete: bool,
    dense: Sequence[tuple[str, str]] = (),
    boundary: str | None = None,
) -> list[str] | None:
    """``[newest pass, oldest failure above it]`` when releases between the two may exist
    that were not run: the boundary lies somewhere in that gap. With ``boundary`` (the
    upgrade boundary from a baseline), the gap is the one below that failure, so the two
    never name different places."""
    if boundary is not None:
        compatible = [v for v in compatible if Version(v) < Version(boundary)]
    if not compatible:
        return None
    top = max(compatible, key=Version)
    failing = sorted((v for v in incompatible if Version(v) > Version(top)), key=Version)
    if not failing:
        return None
    between = [p for p in planned if Version(top) < Version(p) < Version(failing[0])]
    if (complete or covered(dense, top, failing[0])) and not between:
        return None
    return [top, failing[0]]


def _at_most(version: Version) -> VersionRange:
    return SpecifierSet(f"<={version}").to_range()


def _whole_series(version: Version, width: int, asked: SpecifierSet | None) -> bool:
    """Whether the matrix asked for every release of ``version``'s series (``>=1.23,<2.2``
    holds all of 2.1.*; ``<2.1`` does not hold all of 2.*)."""
    if asked is None:
        return False
    series = SpecifierSet(f"=={_cut(version, width)}.*").to_range()
    return bool(series.is_subset(asked.to_range()))


def _next_series(version: Version, width: int) -> Version:
    """The first version of the series after ``version``'s at ``width`` components
    (1.2.5, width 2: 1.3)."""
    release = list(version.release[:width]) + [0] * max(0, width - len(version.release))
    release[-1] += 1
    return Version(".".join(str(p) for p in release))


def _cut(version: Version, width: int | None) -> str:
    if width is None:
        return str(version)
    return ".".join(str(p) for p in version.release[:width])


def _range(
    good: list[Version],
    bad: list[Version],
    next_above: Version | None,
    width: int | None,
    exact_next: bool,
) -> VersionRange:
    low, high = good[0], good[-1]
    result = SpecifierSet(f">={_cut(low, width)}").to_range()
    if next_above is not None:
        upper = f"<{_cut(next_above, width)}" if exact_next else f"<={high}"
        result &= SpecifierSet(upper).to_range()
    for hole in (v for v in bad if low < v < high):
        excluded = f"=={_cut(hole, width)}.*" if width else f"=={hole}"
        result -= SpecifierSet(excluded).to_range()
    return result


def _render(version_range: VersionRange) -> str:
    spec = version_range.to_specifier_set()
    if spec is None:  # pragma: no cover - our ranges are always one interval minus points
        raise AssertionError(f"no PEP 440 form for {version_range!r}")
    parts = sorted(
        spec, key=lambda s: (_OPERATOR_ORDER.get(s.operator, 9), Version(s.version.rstrip(".*")))
    )
    return ",".join(str(p) for p in parts)


def boundaries(
    compatible: Sequence[str], incompatible: Sequence[str], baseline: str | None
) -> tuple[str | None, str | None]:
    """The study's incompatible upgraded and downgraded versions around ``baseline``
    (default: the newest compatible version)."""
    good = sorted(Version(v) for v in compatible)
    bad = sorted(Version(v) for v in incompatible)
    if baseline is None:
        if not good:
            return None, None
        base = good[-1]
    else:
        base = Version(baseline)
    up = next((v for v in bad if v > base), None)
    down = next((v for v in reversed(bad) if v < base), None)
    return (str(up) if up else None, str(down) if down else None)


def project_passed(obs: Observation, ignored: set[str]) -> bool | None:
    """A cell counts as compatible when a version-related test passed and none failed, as
    incompatible when one failed; a cell where none ran tells nothing (None)."""
    if obs.status not in RAN:
        return None
    return combined(o for n, o in obs.tests.items() if n not in ignored)


def axis_range(
    axis: str,
    values: Sequence[str],
    observations: Sequence[Observation],
    verdict: Any,
    *,
    width: int | None,
    baseline: str | None = None,
    not_run: Sequence[str] = (),
    planned: Sequence[str] | None = None,
    complete: bool = False,
    dense: Sequence[tuple[str, str]] = (),
    newest: str | None = None,
    asked: SpecifierSet | None = None,
) -> AxisRange:
    """Classify each value of ``axis``: compatible when every considered cell passed.

    ``verdict(obs)`` is True (passed), False (failed) or None (does not count).
    ``planned`` (default ``values``) are the versions the bounds must not admit untested;
    ``complete``: no release lies between two neighbours of ``planned``; ``newest``: the
    newest release on the index, where an open upper bound would reach (None: unknown);
    ``asked``: the matrix's versions specifier (None for an explicit list).
    """
    planned = values if planned is None else planned
    seen: dict[str, list[bool]] = {v: [] for v in values}
    for obs in observations:
        result = verdict(obs)
        if result is not None and obs.values.get(axis) in seen:
            seen[obs.values[axis]].append(result)
    compatible = [v for v in values if seen[v] and all(seen[v])]
    incompatible = [v for v in values if seen[v] and not all(seen[v])]
    untested = [v for v in values if not seen[v]]
    up, down = boundaries(compatible, incompatible, baseline)
    return AxisRange(
        compatible=compatible,
        incompatible=incompatible,
        untested=untested,
        specifier=specifier_for(
            compatible, incompatible, width, planned, complete, dense, newest, asked
        ),
        upgrade_between=upgrade_gap(
            compatible, incompatible, planned, complete or bool(width), dense, up
        )
        if up
        else None,
        upgrade_boundary=up,
        downgrade_boundary=down,
        inferred=infer([v for v in untested if v in set(not_run)], compatible, incompatible),
    )


def infer(
    candidates: Sequence[str], compatible: Sequence[str], incompatible: Sequence[str]
) -> dict[str, Inferred]:
    """What a search strategy's untested versions would be if compatibility is monotone:
    a version between two tested ones with the same verdict shares it. Said as inferred,
    with the versions it rests on; nothing is inferred past the tested ends."""
    tested = sorted(
        [(Version(v), True, v) for v in compatible] + [(Version(v), False, v) for v in incompatible]
    )
    inferred: dict[str, Inferred] = {}
    for value in candidates:
        version = Version(value)
        below = [t for t in tested if t[0] < version]
        above = [t for t in tested if t[0] > version]
        if below and above and below[-1][1] == above[0][1]:
            between = [below[-1][2], above[0][2]]
            if below[-1][1]:
                inferred[value] = {"verdict": "compatible", "between": between}
            else:
                inferred[value] = {"verdict": "incompatible", "between": between}
    return inferred


def considered_cells(
    axis: str, observations: Sequence[Observation], ignored: set[str]
) -> list[Observation]:
    """Cells that tell about ``axis``: those whose other axes sit at viable values.

    A value is viable when some cell with it passed. Without this, a Python on which the
    project never works would make every framework version look incompatible.
    """
    ran = [o for o in observations if o.status in RAN]
    viable: dict[str, set[str]] = {}
    for obs in ran:
        if project_passed(obs, ignored):
            for name, value in obs.values.items():
                viable.setdefault(name, set()).add(value)
    others = {name for obs in ran for name in obs.values if name != axis}
    return [
        o
        for o in ran
        if all(name not in viable or o.values.get(name) in viable[name] for name in others)
    ]
