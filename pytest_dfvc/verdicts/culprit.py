"""Which package broke it: counterfactual cells.

A pass on version P of an axis and a failure on the next version F is a correlation; it is
evidence against F only when nothing else that changed between the two cells explains it.
Era resolution or a floating requirement can bring another package beside F (a scipy that
removed ``pinv2``), and then that package broke the test, not F. So where the two cells'
resolved sets differ in packages besides the axis, the failing tests run once more in F's
environment with those packages set back to P's versions: a counterfactual cell.

- They pass: the culprit is among the packages set back. Halving the set narrows it (at most
  ⌈log2 n⌉ + 1 cells for n packages), and F counts as compatible on those tests, from that
  passing run: the outcome ``other-package``, the culprit in the cause.
- They still fail: F's own change is confirmed.
- The packages set back do not install beside F (their own requirements forbid F): F is
  incompatible *through* them, a verdict of its own.

Pure functions over the results' cells; the scheduler runs the cells ``explain`` asks for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..model import (
    RAN,
    CellJSON,
    Counterfactual,
    Culprit,
    OutcomeJSON,
    Through,
    copy_cells,
    failing,
)
from ..plan.cell import Cell
from .evidence import along_lines, failure_signature, flips, status_from_tests, verdicts

Finding = Literal["culprit", "axis", "through", "unknown"]

# Each test's failure signature (``evidence.failure_signature``), by node id.
Shapes = tuple[tuple[str, tuple[str, str, str]], ...]


@dataclass(frozen=True)
class Boundary:
    """A passing and a failing cell next to each other on a line, the tests that pass on
    one and fail on the other, and the packages besides the axes whose versions differ:
    name -> (version where the tests passed, version in the failing cell)."""

    failing: str
    passing: str
    nodeids: tuple[str, ...]
    changed: tuple[tuple[str, str, str], ...]
    # The culprit that made the passing side pass (its tests passed with it set back), or
    # the package the passing side is incompatible through: tried first, alone, as the
    # same package most likely breaks the next version too.
    hint: tuple[str, ...] = ()
    # Changed packages the failures name (their cause's distribution): first in the
    # halving order, so the halves that hold them are the ones run.
    named: tuple[str, ...] = ()
    # How each test failed in the failing cell (``evidence.failure_signature``): a
    # counterfactual cell failing otherwise, because of a package it set back, shows that
    # package cannot be set back there.
    shapes: Shapes = ()
    # Packages the failures name that the failing release's own requirements moved, with
    # those requirements (``torch 2.6.0 requires triton==3.2.0``): incompatible through
    # them, known without a run.
    required: tuple[tuple[str, str], ...] = ()

    @property
    def held(self) -> dict[str, str]:
        """Every changed package set back to where the tests passed."""
        return {name: passing for name, passing, _ in self.changed}


@dataclass(frozen=True)
class Explanation:
    """What the counterfactual cells of one boundary showed."""

    boundary: Boundary
    probes: tuple[CellJSON, ...]
    # "culprit": passed with packages set back; "axis": still failed; "through": the
    # packages set back do not install beside the failing version (or fail because of
    # themselves there); "unknown": a run ended in error, and nothing is claimed.
    finding: Finding
    culprit: tuple[str, ...] = ()
    verified: bool = False
    # The tests that passed with the packages set back, and the run they passed in.
    passed: tuple[str, ...] = ()
    deciding: str = ""


def boundaries(
    cells: Sequence[CellJSON], lines: Iterable[Sequence[str]], axes: Mapping[str, Sequence[str]]
) -> list[Boundary]:
    """The boundaries whose two cells differ in more than the axis and that no
    counterfactual cell explained yet. ``lines``: the cell ids along each line, in order."""
    judged = verdicts(cells, axes)
    by_id = {c["id"]: c for c in cells}
    pairs: dict[tuple[str, str], set[str]] = {}
    # A failure further along a line of failures, with the last pass before it: the
    # release's own requirements may have moved a package there too.
    further: dict[tuple[str, str], set[str]] = {}
    for test, seen in along_lines(judged, lines):
        for pair in flips(seen):
            pairs.setdefault(pair, set()).add(test)
        last = None
        for c, ok in seen:
            if ok:
                last = c
            elif last is not None:
                further.setdefault((c, last), set()).add(test)
    axis_names = {canonicalize_name(n) for n in axes}
    found = []
    for (failed, passing), tests in sorted(pairs.items()):
        cell = by_id[failed]
        if cell["status"] not in RAN or any(
            c["against"] == passing for c in cell.get("counterfactuals", [])
        ):
            continue
        nodeids = _failing_nodeids(cell, tests)
        environment, hint = _passing_environment(by_id[passing], tests)
        forced = _forced(cell, environment)
        moved = _required(cell, passing, nodeids, environment, forced, axis_names)
        if moved is not None:
            found.append(moved)
            continue
        changed = _changed(environment, cell["resolved"], axis_names, forced)
        if nodeids and changed:
            names = {n for n, _, _ in changed}
            named = _named(cell, names)
            # Tried alone first: the culprit of the version before, else the package the
            # failures name (``scipy.linalg.pinv2`` names scipy): one cell when right.
            hint = next((h for h in (hint, named) if h and set(h) < names), ())
            shapes = _shapes(cell, nodeids)
            found.append(Boundary(failed, passing, nodeids, changed, hint, named, shapes))
    for (failed, passing), tests in sorted(further.items()):
        if (failed, passing) in pairs or by_id[failed]["status"] not in RAN:
            continue
        cell = by_id[failed]
        environment, _ = _passing_environment(by_id[passing], tests)
        nodeids = _failing_nodeids(cell, tests)
        moved = _required(
            cell, passing, nodeids, environment, _forced(cell, environment), axis_names
        )
        if moved is not None:
            found.append(moved)
    return found + _after_through(by_id, lines, axis_names)


def _required(
    cell: CellJSON,
    passing: str,
    nodeids: tuple[str, ...],
    environment: Mapping[str, str],
    forced: Mapping[str, str],
    axes: Collection[str],
) -> Boundary | None:
    """The boundary of the failures that name a package the failing release's own
    requirements moved (``_forced``): incompatible through it, without a run."""
    required = tuple((n, forced[n]) for n in _named(cell, forced))
    if not nodeids or not required:
        return None
    moved = _changed(environment, cell["resolved"], axes)
    changed = tuple(c for c in moved if canonicalize_name(c[0]) in dict(required))
    return Boundary(cell["id"], passing, nodeids, changed, required=required)


def _shapes(cell: CellJSON, nodeids: Collection[str]) -> Shapes:
    return tuple(
        (t["nodeid"], failure_signature(t)) for t in cell["tests"] if t["nodeid"] in nodeids
    )


def _named(cell: CellJSON, names: Collection[str]) -> tuple[str, ...]:
    """The changed packages the cell's failures name as their cause's distribution (or
    the companion they were raised in)."""
    causes = [t.get("cause", {}) for t in cell["tests"] if t["outcome"] in ("failed", "error")]
    named = {str(c.get("distribution") or "") for c in causes}
    named |= {str(c["companion"]["distribution"]) for c in causes if c.get("companion")}
    return tuple(sorted(n for n in names if n in named))


def _after_through(
    cells: Mapping[str, CellJSON], lines: Iterable[Sequence[str]], axes: Collection[str]
) -> list[Boundary]:
    """A version incompatible through a package, and the next version along the line
    failing the same tests beside that package at another version: asked once, with the
    package set back as before, so its failure does not read "constrain the package"."""
    found = []
    for line in lines:
        ran = [cells[c] for c in line if c in cells and cells[c]["status"] in RAN]
        for before, after in zip(ran, ran[1:]):
            if any(c["against"] == before["id"] for c in after.get("counterfactuals", [])):
                continue
            probes = {c["id"]: c for c in before.get("counterfactuals", [])}
            # The tests incompatible through packages, by the cell that showed it.
            by_probe: dict[str, set[str]] = {}
            for test in before["tests"]:
                through = test.get("cause", {}).get("through")
                if through and through["cell"] in probes:
                    by_probe.setdefault(through["cell"], set()).add(test["nodeid"])
            for probe_id, tests in sorted(by_probe.items()):
                probe, nodeids = probes[probe_id], _failing_nodeids(after, tests)
                through = next(
                    t["cause"]["through"] for t in before["tests"] if t["nodeid"] in tests
                )
                resolved = after["resolved"]
                changed = tuple(
                    (n, v, resolved.get(n, ""))
                    for n, v in sorted(probe["held"].items())
                    if canonicalize_name(n) not in axes and resolved.get(n) != v
                )
                hint = tuple(n for n in through["packages"] if n in probe["held"])
                if nodeids and changed:
                    found.append(Boundary(after["id"], before["id"], nodeids, changed, hint))
    return found


def _failing_nodeids(cell: CellJSON, tests: set[str]) -> tuple[str, ...]:
    """The failing cell's own node ids for ``tests`` (a module that failed to import stands
    for its tests)."""
    return tuple(
        sorted(
            t["nodeid"]
            for t in cell["tests"]
            if t["outcome"] in ("failed", "error")
            and (t["nodeid"] in tests or any(n.startswith(t["nodeid"] + "::") for n in tests))
        )
    )


def _passing_environment(cell: CellJSON, tests: set[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """What the tests passed beside: the cell's resolved set, or, where they passed with
    packages set back (``other-package``), the counterfactual cell's, with the culprit."""
    probes = {c["id"]: c for c in cell.get("counterfactuals", [])}
    for test in cell["tests"]:
        culprit = test.get("cause", {}).get("culprit")
        if test["nodeid"] in tests and test["outcome"] == "other-package" and culprit:
            probe = probes.get(culprit["cell"])
            if probe and probe.get("resolved"):
                return dict(probe["resolved"]), tuple(sorted(culprit["packages"]))
    return dict(cell["resolved"]), ()


