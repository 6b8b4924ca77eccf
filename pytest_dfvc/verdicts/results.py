"""The results file (schema 1): the one module that writes and reads it.

Cells turn into JSON here, failing tests get their causes, modules that failed to import
count against every test they hold, and each matrix gets its ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..index.builds import build_of
from ..index.interpreters import minor_key, python_minor
from ..model import (
    CauseJSON,
    CellJSON,
    Companion,
    DeclaredCheck,
    MatrixJSON,
    OutcomeJSON,
    RangeJSON,
    Recorded,
    Verdict,
    Violation,
    WarningJSON,
    failing,
    verdict_of,
)
from ..plan.cell import KNOWN_PYTHONS, Cell, MatrixPlan
from ..records import KIND_ENV, KIND_TEST, KIND_VALUE, KIND_WARNING, CellRun, Record, of_kind
from ..rules import Rule
from ..vocabulary import Status
from .causes import cause_groups
from .deprecations import kept_warning, link_precursors, upgrade_risks
from .diagnose import diagnose
from .drift import DEFAULT_ATOL, DEFAULT_RTOL, drift
from .evidence import settle
from .judge import CellOutcome
from .ranges import Observation, axis_range, considered_cells, project_passed

# --- one cell --------------------------------------------------------------------------


def cell_json(
    cell: Cell,
    status: Status,
    records: Sequence[Record],
    *,
    cause: CauseJSON | None = None,
    duration: float = 0.0,
    log: str | None = None,
    rules: Sequence[Rule] = (),
) -> CellJSON:
    """A cell of the results file from the recorder's lines; ``rules`` are tried before
    the built-in diagnosis rules."""
    env = next(iter(of_kind(records, KIND_ENV)), {})
    resolved: dict[str, str] = dict(env.get("distributions", {}))
    top_level: dict[str, str] = dict(env.get("top_level", {}))
    frameworks = {str(canonicalize_name(n)): v for n, v in cell.packages}
    brought = companions(env.get("requires", {}), resolved)
    values: dict[str, Recorded] = {}
    for r in of_kind(records, KIND_VALUE):
        values.setdefault(r["nodeid"], {})[r["key"]] = r["value"]
    warned = _warnings_by_test(records)
    tests = [
        _test_json(
            r,
            frameworks,
            top_level,
            resolved,
            rules,
            values.get(r["nodeid"]),
            bool(cell.exclude_newer),
            brought,
        )
        for r in of_kind(records, KIND_TEST)
    ]
    for test in tests:
        # Collection-time warnings (a module that uses a deprecated name when imported)
        # count for each of the module's tests.
        found = warned.get(test["nodeid"], []) + warned.get(test["nodeid"].split("::")[0], [])
        if found:
            test["warnings"] = found
    data: CellJSON = {
        "id": cell.id,
        "python": env.get("python", cell.python),
        "packages": dict(cell.packages),
        "cuda": cell.cuda,
        "status": status,
        "cause": cause.copy() if cause else None,
        "resolved": {k: resolved[k] for k in sorted(resolved)},
        "tests": tests,
        "duration": round(duration, 3),
    }
    if cell.exclude_newer:
        # The era the cell resolved as of (exclude-newer = "release").
        data["exclude_newer"] = cell.exclude_newer
    if cell.cuda and resolved:
        # What was installed, which may say more than the variant's name (cu12 -> cu124).
        build = build_of(resolved)
        data["build"] = build.variant if build else None
    if log:
        data["log"] = log
    if cell.held:
        data["held"] = dict(cell.held)
    if env.get("conflicts"):
        data["conflicts"] = list(env["conflicts"])
    if env.get("requires"):
        data["requires"] = {k: list(v) for k, v in env["requires"].items()}
    return data


def companions(
    requires: Mapping[str, Sequence[str]], resolved: Mapping[str, str]
) -> dict[str, Companion]:
    """The distributions the cell's framework releases require at the major installed
    (``keras>=3.0.0`` with keras 3.6.0; ``numpy>=1.22.4`` with numpy 2.0.2 is not: numpy
    went to its new major on its own), from what the recorder read in the cell."""
    found: dict[str, Companion] = {}
    for framework, lines in sorted(requires.items()):
        for line in lines:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            name = str(canonicalize_name(requirement.name))
            have = resolved.get(name)
            if have is None or name in found or not _asks_for_major(requirement, have):
                continue
            found[name] = {
                "distribution": name,
                "version": have,
                "required_by": f"{framework} {resolved.get(framework, '')}".strip(),
                "requires": f"{requirement.name}{requirement.specifier}",
            }
    return found


def _asks_for_major(requirement: Requirement, have: str) -> bool:
    """Whether a lower bound of the requirement lies in the installed version's major."""
    try:
        major = Version(have).major
    except InvalidVersion:
        return False
    for spec in requirement.specifier:
        if spec.operator not in (">=", ">", "==", "~=", "==="):
            continue
        try:
            bound = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:
            continue
        if bound.major == major:
            return True
    return False


