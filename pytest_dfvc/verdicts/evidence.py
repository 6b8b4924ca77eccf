"""The evidence rule, applied to finished cells.

A version is compatible only when tests ran on it and passed; it is incompatible only when a
test failed on it for a reason the version can explain; everything else is untested,
unavailable or error, and says why. This module turns what the recorder saw into per-test
verdicts under that rule, for the ranges and the search strategies alike:

- a module that fails to import fails each of its tests (as other cells collected them); one
  skipped at module level skips them;
- a module no installed distribution provides, missing in every cell, is the environment's
  fault (the cells are ``error``); missing in some cells only, a ``third-party`` finding;
- a test is set apart as "not version-related" only when it fails the same way everywhere,
  for a reason the axes cannot explain, on every planned version (one a strategy left out
  might be where it passes);
- a cell in which no test ran is untested, never passed.

Pure functions over the cells of the results file, changed in place where they settle a
cell's verdict, and idempotent: a merge recomputes them from shards that already went
through here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from packaging.utils import canonicalize_name

from ..model import (
    RAN,
    CellJSON,
    FirstRun,
    OutcomeJSON,
    Verdict,
    combined,
    copy_cells,
    failing,
    verdict_of,
)

# Outcomes of a test that count for or against a version; "skipped" counts for neither.
NO_TESTS = "no-tests"
MISSING_DEPENDENCY = "missing-dependency"
# Causes that name something a matrix axis can explain: never "not version-related".
ATTRIBUTED = frozenset(
    {"python-version", "missing-api", "import-path", "parameter", "usage-constraint", "third-party"}
)

Cells = Sequence[CellJSON]


# --- one cell ------------------------------------------------------------------------------


def status_from_tests(
    tests: Iterable[Mapping[str, Any]], ignored: frozenset[str] | set[str] = frozenset()
) -> Literal["passed", "failed"] | None:
    """``failed`` when a counted test failed or errored, ``passed`` when none did and one
    passed, None when no counted test ran at all (the cell is untested)."""
    verdict = combined(t["outcome"] for t in tests if t["nodeid"] not in ignored)
    return None if verdict is None else ("passed" if verdict else "failed")


def no_test_reason(tests: Sequence[Mapping[str, Any]], deselected: int = 0) -> str:
    """Why a cell ran no test: "no test ran: 3 deselected", "all 2 tests skipped: <reason>"."""
    skipped = [t for t in tests if t["outcome"] == "skipped"]
    parts = []
    if deselected:
        parts.append(f"{deselected} deselected")
    if skipped:
        reasons = sorted({str(t.get("reason") or "no reason given") for t in skipped})
        shown = "; ".join(reasons[:2]) + (
            f" (and {len(reasons) - 2} more)" if len(reasons) > 2 else ""
        )
        count = len(skipped)
        parts.append(f"{count} skipped: {shown}" if count > 1 else f"skipped: {shown}")
    if not parts:
        parts.append("nothing was collected")
    return "no test ran: " + ", ".join(parts)


# --- module errors and module skips ----------------------------------------------------------


def expand_modules(cells: Cells) -> None:
    """A module that failed to import (or was skipped at module level) stands for each of
    its tests, as other cells collected them: give each the module's outcome, and the
    ranges the test declares (its markers, as the cells that collected it recorded them),
    in place."""
    known: dict[str, list[str]] = {}
    declared: dict[str, dict[str, str]] = {}
    for cell in cells:
        for test in cell["tests"]:
            if "::" in test["nodeid"]:
                members = known.setdefault(test["nodeid"].split("::", 1)[0], [])
                if test["nodeid"] not in members:
                    members.append(test["nodeid"])
            if test.get("declared") and not test.get("from_module"):
                declared.setdefault(test["nodeid"], test["declared"])
    for cell in cells:
        expanded: list[OutcomeJSON] = []
        for test in cell["tests"]:
            module_level = test.get("collect_error") or test.get("collect_skip")
            module = known.get(test["nodeid"]) if module_level else None
            if module:
                expanded += [_member(test, n, cell, declared.get(n)) for n in module]
            else:
                expanded.append(test)
        cell["tests"] = expanded


def _member(
    module_test: OutcomeJSON, nodeid: str, cell: CellJSON, declared: dict[str, str] | None
) -> OutcomeJSON:
    """A test of a module that failed to import (or was skipped) as a whole: a declared
    range it carries elsewhere is checked against this cell, so an import that breaks
    inside it is a violation as a failing call would be."""
    member = module_test.copy()
    member["nodeid"], member["from_module"] = nodeid, module_test["nodeid"]
    if declared and "declared" not in module_test:
        from ..incell.recorder import check_declared  # the cells' own reading of a declared range

        member["declared"] = declared
        member["inside"] = check_declared(declared, _cell_versions(cell))[0]
    return member


def _cell_versions(cell: CellJSON) -> dict[str, str]:
    """What a cell's environment is, as the recorder reads it inside the cell."""
    versions = {str(canonicalize_name(n)): v for n, v in cell.get("resolved", {}).items()}
    versions.update({str(canonicalize_name(n)): v for n, v in cell["packages"].items()})
    versions["python"] = cell["python"]
    if cell.get("cuda"):
        versions["cuda"] = str(cell["cuda"])
    return versions


