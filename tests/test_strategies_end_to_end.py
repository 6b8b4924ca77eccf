"""Strategies and warm re-runs with real cells: a long fake history, run three ways."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import MatrixRunResult, offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow
COUNT, REMOVED_AT = 16, 11
BASELINE = REMOVED_AT - 5  # the walk's starting point, below the boundary


@pytest.fixture(scope="module")
def history_wheels(tmp_path_factory: pytest.TempPathFactory, finder: InterpreterFinder) -> Path:
    require_pythons(finder, "3.11")
    wheels = tmp_path_factory.mktemp("history-wheels")
    fakeframe.build_history(wheels, COUNT, REMOVED_AT)
    return wheels


@pytest.fixture(scope="module")
def history_project(
    tmp_path_factory: pytest.TempPathFactory, tooling: Path, history_wheels: Path
) -> Path:
    wheels = history_wheels
    root = tmp_path_factory.mktemp("history")
    write_project(
        root,
        {
            "conftest.py": "",
            "tests/test_api.py": """
            import longframe

            def test_api():
                assert longframe.api() == 1

            def test_version():
                assert longframe.__version__.startswith("1.")
            """,
        },
    )
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.longframe]\nversions = ">=1.0"\n'
        + offline_install(wheels, tooling)
    )
    return root


def _ran(result: MatrixRunResult) -> list[dict[str, Any]]:
    return [c for c in result.matrix("m")["cells"] if c["status"] != "skipped"]


def test_bisect_runs_few_cells_and_finds_the_grid_boundary(history_project: Path) -> None:
    # The history is made with its boundary at 1.REMOVED_AT: what a grid of its COUNT cells
    # finds (test_end_to_end judges grids), here without running them.
    bisect = run_matrix(
        history_project, "--dfvc-matrix=m.toml", "--dfvc-strategy=bisect", "--dfvc-rerun"
    )
    assert bisect.returncode == 0, bisect.output
    bisect_range = bisect.matrix("m")["ranges"]["longframe"]
    assert len(_ran(bisect)) <= 2 * math.ceil(math.log2(COUNT)) + 2
    assert bisect_range["upgrade_boundary"] == f"1.{REMOVED_AT}"
    assert bisect_range["specifier"] == f">=1.0,<1.{REMOVED_AT}"
    skipped = [c for c in bisect.matrix("m")["cells"] if c["status"] == "skipped"]
    assert skipped and all(c["cause"]["category"] == "strategy" for c in skipped)
    # Versions bisect skipped are untested, never passed or failed; inferred says from what.
    assert set(bisect_range["untested"]) == {c["packages"]["longframe"] for c in skipped}
    inferred = bisect_range["inferred"]
    below = [v for v in inferred if int(v.split(".")[1]) < REMOVED_AT]
    assert below and all(inferred[v]["verdict"] == "compatible" for v in below)
    above = [v for v in inferred if int(v.split(".")[1]) > REMOVED_AT]
    assert above and all(inferred[v]["verdict"] == "incompatible" for v in above)
    assert "left out by the strategy" in bisect.output


def test_bisect_sees_modules_that_fail_to_import(
    tmp_path: Path, tooling: Path, history_wheels: Path
) -> None:
    """scipy 1.5-1.13: from 1.12 every test module fails to import (here from
    1.REMOVED_AT). Bisect must judge those cells by the tests the module holds (as grid
    does), not by the module's node id; with two slots it probes two points at once."""
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_api.py": """
            from longframe import api

            def test_api():
                assert api() == 1

            def test_other():
                assert True
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.11"]\n[packages.longframe]\nversions = ">=1.0"\n'
        + offline_install(history_wheels, tooling)
    )
    bisect = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-strategy=bisect", "--dfvc-jobs=2")
    assert bisect.returncode == 0, bisect.output
    bisect_range = bisect.matrix("m")["ranges"]["longframe"]
    # From 1.REMOVED_AT every module fails to import: a grid's boundary, by construction.
    assert bisect_range["upgrade_boundary"] == f"1.{REMOVED_AT}"
    assert bisect_range["specifier"] == f">=1.0,<1.{REMOVED_AT}"
    failing = [c for c in _ran(bisect) if c["status"] == "failed"]
    assert failing and all(t["outcome"] == "error" for c in failing for t in c["tests"])
    assert len(_ran(bisect)) <= 2 * math.ceil(math.log2(COUNT)) + 2