def _warnings_by_test(records: Sequence[Record]) -> dict[str, list[WarningJSON]]:
    """The recorder's warnings that are evidence of a change, by test node id (or, for a
    collection warning, by the module file it points at)."""
    found: dict[str, list[WarningJSON]] = {}
    for r in records:
        if r.get("kind") != KIND_WARNING:
            continue
        warning = kept_warning(r)
        if warning is None:
            continue
        key = r.get("nodeid") or str(r.get("location") or "").rsplit(":", 1)[0]
        if warning not in found.setdefault(key, []):
            found[key].append(warning)
    return found


def _test_json(
    record: Record,
    frameworks: Mapping[str, str],
    top_level: Mapping[str, str],
    resolved: Mapping[str, str],
    rules: Sequence[Rule],
    values: Recorded | None,
    in_era: bool,
    brought: Mapping[str, Companion],
) -> OutcomeJSON:
    test: OutcomeJSON = {"nodeid": record["nodeid"], "outcome": record["outcome"]}
    if values:
        test["records"] = values
    if record.get("declared"):
        test["declared"] = record["declared"]
        test["inside"] = bool(record.get("inside"))
    if record.get("when") == "collect":
        test["collect_error" if record["outcome"] == "error" else "collect_skip"] = True
    if failing(record["outcome"]):
        test["cause"] = diagnose(
            record.get("exception") or {},
            frameworks=frameworks,
            top_level=top_level,
            resolved=resolved,
            rules=rules,
            in_era=in_era,
            companions=brought,
        )
    elif record["outcome"] == "skipped" and record.get("reason"):
        test["reason"] = record["reason"]
    if "duration" in record:
        test["duration"] = record["duration"]
    if isinstance(record.get("calls"), list):
        test["calls"] = record["calls"]
        test["calls_dropped"] = int(record.get("calls_dropped") or 0)
    return test


def outcome_json(cell: Cell, ran: CellRun, outcome: CellOutcome, rules: Sequence[Rule]) -> CellJSON:
    """A cell that ran (or was stopped before its tests): what its run left, as judged."""
    data = cell_json(
        cell,
        outcome.status,
        outcome.records,
        cause=outcome.cause.to_json() if outcome.cause else None,
        duration=ran.duration,
        log=ran.log,
        rules=rules,
    )
    if ran.seconds:
        data["seconds"] = dict(ran.seconds)
    if ran.metadata_fallback:
        data["metadata_fallback"] = ran.metadata_fallback
    return data


def planned_cell_json(cell: Cell) -> CellJSON:
    """A cell that was never run (excluded, no interpreter)."""
    cause = cell.cause.to_json() if cell.cause else None
    return cell_json(cell, cell.status or "skipped", [], cause=cause)


# --- one matrix ------------------------------------------------------------------------


def observations(plan: MatrixPlan, cells: Sequence[CellJSON]) -> list[Observation]:
    by_id = {c.id: c for c in plan.cells}
    found = []
    for data in cells:
        cell = by_id.get(data["id"])
        if cell is None:
            continue
        values = {"python": cell.python, **dict(cell.packages)}
        if cell.cuda:
            values["cuda"] = cell.cuda
        tests = {t["nodeid"]: t["outcome"] for t in data["tests"]}
        found.append(Observation(values=values, status=data["status"], tests=tests))
    return found