# --- modules nobody installed ---------------------------------------------------------------

_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")


def missing_module(test: OutcomeJSON) -> str | None:
    """The top-level module a failing test could not import because no installed
    distribution provides it (``pandas``), or None. A missing submodule of an installed
    package (``fakeframe.utils``) is an import path, not a missing distribution."""
    cause = test.get("cause")
    if cause is None:
        return None
    if cause["category"] == MISSING_DEPENDENCY:
        return str(cause["module"])
    if cause["category"] not in ("import-path", "third-party"):
        return None
    match = _NO_MODULE.search(str(cause.get("message") or ""))
    if match is None or "." in match["module"]:
        return None
    return match["module"]


# Import names whose distribution has another name: what to write in ``requirements``.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "Crypto": "pycryptodome",
    "attr": "attrs",
    "jwt": "pyjwt",
    "serial": "pyserial",
    "usb": "pyusb",
    "magic": "python-magic",
}


def distribution_for(module: str) -> str:
    return DISTRIBUTIONS.get(module, module.replace("_", "-"))


def settle_missing_modules(cells: Cells, frameworks: Iterable[str]) -> None:
    """Modules the tests import that no cell's environment provides make those cells
    ``error`` (the run is not a finding about the framework); modules missing from some
    cells only are a ``third-party`` finding naming the versions that lack them."""
    framework_modules = {str(canonicalize_name(n)).replace("-", "_") for n in frameworks}
    ran = [c for c in cells if c["status"] in RAN or _missing_cause(c)]
    missing_in: dict[str, list[CellJSON]] = {}
    importers: dict[str, set[str]] = {}
    for cell in ran:
        for test in cell["tests"]:
            module = missing_module(test)
            if module and module not in framework_modules:
                if cell not in missing_in.setdefault(module, []):
                    missing_in[module].append(cell)
                location = test.get("cause", {}).get("location")
                importers.setdefault(module, set()).add(location or test["nodeid"])
    for module, where in missing_in.items():
        if len(where) == len(ran):
            _missing_everywhere(module, where, sorted(importers[module]))
        else:
            _missing_somewhere(module, where, [c for c in ran if c not in where])


def _missing_cause(cell: CellJSON) -> bool:
    cause = cell["cause"]
    return cause is not None and cause["category"] == MISSING_DEPENDENCY


def _missing_everywhere(module: str, cells: Cells, importers: list[str]) -> None:
    dist = distribution_for(module)
    by = ", ".join(importers[:3]) + (
        f" and {len(importers) - 3} more" if len(importers) > 3 else ""
    )
    reason = f"the tests import {module} (from {by}), which no cell has: {_undeclared(dist)}"
    for cell in cells:
        cell["status"] = "error"
        cell["cause"] = {"category": MISSING_DEPENDENCY, "reason": reason, "module": module}
        for test in cell["tests"]:
            if missing_module(test) == module:
                test["cause"] = {
                    **test["cause"],
                    "category": MISSING_DEPENDENCY,
                    "module": module,
                    "suggestion": f'[install] requirements = ["{dist}"]',
                }


