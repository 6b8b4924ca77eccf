"""Differential tracing: the API whose behaviour changed when nothing raised.

A test that passes on one version and fails on the next with an assertion (``assert
df.equals(...)``, a testing helper's ``assert_frame_equal``) names no API: the framework
raised nothing, it returned something else. The boundary's failing tests run once more on
both sides with the in-cell tracer on (``incell/recorder.py``'s ``CallTracer``), which
records every call from the project's files into the matrix packages: its public API, a
digest of the arguments the caller gave and a digest of the result. The two sequences are
aligned by API and arguments; the first call whose arguments agree and whose result differs
is the API whose behaviour changed (``behavior: pandas.to_datetime — same arguments,
different result from 2.0.3``). Only these trace cells pay for the tracer.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..index.interpreters import python_minor
from ..model import CellJSON, OutcomeJSON, Trace, TracedCall, failing
from .evidence import along_lines, failure_signature, flips, verdicts

# Tests traced per boundary: a few name the API, and each runs on both sides.
MAX_TRACED = 8


@dataclass(frozen=True)
class TracePair:
    """A boundary to trace: the failing and the passing cell next to each other on a line,
    and the failing cell's silent failures among the tests that pass on the other."""

    failing: str
    passing: str
    nodeids: tuple[str, ...]


def silent(test: OutcomeJSON) -> bool:
    """A failure without an exception from the framework, not traced yet: an assertion (the
    project's, or a testing helper's) or a ``behavior`` cause."""
    cause = test.get("cause")
    if not failing(test["outcome"]) or test.get("collect_error") or not cause:
        return False
    if "trace" in cause:
        return False
    exception = str(cause.get("exception") or "")
    assertion = exception.endswith("AssertionError") or exception.rsplit(".", 1)[-1] == "Failed"
    return assertion or cause.get("category") == "behavior"


def traces_wanted(
    cells: Sequence[CellJSON], lines: Iterable[Sequence[str]], axes: Mapping[str, Sequence[str]]
) -> list[TracePair]:
    """The boundaries (a pass next to a failure along a line) whose failing side has silent
    failures. ``lines``: the cell ids along each line, in order."""
    judged = verdicts(cells, axes)
    by_id = {c["id"]: c for c in cells}
    pairs: dict[tuple[str, str], set[str]] = {}
    for test, seen in along_lines(judged, lines):
        for pair in flips(seen):
            pairs.setdefault(pair, set()).add(test)
    found = []
    for (failed, passing), tests in sorted(pairs.items()):
        nodeids = sorted(t["nodeid"] for t in by_id[failed]["tests"] if t["nodeid"] in tests)
        chosen = [n for n in nodeids if _silent_in(by_id[failed], n)][:MAX_TRACED]
        if chosen:
            found.append(TracePair(failed, passing, tuple(chosen)))
    return found


def _silent_in(cell: CellJSON, nodeid: str) -> bool:
    return any(t["nodeid"] == nodeid and silent(t) for t in cell["tests"])


def first_difference(
    passing: Sequence[TracedCall], failing: Sequence[TracedCall]
) -> tuple[int, TracedCall, TracedCall, int] | None:
    """The calls aligned by API and arguments: the first call of ``failing`` whose arguments
    agree with its partner's in ``passing`` and whose result differs (its index, both
    calls), and how many such calls there are; None when every aligned result agrees."""
    a = [(c.get("api"), c.get("args")) for c in passing]
    b = [(c.get("api"), c.get("args")) for c in failing]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    differing = [
        (kind, block.b + k, passing[block.a + k], failing[block.b + k])
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
        for kind in [_difference(passing[block.a + k], failing[block.b + k])]
        if kind is not None
    ]
    if not differing:
        return None
    # Data first: a setting whose default changed (an estimator ``clone`` copies with
    # ``presort='deprecated'``) is not what the test saw; the result it leads to is.
    _, index, was, now = next((d for d in differing if d[0] == "data"), differing[0])
    return index, was, now, len(differing)


def _difference(was: TracedCall, now: TracedCall) -> str | None:
    """How two aligned calls' results differ: ``"data"`` (another result, or an object with
    another value of an attribute both releases set that holds data), ``"settings"`` (only
    attributes that hold settings differ), or None. An attribute one release added, or
    stopped setting, is no change of the others."""
    if was.get("result") != now.get("result"):
        return "data"
    before, after = was.get("state") or {}, now.get("state") or {}
    changed = [k for k in before.keys() & after.keys() if before[k] != after[k]]
    if not changed:
        return None
    settings = {*(was.get("settings") or ()), *(now.get("settings") or ())}
    return "settings" if all(k in settings for k in changed) else "data"