def _changed(
    passing: Mapping[str, str],
    failing: Mapping[str, str],
    axes: Collection[str],
    forced: Collection[str] = (),
) -> tuple[tuple[str, str, str], ...]:
    """Packages besides the axes at another version (or absent) in the failing set. One
    the failing set adds cannot be set back, and is left out; so is one the failing
    release's own requirements moved (``_forced``)."""
    found = []
    for name, version in sorted(passing.items()):
        key = canonicalize_name(name)
        if key not in axes and key not in forced and failing.get(name) != version:
            found.append((name, version, failing.get(name, "")))
    return tuple(found)


def _forced(cell: CellJSON, passing: Mapping[str, str]) -> dict[str, str]:
    """Packages the failing cell's framework releases require at versions that exclude
    where the tests passed (torch 2.6.0's ``triton==3.2.0`` beside 2.5.1's 3.1.0, TensorFlow
    2.16's ``keras>=3.0.0``): they moved with the axis, by the release's own requirement,
    and no counterfactual cell can set them back."""
    forced: dict[str, str] = {}
    resolved = cell["resolved"]
    for framework, lines in sorted((cell.get("requires") or {}).items()):
        for line in lines:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            name = canonicalize_name(requirement.name)
            had = passing.get(name)
            if had and not requirement.specifier.contains(had, prereleases=True):
                release = f"{framework} {resolved.get(framework, '')}".strip()
                forced.setdefault(name, f"{release} requires {requirement}")
    return forced


