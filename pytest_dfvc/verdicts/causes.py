"""Failures grouped by meaning for "why cells are red": one group per cause and API, however
many cells, source lines and install paths it shows up with.

A message is grouped by its shape (installed paths and addresses taken out, as they differ
from cell to cell); a failure that names an API is one group across the project's lines that
call it; cells that could not be built or run group by their reason with the versions in it
taken out, so "numpy 1.23.5 has no wheel for CPython 3.12" and "numpy 1.24.4 has no wheel for
CPython 3.13" are one line. Tests set apart as not version-related get groups of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from packaging.version import InvalidVersion, Version

from ..index.interpreters import python_minor
from ..model import CauseGroup, CauseJSON, CellJSON
from .evidence import message_shape

_FIELDS = (
    "category",
    "api",
    "exception",
    "message",
    "location",
    "distribution",
    "version",
    "module",
    "suggestion",
    "precursor",
    "linked_by",
    "culprit",
    "through",
    "trace",
)
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+)+(?:[a-z]+\d*)?(?:\+[\w.]+)?(?![\w.])")


def reason_shape(reason: str) -> str:
    return _VERSION.sub("…", message_shape(reason))


def cause_groups(cells: Sequence[CellJSON], ignored: set[str]) -> list[CauseGroup]:
    """Failures grouped by cause and API (and cells that could not be built or run, by
    reason), each with its tests, cells, and the values of every axis it shows up on.
    Groups of tests set apart as not version-related carry ``"set_apart": true``."""
    groups: dict[tuple[str, ...], CauseGroup] = {}
    for cell in cells:
        cause = cell.get("cause")
        if cell["status"] in ("unavailable", "error") and cause:
            cell_key = ("cell", str(cause["category"]), reason_shape(cause["reason"]))
            group = _add(groups, cell_key, dict(cause), cell, None)
            if cause["reason"] not in group.setdefault("reasons", []):
                group["reasons"].append(cause["reason"])
        for test in cell["tests"]:
            cause = test.get("cause")
            # A module no cell has is the cell's cause, grouped above with its importers.
            if cause and cause.get("category") != "missing-dependency":
                apart = test["nodeid"] in ignored
                key = _test_key(cause, apart)
                # The group's fields, of the cause's: the keys are CauseJSON's own.
                fields: dict[str, object] = {k: v for k, v in cause.items() if k in _FIELDS and v}
                if fields.get("message"):
                    fields["message"] = message_shape(str(fields["message"]))
                if apart:
                    fields["set_apart"] = True
                group = _add(groups, key, fields, cell, test["nodeid"])
                companion = cause.get("companion")
                if companion:
                    # Each cell's own: keras 3.4.1 beside one release, 3.6.0 beside the next.
                    had = (
                        f"{companion['distribution']} {companion['version']} "
                        f"(required by {companion['required_by']})"
                    )
                    if had not in group.setdefault("companions", []):
                        group["companions"].append(had)
                location = cause.get("location")
                if location and location not in group.setdefault("locations", []):
                    group["locations"].append(location)
    for group in groups.values():
        for values in group["versions"].values():
            values.sort(key=_version_key)
        if len(group.get("reasons", ())) > 1:
            group["reason"] = merged_reason(group["reasons"])
    return list(groups.values())


def _test_key(cause: CauseJSON, apart: bool) -> tuple[str, ...]:
    """One group per category and API across the matrix, whatever line calls it and however
    each release words its error; without an API, per exception, message and source
    line."""
    # What a counterfactual cell showed parts groups: another package's doing, or the
    # axis's version incompatible through it.
    kind = "apart" if apart else "culprit" if cause.get("culprit") else "test"
    kind += "-through" if cause.get("through") else ""
    api = str(cause.get("api") or "")
    if api:
        return (kind, str(cause["category"]), api)
    where = str(cause.get("location") or "")
    shape = message_shape(str(cause.get("message") or ""))
    return (kind, str(cause["category"]), "", str(cause.get("exception") or ""), shape, where)


def merged_reason(reasons: Sequence[str]) -> str:
    """Reasons of one shape as one line, with the parts that differ shown as "…"."""
    split = [r.split(" ") for r in reasons]
    if len({len(words) for words in split}) != 1:
        return reason_shape(reasons[0])
    return " ".join(words[0] if len(set(words)) == 1 else "…" for words in zip(*split))


def _add(
    groups: dict[tuple[str, ...], CauseGroup],
    key: tuple[str, ...],
    fields: Mapping[str, Any],
    cell: CellJSON,
    nodeid: str | None,
) -> CauseGroup:
    group = groups.get(key)
    if group is None:
        # The cause's fields the group shares, then what it gathers across cells.
        group = groups[key] = cast(CauseGroup, {**fields, "tests": [], "cells": [], "versions": {}})
    if nodeid and nodeid not in group["tests"]:
        group["tests"].append(nodeid)
    if cell["id"] not in group["cells"]:
        group["cells"].append(cell["id"])
        python = python_minor(cell["python"])
        for axis, value in (*cell["packages"].items(), ("python", python)):
            values = group["versions"].setdefault(axis, [])
            if value not in values:
                values.append(value)
    return group


def _version_key(value: str) -> tuple[Any, ...]:
    try:
        return (0, Version(value))
    except InvalidVersion:
        return (1, value)
