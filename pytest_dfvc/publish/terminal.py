"""Plain-text rendering of results for the terminal: the table, the ranges, the causes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from ..model import CauseGroup, CellJSON, DriftEntry, MatrixJSON, OutcomeJSON, RangeJSON
from ..text import cut
from ..verdicts.changes import change_lines
from ..verdicts.deprecations import risk_lines
from ..verdicts.tracing import trace_text

SYMBOLS = {
    "passed": ".",
    "failed": "F",
    "error": "E",
    "skipped": "s",
    "unavailable": "-",
    "flaky": "~",
    "other-package": "o",
}
# "o": the test failed because of another package and passes with it set back (culprit.py).
LEGEND = (
    ". passed  F failed  E error  s skipped  ~ flaky  o other pkg  - not installable  "
    "(blank: not run)"
)


def render_matrix(matrix: MatrixJSON, *, verbose: bool = False) -> list[str]:
    """The whole terminal report of one matrix; folded (tests that behave the same in every
    cell on one line, cells that did not run out of the table, long version lists cut)
    unless ``verbose``."""
    lines = [f"matrix {matrix['name']} ({len(matrix['cells'])} cells)", ""]
    lines += render_table(matrix["cells"], verbose=verbose)
    lines += ["", *render_ranges(matrix, verbose=verbose)]
    causes = render_causes(matrix.get("causes", []))
    if causes:
        lines += ["", "why cells are red:", *causes]
    flaky = render_flaky(matrix["cells"])
    if flaky:
        lines += ["", "flaky (failed, then passed when run again; counted neither way):", *flaky]
    declared = render_declared(matrix)
    if declared:
        lines += ["", "declared ranges:", *declared]
    drift = render_drift(matrix.get("drift", []))
    if drift:
        lines += ["", "behaviour drift (recorded values that changed):", *drift]
    news = change_lines(matrix.get("since_last_run"))
    if news:
        lines += ["", "since the last run:", *news]
    risks = risk_lines(matrix.get("risks", []))
    if risks:
        lines += ["", f"{RISKS_HEADING}:", *risks]
    return lines


RISKS_HEADING = (
    "upgrade risks (deprecations met on the newest versions that pass; a forecast, not a verdict)"
)


def render_flaky(cells: Sequence[CellJSON]) -> list[str]:
    """Each flaky test, where, and how its first run failed."""
    lines = []
    for cell in cells:
        for test in (t for t in cell["tests"] if t["outcome"] == "flaky"):
            cause = test.get("first_run", {}).get("cause")
            first = f"{cause.get('exception') or cause['category']}" if cause else "failed"
            message = cut(str(cause.get("message") or ""), 120) if cause else ""
            lines.append(
                f"  {test['nodeid']} · {cell['id']} · first run: {first} {message}".rstrip()
            )
    return lines


def render_declared(matrix: MatrixJSON) -> list[str]:
    """Violations first (they fail the run), then what the matrix's expect could say."""
    lines = []
    for v in matrix.get("violations", []):
        spec = ", ".join(f"{name}{s}" for name, s in v["declared"].items())
        why = v["cause"]["category"] if v["cause"] else "failed"
        where = f"fails in {v['cell']} ({why})"
        lines.append(f"  VIOLATION {v['nodeid']} {where}, inside its declared {spec} ({v['by']})")
    for note in matrix.get("declared", []):
        name, spec = note["package"], note["declared"]
        if note["fails_inside"]:
            lines.append(
                f"  {name}: declared {spec} but fails on {', '.join(note['fails_inside'])}"
            )
        if note["also_passes"]:
            widen = ", ".join(note["also_passes"])
            lines.append(f"  {name}: declared {spec} but also passes on {widen} (could widen)")
        if note["observed"] is None and not note["fails_inside"]:
            lines.append(f"  {name}: declared {spec}, but no version passed or was tested")
        elif not note["fails_inside"] and not note["also_passes"]:
            lines.append(f"  {name}: declared {spec}, observed {note['observed']}: consistent")
    return lines


def render_drift(entries: Sequence[DriftEntry]) -> list[str]:
    lines = []
    for entry in entries:
        lines.append(f"  {entry['nodeid']} [{entry['key']}]")
        for change in entry["changes"][:6]:
            held = ", ".join(f"{k} {v}" for k, v in change["with"].items())
            lines.append(
                f"      {change['axis']} {change['from']} -> {change['to']}: "
                f"{change['old']!r} -> {change['new']!r}" + (f"  ({held})" if held else "")
            )
    return lines


