"""The terminal report at scale: folded rows, only the cells that ran, short version lists."""

from __future__ import annotations

from typing import Any, cast

from pytest_dfvc.model import CauseGroup, CellJSON, MatrixJSON
from pytest_dfvc.publish.terminal import (
    render_causes,
    render_ranges,
    render_table,
    versions_text,
)


def _cell(cell_id: str, status: str, outcomes: dict[str, str], **extra: Any) -> CellJSON:
    tests = [{"nodeid": n, "outcome": o} for n, o in outcomes.items()]
    return cast(CellJSON, {"id": cell_id, "status": status, "tests": tests, "cause": None, **extra})


CELLS = [
    _cell("py3.10-x1.0", "passed", {"t::a": "passed", "t::b": "passed", "t::c": "skipped"}),
    _cell("py3.10-x2.0", "failed", {"t::a": "passed", "t::b": "failed", "t::c": "skipped"}),
    *(
        _cell(f"py3.10-x1.0.{i}", "skipped", {}, cause={"category": "strategy", "reason": "r"})
        for i in range(3, 145)
    ),
]


def test_rows_the_same_in_every_cell_fold_and_cells_that_ran_no_test_leave_the_table() -> None:
    """90 tests x 8 cells printed every test; a bisect over 151 versions a 600-character
    table with 151 legend lines."""
    lines = render_table(CELLS)
    assert lines[0].split() == ["1", "2"]
    assert any(line.startswith("t::b ") for line in lines)
    assert not any(line.startswith(("t::a", "t::c")) for line in lines)
    assert "1 test passes in every cell that ran" in lines
    assert "1 test is skipped in every cell that ran" in lines
    assert lines[-1] == (
        "  not in the table, skipped: r: py3.10-x1.0.3, py3.10-x1.0.4 … py3.10-x1.0.144 (142)"
    )
    assert max(len(line) for line in lines) < 100


def test_verbose_shows_everything() -> None:
    lines = render_table(CELLS, verbose=True)
    assert any(line.startswith("t::a") for line in lines)
    assert len(lines[0].split()) == len(CELLS)


def test_version_lists_are_cut_to_their_ends() -> None:
    assert versions_text(["1.0", "1.1"]) == "1.0, 1.1"
    many = [f"1.0.{i}" for i in range(3, 145)]
    assert versions_text(many) == "1.0.3, 1.0.4 … 1.0.144 (142)"


def test_per_test_ranges_show_the_tests_that_carry_a_boundary() -> None:
    """The list printed every test that passes everywhere (84 lines) and left out those
    whose range equals the project's, the interesting ones."""
    everywhere = {"specifier": ">=1.0", "compatible": ["1.0", "2.0"], "incompatible": []}
    boundary = {"specifier": "==1.0", "compatible": ["1.0"], "incompatible": ["2.0"]}
    matrix = {
        "ranges": {
            "x": {
                **boundary,
                "tests": {"t::a": everywhere, "t::b": boundary, "t::c": everywhere},
            }
        }
    }
    lines = render_ranges(cast(MatrixJSON, matrix))
    assert "      t::b: ==1.0  (passes 1.0; fails 2.0)" in lines
    assert not any("t::a" in line for line in lines)
    assert "      2 tests pass on every x version tried (-v lists them)" in lines
    assert any("t::a" in line for line in render_ranges(cast(MatrixJSON, matrix), verbose=True))


def test_tests_that_share_a_range_are_one_line() -> None:
    """Issue 32, item 5: 24 per-test range lines with the same long parenthetical."""
    boundary = {"specifier": "==1.0", "compatible": ["1.0"], "incompatible": ["2.0"]}
    other = {"specifier": ">=2.0", "compatible": ["2.0"], "incompatible": ["1.0"]}
    tests = {f"t::b{i}": boundary for i in range(22)} | {"t::o": other}
    matrix = {"ranges": {"x": {**boundary, "tests": tests}}}
    lines = render_ranges(cast(MatrixJSON, matrix))
    assert "      22 tests: ==1.0  (passes 1.0; fails 2.0) (-v lists them)" in lines
    assert "      t::o: >=2.0  (passes 2.0; fails 1.0)" in lines
    assert not any("t::b3" in line for line in lines)
    verbose = render_ranges(cast(MatrixJSON, matrix), verbose=True)
    assert "          t::b3" in verbose


def test_a_version_that_could_not_be_installed_is_not_also_untested() -> None:
    entry = {
        "specifier": "==1.0",
        "compatible": ["1.0"],
        "incompatible": [],
        "untested": ["2.3.5", "2.4.6", "3.0"],
        "unavailable": ["2.3.5", "2.4.6"],
    }
    lines = render_ranges(cast(MatrixJSON, {"ranges": {"x": {**entry, "tests": {}}}}))
    assert "untested 3.0; not installable 2.3.5, 2.4.6" in lines[1]


def test_a_test_that_ran_on_some_versions_only_never_passes_on_every_version() -> None:
    """Issue 26: "24 tests pass on every pandas version" counted tests never collected on
    pandas 2.x (their module was skipped there): a statement without evidence."""
    everywhere = {"specifier": ">=1.0", "compatible": ["1.0", "2.0"], "incompatible": []}
    partly = {
        "specifier": ">=1.0",
        "compatible": ["1.0"],
        "incompatible": [],
        "untested": ["2.0"],
    }
    matrix = {"ranges": {"x": {**everywhere, "tests": {"t::a": everywhere, "t::p": partly}}}}
    lines = render_ranges(cast(MatrixJSON, matrix))
    assert "      1 test passes on every x version tried (-v lists them)" in lines
    assert any(line.startswith("      t::p: ") and "untested 2.0" in line for line in lines)


def test_a_cause_group_names_its_tests_with_their_class() -> None:
    """Issue 32, item 5: ``test_peaks, test_peaks`` for two classes' tests."""
    group = {
        "category": "behavior",
        "tests": ["tests/test_p.py::Baseline::test_peaks", "tests/test_p.py::Fit::test_peaks"],
        "cells": ["c1"],
        "versions": {"x": ["2.0"]},
    }
    lines = render_causes([cast(CauseGroup, group)])
    assert "Baseline::test_peaks, Fit::test_peaks" in lines[-1]


def test_the_status_row_of_a_cell_failed_by_errors_reads_as_its_rows() -> None:
    """Issue 32, item 5: ``cell status`` said F where every test row said E."""
    cell = cast(
        CellJSON,
        {
            "id": "c2",
            "python": "3.11.4",
            "packages": {"x": "2.0"},
            "cuda": None,
            "status": "failed",
            "cause": None,
            "resolved": {},
            "tests": [
                {"nodeid": "t::a", "outcome": "error"},
                {"nodeid": "t::b", "outcome": "error"},
            ],
            "duration": 0.1,
        },
    )
    passing = cast(
        CellJSON,
        {
            **cell,
            "id": "c1",
            "status": "passed",
            "tests": [
                {"nodeid": "t::a", "outcome": "passed"},
                {"nodeid": "t::b", "outcome": "passed"},
            ],
        },
    )
    lines = render_table([passing, cell])
    status = next(line for line in lines if line.startswith("cell status"))
    assert status.split()[-2:] == [".", "E"]
    assert "  2: c2  failed" in lines
