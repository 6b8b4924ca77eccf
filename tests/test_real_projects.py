"""Real projects as they are (issue "Real projects as they are"): install modes, layouts,
paths, and what every uv call gets."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dfvc.interpreters import InterpreterFinder
from pytest_dfvc.uvtool import uv_path

from .conftest import offline_install, require_pythons, run_matrix, write_project
from .test_editable import _project

pytestmark = pytest.mark.slow


def _uv_shim(folder: Path) -> tuple[Path, Path]:
    """A uv that logs each call's UV_PYTHON_DOWNLOADS and arguments, then runs the real one."""
    log = folder / "uv-calls.txt"
    shim = folder / "uv"
    shim.write_text(
        "#!/bin/sh\n"
        f'echo "${{UV_PYTHON_DOWNLOADS:-unset}} $*" >> "{log}"\n'
        f'exec "{uv_path()}" "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return shim, log


def test_no_uv_call_may_download_an_interpreter(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pre-check for GitHub Actions (``uv pip compile --python-version 3.10``, no local
    interpreter) ran without UV_PYTHON_DOWNLOADS=never, so uv fetched a managed CPython (28 s
    per cell here without a network). Every call must set it unless the user did."""
    require_pythons(finder, "3.10")
    monkeypatch.delenv("UV_PYTHON_DOWNLOADS", raising=False)
    shim, log = _uv_shim(tmp_path)
    project = tmp_path / "project"
    _project(project)  # an in-tree build backend: the editable build runs offline
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    env = {"UV": str(shim)}
    planned = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-gha", env_extra=env)
    assert planned.returncode == 0, planned.output
    ran = run_matrix(project, "--dfvc-matrix=m.toml", env_extra=env)
    assert ran.returncode == 0, ran.output
    calls = log.read_text().splitlines()
    assert any(" pip compile " in f" {c} " for c in calls), calls
    assert any(" pip install " in f" {c} " for c in calls), calls
    assert [c for c in calls if not c.startswith("never ")] == []
    # A user who wants downloads says so, and is obeyed.
    log.unlink()
    run_matrix(
        project,
        "--dfvc-matrix=m.toml",
        "--dfvc-gha",
        env_extra={**env, "UV_PYTHON_DOWNLOADS": "automatic"},
    )
    assert all(c.startswith("automatic ") for c in log.read_text().splitlines())


PATHS = {
    "conftest.py": "",
    "pytest.ini": "[pytest]\n",
    "tests/test_s.py": "def test_s():\n    pass\n",
    "tests/test_t.py": "def test_t():\n    pass\n",
}


def test_test_paths_are_relative_to_where_pytest_ran(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``cd tests && pytest --dfvc-matrix=../m.toml test_s.py``: every cell was ``error:
    file or directory not found: test_s.py``, since cells run at the project's root."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, PATHS)
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    run = run_matrix(tmp_path / "tests", "--dfvc-matrix=../m.toml", "test_s.py::test_s")
    assert run.returncode == 0, run.output
    results = json.loads((tmp_path / ".dfvc" / "results.json").read_text())
    (cell,) = results["matrices"][0]["cells"]
    assert cell["status"] == "passed", cell
    assert [t["nodeid"] for t in cell["tests"]] == ["tests/test_s.py::test_s"]


@pytest.mark.parametrize("word", ["tests/test_s.py", "tests"])
def test_a_bare_word_after_the_matrix_option_is_its_path(tmp_path: Path, word: str) -> None:
    """``pytest --dfvc-matrix tests/test_s.py`` read the test file as TOML ("invalid TOML:
    Expected '=' after a key"): say that the bare word is taken as the matrix path."""
    write_project(tmp_path, PATHS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-matrix", word],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert "a bare word after --dfvc-matrix is its path: write --dfvc-matrix=PATH" in output
    assert "invalid TOML" not in output
    assert not (tmp_path / ".dfvc").exists()