def test_ids(cells: Sequence[CellJSON]) -> list[str]:
    """Every test any cell ran, in first-seen order: the rows of every table."""
    seen: dict[str, None] = {}
    for cell in cells:
        for test in cell["tests"]:
            seen.setdefault(test["nodeid"], None)
    return list(seen)


def square(cell: CellJSON, nodeid: str) -> tuple[str, OutcomeJSON | None]:
    """One test in one cell: its outcome ("unavailable" when the cell was not installable,
    "" when it did not run there) and its record."""
    test = next((t for t in cell["tests"] if t["nodeid"] == nodeid), None)
    if test is not None:
        return test["outcome"], test
    return ("unavailable" if cell["status"] == "unavailable" else ""), None


@dataclass(frozen=True)
class Folded:
    """What a table shows: columns for the cells that ran tests (``hidden``: the others),
    rows for the tests that differ somewhere, and the tests with one outcome in every
    shown cell (``same``: ``passed`` or ``skipped`` -> their ids)."""

    cells: list[CellJSON]
    hidden: list[CellJSON]
    rows: list[str]
    same: dict[str, list[str]]


def fold(cells: Sequence[CellJSON], *, verbose: bool = False) -> Folded:
    """The table of the terminal and of report.md: every cell and test when ``verbose``."""
    ran = [c for c in cells if c["tests"]]
    shown = list(cells) if verbose or not ran else ran
    kept = {id(c) for c in shown}
    same: dict[str, list[str]] = {}
    rows = []
    for nodeid in test_ids(shown):
        outcomes = {square(cell, nodeid)[0] for cell in shown}
        if not verbose and len(shown) > 1 and outcomes in ({"passed"}, {"skipped"}):
            same.setdefault(outcomes.pop(), []).append(nodeid)
        else:
            rows.append(nodeid)
    return Folded(shown, [c for c in cells if id(c) not in kept], rows, same)


def render_table(cells: Sequence[CellJSON], *, verbose: bool = False) -> list[str]:
    """Tests down, cells across (numbered, keyed below), one symbol per outcome. Folded:
    columns only for cells that ran tests, and the tests whose row is the same in every
    one of them on one line ("84 tests pass in every cell")."""
    table = fold(cells, verbose=verbose)
    width = max([len("cell status"), *(len(n) for n in table.rows)])
    numbers = [str(i + 1) for i in range(len(table.cells))]
    col = max(len(n) for n in numbers) if numbers else 1
    lines = [" " * width + "  " + " ".join(n.rjust(col) for n in numbers)]
    for nodeid in table.rows:
        row = [SYMBOLS.get(square(cell, nodeid)[0], " ").rjust(col) for cell in table.cells]
        lines.append(nodeid.ljust(width) + "  " + " ".join(row))
    status_row = [SYMBOLS.get(_status_symbol(c), "?").rjust(col) for c in table.cells]
    lines.append("cell status".ljust(width) + "  " + " ".join(status_row))
    for outcome, names in table.same.items():
        one = len(names) == 1
        if outcome == "passed":
            verb = "passes" if one else "pass"
        else:
            verb = "is skipped" if one else "are skipped"
        lines.append(f"{len(names)} test{'' if one else 's'} {verb} in every cell that ran")
    lines.append(LEGEND)
    for number, cell in zip(numbers, table.cells):
        lines.append(f"  {number.rjust(col)}: {cell['id']}  {cell_status(cell)}")
    lines += _not_shown(table.hidden)
    return lines


def _status_symbol(cell: CellJSON) -> str:
    """The status row's outcome for a cell: a cell failed only by tests that errored (a
    module that failed to import) shows ``E`` as its test rows do; its status stays
    ``failed``, which the key below the table says."""
    outcomes = {t["outcome"] for t in cell["tests"]}
    if cell["status"] == "failed" and "failed" not in outcomes and "error" in outcomes:
        return "error"
    return str(cell["status"])


def _not_shown(cells: Sequence[CellJSON]) -> list[str]:
    """The cells that ran no test, by status and reason, their ids cut short."""
    groups: dict[str, list[str]] = {}
    for cell in cells:
        reason = cell_reason(cell)
        key = cell["status"] + (f": {reason}" if reason else "")
        groups.setdefault(key, []).append(cell["id"])
    return [f"  not in the table, {key}: {versions_text(ids)}" for key, ids in groups.items()]


def versions_text(values: Sequence[str], limit: int = 6) -> str:
    """``1.0, 1.1, 1.2``; a long list cut to its ends and its length: ``1.0.3, 1.0.4 …
    1.0.144 (142)``."""
    if len(values) <= limit:
        return ", ".join(values)
    return f"{values[0]}, {values[1]} … {values[-1]} ({len(values)})"