# --- the counterfactual cells -----------------------------------------------------------------


def held_cell(cell: Cell, held: Mapping[str, str]) -> Cell:
    """The failing cell with ``held`` set back: ``py3.11-ff1.2-with-dep1.0``, or for more
    than two packages ``…-with-5-set-back-1a2b3c`` (a file name, stable from run to run)."""
    pins = sorted(held.items())
    if len(pins) <= 2:
        suffix = "-".join(f"{n}{v}" for n, v in pins)
    else:
        digest = hashlib.sha256(repr(pins).encode()).hexdigest()[:6]
        suffix = f"{len(pins)}-set-back-{digest}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{cell.id}-with-{suffix}")
    return replace(cell, id=name, held=tuple(pins), status=None, cause=None)


Probe = Callable[[Mapping[str, str]], "CellJSON | None"]


def explain(boundary: Boundary, run: Probe) -> Explanation | None:
    """Run the boundary's counterfactual cells (``run``: the failing tests in the failing
    cell's environment with these packages set back; None when interrupted) and say what
    they show. Narrowed by halving: at most ⌈log2 n⌉ + 1 cells for n changed packages (one
    more when a hint was tried first and did not explain it)."""
    if boundary.required:
        # The release's own requirements moved them: nothing to run.
        return Explanation(boundary, (), "through", tuple(n for n, _ in boundary.required))
    full = boundary.held
    probes: list[CellJSON] = []

    def found(finding: Finding, culprit: Sequence[str] = (), *more: Any) -> Explanation:
        return Explanation(boundary, tuple(probes), finding, tuple(culprit), *more)

    if boundary.hint:
        tried = run({n: full[n] for n in boundary.hint})
        if tried is None:
            return None
        probes.append(tried)
        blocked = _blocking(tried, boundary.hint, boundary.shapes)
        if blocked:
            return found("through", blocked)
        passed = _passed(tried, boundary.nodeids) if _usable(tried) else ()
        if set(passed) == set(boundary.nodeids):
            return found("culprit", boundary.hint, True, passed, tried["id"])
    first = run(full)
    if first is None:
        return None
    probes.append(first)
    if first["status"] == "error":
        return found("unknown")
    blocked = _blocking(first, full, boundary.shapes)
    if blocked:
        return found("through", blocked)
    passed = _passed(first, boundary.nodeids)
    if not passed:
        return found("axis")
    # The packages the failures name lead the order: the halves holding them run.
    candidates = [n for n in boundary.named if n in full]
    candidates += sorted(n for n in full if n not in candidates)
    verified, deciding = True, first["id"]
    while len(candidates) > 1:
        half = candidates[: len(candidates) // 2]
        probe = run({n: full[n] for n in half})
        if probe is None:
            return None
        probes.append(probe)
        if _usable(probe) and set(passed) <= set(_passed(probe, passed)):
            candidates, verified, deciding = half, True, probe["id"]
        else:
            # Not the first half alone: the culprit is in the other (or needs both).
            candidates, verified = candidates[len(candidates) // 2 :], False
    return found("culprit", candidates, verified, passed, deciding)


def _blocking(probe: CellJSON, held: Iterable[str], shapes: Shapes) -> tuple[str, ...]:
    """The packages set back that keep the cell from saying anything about the axis: those
    whose requirements the axis pin overrode (``conflicts``), all of them when uv refused
    the set, or those that new failures name (a binary incompatibility of the package set
    back; a failure the failing cell had already is no news); () when none."""
    held = sorted(held)
    conflicts = {str(c["package"]) for c in probe.get("conflicts") or ()}
    if conflicts:
        return tuple(n for n in held if canonicalize_name(n) in conflicts) or tuple(held)
    if probe["status"] == "unavailable":
        return tuple(held)
    before = dict(shapes)
    named = {
        canonicalize_name(str(t.get("cause", {}).get("distribution") or ""))
        for t in probe["tests"]
        if failing(t["outcome"]) and before.get(t["nodeid"]) != failure_signature(t)
    }
    return tuple(n for n in held if canonicalize_name(n) in named)


def _usable(probe: CellJSON) -> bool:
    """A counterfactual cell whose tests ran where its packages really install (a pin of
    the axis overrides their requirements: ``conflicts`` says where it did)."""
    return probe["status"] in RAN and not probe.get("conflicts")


def _passed(probe: CellJSON, nodeids: Sequence[str]) -> tuple[str, ...]:
    outcomes = {t["nodeid"]: t["outcome"] for t in probe["tests"]}
    return tuple(
        n
        for n in nodeids
        if outcomes.get(n) == "passed"
        or (
            any(k.startswith(n + "::") for k in outcomes)
            and all(v == "passed" for k, v in outcomes.items() if k.startswith(n + "::"))
        )
    )


# --- what the cells show, in the failing cell -------------------------------------------------


def apply(cell: CellJSON, found: Explanation) -> CellJSON:
    """The failing cell with what its counterfactual cells showed: their records under it,
    and its tests judged by them. A copy."""
    data = copy_cells([cell])[0]
    boundary = found.boundary
    if found.probes:
        data.setdefault("counterfactuals", []).extend(
            _record(p, boundary.passing) for p in found.probes
        )
    before = {n: f for n, _, f in boundary.changed}
    for test in data["tests"]:
        if test["nodeid"] not in boundary.nodeids or test["outcome"] not in ("failed", "error"):
            continue
        if found.finding == "through":
            cause = test.setdefault("cause", {"category": "unknown"})
            cause["through"] = _through(found)
            # Constraining the package cannot help: the version under test rules out every
            # release of it the test passed with.
            versions = ", ".join(f"{n} {v}" for n, v in data["packages"].items())
            api = f" off {cause['api']}" if cause.get("api") else ""
            cause["suggestion"] = (
                f"no {' or '.join(found.culprit)} the test passed with installs beside "
                f"{versions}: port the project{api} to support it, or stay below it"
            )
        elif found.finding == "culprit" and test["nodeid"] in found.passed:
            _blame(test, found, before)
    if data["status"] in RAN:
        data["status"] = status_from_tests(data["tests"]) or data["status"]
    return data


def _record(probe: CellJSON, against: str) -> Counterfactual:
    record: Counterfactual = {
        "id": probe["id"],
        "against": against,
        "held": dict(probe.get("held", {})),
        "status": probe["status"],
        "tests": {t["nodeid"]: t["outcome"] for t in probe["tests"]},
    }
    reason = _unusable_reason(probe)
    if reason:
        record["reason"] = reason
    if probe.get("resolved"):
        record["resolved"] = dict(probe["resolved"])
    if probe.get("log"):
        record["log"] = str(probe["log"])
    return record


def _unusable_reason(probe: CellJSON) -> str:
    conflicts = probe.get("conflicts") or []
    if conflicts:
        return "; ".join(
            f"{c['package']} {c['version']} requires {c['requires']}, not {c['installed']}"
            for c in conflicts
        )
    cause = probe.get("cause")
    if cause and cause.get("reason"):
        return str(cause["reason"])
    failures = [t["cause"] for t in probe["tests"] if failing(t["outcome"]) and "cause" in t]
    named = [c for c in failures if c.get("distribution") in probe.get("held", {})]
    if named:
        held = ", ".join(f"{n} {v}" for n, v in sorted(probe.get("held", {}).items()))
        return f"with {held} set back: {named[0].get('message') or named[0]['category']}"
    return ""


def _through(found: Explanation) -> Through:
    if found.boundary.required:
        reason = "; ".join(why for _, why in found.boundary.required)
        return {"packages": list(found.culprit), "reason": reason, "cell": ""}
    probe = found.probes[-1]
    held = ", ".join(f"{n} {v}" for n, v in sorted(found.boundary.held.items()))
    reason = _unusable_reason(probe) or f"the run with {held} did not reach its tests"
    return {"packages": list(found.culprit), "reason": reason, "cell": probe["id"]}


def _blame(test: OutcomeJSON, found: Explanation, before: Mapping[str, str]) -> None:
    """A test the culprit broke: it passed with the culprit set back, so it counts for the
    axis's version; its cause names the culprit at the version the failing cell had."""
    held = found.boundary.held
    culprit: Culprit = {
        "packages": {n: {"failing": before[n], "passing": held[n]} for n in found.culprit},
        "cell": found.deciding,
        "verified": found.verified,
    }
    cause = test.setdefault("cause", {"category": "unknown"})
    named = str(cause.get("distribution") or "")
    if canonicalize_name(named) not in {canonicalize_name(n) for n in found.culprit}:
        cause["distribution"] = found.culprit[0]
        cause["version"] = before[found.culprit[0]]
    cause["category"] = "third-party"
    cause["culprit"] = culprit
    test["outcome"] = "other-package"


def summary(found: Explanation) -> str:
    """One line for the run's progress."""
    boundary = found.boundary
    # What the deciding cell set back (a hint tried first may have decided alone).
    if boundary.required:
        return f"{len(boundary.nodeids)} failing test(s): " + "; ".join(
            why for _, why in boundary.required
        )
    held = held_text(found.probes[-1].get("held") or boundary.held)
    count = len(boundary.nodeids)
    tests = f"{count} failing test{'s' if count != 1 else ''}"
    if found.finding == "through":
        return f"{tests} with {held} set back: does not install beside it"
    if found.finding == "axis":
        return f"{tests} with {held} set back: still fail{'s' if count == 1 else ''}"
    if found.finding == "unknown":
        return f"{tests} with {held} set back: the run ended in error, nothing concluded"
    names = ", ".join(f"{n} {f}" for n, _, f in boundary.changed if n in found.culprit)
    them = "it" if len(found.passed) == 1 else "them"
    return f"{tests} with {held} set back: {len(found.passed)} pass; {names} broke {them}"


def held_text(held: Mapping[str, str]) -> str:
    """``scipy 1.8.1``, or for many ``10 packages (attrs 21.4.0, pandas 1.4.2, … )``."""
    pins = [f"{n} {v}" for n, v in sorted(held.items())]
    if len(pins) <= 3:
        return ", ".join(pins)
    return f"{len(pins)} packages ({', '.join(pins[:3])} and {len(pins) - 3} more)"
