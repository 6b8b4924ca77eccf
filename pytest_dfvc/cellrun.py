"""Run one cell and judge it: its nox session in a worker, the restarts after a test kills
the test process, and the cell's status from how far the session got and what the recorder
wrote. Never raises for a failure inside the cell."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cell import Cell
from .celldir import CellDir
from .evidence import NO_TESTS, no_test_reason, status_from_tests
from .files import write_text_atomic
from .install_causes import install_failure, log_tail, missing_pin
from .legacy import refused_pin
from .model import Cause
from .phases import PHASE_INSTALL
from .records import (
    KIND_FINISH,
    KIND_TEST,
    Record,
    crashed_test,
    done_tests,
    of_kind,
    stopped_test,
)
from .sessionspec import FINDINGS_CODES, SessionSpec, afresh, asks_afresh, dump_specs
from .vocabulary import Status
from .workers import RunningCells, nox_arguments, nox_env, run_logged

# A test process that dies this many times in one cell ends the cell.
MAX_RESTARTS = 20


@dataclass
class CellOutcome:
    """What running a cell produced, before aggregation."""

    status: Status
    records: list[Record] = field(default_factory=list)
    cause: Cause | None = None
    duration: float = 0.0
    log: str = ""
    # How a release whose metadata uv refuses was installed (legacy.py), if one was.
    metadata_fallback: str | None = None


def run_session(
    spec: SessionSpec,
    cell: Cell,
    cell_dir: CellDir,
    timeout: float | None,
    running: RunningCells,
) -> CellOutcome:
    """Run the cell's session (written to its folder), step over tests that kill the test
    process, and judge what it left."""
    cell_dir.clear_run_files()
    _discard_broken_environment(cell_dir)
    write_text_atomic(cell_dir.session_file, dump_specs([spec]))
    log_path = cell_dir.log_file
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    env = nox_env(DFVC_SESSIONS=str(cell_dir.session_file))
    log_path.write_text("", encoding="utf-8")
    argv = nox_arguments(spec["name"], spec["envdir"])
    returncode, timed_out = running.run_nox(argv, env, log_path, deadline)
    stale = _stale_page(spec, cell_dir, returncode, timed_out)
    if stale is not None and not running.stopping:
        # The plan saw the release on the index; uv's page of the project, kept for its
        # lifetime, is older: asked for again before the release is called missing.
        spec = afresh(spec, stale)
        write_text_atomic(cell_dir.session_file, dump_specs([spec]))
        with log_path.open("a", encoding="utf-8") as out:
            out.write(f"dfvc > not on uv's kept page: asking the index again for {stale}\n")
        returncode, timed_out = running.run_nox(argv, env, log_path, deadline)
    refused = _refused_release(spec, cell_dir, returncode, timed_out)
    if refused is not None and not running.stopping:
        # An old release uv refuses for its metadata: installed another way (legacy.py).
        spec = {**spec, "legacy": refused}
        write_text_atomic(cell_dir.session_file, dump_specs([spec]))
        with log_path.open("a", encoding="utf-8") as out:
            out.write(f"dfvc > uv refuses {refused}'s metadata: installing it without it\n")
        returncode, timed_out = running.run_nox(argv, env, log_path, deadline)
    records = cell_dir.records()
    restarts = 0
    while (
        not timed_out
        and cell_dir.crashed_in_tests(records)
        and restarts < MAX_RESTARTS
        and not running.stopping
    ):
        crashed = crashed_test(records)
        if crashed is None:
            break  # died outside any test (at collection, say): nothing to step over
        # nox reports the test process's status in its log; a restart is run directly.
        code = _exit_code(returncode, cell_dir.log()) if restarts == 0 else returncode
        cell_dir.append_crash(crashed, code)
        returncode, timed_out = _restart_pytest(spec, cell_dir, deadline, running)
        records = cell_dir.records()
        restarts += 1
    outcome = judge(cell, cell_dir.phase(), records, returncode, timed_out, timeout, cell_dir.log())
    outcome.duration = time.monotonic() - started
    outcome.log = str(log_path)
    outcome.metadata_fallback = cell_dir.legacy_note()
    return outcome


def _stale_page(
    spec: SessionSpec, cell_dir: CellDir, returncode: int, timed_out: bool
) -> str | None:
    """The pinned project whose release uv did not find in its kept page, when that is
    why the install failed and the page can be asked for again."""
    if timed_out or returncode == 0 or cell_dir.phase() != PHASE_INSTALL:
        return None
    if not asks_afresh(spec):
        return None
    return missing_pin(cell_dir.log(), list(spec["pins"]))


def _refused_release(
    spec: SessionSpec, cell_dir: CellDir, returncode: int, timed_out: bool
) -> str | None:
    """The pin whose metadata uv refused, when that is why the install failed."""
    if timed_out or returncode == 0 or cell_dir.phase() != PHASE_INSTALL:
        return None
    if spec.get("legacy"):
        return None
    return refused_pin(cell_dir.log(), list(spec["pins"]))


def _exit_code(returncode: int, log: str) -> int:
    """The test process's own exit status: nox reports it in its log."""
    found = re.findall(r"failed with exit code (-?\d+)", log)
    return int(found[-1]) if found else returncode


def _restart_pytest(
    spec: SessionSpec, cell_dir: CellDir, deadline: float | None, running: RunningCells
) -> tuple[int, bool]:
    """Run the cell's pytest again in its environment, without the tests already done."""
    done = done_tests(cell_dir.records())
    write_text_atomic(cell_dir.deselect_file, "".join(n + "\n" for n in done))
    python = Path(cell_dir.bin_dir() or "", "python")
    command = [str(python), "-m", "pytest", *spec["pytest_plugins"], *spec["pytest"]]
    env = dict(os.environ, **spec["env"], DFVC_DESELECT=str(cell_dir.deselect_file))
    log_path = cell_dir.log_file
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"dfvc > restarting pytest after a crash, without {len(done)} finished tests\n")
    return run_logged(command, env, spec["project"], log_path, deadline, running, append=True)


def _discard_broken_environment(cell_dir: CellDir) -> None:
    """An environment whose interpreter no longer runs (a half-deleted folder, an upgraded
    base Python) is removed, so nox builds it again instead of failing inside it."""
    bin_dir = cell_dir.bin_dir()
    if not bin_dir or not Path(bin_dir).parent.exists():
        return
    try:
        ok = (
            subprocess.run(
                [str(Path(bin_dir, "python")), "-c", "pass"], capture_output=True, timeout=60
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        shutil.rmtree(Path(bin_dir).parent, ignore_errors=True)


def judge(
    cell: Cell,
    phase: str | None,
    records: list[Record],
    returncode: int,
    timed_out: bool,
    timeout: float | None,
    log: str,
) -> CellOutcome:
    """The cell's status from how far its session got and what the recorder wrote."""
    if timed_out:
        return CellOutcome("error", records, _timed_out(records, timeout))
    if phase in (None, PHASE_INSTALL) and returncode != 0:
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
