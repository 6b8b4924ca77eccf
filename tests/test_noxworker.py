"""The long-lived nox worker: nox's own command line, one session after another in one
process, each session's output in its own log."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from pytest_dfvc.cells.noxworker import NoxWorker

NOXFILE = """
import sys
import nox

@nox.session(venv_backend="none")
def greet(session):
    print("hello from", session.name)
    session.run(sys.executable, "-c", "print('child output')")

@nox.session(venv_backend="none")
def fail(session):
    session.error("this session fails")

@nox.session(venv_backend="none")
def slow(session):
    session.run(sys.executable, "-c", "import time; time.sleep(60)")
"""


def _worker_run(worker: NoxWorker, tmp_path: Path, session: str, timeout: float = 60) -> int | None:
    noxfile = tmp_path / "noxfile.py"
    noxfile.write_text(textwrap.dedent(NOXFILE))
    log = tmp_path / f"{session}.log"
    args = ["--noxfile", str(noxfile), "--no-color", "-s", session]
    return worker.run(args, dict(os.environ), str(tmp_path), log, timeout)


def test_sessions_run_one_after_another_in_one_process(tmp_path: Path) -> None:
    worker = NoxWorker(dict(os.environ))
    try:
        assert _worker_run(worker, tmp_path, "greet") == 0
        assert _worker_run(worker, tmp_path, "fail") == 1
        assert _worker_run(worker, tmp_path, "greet") == 0  # a failure leaves it usable
        assert worker.alive()
    finally:
        worker.close()
    assert worker.process.returncode == 0
    greet = (tmp_path / "greet.log").read_text()
    # nox's own lines, the session's prints and its subprocesses' output, all in the log.
    assert "nox > Running session greet" in greet
    assert "hello from greet" in greet and "child output" in greet
    assert "this session fails" in (tmp_path / "fail.log").read_text()
    assert "greet" not in (tmp_path / "fail.log").read_text()


def test_a_session_past_its_time_gets_no_answer(tmp_path: Path) -> None:
    worker = NoxWorker(dict(os.environ))
    try:
        assert _worker_run(worker, tmp_path, "slow", timeout=2) is None
        assert worker.alive()  # still busy: the caller stops it, with its process group
    finally:
        worker.kill()
    assert not worker.alive()


def test_what_breaks_nox_itself_is_in_the_log(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "nox"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('this nox is broken')\n")
    worker = NoxWorker(dict(os.environ, PYTHONPATH=str(shadow.parent)))
    try:
        assert _worker_run(worker, tmp_path, "greet") == 1
    finally:
        worker.close()
    assert "ImportError: this nox is broken" in (tmp_path / "greet.log").read_text()
