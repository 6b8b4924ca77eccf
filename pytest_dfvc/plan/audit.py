"""The tool checks itself: ``--dfvc-audit[=N]`` runs N of the run's cells again from scratch
(a fresh environment and view, resolved from the index afresh) and compares them with what
the run kept. A reused cell or a synced environment must equal a fresh one; where it does
not, the cell is an ``error`` naming what the reuse missed (a dependency released since, a
wheel rebuilt at the same version), and the fresh result replaces the kept one.

Pure functions over the results' cells; the scheduler runs the cells ``choose`` names.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Sequence

from ..model import RAN, CellJSON

# Without a count: a tenth of the cells, at least one.
DEFAULT_SHARE = 0.1


def default_seed(today: datetime.date | None = None) -> int:
    """The day as a number (20261207): another sample each day, the same within it, so an
    audit that found something can be repeated (``DFVC_AUDIT_SEED`` sets it)."""
    day = today or datetime.date.today()
    return day.year * 10000 + day.month * 100 + day.day


def choose(cells: Sequence[CellJSON], count: int, seed: int) -> list[str]:
    """The ids of ``count`` cells that ran to a verdict (all of them when fewer; a tenth,
    at least one, when ``count`` is 0), chosen at random from ``seed``."""
    ran = sorted(c["id"] for c in cells if c["status"] in RAN)
    wanted = count or max(1, math.ceil(len(ran) * DEFAULT_SHARE))
    return sorted(random.Random(seed).sample(ran, min(wanted, len(ran))))


def differences(kept: CellJSON, fresh: CellJSON) -> list[str]:
    """What differs between a kept cell and the same cell run from scratch: its status,
    each package's version (``dep 1.0 -> 2.0``, ``+ new 1.0``, ``- gone 1.0``) and each
    test's outcome (``tests/t.py::test_x: passed -> failed``)."""
    found = []
    status = _plain_status(kept)
    if status is not None and status != fresh["status"]:
        found.append(f"status {kept['status']} -> {fresh['status']}")
    old, new = kept["resolved"], fresh["resolved"]
    for name in sorted(set(old) | set(new)):
        if name not in new:
            found.append(f"- {name} {old[name]}")
        elif name not in old:
            found.append(f"+ {name} {new[name]}")
        elif old[name] != new[name]:
            found.append(f"{name} {old[name]} -> {new[name]}")
    before = {t["nodeid"]: _first_outcome(t["outcome"]) for t in kept["tests"]}
    after = {t["nodeid"]: t["outcome"] for t in fresh["tests"]}
    for nodeid in sorted(set(before) | set(after)):
        was, now = before.get(nodeid, "not run"), after.get(nodeid, "not run")
        if was != now and was != "flaky":
            found.append(f"{nodeid}: {was} -> {now}")
    return found


def _first_outcome(outcome: str) -> str:
    """What a single run of the cell shows: a test another package broke failed there (its
    pass was a counterfactual cell's); a flaky one may go either way."""
    return "failed" if outcome == "other-package" else outcome


def _plain_status(cell: CellJSON) -> str | None:
    """The status a single run shows: a cell that passed through counterfactual cells
    failed when it ran once; with a flaky test, either (None: not compared)."""
    tests = [t["outcome"] for t in cell["tests"]]
    if "flaky" in tests:
        return None
    if cell["status"] == "passed" and "other-package" in tests:
        return "failed"
    return cell["status"]


def judged(kept: CellJSON, fresh: CellJSON, found: Sequence[str]) -> CellJSON:
    """The fresh cell as the run's answer, an ``error`` saying what the kept one missed."""
    shown = "; ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
    data: CellJSON = {
        **fresh,
        "status": "error",
        "cause": {
            "category": "audit",
            "reason": (
                f"run again from scratch, the cell differs from the kept result: {shown}. "
                "The fresh result is kept now; run again (or with --dfvc-rerun) for verdicts"
            ),
        },
    }
    return data
