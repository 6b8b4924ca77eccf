"""Plain-text rendering of results for the terminal: the table, the ranges, the causes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

SYMBOLS = {
    "passed": ".",
    "failed": "F",
    "error": "E",
    "skipped": "s",
    "unavailable": "-",
}
LEGEND = ". passed  F failed  E error  s skipped  - not installable  (blank: not run)"


def render_matrix(matrix: dict[str, Any]) -> list[str]:
    """The whole terminal report of one matrix."""
    lines = [f"matrix {matrix['name']} ({len(matrix['cells'])} cells)", ""]
    lines += render_table(matrix["cells"])
    lines += ["", *render_ranges(matrix)]
    causes = render_causes(matrix["cells"])
    if causes:
        lines += ["", "why cells are red:", *causes]
    return lines


def render_table(cells: Sequence[dict[str, Any]]) -> list[str]:
    """Tests down, cells across (numbered, keyed below), one symbol per outcome."""
    nodeids: list[str] = []
    for cell in cells:
        for test in cell["tests"]:
            if test["nodeid"] not in nodeids:
                nodeids.append(test["nodeid"])
    width = max([len("cell status"), *(len(n) for n in nodeids)])
    numbers = [str(i + 1) for i in range(len(cells))]
    col = max(len(n) for n in numbers) if numbers else 1
    header = " " * width + "  " + " ".join(n.rjust(col) for n in numbers)
    lines = [header]
    for nodeid in nodeids:
        row = []
        for cell in cells:
            outcome = next((t["outcome"] for t in cell["tests"] if t["nodeid"] == nodeid), None)
            symbol = (
                SYMBOLS.get(outcome, "?")
                if outcome
                else ("-" if cell["status"] == "unavailable" else " ")
            )
            row.append(symbol.rjust(col))
        lines.append(nodeid.ljust(width) + "  " + " ".join(row))
    status_row = [SYMBOLS.get(c["status"], "?").rjust(col) for c in cells]
    lines.append("cell status".ljust(width) + "  " + " ".join(status_row))
    lines.append(LEGEND)
    for number, cell in zip(numbers, cells):
        lines.append(f"  {number.rjust(col)}: {cell['id']}  {cell['status']}")
    return lines


def render_ranges(matrix: dict[str, Any]) -> list[str]:
    lines = ["compatible ranges:"]
    for axis, entry in matrix.get("ranges", {}).items():
        lines.append(f"  {axis}: {_range_text(entry)}")
        for nodeid, test in entry.get("tests", {}).items():
            if (
                test["specifier"] != entry["specifier"]
                or test["incompatible"] != entry["incompatible"]
            ):
                lines.append(f"      {nodeid}: {_range_text(test)}")
    ignored = matrix.get("not_version_related") or []
    if ignored:
        lines.append(
            "  not version-related (failed on every version tried, left out of the ranges):"
        )
        lines += [f"      {nodeid}" for nodeid in ignored]
    return lines


def _range_text(entry: dict[str, Any]) -> str:
    spec = entry["specifier"]
    if spec is None:
        text = "no compatible version" if entry["incompatible"] else "nothing tested"
    else:
        text = spec or "any version tested"
    details = []
    if entry["compatible"]:
        details.append("passes " + ", ".join(entry["compatible"]))
    if entry["incompatible"]:
        details.append("fails " + ", ".join(entry["incompatible"]))
    if entry.get("untested"):
        details.append("untested " + ", ".join(entry["untested"]))
    if entry.get("upgrade_boundary"):
        details.append(f"upgrade boundary {entry['upgrade_boundary']}")
    if entry.get("downgrade_boundary"):
        details.append(f"downgrade boundary {entry['downgrade_boundary']}")
    if entry.get("unavailable"):
        details.append("not installable " + ", ".join(entry["unavailable"]))
    return f"{text}" + (f"  ({'; '.join(details)})" if details else "")


def render_causes(cells: Sequence[dict[str, Any]]) -> list[str]:
    """Failures grouped by cause and API, each with the versions it shows up on, so the
    report reads "numpy.float missing on numpy 1.24.4 ... 2.1.3" rather than a list of cells."""
    groups: dict[tuple[str, ...], list[tuple[dict[str, Any], str | None]]] = {}
    for cell in cells:
        if cell["status"] in ("unavailable", "error") and cell.get("cause"):
            cell_key: tuple[str, ...] = (cell["cause"]["category"], cell["cause"]["reason"])
            groups.setdefault(cell_key, []).append((cell, None))
        for test in cell["tests"]:
            cause = test.get("cause")
            if cause:
                groups.setdefault(_cause_key(cause), []).append((cell, test["nodeid"]))
    lines = []
    for key, where in groups.items():
        category, *details = key
        lines.append(f"  {category}: " + " — ".join(d for d in details if d))
        lines.append("      " + _where(where))
    return lines


def _cause_key(cause: dict[str, Any]) -> tuple[str, ...]:
    exception = cause.get("exception") or ""
    message = cause.get("message") or ""
    return (
        cause["category"],
        cause.get("api") or "",
        f"{exception}: {message}" if message else exception,
        f"at {cause['location']}" if cause.get("location") else "",
    )


def _where(items: list[tuple[dict[str, Any], str | None]]) -> str:
    """Which tests, and which values of each axis, a group of failures covers."""
    cells = {cell["id"]: cell for cell, _ in items}.values()
    tests = sorted({nodeid.rsplit("::", 1)[-1] for _, nodeid in items if nodeid})
    axes: dict[str, list[str]] = {}
    for cell in cells:
        python = ".".join(str(cell["python"]).split(".")[:2])
        for axis, value in (*cell["packages"].items(), ("python", python)):
            if value not in axes.setdefault(axis, []):
                axes[axis].append(value)
    parts = []
    if tests:
        shown = ", ".join(tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
        parts.append(shown)
    parts += [f"{axis} {_span(values)}" for axis, values in axes.items()]
    count = len(cells)
    parts.append(f"{count} cell{'s' if count != 1 else ''}")
    return " · ".join(parts)


def _span(values: list[str]) -> str:
    ordered = sorted(values, key=_version_key)
    return ", ".join(ordered) if len(ordered) <= 3 else f"{ordered[0]} ... {ordered[-1]}"


def _version_key(value: str) -> tuple[Any, ...]:
    try:
        return (0, Version(value))
    except InvalidVersion:
        return (1, value)