@dataclass(frozen=True)
class _Axis:
    """One axis as the ranges see it: its tested values, and the versions its bounds must
    not admit untested (every CPython minor between the ends, for Python)."""

    name: str
    values: Sequence[str]
    width: int | None
    baseline: str | None
    planned: Sequence[str]
    complete: bool
    dense: Sequence[tuple[str, str]] = ()
    # The newest release on the index (the newest CPython minor known, for Python): an
    # open upper bound only when the newest pass is it.
    newest: str | None = None
    asked: SpecifierSet | None = None


def _axes(plan: MatrixPlan) -> list[_Axis]:
    axes = [
        _Axis(
            axis.name,
            plan.versions[axis.name],
            axis.width,
            axis.baseline,
            plan.versions[axis.name],
            # Every release in the range was planned: neighbours have nothing in between.
            complete=isinstance(axis.versions, SpecifierSet) and axis.select == "all",
            dense=plan.dense.get(axis.name, ()),
            newest=plan.newest.get(axis.name),
            asked=axis.versions if isinstance(axis.versions, SpecifierSet) else None,
        )
        for axis in plan.matrix.packages
    ]
    pythons = plan.pythons
    minors: list[str] = []
    if pythons:
        low, high = min(pythons, key=minor_key), max(pythons, key=minor_key)
        # And the minor after the newest: nobody ran it, so the bound stops below it.
        minors = [m for m in KNOWN_PYTHONS if minor_key(low) <= minor_key(m)]
        minors = minors[: len([m for m in minors if minor_key(m) <= minor_key(high)]) + 1]
    axes.append(_Axis("python", pythons, None, None, minors, True, newest=KNOWN_PYTHONS[-1]))
    return axes


def matrix_ranges(
    plan: MatrixPlan, cells: Sequence[CellJSON], ignored: set[str]
) -> dict[str, RangeJSON]:
    """Ranges per package and for Python, for the project and for each test, from settled
    cells (``evidence.settle``); ``ignored`` are the tests set apart as not version-related."""
    obs = observations(plan, cells)
    nodeids = sorted({n for o in obs for n in o.tests})
    ranges: dict[str, RangeJSON] = {}
    for axis in _axes(plan):
        considered = considered_cells(axis.name, obs, ignored)
        not_run = _left_out_by_strategy(axis.name, axis.values, cells, plan)

        entry = _axis_json(axis, considered, lambda o: project_passed(o, ignored), not_run)
        entry["unavailable"] = _only_unavailable(axis.name, axis.values, obs)
        if axis.name in plan.newest and plan.listed_on:
            # What an open upper bound rests on: the newest release, on the day it was listed.
            entry["newest_release"] = plan.newest[axis.name]
            entry["as_of"] = plan.listed_on
        entry["tests"] = {
            nodeid: _axis_json(axis, considered, _test_verdict(nodeid), not_run)
            for nodeid in nodeids
        }
        ranges[axis.name] = entry
    return ranges


def _axis_json(
    axis: _Axis,
    considered: Sequence[Observation],
    verdict: Callable[[Observation], Verdict],
    not_run: Sequence[str],
) -> RangeJSON:
    return axis_range(
        axis.name,
        axis.values,
        considered,
        verdict,
        width=axis.width,
        baseline=axis.baseline,
        not_run=not_run,
        planned=axis.planned,
        complete=axis.complete,
        dense=axis.dense,
        newest=axis.newest,
        asked=axis.asked,
    ).to_json()


def _left_out_by_strategy(
    axis: str, values: Sequence[str], cells: Sequence[CellJSON], plan: MatrixPlan
) -> list[str]:
    """Values of ``axis`` whose every cell the strategy chose not to run."""
    by_value: dict[str, list[bool]] = {}
    for cell in cells:
        value = _axis_value(cell, axis)
        cause = cell["cause"]
        skipped = (
            cell["status"] == "skipped" and cause is not None and cause["category"] == "strategy"
        )
        by_value.setdefault(value, []).append(skipped)
    return [v for v in values if by_value.get(v) and all(by_value[v])]


