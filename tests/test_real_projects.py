"""Real projects as they are (issue "Real projects as they are"): install modes, layouts,
paths, and what every uv call gets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pytest_dfvc.interpreters import InterpreterFinder
from pytest_dfvc.uvtool import uv_path

from .conftest import offline_install, require_pythons, run_matrix
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
