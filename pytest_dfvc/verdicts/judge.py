"""Judge one cell from what its run left (``records.CellRun``): its status and cause from
how far its session got, pytest's exit status and what the recorder wrote. The first verdict
on a cell; the evidence rule and the ranges build on it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..index.install_causes import install_failure, log_tail
from ..model import Cause
from ..phases import FINDINGS_CODES, PHASE_INSTALL
from ..plan.cell import Cell
from ..records import KIND_FINISH, KIND_TEST, CellRun, Record, crashed_test, of_kind, stopped_test
from ..vocabulary import Status
from .evidence import NO_TESTS, no_test_reason, status_from_tests


@dataclass
class CellOutcome:
    """A cell's first verdict: its status, why, and its records as judged (a test stopped
    by the time limit gets an error record)."""

    status: Status
    records: list[Record] = field(default_factory=list)
    cause: Cause | None = None


def judge(cell: Cell, ran: CellRun) -> CellOutcome:
    """The cell's status from how far its session got and what the recorder wrote."""
    if ran.refused is not None:
        return CellOutcome("unavailable", [], Cause("install", ran.refused))
    records, returncode, log = list(ran.records), ran.returncode, ran.output
    if ran.timed_out:
        return CellOutcome("error", records, _timed_out(records, ran.timeout))
    if ran.phase in (None, PHASE_INSTALL) and returncode != 0:
        status, cause = install_failure(log, cell.python, cell.cuda)
        return CellOutcome(status, records, cause)
    finished = of_kind(records, KIND_FINISH)
    refused = pytest_error(log)
    if not finished:
        if refused:
            return CellOutcome("error", records, Cause("pytest-usage", refused))
        return CellOutcome("error", records, Cause("crash", _crash_reason(returncode, log)))
    exitstatus = finished[-1].get("exitstatus")
    if exitstatus not in FINDINGS_CODES:
        what = refused if refused else log_tail(log)
        reason = f"pytest in the cell exited with status {exitstatus}: {what}"
        category = "pytest-usage" if exitstatus == 4 else "unknown"
        return CellOutcome("error", records, Cause(category, reason))
    tests = of_kind(records, KIND_TEST)
    verdict = status_from_tests(tests)
    if verdict is None:
        # Tests that never ran are no evidence: the cell is untested, and says why.
        deselected = int(finished[-1].get("deselected") or 0)
        return CellOutcome("skipped", records, Cause(NO_TESTS, no_test_reason(tests, deselected)))
    return CellOutcome(verdict, records)


def _timed_out(records: list[Record], timeout: float | None) -> Cause:
    """Name the test that was running when time ran out, and count it as an error; the tests
    before it keep their outcomes."""
    running = crashed_test(records)
    limit = f"--dfvc-timeout={timeout:g}s" if timeout is not None else "its time limit"
    done = len(of_kind(records, KIND_TEST))
    if running is None:
        return Cause("timeout", f"the cell ran past {limit} outside any test and was stopped")
    message = f"the cell ran past {limit} during this test"
    records.append(stopped_test(running, "dfvc.Timeout", message))
    kept = f"; the {done} tests before it kept their outcomes" if done else ""
    return Cause("timeout", f"the cell ran past {limit} during {running} and was stopped{kept}")


# pytest's own words when it refuses to start: a usage error ("ERROR: file or directory not
# found: x", "ERROR: usage: ...") or argparse's ("pytest: error: unrecognized arguments").
_PYTEST_ERROR = re.compile(
    r"^(?:ERROR: (?!\s*$).+|[\w.-]+: error: .+|E?\s*pytest\.UsageError: .+)$", re.MULTILINE
)


def pytest_error(log: str) -> str | None:
    """The line in which the cell's pytest refused its arguments or configuration."""
    found = _PYTEST_ERROR.findall(log)
    return found[-1].strip()[:500] if found else None


def _crash_reason(returncode: int, log: str) -> str:
    if returncode < 0:
        return f"the test process was killed by signal {-returncode}"
    return f"the test process ended without finishing (exit status {returncode}): {log_tail(log)}"
