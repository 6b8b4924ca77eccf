"""The result cache's key: every input that can change a result, and nothing that cannot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_dfvc.cells.cache import above_fingerprint, cell_key, project_fingerprint
from pytest_dfvc.cells.cellargs import result_args
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.plan.uvargs import uv_variables

from .helpers import matrix_from_text


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["-q"], []),
        # The cache provider is no output option: a plugin reading config.cache needs it.
        (
            ["-vv", "-ra", "--tb=short", "-p", "no:cacheprovider", "-x"],
            ["-p", "no:cacheprovider", "-x"],
        ),
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


def test_uv_settings_and_configuration_above_the_project_are_in_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached verdict was reused after ``UV_RESOLUTION=lowest`` or an edit to a pytest
    ini above the project (a monorepo), and a synced environment kept its old packages
    (issue 27, items 2 and 3)."""
    repo = tmp_path / "repo"
    project = repo / "libs" / "one"
    project.mkdir(parents=True)
    before = above_fingerprint(project)
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -p no:warnings\n")
    with_ini = above_fingerprint(project)
    assert with_ini != before
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -x\n")
    assert above_fingerprint(project) != with_ini
    monkeypatch.delenv("UV_RESOLUTION", raising=False)
    plain = uv_variables()
    monkeypatch.setenv("UV_RESOLUTION", "lowest")
    assert uv_variables() == {**plain, "UV_RESOLUTION": "lowest"}
    matrix = matrix_from_text(tmp_path, 'python = ["3.9"]\n[packages.numpy]\nversions = ["1.0"]\n')
    cell = Cell("m", "py3.9-numpy1.0", "3.9", (("numpy", "1.0"),), interpreter="/py")
    keys = {
        cell_key(
            matrix,
            cell,
            interpreter_version="3.9.18",
            fingerprint="f",
            pytest_args=[],
            recorder_digest="r",
            environment=env,
            above=above,
        )
        for env, above in (({}, ""), (uv_variables(), ""), ({}, with_ini))
    }
    assert len(keys) == 3


def test_uv_configuration_the_cells_read_is_in_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cells' uv reads the monorepo's ``uv.toml`` and the user's: a change there
    (another find-links folder) changes what a cell installs, so its cached verdict."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    repo = tmp_path / "repo"
    project = repo / "libs" / "one"
    project.mkdir(parents=True)
    before = above_fingerprint(project)
    (repo / "uv.toml").write_text('find-links = ["wheels"]\n')
    with_uv = above_fingerprint(project)
    assert with_uv != before
    user = tmp_path / "config" / "uv" / "uv.toml"
    user.parent.mkdir(parents=True)
    user.write_text('index-url = "https://mirror.example/simple"\n')
    assert above_fingerprint(project) != with_uv


def test_uv_variables_that_choose_an_environment_never_reach_a_cells_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run inside a nox session with the uv backend (``nox -s benchmark``), the controller
    inherits ``UV_PYTHON`` and ``UV_PROJECT_ENVIRONMENT`` naming that session's
    environment; handed to every cell's install, they made uv install the cell (with
    ``--exact``) into the session's environment, removing nox and tox from it."""
    monkeypatch.setenv("UV_PYTHON", str(tmp_path / "outer"))
    monkeypatch.setenv("UV_PROJECT_ENVIRONMENT", str(tmp_path / "outer"))
    monkeypatch.setenv("UV_SYSTEM_PYTHON", "1")
    monkeypatch.setenv("UV_RESOLUTION", "lowest")
    settings = uv_variables()
    assert settings["UV_RESOLUTION"] == "lowest"
    assert not {"UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_SYSTEM_PYTHON"} & set(settings)
