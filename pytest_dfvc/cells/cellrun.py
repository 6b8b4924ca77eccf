"""Run one cell's session: nox in a worker, a second try when uv's kept page or an old
release's metadata stood in the way, and the restarts after a test kills the test process.
Never raises for a failure inside the cell, and judges nothing: it returns what the session
left (``records.CellRun``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..files import write_text_atomic
from ..index.install_causes import missing_pin
from ..index.legacy import refused_pin
from ..phases import PHASE_INSTALL, PHASE_TEST, STAGE_DONE
from ..records import CellRun, crashed_test, done_tests
from .celldir import CellDir
from .sessionspec import SessionSpec, afresh, asks_afresh, dump_specs
from .workers import RunningCells, nox_arguments, nox_env, run_logged

# A test process that dies this many times in one cell ends the cell.
MAX_RESTARTS = 20


def run_session(
    spec: SessionSpec, cell_dir: CellDir, timeout: float | None, running: RunningCells
) -> CellRun:
    """Run the cell's session (written to its folder) and step over tests that kill the
    test process; what it left is for the verdicts to judge (``judge.py``)."""
    cell_dir.clear_run_files()
    _discard_broken_environment(cell_dir)
    write_text_atomic(cell_dir.session_file, dump_specs([spec]))
    log_path = cell_dir.log_file
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()
    started_at = time.time()
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
    return CellRun(
        records=records,
        phase=cell_dir.phase(),
        returncode=returncode,
        timed_out=timed_out,
        timeout=timeout,
        output=cell_dir.log(),
        log=str(log_path),
        duration=time.monotonic() - started,
        seconds=stage_seconds(started_at, cell_dir.stages(), time.time()),
        metadata_fallback=cell_dir.legacy_note(),
    )


def stage_seconds(started: float, stages: dict[str, float], ended: float) -> dict[str, float]:
    """Where a cell's time went, from the stage times its session wrote: ``session`` (nox
    starting it in a worker, the environment checked), ``install``, ``tests`` (with any
    restarts after a crash). Stages the session never reached are left out; wall-clock
    times, so a clock stepped back mid-cell gives no negative figure."""
    marks = [started, *(stages[s] for s in (PHASE_INSTALL, PHASE_TEST) if s in stages)]
    marks.append(stages.get(STAGE_DONE, ended) if PHASE_TEST in stages else ended)
    names = ("session", "install", "tests")[: len(marks) - 1]
    return {name: round(max(b - a, 0.0), 3) for name, a, b in zip(names, marks, marks[1:])}


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