def apply_traces(data: CellJSON, passing_run: CellJSON, failing_run: CellJSON) -> CellJSON:
    """The failing cell ``data`` with each traced test's cause saying what tracing found:
    the API whose result changed (a ``behavior`` break, ``linked_by: "trace"``), or that no
    aligned call differs. ``passing_run`` and ``failing_run``: the trace cells of both
    sides, each with the tests' ``calls``."""
    updated = copy.deepcopy(data)
    label = _passing_label(passing_run, failing_run)
    passed = {t["nodeid"]: t for t in passing_run["tests"] if t["outcome"] == "passed"}
    failed = {t["nodeid"]: t for t in failing_run["tests"] if failing(t["outcome"])}
    for test in updated["tests"]:
        was, now, cause = passed.get(test["nodeid"]), failed.get(test["nodeid"]), test.get("cause")
        if was is None or now is None or cause is None or not silent(test):
            continue
        if "calls" not in was or "calls" not in now:
            continue
        trace: Trace = {
            "passing": label,
            "calls": len(now["calls"]),
            "differ": 0,
            "cells": [passing_run["id"], failing_run["id"]],
        }
        found = first_difference(was["calls"], now["calls"])
        if found is not None:
            index, before, after, count = found
            trace["api"] = str(after.get("api"))
            trace["call"] = index + 1
            trace["differ"] = count
            trace["was"] = str(before.get("shown") or "")
            trace["now"] = str(after.get("shown") or "")
            if cause["category"] in ("behavior", "unknown"):
                cause["category"] = "behavior"
            cause["api"] = str(after.get("api"))
            cause["linked_by"] = "trace"
        cause["trace"] = trace
    return updated


def carry_traces(cells: Sequence[CellJSON], traced: CellJSON) -> list[CellJSON]:
    """Further along the line: the cells (differing from the traced one in one axis only)
    where a traced test fails the same way, untraced, take its finding, saying in which
    cell it was traced (``at``). Returns the cells it changed, as new copies."""
    found: dict[str, OutcomeJSON] = {}
    for test in traced["tests"]:
        if traced_api(test):
            found[test["nodeid"]] = test
    changed = []
    for cell in cells:
        if cell["id"] == traced["id"] or not _one_axis_apart(cell, traced):
            continue
        updated = copy.deepcopy(cell)
        touched = False
        for test in updated["tests"]:
            source = found.get(test["nodeid"])
            cause = test.get("cause")
            if source is None or cause is None or not silent(test):
                continue
            if failure_signature(test) != failure_signature(source):
                continue
            origin = source["cause"]
            if cause["category"] in ("behavior", "unknown"):
                cause["category"] = "behavior"
            cause["api"] = str(origin["api"])
            cause["linked_by"] = "trace"
            cause["trace"] = {**origin["trace"], "at": traced["id"]}
            touched = True
        if touched:
            changed.append(updated)
    return changed


def _one_axis_apart(one: CellJSON, other: CellJSON) -> bool:
    differ = [n for n, v in one["packages"].items() if other["packages"].get(n) != v]
    same_python = python_minor(one["python"]) == python_minor(other["python"])
    return one.get("cuda") == other.get("cuda") and len(differ) + (not same_python) == 1


def _passing_label(passing: CellJSON, failing_cell: CellJSON) -> str:
    """The passing side's value on the axis the two cells differ in (``2.0.3``, or a Python
    ``3.11``)."""
    for name, version in passing["packages"].items():
        if failing_cell["packages"].get(name) != version:
            return str(version)
    return python_minor(passing["python"])


def traced_api(test: OutcomeJSON) -> str | None:
    """The API tracing named for a test, if it named one."""
    cause = test.get("cause")
    trace = cause.get("trace") if cause else None
    return trace.get("api") if trace else None


def trace_text(trace: Trace) -> str:
    """``same arguments, different result from 2.0.3 (first of 12 calls that differ)``."""
    count = int(trace.get("differ") or 0)
    calls = "call that differs" if count == 1 else "calls that differ"
    return f"same arguments, different result from {trace['passing']} (first of {count} {calls})"
