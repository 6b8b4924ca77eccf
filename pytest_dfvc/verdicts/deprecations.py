"""Deprecation warnings as evidence: the precursor of a boundary, and upgrade risks.

Frameworks warn before they remove: numpy warned about ``np.int`` in 1.20-1.23 and removed it
in 1.24; scikit-learn warned that ``get_feature_names`` would go in 1.2. A test that passes
on the last version before a boundary with such a warning, and fails on the first version
after it, failed for what the warning announced: its cause carries the warning as its
``precursor``, and a ``behavior`` failure (an assertion after a ``hasattr`` fallback) becomes
``missing-api`` (``parameter`` for an argument) naming the API, saying the link comes from the
warning. Warnings on the newest passing versions are ``risks``: a forecast, never a verdict
(ranges, badges and the exit status never read them). Warning text can be wrong (scipy said
``interp`` would go in 2.0 and removed it in 1.12), so an announced version is reported as
announced, and said to have been survived when the matrix already tested it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..index.interpreters import python_minor
from ..model import RAN, CauseJSON, CellJSON, OutcomeJSON, Risk, WarningJSON, failing
from ..records import Record
from ..text import cut
from .evidence import distribution_for

Cells = Sequence[CellJSON]

# A warning is evidence when its category is a deprecation (or FutureWarning), or when a
# UserWarning subclass says so in words: numpy's VisibleDeprecationWarning, Keras's "This
# file format is considered legacy", a default that "will be flipped".
_DEPRECATION_WORDS = re.compile(
    r"deprecat|will be removed|removed in|no longer supported|\blegacy\b|"
    r"will (?:be )?(?:change|changed|flipped)\b|default value .{0,80} will",
    re.I,
)
_REMOVAL = re.compile(r"remov|deprecat|no longer", re.I)
# A default that will change (scikit-learn's "The default value of `n_init` will change
# from 10 to 'auto' in 1.4"): the precursor of a behaviour break when it does.
_DEFAULT_CHANGE = re.compile(
    r"default .{0,80}\bwill\s+(?:be\s+)?(?:change|changed|flipped)|"
    r"will\s+change\s+.{0,40}\bdefault",
    re.I,
)
_CALL_KEYWORD = re.compile(r"\((?P<keyword>\w+)=\)$")
_ARGUMENT = re.compile(r"\b(keyword|argument|parameter|kwarg)s?\b", re.I)
_ANNOUNCED = re.compile(
    r"(?:removed|dropped|changed?|raise an error|become an error)\s+(?:in|from|as of)\s+"
    r"(?:version\s+|v(?=\d)|[A-Z][\w-]*\s+)?(?P<version>\d+(?:\.\d+)+)",
    re.I,
)
_IDENT = r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*"
_API_PATTERNS = (
    re.compile(
        r"^(?:The\s+)?(?:Function|Class|Method|Attribute|Module|Property)?\s*"
        rf"`?({_IDENT})`?(?:\(\))?\s+(?:is|are|has been|was)\s+deprecated"
    ),
    re.compile(rf"`({_IDENT})(?:\(\))?`"),
    re.compile(rf"'({_IDENT})(?:\(\))?'"),
    re.compile(rf"\b({_IDENT})(?:\(\))?\s+(?:is|are|has been|was)\s+(?:a\s+)?deprecated"),
)
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
# Import names that stand for a distribution in warning texts.
_ALIASES = {"np": "numpy", "pd": "pandas", "tf": "tensorflow", "sp": "scipy"}


def kept_warning(record: Record) -> WarningJSON | None:
    """A recorder ``warning`` line as the results file keeps it (with the API its message
    names and the version it announces), or None when it is no evidence of a change."""
    message = str(record.get("message") or "")
    if not record.get("deprecation") and not _DEPRECATION_WORDS.search(message):
        return None
    warning: WarningJSON = {
        "category": str(record.get("category") or "Warning"),
        "message": message,
        "location": str(record.get("location") or ""),
    }
    # The recorder checked which words of the text name something that exists; records
    # from before it did are read by their text alone.
    names = record.get("names")
    api = warned_api(message, names if isinstance(names, dict) else None)
    if api:
        warning["api"] = api
    announced = announced_version(message)
    if announced:
        warning["announced"] = announced
    return warning


def warned_api(message: str, existing: Mapping[str, str] | None = None) -> str | None:
    """The API a deprecation message names: ``numpy.int`` from "`np.int` is a deprecated
    alias", ``get_feature_names`` from "Function get_feature_names is deprecated".
    ``existing``: the words of the text that name something that exists where the warning
    was raised, with their paths (the recorder's); a word not among them names nothing
    ("argument", a parameter's name)."""
    for pattern in _API_PATTERNS:
        for found in pattern.finditer(message):
            word = found.group(1)
            if word.replace(".", "").isdigit():
                continue
            if existing is not None:
                if word in existing:
                    return existing[word]
                continue
            head, _, rest = word.partition(".")
            return f"{_ALIASES.get(head, head)}.{rest}" if rest else head
    return None


def announced_version(message: str) -> str | None:
    """The version a message says the change comes in ("will be removed in 1.2")."""
    found = _ANNOUNCED.search(message)
    return found.group("version") if found else None


def link_precursors(cells: Cells, axes: Mapping[str, Sequence[str]]) -> None:
    """In place: each failure that follows, on one axis (a package, or Python) with
    everything else equal, a pass whose test warned of a deprecation it can be tied to,
    carries that warning."""
    for axis, versions in axes.items():
        order = {v: i for i, v in enumerate(versions)}
        for line in _lines(cells, axis, order):
            for nodeid in sorted({t["nodeid"] for c in line for t in c["tests"]}):
                _link_along(line, nodeid, axis, _package_value(axis))
    for line in _python_lines(cells):
        for nodeid in sorted({t["nodeid"] for c in line for t in c["tests"]}):
            _link_along(line, nodeid, "python", lambda c: python_minor(c["python"]))


def _package_value(axis: str) -> Callable[[CellJSON], str]:
    return lambda cell: str(cell["packages"][axis])


def _python_lines(cells: Cells) -> list[list[CellJSON]]:
    """The cells that differ only in their Python, each group oldest first."""
    grouped: dict[tuple[Any, ...], list[CellJSON]] = {}
    for cell in cells:
        if cell["status"] in RAN:
            key = (cell.get("cuda"), tuple(sorted(cell["packages"].items())))
            grouped.setdefault(key, []).append(cell)
    return [
        sorted(g, key=lambda c: _version_key(python_minor(c["python"])))
        for g in grouped.values()
        if len(g) > 1
    ]


def _lines(cells: Cells, axis: str, order: Mapping[str, int]) -> list[list[CellJSON]]:
    """The cells that differ only in ``axis``, each group in version order."""
    grouped: dict[tuple[Any, ...], list[CellJSON]] = {}
    for cell in cells:
        version = cell["packages"].get(axis)
        if version not in order or cell["status"] not in RAN:
            continue
        others = tuple(sorted((k, v) for k, v in cell["packages"].items() if k != axis))
        key = (python_minor(cell["python"]), cell.get("cuda"), others)
        grouped.setdefault(key, []).append(cell)
    return [sorted(g, key=lambda c: order[c["packages"][axis]]) for g in grouped.values()]


def _link_along(
    line: Sequence[CellJSON], nodeid: str, axis: str, value: Callable[[CellJSON], str]
) -> None:
    last_pass: tuple[str, OutcomeJSON, CellJSON] | None = None
    for cell in line:
        test = next((t for t in cell["tests"] if t["nodeid"] == nodeid), None)
        if test is None:
            continue
        version = value(cell)
        if test["outcome"] == "passed":
            last_pass = (version, test, cell)
        elif _broken(test) and test.get("cause") and last_pass:
            # The package blamed: the axis, or the other package a cause names.
            blamed = _blamed(test["cause"], axis)
            warnings = [w for w in last_pass[1].get("warnings") or [] if _of_axis(w, blamed)]
            warning = _precursor(warnings, test["cause"], version)
            if warning is None:
                # Another test of the passing cell met the warning of this very API: a
                # precursor attaches to every failure whose cause is the warned API.
                others = [
                    w
                    for t in last_pass[2]["tests"]
                    for w in t.get("warnings") or []
                    if _of_axis(w, blamed)
                ]
                warning = _named_precursor(others, test["cause"])
            if warning is not None:
                _attach(test["cause"], warning, last_pass[0])


def _broken(test: OutcomeJSON) -> bool:
    """A failure, or a test another package broke (it passed with that package set back)."""
    return failing(test["outcome"]) or test["outcome"] == "other-package"


def _blamed(cause: CauseJSON, axis: str) -> str:
    if cause.get("category") == "third-party" and cause.get("distribution"):
        return str(cause["distribution"])
    return axis


def _precursor(
    warnings: Sequence[WarningJSON], cause: CauseJSON, failing: str
) -> WarningJSON | None:
    """The warning a failure can be tied to: one naming the failure's API; for a failure
    with no API of its own (an assertion), one whose API the failure mentions, else the one
    warning that announces a removal by this version."""
    # A warning at the very line that fails, one version before (unittest's "Please use
    # assertEqual instead." at ``self.assertEquals(...)``), whatever API its text names.
    location = cause.get("location")
    same_line = [w for w in warnings if location and w.get("location") == location]
    if len({w["message"] for w in same_line}) == 1:
        return same_line[0]
    candidates = [w for w in warnings if w.get("api")]
    api = str(cause.get("api") or "")
    if api:
        named = _named_precursor(warnings, cause)
        if named or cause.get("category") != "behavior":
            return named
    text = f"{cause.get('message') or ''} {cause.get('exception') or ''}"
    mentioned = [w for w in candidates if _leaf(str(w["api"])) in text]
    if mentioned:
        return mentioned[0]
    removals = [
        w
        for w in candidates
        if _REMOVAL.search(str(w["message"]))
        and (not w.get("announced") or _version_le(str(w["announced"]), failing))
    ]
    distinct = {str(w["api"]) for w in removals}
    if len(distinct) == 1:
        return removals[0]
    if cause.get("category") == "behavior":
        # A default announced to change by this version, and a result that changed.
        changes = [
            w
            for w in warnings
            if _DEFAULT_CHANGE.search(str(w["message"]))
            and (not w.get("announced") or _version_le(str(w["announced"]), failing))
        ]
        if len({str(w["message"]) for w in changes}) == 1:
            return changes[0]
    return None


def _named_precursor(warnings: Sequence[WarningJSON], cause: CauseJSON) -> WarningJSON | None:
    """A warning of the failure's own API: by its API, or (for a removed keyword,
    ``to_csv(line_terminator=)``) one whose text names the keyword."""
    api = str(cause.get("api") or "")
    if not api:
        return None
    keyword = _CALL_KEYWORD.search(api)
    bare = _CALL_KEYWORD.sub("", api)
    for warning in warnings:
        if warning.get("api") and _same_api(str(warning["api"]), bare):
            return warning
        said = str(warning["message"])
        if keyword and re.search(rf"[`'\"]{re.escape(keyword.group('keyword'))}[`'\"]", said):
            return warning
    return None


def _attach(cause: CauseJSON, warning: WarningJSON, version: str) -> None:
    cause["precursor"] = {
        "version": version,
        "category": warning["category"],
        "message": warning["message"],
        "location": warning["location"],
    }
    if not cause.get("api") and warning.get("api"):
        cause["api"] = warning["api"]
    if cause.get("category") == "behavior" and _REMOVAL.search(str(warning["message"])):
        # What the failing line touched (an object that lost a method) is not what went
        # away: the warning names that.
        argument = _ARGUMENT.search(str(warning["message"]))
        cause["category"] = "parameter" if argument else "missing-api"
        if warning.get("api"):
            cause["api"] = warning["api"]
        cause["linked_by"] = "warning"


def upgrade_risks(cells: Cells, axes: Mapping[str, Sequence[str]]) -> list[Risk]:
    """The deprecations the tests meet on the newest version of each package axis they pass
    on, one entry per API and message: what may break on the next upgrade. A test that
    already fails on a newer version tried has met its upgrade: that is a failure (with its
    precursor), not a risk."""
    risks: dict[tuple[str, str], Risk] = {}
    for axis, versions in axes.items():
        order = {v: i for i, v in enumerate(versions)}
        failing = _failing_versions(cells, axis, order)
        for nodeid, passing in _passing_cells(cells, axis, order).items():
            newest = max(order[c["packages"][axis]] for c, _ in passing)
            if any(i > newest for i in failing.get(nodeid, ())):
                continue
            for cell, test in passing:
                if order[cell["packages"][axis]] != newest:
                    continue
                for warning in test.get("warnings") or ():
                    if warning.get("api"):
                        _add_risk(risks, warning, axis, cell, nodeid, len(axes) == 1)
    for risk in risks.values():
        risk["first_warned"] = _first_warned(cells, risk)
        announced, seen = risk.get("announced"), risk["seen_on"]
        if announced and risk.get("axis") and any(_version_le(announced, v) for v in seen):
            risk["survived"] = True  # the announced version was tested, and the API lived
    return sorted(risks.values(), key=lambda r: (-len(r["tests"]), r["api"]))


def _passing_cells(
    cells: Cells, axis: str, order: Mapping[str, int]
) -> dict[str, list[tuple[CellJSON, OutcomeJSON]]]:
    found: dict[str, list[tuple[CellJSON, OutcomeJSON]]] = {}
    for cell in cells:
        if cell["packages"].get(axis) not in order:
            continue
        for test in cell["tests"]:
            if test["outcome"] == "passed":
                found.setdefault(test["nodeid"], []).append((cell, test))
    return found


def _failing_versions(cells: Cells, axis: str, order: Mapping[str, int]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for cell in cells:
        if cell["packages"].get(axis) not in order:
            continue
        for test in cell["tests"]:
            if failing(test["outcome"]):
                found.setdefault(test["nodeid"], set()).add(order[cell["packages"][axis]])
    return found


def _add_risk(
    risks: dict[tuple[str, str], Risk],
    warning: WarningJSON,
    axis: str,
    cell: CellJSON,
    nodeid: str,
    only_axis: bool,
) -> None:
    key = (str(warning["api"]), str(warning["message"]))
    # One axis owns the warnings that are its own or name no package; another package's
    # (``scipy.integrate.simps``, beside a numpy axis) is never measured against its
    # versions ("announced for 1.14.0, tested already").
    mine = _of_axis(warning, axis) if only_axis else _names_axis(warning, axis)
    owner = axis if mine or _names_axis(warning, axis) else None
    risk = risks.get(key)
    if risk is None:
        risk = risks[key] = {
            "api": warning["api"],
            "category": warning["category"],
            "message": warning["message"],
            "axis": owner,
            "seen_on": [],
            "tests": [],
            "cells": [],
        }
        if warning.get("announced"):
            risk["announced"] = warning["announced"]
    if owner and not risk["axis"]:
        risk["axis"] = owner
    version = str(cell["packages"][axis])
    if (risk["axis"] in (None, axis)) and version not in risk["seen_on"]:
        risk["seen_on"].append(version)
    if nodeid not in risk["tests"]:
        risk["tests"].append(nodeid)
    if cell["id"] not in risk["cells"]:
        risk["cells"].append(cell["id"])


def _first_warned(cells: Cells, risk: Risk) -> str | None:
    """The oldest version of the risk's axis on which a test met the same warning."""
    axis = risk.get("axis")
    if not axis:
        return None
    seen = [
        str(cell["packages"][axis])
        for cell in cells
        if axis in cell["packages"]
        for test in cell["tests"]
        for w in test.get("warnings") or ()
        if w.get("api") == risk["api"] and w["message"] == risk["message"]
    ]
    return min(seen, key=_version_key) if seen else None


def _of_axis(warning: WarningJSON, axis: str) -> bool:
    """Whether a warning can be the package ``axis``'s: its API is that package's (by its
    import name: ``sklearn`` for scikit-learn, ``tensorflow`` for tensorflow-cpu) or names
    no package at all. A warning of another package (``datetime.datetime.utcnow``, met on
    a newer Python) never ties a failure along ``axis`` to itself."""
    api = str(warning.get("api") or "")
    if "." not in api:
        return True
    if axis == "python":
        # Python's own warnings are of the standard library's APIs.
        return api.split(".", 1)[0] in _STDLIB
    head = str(canonicalize_name(distribution_for(api.split(".", 1)[0])))
    name = str(canonicalize_name(axis))
    # A companion distribution of one import name: tensorflow-cpu's API is tensorflow's.
    return name == head or name.startswith(head + "-")


def _names_axis(warning: WarningJSON, axis: str) -> bool:
    name = str(canonicalize_name(axis))
    head = str(warning.get("api") or "").split(".", 1)[0]
    # The name as a word: a short one (``w``) is in every message otherwise.
    said = re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", str(warning["message"]).lower())
    return str(canonicalize_name(head)) == name or said is not None


def _same_api(warned: str, failing: str) -> bool:
    return warned == failing or _leaf(warned) == _leaf(failing)


def _leaf(api: str) -> str:
    return api.rsplit(".", 1)[-1]


def _version_key(value: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(value))
    except InvalidVersion:
        return (0, value)


def _version_le(announced: str, tested: str) -> bool:
    """Whether ``announced`` is at or below ``tested`` (release numbers: 2.0 == 2.0.0)."""
    try:
        return Version(announced).release <= Version(tested).release
    except InvalidVersion:
        return False


def risk_lines(risks: Iterable[Risk]) -> list[str]:
    """``numpy.float: `np.float` is a deprecated alias … (announced for 1.24; warned since
    numpy 1.20.3; seen in 6 tests on numpy 1.23.5)``."""
    lines = []
    for risk in risks:
        axis = risk.get("axis")
        facts = []
        if risk.get("announced"):
            survived = " (tested already, and it survived)" if risk.get("survived") else ""
            facts.append(f"announced for {risk['announced']}{survived}")
        if axis and risk.get("first_warned"):
            facts.append(f"warned since {axis} {risk['first_warned']}")
        count = len(risk["tests"])
        where = f"{axis} {', '.join(risk['seen_on'])}" if axis else ", ".join(risk["cells"][:3])
        facts.append(f"seen in {count} test{'s' if count != 1 else ''} on {where}")
        message = cut(str(risk["message"]).splitlines()[0], 160)
        lines.append(f"  {risk['api']}: {message} ({'; '.join(facts)})")
    return lines
