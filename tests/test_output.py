"""Nothing lost: what a run writes, where it cannot, and the cache it keeps."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import cast

import pytest

from pytest_dfvc.cells.cache import ResultCache, files_fingerprint
from pytest_dfvc.cells.views import make_view, project_files, take_snapshot
from pytest_dfvc.files import write_text_atomic
from pytest_dfvc.model import CellJSON, cell_problem
from pytest_dfvc.outdir import OUTPUT_MARKER, prepare_output
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.verdicts.changes import read_previous

MATRIX = 'python = ["3.9"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0"]\n[install]\nno-index = true\n'


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    (pytester.path / "m.toml").write_text(MATRIX)
    return pytester


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    os.umask(old)
    target = tmp_path / "results.json"
    write_text_atomic(target, "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~old
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_empty_cell_selection_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-cell=,")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --dfvc-cell ',': names no cell*"])
    assert not (project.path / ".dfvc" / "results.json").exists()


def test_a_merge_without_shards_changes_nothing(project: pytest.Pytester) -> None:
    out = project.path / ".dfvc"
    out.mkdir()
    (out / "results.json").write_text('{"schema": 1, "matrices": ["earlier results"]}')
    shards = project.path / "shards"
    shards.mkdir()
    (shards / "coverage.json").write_text('{"meta": {}}')  # another tool's JSON file
    (shards / "broken.json").write_text("{not json")
    result = project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-merge=shards")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *shards: holds no pytest-dfvc shards; nothing was merged*"]
    )
    assert json.loads((out / "results.json").read_text())["matrices"] == ["earlier results"]
    assert not (out / "report.md").exists()


def test_an_output_folder_that_takes_no_files_is_one_clear_error(project: pytest.Pytester) -> None:
    (project.path / "taken").write_text("a file where the folder should be")
    result = project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-out=taken/out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: dfvc: cannot write *taken/out: *"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_output_folder_is_ignored_by_git(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-list")
    assert (project.path / ".dfvc" / ".gitignore").read_text().splitlines()[-1] == "*"


def _cell() -> Cell:
    return Cell("m", "py3.9-fakeframe1.0.0", "3.9", (("fakeframe", "1.0.0"),))


def _data(status: str = "failed") -> CellJSON:
    data = {
        "id": "py3.9-fakeframe1.0.0",
        "status": status,
        "python": "3.9.18",
        "packages": {"fakeframe": "1.0.0"},
        "tests": [{"nodeid": "t::a", "outcome": "failed" if status == "failed" else "passed"}],
    }
    return cast(CellJSON, data)


def test_a_cache_entry_is_reused_as_written(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.put("m", _cell(), "k", _data())
    assert ResultCache(tmp_path).get("m", _cell(), "k") == _data()
    assert ResultCache(tmp_path).get("m", _cell(), "other key") is None


def test_a_few_entries_are_kept_per_cell(tmp_path: Path) -> None:
    """Back to earlier inputs (another -k, then none): the earlier result is still there."""
    cache = ResultCache(tmp_path)
    for key in ("k1", "k2", "k3", "k4", "k5"):
        cache.put("m", _cell(), key, _data())
    fresh = ResultCache(tmp_path)
    assert fresh.get("m", _cell(), "k1") is None  # the oldest went
    assert all(fresh.get("m", _cell(), k) == _data() for k in ("k2", "k3", "k4", "k5"))


def test_a_cache_entry_a_cell_rewrote_is_not_reused(tmp_path: Path) -> None:
    """A test that rewrote the cache turned a failing version into a reused pass."""
    cache = ResultCache(tmp_path)
    cache.put("m", _cell(), "k", _data("failed"))
    (entry,) = (tmp_path / "m" / "py3.9-fakeframe1.0.0").glob("*.json")
    entry.write_text(json.dumps({"key": "k", "cell": _data("passed")}))
    assert ResultCache(tmp_path).get("m", _cell(), "k") is None


@pytest.mark.parametrize(
    "damage",
    [
        {"key": "k", "cell": {"id": "py3.9-fakeframe1.0.0"}},  # valid JSON, no tests
        {"key": "k", "cell": {**_data(), "tests": [{"nodeid": "t"}]}},
        {"key": "k"},
        ["not", "a", "dict"],
    ],
)
def test_a_damaged_cache_entry_is_a_miss_not_a_crash(tmp_path: Path, damage: object) -> None:
    cache = ResultCache(tmp_path)
    text = json.dumps(damage)
    entry = tmp_path / "m" / "py3.9-fakeframe1.0.0" / "k.json"
    entry.parent.mkdir(parents=True)
    entry.write_text(text)
    # Even with the digest the controller would have recorded, it is not reused.
    import hashlib

    (tmp_path / "index.json").write_text(
        json.dumps({"m/py3.9-fakeframe1.0.0/k.json": hashlib.sha256(text.encode()).hexdigest()})
    )
    assert cache.get("m", _cell(), "k") is None


def test_an_output_folder_whose_path_holds_a_colon_is_refused_before_anything_is_built(
    project: pytest.Pytester,
) -> None:
    """Cells run under the output folder, where PYTHONPATH and PATH split a path on ':':
    every cell was ``error`` with "No module named 'dfvc_recorder'" (issue 27, item 10)."""
    result = project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-out=runs:2026")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: dfvc: cannot run cells under *runs:2026: its path holds ':'*--dfvc-out*"]
    )
    assert not (project.path / "runs:2026" / "envs").exists()
    # Listing the plan builds nothing, so it works there.
    listed = project.runpytest_subprocess(
        "--dfvc-matrix=m.toml", "--dfvc-out=runs:2026", "--dfvc-list"
    )
    assert listed.ret != pytest.ExitCode.USAGE_ERROR


def test_an_earlier_output_folder_never_enters_a_view(tmp_path: Path) -> None:
    """Outside git, an earlier run's ``--dfvc-out=ci/job0`` (its views hold copies of the
    tests) was copied into the next run's views, and pytest collected the copies (issue 27,
    item 6). Every output folder is marked, and a marked folder is never copied."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    earlier = tmp_path / "ci" / "job0"
    prepare_output(earlier, earlier / "results.json")
    assert (earlier / OUTPUT_MARKER).exists()
    copy = earlier / "views" / "m" / "py3.11-x1.0" / "tests" / "test_x.py"
    copy.parent.mkdir(parents=True)
    copy.write_text("def test_x():\n    pass\n")
    (earlier / "results.json").write_text("{}")
    assert project_files(tmp_path) == [(tmp_path / "tests" / "test_x.py").resolve()]