def test_walk_stops_at_the_first_failure_above_the_baseline(history_project: Path) -> None:
    matrix = history_project / "walk.toml"
    matrix.write_text(
        (history_project / "m.toml")
        .read_text()
        .replace('versions = ">=1.0"', f'versions = ">=1.0"\nbaseline = "1.{BASELINE}"')
    )
    result = run_matrix(
        history_project, "--dfvc-matrix=walk.toml", "--dfvc-strategy=walk", "--dfvc-rerun"
    )
    assert result.returncode == 0, result.output
    ran = sorted(
        int(c["packages"]["longframe"].split(".")[1])
        for c in result.matrix("walk")["cells"]
        if c["status"] != "skipped"
    )
    # Up from the baseline to the first failure (1.REMOVED_AT); down to 1.0, where nothing
    # failed.
    assert ran == list(range(0, REMOVED_AT + 1))
    assert result.matrix("walk")["ranges"]["longframe"]["upgrade_boundary"] == f"1.{REMOVED_AT}"


def test_warm_rerun_reuses_unchanged_cells_and_notices_changes(history_project: Path) -> None:
    # The upper half of the history (its boundary inside): each change below runs every
    # cell bisect chose again, so fewer releases make the same checks cheaper.
    warm = history_project / "warm.toml"
    warm.write_text(
        (history_project / "m.toml")
        .read_text()
        .replace('versions = ">=1.0"', f'versions = ">=1.{COUNT // 2}"')
    )
    args = ("--dfvc-matrix=warm.toml", "--dfvc-strategy=bisect")
    first = run_matrix(history_project, *args)
    assert first.returncode == 0
    again = run_matrix(history_project, *args)
    ran = [c for c in again.matrix("warm")["cells"] if c["status"] != "skipped"]
    assert "0 cells run" in again.output and f"{len(ran)} unchanged and reused" in again.output
    assert again.matrix("warm")["ranges"] == first.matrix("warm")["ranges"]
    # A changed test, a changed constraint, changed pytest arguments: all run again.
    test_file = history_project / "tests" / "test_api.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_more():\n    pass\n")
    assert f"{len(ran)} cells run, 0 unchanged" in run_matrix(history_project, *args).output
    assert "0 cells run" in run_matrix(history_project, *args).output
    assert (
        f"{len(ran)} cells run, 0 unchanged"
        in run_matrix(history_project, *args, "-k", "api").output
    )
    warm.write_text(warm.read_text() + 'constraints = ["iniconfig>=1"]\n')
    assert f"{len(ran)} cells run, 0 unchanged" in run_matrix(history_project, *args).output
    # A damaged cache entry is a miss, not a crash.
    for entry in (history_project / ".dfvc" / "cache" / "cells" / "warm" / ran[0]["id"]).glob("*"):
        entry.write_text("{not json")
    damaged = run_matrix(history_project, *args)
    assert damaged.returncode == 0 and "1 cells run" in damaged.output


def test_a_test_that_fails_once_is_flaky_in_the_results_and_in_the_cache(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """On 1.2.0 the test times out the first time only: run again, it passes; the boundary
    is 2.0.0, where it fails again; a warm run reuses the cell as flaky (issue 34, item 8)."""
    require_pythons(finder, "3.11")
    mark = tmp_path / "ran-once"
    write_project(
        tmp_path / "p",
        {
            "conftest.py": "",
            "tests/test_once.py": f"""
            import os
            import fakeframe

            def test_old():
                if fakeframe.__version__ == "1.2.0" and not os.path.exists({str(mark)!r}):
                    open({str(mark)!r}, "w").close()
                    raise TimeoutError("timed out once")
                assert fakeframe.old_mean([2]) == 2
            """,
        },
    )
    root = tmp_path / "p"
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    first = run_matrix(root, "--dfvc-matrix=m.toml")
    assert first.returncode == 0, first.output
    cells = {c["id"]: c for c in first.matrix("m")["cells"]}
    once = cells["py3.11-fakeframe1.2.0"]
    assert once["tests"][0]["outcome"] == "flaky", first.output
    assert once["tests"][0]["first_run"]["cause"]["exception"] == "TimeoutError"
    assert cells["py3.11-fakeframe2.0.0"]["tests"][0].get("confirmed") is True
    fakeframe_range = first.matrix("m")["ranges"]["fakeframe"]
    assert fakeframe_range["upgrade_boundary"] == "2.0.0"
    assert "1.2.0" not in fakeframe_range["incompatible"]
    assert "flaky (failed, then passed when run again" in first.output
    again = run_matrix(root, "--dfvc-matrix=m.toml")
    assert "unchanged, result reused" in again.output
    reused = {c["id"]: c for c in again.matrix("m")["cells"]}
    assert reused["py3.11-fakeframe1.2.0"]["tests"][0]["outcome"] == "flaky"
    assert "failing test(s) run again" not in again.output  # reused, not run again
