"""What broke since the last run: the news of a scheduled run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.model import CellJSON, Document, MatrixJSON
from pytest_dfvc.verdicts.changes import (
    change_lines,
    complete_copy,
    keep_complete,
    read_previous,
    since_last_run,
)

from .helpers import offline_install, require_pythons, run_matrix, write_project


def _cell(cell_id: str, version: str, outcome: str) -> CellJSON:
    test: dict[str, Any] = {"nodeid": "t.py::t", "outcome": outcome}
    if outcome == "failed":
        test["cause"] = {"category": "missing-api", "api": "x.f"}
    return cast(
        CellJSON, {"id": cell_id, "packages": {"x": version}, "status": outcome, "tests": [test]}
    )


def test_a_new_release_that_breaks_a_test_and_a_test_that_broke_in_place() -> None:
    previous = {
        "matrices": [
            {"name": "m", "cells": [_cell("a", "1.0", "passed"), _cell("b", "1.1", "failed")]}
        ]
    }
    current = {
        "name": "m",
        "cells": [
            _cell("a", "1.0", "failed"),
            _cell("b", "1.1", "passed"),
            _cell("c", "2.0", "failed"),
        ],
    }
    news = since_last_run(cast(Document, previous), cast(MatrixJSON, current))
    assert [(b["cell"], b["new_cell"]) for b in news["breaks"]] == [("a", False), ("c", True)]
    assert news["fixed"] == [{"cell": "b", "tests": ["t.py::t"]}]
    assert change_lines(news) == [
        "  a: t passed in the last run and fail now (missing-api: x.f)",
        "  x 2.0 (new since the last run, c) breaks t (missing-api: x.f)",
        "  b: t failed in the last run and pass now",
    ]


def test_an_interrupted_last_run_is_no_news_for_the_cells_it_did_not_finish() -> None:
    previous = {
        "complete": False,
        "matrices": [{"name": "m", "cells": [_cell("a", "1.0", "passed")]}],
    }
    current = {"name": "m", "cells": [_cell("a", "1.0", "passed"), _cell("c", "2.0", "failed")]}
    assert since_last_run(cast(Document, previous), cast(MatrixJSON, current)) == {
        "breaks": [],
        "fixed": [],
    }


@pytest.mark.slow
def test_a_new_release_on_the_index_is_news_on_the_next_run(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    write_project(tmp_path)
    (tmp_path / "matrices").mkdir()
    matrix = tmp_path / "matrices" / "fake.toml"
    body = offline_install(wheelhouse, tooling) + 'requirements = ["fakeaddon"]\n'
    matrix.write_text('python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.2.0"]\n' + body)
    first = run_matrix(tmp_path)
    assert first.returncode == 0, first.output
    assert "since the last run" not in first.output
    assert "since_last_run" not in first.matrix("fake")
    # The week after: 2.0.0 is out, and the matrix's range takes it in.
    matrix.write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.2.0", "2.0.0"]\n' + body
    )
    second = run_matrix(tmp_path)
    assert second.returncode == 0, second.output
    news = second.matrix("fake")["since_last_run"]
    assert [b["cell"] for b in news["breaks"]] == ["py3.10-fakeframe2.0.0"]
    assert "fakeframe 2.0.0 (new since the last run, py3.10-fakeframe2.0.0) breaks" in second.output
    report = (tmp_path / ".dfvc" / "report.md").read_text()
    assert "### Since the last run" in report


@pytest.mark.slow
def test_a_cell_job_never_replaces_the_last_complete_run_as_the_baseline(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A ``--dfvc-cell`` run wrote results.json with its one cell; the next full run then
    announced 2.0.0, there the run before, as "new since the last run" (issue 27, item 8)."""
    require_pythons(finder, "3.10")
    write_project(tmp_path)
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "fake.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.2.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
        + 'requirements = ["fakeaddon"]\n'
    )
    full = run_matrix(tmp_path)
    assert full.returncode == 0, full.output
    job = run_matrix(tmp_path, "--dfvc-cell=fake/py3.10-fakeframe1.2.0")
    assert job.returncode == 0, job.output
    assert job.results.get("complete") is False  # one cell of the plan: not a baseline
    again = run_matrix(tmp_path)
    assert again.returncode == 0, again.output
    assert "new since the last run" not in again.output
    assert (
        "since_last_run" not in again.matrix("fake")
        or not again.matrix("fake")["since_last_run"]["breaks"]
    )


def test_a_partial_results_file_gives_way_to_the_last_complete_one(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    complete = cast(Document, {"schema": 1, "matrices": [{"name": "m", "cells": []}]})
    keep_complete(path, complete)
    path.write_text(json.dumps({"schema": 1, "complete": False, "matrices": []}))
    assert read_previous(path) == complete
    # With no complete run kept, the partial one is what there is (its missing cells are no
    # news: since_last_run reads it as partial).
    complete_copy(path).unlink()
    assert read_previous(path) == {"schema": 1, "complete": False, "matrices": []}