def cell_reason(cell: CellJSON) -> str:
    """Why a cell did not run its tests to a verdict ("" when it did)."""
    cause = cell["cause"]
    return cause.get("reason", "") if cause else ""


def cell_status(cell: CellJSON) -> str:
    """``passed``, with what a reader must not miss: the CUDA build it ran, a note such as
    "not a GPU pass", why no test ran, tests set apart as not version-related."""
    extra = [f"build {cell['build']}"] if cell.get("build") else []
    extra += [cell["note"]] if cell.get("note") else []
    cause = cell["cause"]
    if cell["status"] == "skipped" and cause:
        # Why it was left out: no test ran, the strategy did not need it, an exclude.
        extra.append(cell_reason(cell))
    if cell.get("set_apart"):
        count = len(cell["set_apart"])
        extra.append(f"{count} not version-related failure{'s' if count != 1 else ''} set apart")
    return str(cell["status"]) + (f" ({'; '.join(extra)})" if extra else "")


def render_ranges(matrix: MatrixJSON, *, verbose: bool = False) -> list[str]:
    """The project's range per axis, then the tests that carry a boundary (those that fail
    on some version tried); the tests that pass on every version tried are one line."""
    lines = ["compatible ranges:"]
    for axis, entry in matrix.get("ranges", {}).items():
        lines.append(f"  {axis}: {_range_text(entry, verbose)}")
        everywhere = 0
        shared: dict[str, list[str]] = {}
        for nodeid, test in entry.get("tests", {}).items():
            # A test some versions never ran (its module skipped or not collected there)
            # does not pass "on every version": it is shown with what it lacks.
            if test["incompatible"] or test.get("untested") or verbose:
                shared.setdefault(_range_text(test, verbose), []).append(nodeid)
            elif test["compatible"]:
                everywhere += 1
        # Tests with one range are one line ("22 tests: >=1.21,<2.0 …"), named with -v.
        for text, nodeids in shared.items():
            if len(nodeids) == 1:
                lines.append(f"      {nodeids[0]}: {text}")
                continue
            hint = "" if verbose else " (-v lists them)"
            lines.append(f"      {len(nodeids)} tests: {text}{hint}")
            if verbose:
                lines += [f"          {nodeid}" for nodeid in nodeids]
        if everywhere:
            count = f"{everywhere} test{'s' if everywhere != 1 else ''}"
            verb = "passes" if everywhere == 1 else "pass"
            lines.append(f"      {count} {verb} on every {axis} version tried (-v lists them)")
    ignored = matrix.get("not_version_related") or []
    if ignored:
        lines.append(
            "  fails on every version: not version-related (the same failure everywhere, for "
            "a cause no version explains; left out of the ranges):"
        )
        because = apart_because(matrix.get("causes", []))
        lines += [
            f"      {nodeid}" + (f" (because of {because[nodeid]})" if nodeid in because else "")
            for nodeid in ignored
        ]
    return lines


def apart_because(groups: Sequence[CauseGroup]) -> dict[str, str]:
    """The package that breaks each test set apart, where its cause names one that is no
    axis (``scikit-learn 1.3.2``, pinned beside every version tried)."""
    found: dict[str, str] = {}
    for group in groups:
        if group.get("set_apart") and group.get("distribution"):
            named = " ".join(str(group.get(k) or "") for k in ("distribution", "version"))
            for nodeid in group["tests"]:
                found[nodeid] = named.strip()
    return found


def _range_text(entry: RangeJSON, verbose: bool = False) -> str:
    spec = entry["specifier"]
    if spec is None:
        text = "none among the versions tested" if entry["incompatible"] else "nothing tested"
    else:
        text = spec or "any version tested"

    def listed(values: Sequence[str]) -> str:
        return ", ".join(values) if verbose else versions_text(values)

    details = []
    if entry["compatible"]:
        details.append("passes " + listed(entry["compatible"]))
    if entry["incompatible"]:
        details.append("fails " + listed(entry["incompatible"]))
    unavailable = set(entry.get("unavailable") or ())
    # A version that could not be installed is said so once, not also as untested.
    untested = [v for v in entry.get("untested") or () if v not in unavailable]
    if untested:
        details.append("untested " + listed(untested))
    gap = entry.get("upgrade_between")
    if gap:
        details.append(f"upgrade boundary between {gap[0]} and {gap[1]} (untested in between)")
    elif entry.get("upgrade_boundary"):
        details.append(f"upgrade boundary {entry['upgrade_boundary']}")
    if entry.get("downgrade_boundary"):
        details.append(f"downgrade boundary {entry['downgrade_boundary']}")
    if entry.get("unavailable"):
        details.append("not installable " + listed(entry["unavailable"]))
    details += _above(entry)
    return f"{text}" + (f"  ({'; '.join(details)})" if details else "")


