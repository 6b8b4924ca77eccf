"""The result cache's key: every input that can change a result, and nothing that cannot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_dfvc.cache import cell_key, project_fingerprint
from pytest_dfvc.cellargs import result_args
from pytest_dfvc.plan import Cell

from .helpers import matrix_from_text


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["-q"], []),
        (["-vv", "-ra", "--tb=short", "-p", "no:cacheprovider", "-x"], ["-x"]),
        (["--tb", "line", "-r", "fE", "-k", "api"], ["-k", "api"]),
        (["-p", "xdist", "-n", "2", "tests/unit"], ["-p", "xdist", "-n", "2", "tests/unit"]),
        (["--rootdir=.", "--durations=5", "--color=yes"], ["--rootdir=."]),
    ],
)
def test_output_only_options_are_not_in_the_key(args: list[str], kept: list[str]) -> None:
    assert result_args(args) == kept


def _project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    (root / "tests" / "data").mkdir(parents=True)
    (root / "tests" / "data" / "expected.csv").write_text("a,b\n1,2\n")
    return root


@pytest.mark.parametrize("git", [True, False], ids=["git", "no git"])
def test_the_fingerprint_covers_data_files_and_not_the_results(tmp_path: Path, git: bool) -> None:
    root = _project(tmp_path / "p")
    out = root / ".dfvc"
    out.mkdir()
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / ".gitignore").write_text("scratch/\n")
    before = project_fingerprint(root, out, [root / "results.json"])
    # The run's own files: the output folder, a results file inside the project.
    (out / "results.json").write_text("{}")
    (root / "results.json").write_text("{}")
    assert project_fingerprint(root, out, [root / "results.json"]) == before
    # A data file a test reads (a .csv was not hashed).
    (root / "tests" / "data" / "expected.csv").write_text("a,b\n1,3\n")
    changed = project_fingerprint(root, out, [root / "results.json"])
    assert changed != before
    if git:
        (root / "scratch").mkdir()
        (root / "scratch" / "notes.txt").write_text("ignored by git")
        assert project_fingerprint(root, out, [root / "results.json"]) == changed


def test_the_cells_environment_is_in_the_key(tmp_path: Path) -> None:
    matrix = matrix_from_text(tmp_path, 'python = ["3.9"]\n[packages.numpy]\nversions = ["1.0"]\n')
    cell = Cell("m", "py3.9-numpy1.0", "3.9", (("numpy", "1.0"),))

    def key(args: list[str], environment: dict[str, str]) -> str:
        return cell_key(
            matrix,
            cell,
            interpreter_version="3.9.18",
            fingerprint="f",
            pytest_args=args,
            recorder_digest="r",
            environment=environment,
        )

    assert key(["-q"], {}) == key(["-v"], {}) == key([], {})
    assert key([], {"PYTEST_ADDOPTS": "-k test_six"}) != key([], {})
    assert key(["-k", "x"], {}) != key([], {})