def _undeclared(dist: str) -> str:
    return (
        "the project does not declare it. Add it to the matrix: "
        f'[install] requirements = ["{dist}"]'
    )


def name_where_declared(cells: Cells, declared: Mapping[str, tuple[str, str]]) -> None:
    """In place: a module no cell has that the project declares for its tests (``declared``:
    distribution -> its requirement and where, ``plan.needs``) says where, and the
    requirement to add is the one declared there."""
    for cell in cells:
        cause = cell["cause"]
        if not _missing_cause(cell) or cause is None:
            continue
        dist = distribution_for(str(cause.get("module") or ""))
        found = declared.get(str(canonicalize_name(dist)))
        if found is None:
            continue
        requirement, where = found
        cause["reason"] = str(cause["reason"]).replace(
            _undeclared(dist),
            f"the project declares it in {where}, which the cells do not install. Add it to "
            f'the matrix: [install] requirements = ["{requirement}"]',
        )
        for test in cell["tests"]:
            test_cause = test.get("cause")
            if test_cause and test_cause.get("category") == MISSING_DEPENDENCY:
                test_cause["suggestion"] = f'[install] requirements = ["{requirement}"]'


def _missing_somewhere(module: str, lacking: Cells, having: Cells) -> None:
    """Some framework versions bring the module in (as a dependency) and others do not."""

    def describe(cells: Cells) -> str:
        pins: dict[str, list[str]] = {}
        for cell in cells:
            for name, version in cell["packages"].items():
                if version not in pins.setdefault(name, []):
                    pins[name].append(version)
        return "; ".join(f"{n} {', '.join(v)}" for n, v in pins.items())

    message = (
        f"{module} is installed with {describe(having)} but not with {describe(lacking)}: "
        "an earlier release brought it in as a dependency"
    )
    dist = distribution_for(module)
    for cell in lacking:
        for test in cell["tests"]:
            if missing_module(test) == module:
                test["cause"] = {
                    **test["cause"],
                    "category": "third-party",
                    "module": module,
                    "distribution": dist,
                    "reason": message,
                    "suggestion": f'declare {dist} (or [install] requirements = ["{dist}"])',
                }


# --- a second run of a boundary cell's failing tests -------------------------------------


def apply_rerun(
    cell: CellJSON, nodeids: Sequence[str], again: Mapping[str, OutcomeJSON]
) -> CellJSON:
    """The cell with its failing tests ``nodeids`` judged by a second run (``again``:
    nodeid -> the second outcome; a test missing there was not judged again). A test that
    passes the second time is ``flaky``: evidence neither for nor against the version,
    never a boundary; one that fails again is ``confirmed``. A copy; the cell says which
    tests ran again."""
    data = copy_cells([cell])[0]
    for test in data["tests"]:
        second = again.get(test["nodeid"])
        if second is None or not failing(test["outcome"]):
            continue
        if second["outcome"] == "passed":
            first: FirstRun = {"outcome": test["outcome"]}
            if "cause" in test:
                first["cause"] = test.pop("cause")
            test["outcome"], test["first_run"] = "flaky", first
        elif failing(second["outcome"]):
            test["confirmed"] = True
    data["rerun"] = sorted(nodeids)
    if data["status"] in RAN:
        # A flaky test passed in the end: the cell's status says so; the ranges count it
        # neither way (``verdict_of``).
        passed_again = [
            {**t, "outcome": "passed" if t["outcome"] == "flaky" else t["outcome"]}
            for t in data["tests"]
        ]
        data["status"] = status_from_tests(passed_again) or data["status"]
    return data