def _above(entry: RangeJSON) -> list[str]:
    """What the upper bound rests on, when nothing failed above the newest pass: the
    newest release on the index, as of the day the plan listed it."""
    newest, day = entry.get("newest_release"), entry.get("as_of")
    if not newest or not day or not entry["compatible"] or entry.get("upgrade_boundary"):
        return []
    top = max(entry["compatible"], key=Version)
    if Version(newest) > Version(top):
        return [f"not run above {top}: the newest release is {newest} as of {day}"]
    return [f"{newest} is the newest release as of {day}"]


def render_causes(groups: Sequence[CauseGroup]) -> list[str]:
    """One entry per cause and API, with the tests and versions it shows up on, so the
    report reads "numpy.float — numpy 1.24.4 ... 2.1.3" rather than a list of cells. Tests
    set apart as not version-related come last, under their own heading."""
    lines = []
    for group in (g for g in groups if not g.get("set_apart")):
        lines += _group_lines(group)
    apart = [g for g in groups if g.get("set_apart")]
    if apart:
        lines.append("  fails on every version: not version-related")
        for group in apart:
            if group.get("distribution"):
                named = f"{group['distribution']} {group.get('version') or ''}".strip()
                lines.append(f"    because of {named}, beside every version tried:")
            lines += ["  " + line for line in _group_lines(group, label=False)]
    return lines


def _group_lines(group: CauseGroup, *, label: bool = True) -> list[str]:
    exception = group.get("exception") or ""
    message = group.get("message") or group.get("reason") or ""
    locations = group.get("locations") or ([group["location"]] if group.get("location") else [])
    where = f"at {locations[0]}" if locations else ""
    if len(locations) > 1:
        where += f" (and {len(locations) - 1} more line{'s' if len(locations) > 2 else ''})"
    trace = group.get("trace")
    details = [
        group.get("api") or "",
        trace_text(trace) if trace and trace.get("api") else "",
        f"{exception}: {message}" if exception else message,
        where,
    ]
    head = f"{group['category']}: " if label else ""
    lines = ["  " + head + " — ".join(d for d in details if d)]
    precursor = group.get("precursor")
    if precursor:
        message = cut(str(precursor["message"]).splitlines()[0], 200)
        tied = group.get("linked_by") == "warning"
        linked = " (the failure is tied to it by this warning)" if tied else ""
        lines.append(f"      warned in {precursor['version']}: {message}{linked}")
    if trace and trace.get("api"):
        lines.append(
            f"      traced: {trace['api']} gave {trace.get('was')} on {trace['passing']}, "
            f"{trace.get('now')} here (call {trace.get('call')} of {trace.get('calls')})"
        )
    companions = group.get("companions")
    if companions:
        shown = ", ".join(companions[:4]) + (
            f" and {len(companions) - 4} more" * (len(companions) > 4)
        )
        lines.append(f"      raised in what the release requires: {shown}")
    lines += _counterfactual_lines(group)
    if group.get("suggestion"):
        lines.append(f"      fix: {group['suggestion']}")
    lines.append("      " + _where(group))
    return lines


def _counterfactual_lines(group: CauseGroup) -> list[str]:
    """What the counterfactual cells showed: the package that broke the tests (they pass
    with it set back), or that the version is incompatible through other packages."""
    culprit, through = group.get("culprit"), group.get("through")
    if culprit:
        held = ", ".join(
            f"{n} {v['passing']} instead of {v['failing']}" for n, v in culprit["packages"].items()
        )
        how = "" if culprit["verified"] else " (narrowed by elimination)"
        return [
            f"      passes with {held}{how}: counts as compatible for the axis "
            f"(counterfactual cell {culprit['cell']})"
        ]
    if through:
        packages = ", ".join(through["packages"])
        return [f"      incompatible through {packages}: {through['reason']}"]
    return []


def _test_name(nodeid: str) -> str:
    """A test as a group lists it: without its file, with its class (``Baseline::test_peaks``:
    two classes' ``test_peaks`` are two tests)."""
    return nodeid.split("::", 1)[-1]


def _where(group: CauseGroup) -> str:
    tests = [_test_name(nodeid) for nodeid in group["tests"]]
    parts = []
    if tests:
        parts.append(
            ", ".join(tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
        )
    parts += [f"{axis} {_span(values)}" for axis, values in group["versions"].items()]
    count = len(group["cells"])
    parts.append(f"{count} cell{'s' if count != 1 else ''}")
    return " · ".join(parts)


def _span(values: list[str]) -> str:
    return ", ".join(values) if len(values) <= 3 else f"{values[0]} ... {values[-1]}"