@pytest.mark.parametrize(
    "earlier",
    [
        {"schema": 1, "matrices": ["x"]},
        {"schema": 1, "matrices": [{"name": "m", "cells": [{"status": "passed", "tests": []}]}]},
        {"schema": 1, "matrices": [{"name": "m", "cells": [{"id": "c", "tests": None}]}]},
        {
            "schema": 1,
            "matrices": [
                {
                    "name": "m",
                    "cells": [
                        {
                            "id": "c",
                            "status": "passed",
                            "python": "3.9",
                            "packages": {},
                            "tests": [{"nodeid": "t"}],
                        }
                    ],
                }
            ],
        },
    ],
)
def test_a_damaged_earlier_results_file_is_set_aside_not_a_crash(
    tmp_path: Path, earlier: dict[str, object]
) -> None:
    """Damaged last results ended in INTERNALERROR after every cell ran, with no reports
    (issue 27, item 9): read as the cache reads its entries, a damaged cell is set aside."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps(earlier))
    previous = read_previous(path)
    assert previous is not None
    assert all(m["cells"] == [] for m in previous["matrices"])
    assert previous.get("set_aside") or earlier["matrices"] == []


def test_a_results_path_that_is_a_folder_is_one_clear_error(project: pytest.Pytester) -> None:
    (project.path / "taken").mkdir()
    result = project.runpytest_subprocess("--dfvc-matrix=m.toml", "--dfvc-json=taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: dfvc: cannot write the results to *taken: it is a folder*"]
    )


def test_damaged_cells_in_shards_are_set_aside(tmp_path: Path) -> None:
    assert cell_problem(
        {"id": "c", "status": "bogus", "python": "3.9", "packages": {}, "tests": []}
    )
    assert (
        cell_problem({"id": "c", "status": "passed", "packages": {}, "tests": []})
        == "cell c: no python"
    )
    good = {"id": "c", "status": "passed", "python": "3.9", "packages": {"x": "1"}, "tests": []}
    assert cell_problem(good) is None


@pytest.mark.parametrize("git", [False, True])
def test_links_inside_the_project_reach_the_view_and_links_outside_stay_links(
    tmp_path: Path, git: bool
) -> None:
    """A tracked ``tests/data -> ../shared`` was missing from the view (every cell failed a
    test that passes here); a link leaving the project crashed the fingerprint with
    INTERNALERROR (issue 27, item 5)."""
    root = tmp_path / "p"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "values.txt").write_text("42\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    (root / "tests" / "data").symlink_to("../shared")
    outside = tmp_path / "datasets"
    outside.mkdir()
    (outside / "big.bin").write_text("outside")
    (root / "tests" / "outside").symlink_to(outside)
    if git:
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    files = project_files(root)
    assert [f.relative_to(root.resolve()).as_posix() for f in files] == [
        "shared/values.txt",
        "tests/data",
        "tests/outside",
        "tests/test_x.py",
    ]
    fingerprint = files_fingerprint(root, files)
    snapshot = take_snapshot(root, files, tmp_path / "snapshots", fingerprint)
    view = make_view(snapshot, tmp_path / "view")
    assert (view / "tests" / "data" / "values.txt").read_text() == "42\n"
    assert os.readlink(view / "tests" / "data") == "../shared"  # the view's own copy
    assert os.readlink(view / "tests" / "outside") == str(outside.resolve())
    # Where a link points is part of the cache key; what lies outside is not the project's.
    (root / "tests" / "data").unlink()
    (root / "tests" / "data").symlink_to("../tests")
    assert files_fingerprint(root, project_files(root)) != fingerprint


def test_a_project_inside_a_folder_its_repository_ignores_keeps_its_files(tmp_path: Path) -> None:
    """A copy of a project under an ignored folder of another repository (``.nox/tmp/``,
    ``build/``): git lists none of its files, and the cells saw an empty project ("no
    test ran: nothing was collected"). A project git says nothing of is walked instead."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("scratch/\n")
    root = tmp_path / "scratch" / "copy"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'copy'\n")
    (root / "__pycache__").mkdir()  # skipped by the walk, as outside git
    (root / "__pycache__" / "x.pyc").write_text("")
    assert project_files(root) == [
        (root / "pyproject.toml").resolve(),
        (root / "tests" / "test_x.py").resolve(),
    ]
