"""Behaviour drift: a test's recorded values compared across cells.

A version change can change results without failing anything (numpy 2's promotion rules,
a converter that returns a different model). Values recorded with ``dfvc_record`` are
compared along each package axis, the other axes held fixed; numbers within a relative and
absolute tolerance count as equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

from ..index.interpreters import python_minor
from ..model import CellJSON, DriftChange, DriftEntry, Recorded

DEFAULT_RTOL = 1e-9
DEFAULT_ATOL = 0.0


def same(a: Any, b: Any, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """Equal as recorded values (``recorder.summarise``'s forms): integers exactly, floats
    within tolerance (an integer beside a float too), lists and dicts item by item, sets and
    arrays as their tagged structures (an array's shape and dtype exactly), a large value's
    summary by digest, or else by length and numbers within tolerance."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (
            isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) == set(b) == {"summary"}:
            return _same_summary(a["summary"], b["summary"], rtol, atol)
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol=rtol, atol=atol) for k in a)
    return bool(a == b)


def _same_summary(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Two large values: equal digests, or the same length and numbers whose range and
    mean agree within tolerance (float noise changes a digest, not a result)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return bool(a == b)
    if a.get("digest") == b.get("digest"):
        return True
    stats = ("min", "max", "mean")
    if a.get("length") != b.get("length") or not all(k in a and k in b for k in stats):
        return False
    return all(same(a[k], b[k], rtol=rtol, atol=atol) for k in stats)


def drift(
    cells: Sequence[CellJSON],
    axes: Sequence[str],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> list[DriftEntry]:
    """One entry per (test, key) whose value differs between cells: every cell's value and,
    along each package axis, where it changed (from which version to which)."""
    values: dict[tuple[str, str], Recorded] = {}
    placement: dict[str, dict[str, str]] = {}
    for cell in cells:
        placement[cell["id"]] = {**cell["packages"], "python": python_minor(cell["python"])}
        for test in cell["tests"]:
            for key, value in (test.get("records") or {}).items():
                values.setdefault((test["nodeid"], key), {})[cell["id"]] = value
    found: list[DriftEntry] = []
    for (nodeid, key), by_cell in values.items():
        distinct: list[Any] = []
        for value in by_cell.values():
            if not any(same(value, d, rtol=rtol, atol=atol) for d in distinct):
                distinct.append(value)
        if len(distinct) < 2:
            continue
        found.append(
            {
                "nodeid": nodeid,
                "key": key,
                "values": by_cell,
                "changes": _changes(by_cell, placement, axes, rtol, atol),
            }
        )
    return found


def _changes(
    by_cell: Mapping[str, Any],
    placement: Mapping[str, Mapping[str, str]],
    axes: Sequence[str],
    rtol: float,
    atol: float,
) -> list[DriftChange]:
    changes: list[DriftChange] = []
    for axis in axes:
        lines: dict[tuple[tuple[str, str], ...], list[tuple[Any, str]]] = {}
        for cell_id in by_cell:
            where = placement[cell_id]
            others = tuple(sorted((k, v) for k, v in where.items() if k != axis))
            lines.setdefault(others, []).append((_key(where[axis]), cell_id))
        for others, members in lines.items():
            members.sort()
            for (_, before), (_, after) in zip(members, members[1:]):
                if not same(by_cell[before], by_cell[after], rtol=rtol, atol=atol):
                    changes.append(
                        {
                            "axis": axis,
                            "from": placement[before][axis],
                            "to": placement[after][axis],
                            "old": by_cell[before],
                            "new": by_cell[after],
                            "with": dict(others),
                        }
                    )
    return changes


def _key(value: str) -> tuple[int, Any]:
    try:
        return (0, Version(value))
    except InvalidVersion:
        return (1, value)