def rerun_wanted(
    cells: Cells, lines: Iterable[tuple[str, ...]], axes: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Which finished cells to run once more, and which of their failing tests: those at a
    boundary (a failure next to a pass along a line, the cells run so far in order) and
    those whose failure differs from the next failing cell's (a timeout beside a missing
    API). A failure that another cell already repeated (the same exception, location and
    message, in any cell of the matrix) has its second run: it is not run again. Cells run
    again already are left alone."""
    judged = verdicts(cells, axes)
    by_id = {c["id"]: c for c in cells}
    shapes = {
        (c["id"], t["nodeid"]): failure_signature(t)
        for c in _expanded(cells)
        for t in c["tests"]
        if failing(t["outcome"])
    }
    repeated = Counter((test, shape) for (_, test), shape in shapes.items())

    def once(cell_id: str, test: str) -> bool:
        shape = shapes.get((cell_id, test))
        return shape is None or repeated[(test, shape)] < 2

    wanted: dict[str, set[str]] = {}
    for line in lines:
        ran = [c for c in line if c in judged]
        tests = {t for c in ran for t in judged[c]}
        for test in tests:
            seen = [(c, judged[c][test]) for c in ran if judged[c].get(test) is not None]
            for (a, ok_a), (b, ok_b) in zip(seen, seen[1:]):
                if ok_a != ok_b:
                    failed = b if ok_a else a
                    if once(failed, test):
                        wanted.setdefault(failed, set()).add(test)
                elif ok_a is False and shapes.get((a, test)) != shapes.get((b, test)):
                    for failed in (a, b):
                        if once(failed, test):
                            wanted.setdefault(failed, set()).add(test)
    found: dict[str, list[str]] = {}
    for cell_id, tests in wanted.items():
        cell = by_id[cell_id]
        if "rerun" in cell or cell["status"] != "failed":
            continue
        nodeids = sorted(
            t["nodeid"]
            for t in cell["tests"]
            if failing(t["outcome"])
            and (t["nodeid"] in tests or any(n.startswith(t["nodeid"] + "::") for n in tests))
        )
        if nodeids:
            found[cell_id] = nodeids
    return found


def _expanded(cells: Cells) -> list[CellJSON]:
    copies = copy_cells(list(cells))
    expand_modules(copies)
    return copies


# --- not version-related ------------------------------------------------------------------

_SITE = re.compile(r"(?:[A-Za-z]:)?[^\s'\"()]*[/\\](?:site|dist)-packages[/\\]")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
# pytest's temporary folders: numbered afresh in every cell's run.
_PYTEST_TMP = re.compile(r"[^\s'\"()=]*[/\\]pytest-of-[^/\\\s]+[/\\]pytest-\d+[/\\]")


def message_shape(message: str) -> str:
    """A message with what differs between environments taken out (installed paths,
    pytest's temporary folders, object addresses), so one failure reads the same in every
    cell. Values stay: a result that differs between versions is a version effect."""
    message = _PYTEST_TMP.sub("…/pytest-of-…/", _SITE.sub("…/site-packages/", message))
    return _ADDRESS.sub("0x…", message)


def failure_signature(test: OutcomeJSON) -> tuple[str, str, str]:
    cause = test.get("cause", {})
    return (
        str(cause.get("exception") or test["outcome"]),
        str(cause.get("location") or ""),
        message_shape(str(cause.get("message") or "")),
    )


def not_version_related(cells: Cells, axes: Mapping[str, Sequence[str]]) -> list[str]:
    """Tests that fail the same way in every cell that ran them (two at least), for a cause
    no axis explains, with every value of every package axis tried: stale expectations,
    not version effects. Kept out of the project's range, and reported.

    Two versions of some package axis at least must have run. ``axes`` maps each package
    axis to its planned values; a value no cell ran (not
    installable, an error, or left out by a search strategy) might be where the test
    passes, so nothing is set apart then: the strategies search on while a test has passed
    nowhere, until it passes somewhere or every version ran.
    """
    ran = [c for c in cells if c["status"] in RAN]
    tried = {axis: {c["packages"].get(axis) for c in ran} for axis in axes}
    if any(v not in tried[axis] for axis, values in axes.items() for v in values):
        return []
    if not any(len(values) >= 2 for values in tried.values()):
        # One version of every axis: nothing shows the failure is not that version's doing.
        return []
    failures: dict[str, list[OutcomeJSON]] = {}
    passed: set[str] = set()
    for cell in ran:
        for test in cell["tests"]:
            verdict = verdict_of(test["outcome"])
            if verdict:
                passed.add(test["nodeid"])
            elif verdict is False:
                failures.setdefault(test["nodeid"], []).append(test)
    apart = sorted(
        nodeid
        for nodeid, failed in failures.items()
        if nodeid not in passed and len(failed) >= 2 and _same_unexplained_failure(failed, axes)
    )
    # If every test always fails, nothing is version-related to tell apart: keep them all.
    return apart if len(apart) < len(passed | set(failures)) else []


def _same_unexplained_failure(failed: Sequence[OutcomeJSON], axes: Iterable[str]) -> bool:
    """The same failure everywhere, for a cause no axis explains: none named, or another
    package that is no axis (``third-party: scikit-learn 1.3.2``, pinned beside every
    version of the axis)."""
    if len({failure_signature(t) for t in failed}) != 1:
        return False
    return not any(_explained_by_axis(t.get("cause", {}), axes) for t in failed)


def _explained_by_axis(cause: Mapping[str, Any], axes: Iterable[str]) -> bool:
    if cause.get("category") not in ATTRIBUTED:
        return False
    if cause.get("category") != "third-party" or not cause.get("distribution"):
        return True
    named = canonicalize_name(str(cause["distribution"]))
    return any(canonicalize_name(axis) == named for axis in axes)


# --- the verdicts ------------------------------------------------------------------------


def settle(cells: Cells, axes: Mapping[str, Sequence[str]]) -> list[str]:
    """Apply the evidence rule to a matrix's finished cells, in place; returns the tests set
    apart as not version-related. Each cell that ran ends ``passed`` (a test passed and no
    counted test failed), ``failed``, or keeps its status when no counted test decided."""
    expand_modules(cells)
    settle_missing_modules(cells, axes)
    ignored = not_version_related(cells, axes)
    apart = set(ignored)
    for cell in cells:
        if cell["status"] not in RAN:
            continue
        status = status_from_tests(cell["tests"], apart)
        if status is not None:
            cell["status"] = status
        failed_apart = sorted(
            {t["nodeid"] for t in cell["tests"] if t["nodeid"] in apart and failing(t["outcome"])}
        )
        if failed_apart:
            cell["set_apart"] = failed_apart
        else:
            cell.pop("set_apart", None)
    return ignored


def verdicts(cells: Cells, axes: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Verdict]]:
    """Each finished cell's per-test verdicts (True passed, False failed, None neither),
    judged as the ranges judge them, for the search strategies. Works on a copy."""
    copies = copy_cells(list(cells))
    ignored = set(settle(copies, axes))
    found: dict[str, dict[str, Verdict]] = {}
    for cell in copies:
        tests: dict[str, Verdict] = {}
        if cell["status"] in RAN:
            for test in cell["tests"]:
                if test["nodeid"] not in ignored:
                    tests[test["nodeid"]] = verdict_of(test["outcome"])
        found[cell["id"]] = tests
    return found


def along_lines(
    judged: Mapping[str, Mapping[str, Verdict]], lines: Iterable[Sequence[str]]
) -> Iterator[tuple[str, list[tuple[str, bool]]]]:
    """Each test's verdicts along each line (``verdicts``' answer; ``lines``: the cell ids
    of each line, in order): ``(test, [(cell id, passed), ...])`` for the cells that
    judged it."""
    for line in lines:
        ran = [c for c in line if c in judged]
        for test in sorted({t for c in ran for t in judged[c]}):
            seen = [(c, bool(judged[c][test])) for c in ran if judged[c].get(test) is not None]
            yield test, seen


def flips(seen: Sequence[tuple[str, bool]]) -> Iterator[tuple[str, str]]:
    """The boundaries in one test's verdicts along a line: ``(failing, passing)`` for each
    pass next to a failure."""
    for (a, ok_a), (b, ok_b) in zip(seen, seen[1:]):
        if ok_a != ok_b:
            yield (b, a) if ok_a else (a, b)
