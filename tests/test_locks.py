"""``resolution = "locked"``: the project's uv.lock or pylock.toml pins everything outside
the matrix, offline (uv locks against a local wheel folder)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_dfvc.cells.locks import LockMissing, locked_pins, without
from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.uvtool import uv_path

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project
from .test_editable import BACKEND
from .test_editable import PYPROJECT as EDITABLE_PYPROJECT

# The editable tests' project, with dependencies for uv to lock.
PYPROJECT = (
    EDITABLE_PYPROJECT + 'requires-python = ">=3.9"\ndependencies = ["fakeframe", "helperlib"]\n'
)


def _helperlib(folder: Path, version: str) -> None:
    fakeframe.simple_wheel(folder, "helperlib", version, f'__version__ = "{version}"\n')


@pytest.fixture(scope="module")
def locked_project(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A project locked when helperlib 1.0 was the newest; 2.0 is out since."""
    _helperlib(wheelhouse, "1.0")
    root = tmp_path_factory.mktemp("locked")
    write_project(
        root,
        {
            "pyproject.toml": PYPROJECT,
            "_build/backend.py": BACKEND.replace(
                "Requires-Dist: fakeframe\\\\n",
                "Requires-Dist: fakeframe\\\\nRequires-Dist: helperlib\\\\n",
            ),
            "src/demoproj/__init__.py": "import helperlib\n\ndef helper():\n    return helperlib.__version__\n",
            "tests/test_demo.py": """
                import demoproj

                def test_the_locked_helper():
                    assert demoproj.helper() == "1.0"
                """,
        },
    )
    uv = uv_path() or "uv"
    links = ["--no-index", "--find-links", str(wheelhouse)]
    subprocess.run([uv, "lock", "--quiet", *links], cwd=root, check=True)
    subprocess.run(
        [uv, "export", "--quiet", "--frozen", "--format", "pylock.toml", "-o", "pylock.toml"],
        cwd=root,
        check=True,
    )
    _helperlib(wheelhouse, "2.0")  # released after the lock
    return root


def test_uv_lock_pins_all_but_the_matrix_and_the_project(
    locked_project: Path, tmp_path: Path
) -> None:
    lines = locked_pins(locked_project, tmp_path, uv_path() or "uv", "3.10.13", ["fakeframe"])
    assert [line.split(" ;")[0] for line in lines] == ["helperlib==1.0"]


def test_pylock_is_read_for_the_cells_python(locked_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pylock.toml").write_text((locked_project / "pylock.toml").read_text())
    lines = locked_pins(project, tmp_path, uv_path() or "uv", "3.10.13", ["fakeframe"])
    assert lines == ["helperlib==1.0"]
    # The project itself is in the lock as a directory source: never pinned again.
    assert not [line for line in lines if "demoproj" in line]


def test_a_missing_lock_says_which_files_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(LockMissing, match=r"uv\.lock .*pylock\.toml"):
        locked_pins(tmp_path, tmp_path, "uv", "3.10.13", [])


def test_without_leaves_out_by_normalised_name() -> None:
    lines = ["Fake_Frame==1.0 ; python_version >= '3.9'", "helperlib==1.0", "# comment", ""]
    assert without(lines, ["fake-frame"]) == ["helperlib==1.0"]


@pytest.mark.slow
def test_locked_cells_keep_the_lock_and_override_the_matrix(
    locked_project: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    (locked_project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
        + 'resolution = "locked"\n'
    )
    result = run_matrix(locked_project, "--dfvc-matrix=m.toml", "--dfvc-rerun")
    assert result.returncode == 0, result.output
    cells = result.matrix("m")["cells"]
    assert [c["status"] for c in cells] == ["passed", "passed"], result.output
    # helperlib 2.0 is on the index, but the lock says 1.0; fakeframe follows the matrix.
    assert [c["resolved"]["helperlib"] for c in cells] == ["1.0", "1.0"]
    assert [c["resolved"]["fakeframe"] for c in cells] == ["1.1.0", "1.2.0"]
