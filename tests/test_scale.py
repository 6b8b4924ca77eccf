"""Hundreds of cells: a run past the cell limit is refused before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow


def _five_cells(root: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder) -> None:
    """A project with one test and a matrix of the fake framework's five releases."""
    require_pythons(finder, "3.10")
    write_project(root, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    (root / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ">=1"\n'
        + offline_install(wheelhouse, tooling)
    )


def test_a_run_past_the_cell_limit_is_refused(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """1,202 setuptools cells started at once, with no confirmation: past
    --dfvc-max-cells, a grid is refused with the count and how to narrow it."""
    _five_cells(tmp_path, wheelhouse, tooling, finder)
    refused = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-max-cells=3")
    assert refused.returncode == 4, refused.output
    assert "dfvc: 5 cells to run (m.toml: 5), more than --dfvc-max-cells=3" in refused.output
    assert "--dfvc-strategy=bisect" in refused.output
    assert "--dfvc-max-cells=5" in refused.output
    assert not (tmp_path / ".dfvc" / "envs").exists()
    # A search runs a few cells of any matrix; a raised limit runs them all.
    searched = run_matrix(
        tmp_path, "--dfvc-matrix=m.toml", "--dfvc-max-cells=3", "--dfvc-strategy=bisect"
    )
    assert searched.returncode == 0, searched.output
    raised = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-max-cells=5")
    assert raised.returncode == 0, raised.output


def test_progress_counts_against_the_total_and_respects_quiet(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``[n]`` counted finished cells with no total; show ``[done/total]`` and, once a few
    cells ran, the time left; -q keeps one line per finished cell, -qq nothing."""
    _five_cells(tmp_path, wheelhouse, tooling, finder)
    run = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-jobs=1")
    finished = [line for line in run.output.splitlines() if line.startswith("[")]
    assert [line.split("]")[0].split(",")[0] + "]" for line in finished] == [
        f"[{n}/5]" for n in range(1, 6)
    ], run.output
    assert ", about " in finished[3] and " left]" in finished[3]
    assert "provisioning and testing" in run.output
    quiet = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-rerun", "-q")
    assert "provisioning and testing" not in quiet.output
    assert sum(line.startswith("[") for line in quiet.output.splitlines()) == 5
    # Reused cells have their lines too (test_strategies_end_to_end): -qq hides them.
    assert "result reused" in run_matrix(tmp_path, "--dfvc-matrix=m.toml").output
    quieter = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "-qq")
    assert not any(line.startswith(("[", "dfvc: testing")) for line in quieter.output.splitlines())
    assert "compatible ranges" in quieter.output or "fakeframe" in quieter.output
