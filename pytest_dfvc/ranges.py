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

# Outcomes of a test that count for or against a version; "skipped" counts for neither.
GOOD = ("passed",)
BAD = ("failed", "error")
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
    inferred: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "inferred": self.inferred,
            "specifier": self.specifier,
            "compatible": self.compatible,
            "incompatible": self.incompatible,
            "untested": self.untested,
            "upgrade_boundary": self.upgrade_boundary,
            "downgrade_boundary": self.downgrade_boundary,
        }


def specifier_for(
    compatible: Iterable[str], incompatible: Iterable[str], width: int | None = None
) -> str | None:
    """The narrowest simple specifier admitting ``compatible`` and rejecting ``incompatible``.

    ``width`` rounds bounds to that many release components (2: ``>=1.19,<1.24`` from
    1.19.5 and 1.24.4), as a matrix of newest patches stands for whole minor series; it is
    dropped whenever rounding would admit a failing version. ``None`` if nothing passed.
    """
    good = sorted({Version(v) for v in compatible})
    bad = sorted({Version(v) for v in incompatible})
    if not good:
        return None
    for w in (width, None) if width else (None,):
        version_range = _range(good, bad, w)
        if all(v in version_range for v in good) and not any(v in version_range for v in bad):
            return _render(version_range, good, bad, w)
    raise AssertionError("an exact range always separates distinct versions")  # pragma: no cover


def _cut(version: Version, width: int | None) -> str:
    if width is None:
        return str(version)
    return ".".join(str(p) for p in version.release[:width])


def _range(good: list[Version], bad: list[Version], width: int | None) -> VersionRange:
    low, high = good[0], good[-1]
    result = SpecifierSet(f">={_cut(low, width)}").to_range()
    above = [v for v in bad if v > high]
    if above:
        result &= SpecifierSet(f"<{_cut(above[0], width)}").to_range()
    for hole in (v for v in bad if low < v < high):
        excluded = f"=={_cut(hole, width)}.*" if width else f"=={hole}"
        result -= SpecifierSet(excluded).to_range()
    return result


def _render(
    version_range: VersionRange, good: list[Version], bad: list[Version], width: int | None
) -> str:
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


def not_version_related(observations: Sequence[Observation]) -> list[str]:
    """Tests that failed in every cell that ran them (at least two): stale expectations,
    not version effects. They are kept out of the project's range, and reported."""
    verdicts: dict[str, list[bool]] = {}
    for obs in observations:
        for nodeid, outcome in obs.tests.items():
            if outcome in GOOD or outcome in BAD:
                verdicts.setdefault(nodeid, []).append(outcome in GOOD)
    everywhere = sorted(n for n, v in verdicts.items() if len(v) >= 2 and not any(v))
    # If every test always fails, nothing is version-related to tell apart: keep them all.
    return everywhere if len(everywhere) < len(verdicts) else []


def project_passed(obs: Observation, ignored: set[str]) -> bool:
    """A cell counts as compatible when every version-related test passed or was skipped."""
    counted = [o for n, o in obs.tests.items() if n not in ignored]
    return obs.status in ("passed", "failed") and not any(o in BAD for o in counted)


def axis_range(
    axis: str,
    values: Sequence[str],
    observations: Sequence[Observation],
    verdict: Any,
    *,
    width: int | None,
    baseline: str | None = None,
    not_run: Sequence[str] = (),
) -> AxisRange:
    """Classify each value of ``axis``: compatible when every considered cell passed.

    ``verdict(obs)`` is True (passed), False (failed) or None (does not count).
    """
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
        specifier=specifier_for(compatible, incompatible, width),
        upgrade_boundary=up,
        downgrade_boundary=down,
        inferred=infer([v for v in untested if v in set(not_run)], compatible, incompatible),
    )


def infer(
    candidates: Sequence[str], compatible: Sequence[str], incompatible: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """What a search strategy's untested versions would be if compatibility is monotone:
    a version between two tested ones with the same verdict shares it. Said as inferred,
    with the versions it rests on; nothing is inferred past the tested ends."""
    tested = sorted(
        [(Version(v), True, v) for v in compatible] + [(Version(v), False, v) for v in incompatible]
    )
    inferred: dict[str, dict[str, Any]] = {}
    for value in candidates:
        version = Version(value)
        below = [t for t in tested if t[0] < version]
        above = [t for t in tested if t[0] > version]
        if below and above and below[-1][1] == above[0][1]:
            verdict = "compatible" if below[-1][1] else "incompatible"
            inferred[value] = {"verdict": verdict, "between": [below[-1][2], above[0][2]]}
    return inferred


def considered_cells(
    axis: str, observations: Sequence[Observation], ignored: set[str]
) -> list[Observation]:
    """Cells that tell about ``axis``: those whose other axes sit at viable values.

    A value is viable when some cell with it passed. Without this, a Python on which the
    project never works would make every framework version look incompatible.
    """
    ran = [o for o in observations if o.status in ("passed", "failed")]
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