def _axis_value(cell: CellJSON, axis: str) -> str:
    if axis == "python":
        return python_minor(cell["python"])
    if axis == "cuda":
        return str(cell.get("cuda"))
    return str(cell["packages"].get(axis))


def _test_verdict(nodeid: str) -> Callable[[Observation], Verdict]:
    return lambda obs: verdict_of(obs.tests.get(nodeid))


def _only_unavailable(axis: str, values: Sequence[str], obs: Sequence[Observation]) -> list[str]:
    statuses: dict[str, set[str]] = {}
    for o in obs:
        if axis in o.values:
            statuses.setdefault(o.values[axis], set()).add(o.status)
    return [v for v in values if statuses.get(v) == {"unavailable"}]


def violations(plan: MatrixPlan, cells: Sequence[CellJSON], ignored: set[str]) -> list[Violation]:
    """Failures inside a declared range: a test's ``@pytest.mark.dfvc`` range, or the
    matrix's ``expect`` (leaving out tests that fail on every version)."""
    expects = {a.name: a.expect for a in plan.matrix.packages if a.expect is not None}
    found: list[Violation] = []
    for cell in cells:
        pins = cell["packages"]
        inside_expect = bool(expects) and all(
            spec.contains(pins[name], prereleases=True) for name, spec in expects.items()
        )
        for test in cell["tests"]:
            if not failing(test["outcome"]):
                continue
            violation: Violation = {
                "nodeid": test["nodeid"],
                "cell": cell["id"],
                "declared": test.get("declared", {}),
                "by": "marker",
                "cause": test.get("cause"),
            }
            if test.get("inside"):
                found.append(violation)
            elif inside_expect and test["nodeid"] not in ignored:
                declared = {n: str(s) for n, s in expects.items()}
                found.append({**violation, "declared": declared, "by": "expect"})
    return found


def declared_vs_observed(plan: MatrixPlan, ranges: Mapping[str, RangeJSON]) -> list[DeclaredCheck]:
    """The matrix's ``expect`` against what was observed: versions that pass outside it
    (the claim could widen) and versions that fail inside it (violations)."""
    notes: list[DeclaredCheck] = []
    for axis in plan.matrix.packages:
        if axis.expect is None or axis.name not in ranges:
            continue
        observed = ranges[axis.name]
        widen = [v for v in observed["compatible"] if not axis.expect.contains(v, prereleases=True)]
        inside = [v for v in observed["incompatible"] if axis.expect.contains(v, prereleases=True)]
        notes.append(
            {
                "package": axis.name,
                "declared": str(axis.expect),
                "observed": observed["specifier"],
                "also_passes": widen,
                "fails_inside": inside,
            }
        )
    return notes


def matrix_json(
    plan: MatrixPlan,
    cells: Sequence[CellJSON],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> MatrixJSON:
    """A matrix of the results file: its cells, in plan order, ranges, causes, declared
    ranges checked, and drift."""
    order = {c.id: i for i, c in enumerate(plan.cells)}
    ordered = sorted(cells, key=lambda c: order.get(c["id"], len(order)))
    ignored = settle(ordered, plan.versions)
    ranges = matrix_ranges(plan, ordered, set(ignored))
    link_precursors(ordered, plan.versions)
    axes = [a.name for a in plan.matrix.packages] + ["python"]
    return {
        "name": plan.matrix.name,
        "path": str(plan.matrix.path),
        "cells": ordered,
        "ranges": ranges,
        "not_version_related": ignored,
        "causes": cause_groups(ordered, set(ignored)),
        "violations": violations(plan, ordered, set(ignored)),
        "declared": declared_vs_observed(plan, ranges),
        "drift": drift(ordered, axes, rtol=rtol, atol=atol),
        "risks": upgrade_risks(ordered, plan.versions),
    }
