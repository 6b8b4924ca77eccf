"""Judging a cell from what its session left (the cell folder's files), and crash detection:
pure functions over hand-written records and logs, no nox."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.cells.celldir import CellDir
from pytest_dfvc.cells.cellrun import stage_seconds
from pytest_dfvc.cells.sessionspec import SessionSpec, afresh, asks_afresh
from pytest_dfvc.index.install_causes import missing_pin
from pytest_dfvc.index.uvconfig import PYPI_CONFIG, PYPI_REFRESH_CONFIG
from pytest_dfvc.phases import PHASE_INSTALL, PHASE_TEST
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.records import CellRun, Record, crashed_test, done_tests, finished
from pytest_dfvc.verdicts.judge import judge, pytest_error

CELL = Cell("m", "py3.10-x1.0", "3.10", (("x", "1.0"),))


def _test(nodeid: str, outcome: str) -> Record:
    return {"kind": "test", "nodeid": nodeid, "outcome": outcome, "when": "call"}


FINISHED: Record = {"kind": "finish", "exitstatus": 0, "deselected": 0}


def test_a_passing_and_a_failing_test_make_a_failed_cell() -> None:
    records = [_test("t::a", "passed"), _test("t::b", "failed"), {**FINISHED, "exitstatus": 1}]
    outcome = judge(CELL, CellRun(records, PHASE_TEST, 0, False, None, ""))
    assert (outcome.status, outcome.cause) == ("failed", None)


def test_a_cell_whose_tests_were_all_skipped_is_untested_and_says_why() -> None:
    skipped = {**_test("t::a", "skipped"), "reason": "needs a GPU"}
    outcome = judge(CELL, CellRun([skipped, FINISHED], PHASE_TEST, 0, False, None, ""))
    assert outcome.status == "skipped"
    assert outcome.cause is not None
    assert (outcome.cause.category, outcome.cause.reason) == (
        "no-tests",
        "no test ran: skipped: needs a GPU",
    )


def test_an_install_that_failed_is_judged_by_uvs_words() -> None:
    log = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because x==1.0 has no wheels with a matching Python ABI tag (e.g., `cp310`)\n"
    )
    outcome = judge(CELL, CellRun([], PHASE_INSTALL, 1, False, None, log))
    assert outcome.status == "unavailable"
    assert outcome.cause is not None and outcome.cause.category == "python-version"
    assert outcome.cause.reason == "x 1.0 has no wheel for CPython 3.10"


@pytest.mark.parametrize(
    ("exitstatus", "log", "category", "reason"),
    [
        (4, "ERROR: file or directory not found: tests/nope.py\n", "pytest-usage", "ERROR: file"),
        (3, "INTERNALERROR> boom\n", "unknown", "pytest in the cell exited with status 3"),
    ],
)
def test_a_pytest_that_refused_to_run_is_an_error_not_a_finding(
    exitstatus: int, log: str, category: str, reason: str
) -> None:
    records = [{**FINISHED, "exitstatus": exitstatus}]
    outcome = judge(CELL, CellRun(records, PHASE_TEST, exitstatus, False, None, log))
    assert outcome.status == "error"
    assert outcome.cause is not None
    assert outcome.cause.category == category and reason in outcome.cause.reason


def test_a_test_process_that_died_without_finishing_is_a_crash() -> None:
    records = [{"kind": "start", "nodeid": "t::a"}]
    outcome = judge(CELL, CellRun(records, PHASE_TEST, -11, False, None, ""))
    assert outcome.status == "error"
    assert outcome.cause is not None and outcome.cause.category == "crash"
    assert outcome.cause.reason == "the test process was killed by signal 11"


def test_a_timeout_names_the_running_test_and_keeps_the_others() -> None:
    records = [_test("t::a", "passed"), {"kind": "start", "nodeid": "t::slow"}]
    outcome = judge(CELL, CellRun(records, PHASE_TEST, -15, True, 30.0, ""))
    assert outcome.status == "error"
    assert outcome.cause is not None and outcome.cause.category == "timeout"
    assert "during t::slow" in outcome.cause.reason
    assert "the 1 tests before it kept their outcomes" in outcome.cause.reason
    stopped = outcome.records[-1]
    assert (stopped["nodeid"], stopped["outcome"], stopped["exception"]["type"]) == (
        "t::slow",
        "error",
        "dfvc.Timeout",
    )


def test_the_crashed_test_is_the_last_started_without_an_outcome() -> None:
    records = [
        {"kind": "start", "nodeid": "t::a"},
        _test("t::a", "passed"),
        {"kind": "start", "nodeid": "t::b"},
    ]
    assert crashed_test(records) == "t::b"
    assert crashed_test(records[:2]) is None
    assert not finished(records) and finished([*records, FINISHED])
    assert done_tests(records) == ["t::a"]


def test_the_cell_folder_stands_in_for_the_outcome_a_crash_cost(tmp_path: Path) -> None:
    cell_dir = CellDir(tmp_path)
    cell_dir.records_file.write_text('{"kind": "start", "nodeid": "t::a"}\n{"kind": "te')
    cell_dir.phase_file.write_text(PHASE_TEST)
    records = cell_dir.records()
    # A line cut short by the crash is dropped; the session reached its tests and died.
    assert records == [{"kind": "start", "nodeid": "t::a"}]
    assert cell_dir.crashed_in_tests(records)
    cell_dir.append_crash("t::a", -9)
    (*_, crash) = cell_dir.records()
    assert crash["exception"]["message"] == "the test process killed by signal 9 during this test"
    assert done_tests(cell_dir.records()) == ["t::a"]
    # After whole lines, no empty one.
    cell_dir.append_crash("t::b", 1)
    assert cell_dir.records_file.read_text().count("\n\n") == 0
    assert cell_dir.records()[-1]["nodeid"] == "t::b"
    cell_dir.clear_run_files()
    assert cell_dir.records() == [] and cell_dir.phase() is None


def test_pytests_own_refusal_is_found_in_the_log() -> None:
    log = "nox > Running session\npytest: error: unrecognized arguments: --nope\n"
    assert pytest_error(log) == "pytest: error: unrecognized arguments: --nope"
    assert pytest_error("all fine\n") is None


UV_NO_VERSION = (
    "error: No solution found when resolving dependencies\n"
    "  cause: Because there is no version of Fake_Base[extra]==2.0 and you require "
    "fake-base[extra]==2.0, we can conclude that your requirements are unsatisfiable.\n"
)


def test_a_pin_uv_found_no_version_of_is_named() -> None:
    assert missing_pin(UV_NO_VERSION, ["fake-base[extra]==2.0", "numpy==2.1.3"]) == "fake-base"
    # Only the cell's own pins: a dependency's missing version is the resolver's finding.
    assert missing_pin(UV_NO_VERSION, ["numpy==2.1.3"]) is None
    assert missing_pin("error: something else\n", ["fake-base==2.0"]) is None


def test_a_second_try_asks_the_index_again_once() -> None:
    kept = ["--config-file", str(PYPI_CONFIG)]
    spec: SessionSpec = {  # type: ignore[typeddict-item]
        "install": ["fake-base==2.0", "pytest", *kept, "--upgrade"],
        "sources": kept,
    }
    assert asks_afresh(spec)
    again = afresh(spec, "fake-base")
    assert again["install"] == [
        "fake-base==2.0",
        "pytest",
        "--config-file",
        str(PYPI_REFRESH_CONFIG),
        "--upgrade",
        "--refresh-package",
        "fake-base",
    ]
    assert again["sources"] == ["--config-file", str(PYPI_REFRESH_CONFIG)]
    assert not asks_afresh(again)
    # A user's own index settings (no configuration of ours): uv's lifetimes are theirs.
    assert not asks_afresh({**spec, "install": ["fake-base==2.0", "--index-url", "x"]})


def test_a_cells_time_is_split_into_the_stages_its_session_reached(tmp_path: Path) -> None:
    cell_dir = CellDir(tmp_path)
    with cell_dir.stages_file.open("w") as f:
        f.write("install 100.5\ntest 101.25\ndone 103.0\ntest\n")  # a mark with no time
    stages = cell_dir.stages()
    assert stages == {"install": 100.5, "test": 101.25, "done": 103.0}
    assert stage_seconds(100.0, stages, 104.0) == {"session": 0.5, "install": 0.75, "tests": 1.75}
    # Stopped in its install: no test time, the install runs to the cell's end.
    assert stage_seconds(100.0, {"install": 100.5}, 102.0) == {"session": 0.5, "install": 1.5}
    # Killed in its tests (no "done"): the tests run to the cell's end, restarts included.
    assert stage_seconds(100.0, {"install": 100.5, "test": 101.0}, 105.0)["tests"] == 4.0
    # Never reached its session (nox failed to start it): all of it is the session's.
    assert stage_seconds(100.0, {}, 100.25) == {"session": 0.25}
    cell_dir.clear_run_files()
    assert cell_dir.stages() == {}
