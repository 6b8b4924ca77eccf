"""The project built once per interpreter as a PEP 660 editable wheel, and installed from it
in every cell. The project here has an in-tree build backend (``backend-path``), so the real
hooks run offline."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pytest_dfvc.cells import editable
from pytest_dfvc.cells.editable import build_config, editable_wheel, requirement
from pytest_dfvc.cells.provision import Workspace, project_wheel, start_builds
from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.uvtool import uv_path
from pytest_dfvc.plan.cell import Cell, MatrixPlan

from .helpers import matrix_from_text, offline_install, require_pythons, run_matrix, write_project

# A PEP 517 backend with the PEP 660 hooks, standard library only: the editable wheel is a
# .pth file pointing back at the source folder, as hatchling's and setuptools' lenient mode are.
BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = "demoproj", "0.1.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wheel(directory, files):
    dist = f"{NAME}-{VERSION}.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\nRequires-Dist: fakeframe\\n"
    )
    files[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\\n".join(record + [f"{dist}/RECORD,,"]) + "\\n"
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    with open(os.path.join(ROOT, "builds.txt"), "a") as log:
        log.write("built\\n")
    return name


def get_requires_for_build_editable(config_settings=None):
    return []


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {f"_{NAME}.pth": os.path.join(ROOT, "src") + "\\n"})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("only editable builds here")
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["_build"]

[project]
name = "demoproj"
version = "0.1.0"
"""


def _project(root: Path) -> Path:
    write_project(
        root,
        {
            "pyproject.toml": PYPROJECT,
            "_build/backend.py": BACKEND,
            "src/demoproj/__init__.py": "import fakeframe\n\ndef answer():\n    return 42\n",
            "tests/test_demo.py": """
                import demoproj

                def test_answer():
                    assert demoproj.answer() == 42
                """,
        },
    )
    return root


def _build_with(
    tmp_path: Path, finder: InterpreterFinder, *prelude: str
) -> tuple[Path | None, str]:
    """The in-tree project built once, its ``build_editable`` hook starting with
    ``prelude``; the wheel (None when the cells would fall back) and the build's log."""
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")
    backend = project / "_build" / "backend.py"
    hook = "def build_editable(wheel_directory, config_settings=None, metadata_directory=None):\n"
    body = "".join(f"    {line}\n" for line in prelude)
    backend.write_text(backend.read_text().replace(hook, hook + body))
    python = finder.find("3.10")
    assert python is not None
    runtime = tmp_path / "runtime"
    wheel = editable_wheel(project, python.path, runtime, uv_path() or "uv", ["--no-index"])
    return wheel, next((runtime / "editable").glob("*.log")).read_text()


def test_a_walk_that_meets_a_vanishing_folder_is_built_again(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """A backend that walks the project (hatchling's editable build does) fails when a
    folder it listed is gone before it looks inside: another interpreter's cells change
    ``.dfvc`` meanwhile. The hook runs once more before the cells fall back to ``-e``, which
    uv refuses for a project whose ``requires-python`` leaves the cell's Python out."""
    wheel, log = _build_with(
        tmp_path,
        finder,
        "seen = os.path.join(ROOT, 'walked-once')",
        "if not os.path.exists(seen):",
        "    open(seen, 'w').close()",
        "    raise FileNotFoundError(os.path.join(ROOT, '.dfvc', 'envs', 'gone'))",
    )
    assert wheel is not None and wheel.name == "demoproj-0.1.0-py3-none-any.whl"
    assert "FileNotFoundError" in log and "dfvc: the backend failed; building once more" in log


def test_a_build_that_hangs_is_not_tried_again(
    tmp_path: Path, finder: InterpreterFinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second try is for a walk that met a vanishing folder: a build stopped by its
    timeout falls back at once instead of holding the run for the timeout twice."""
    monkeypatch.setattr(editable, "BUILD_TIMEOUT", 3)
    wheel, log = _build_with(tmp_path, finder, "import time", "time.sleep(60)")
    assert wheel is None
    assert log.count("dfvc: stopped after 3 s") == 1 and "building once more" not in log


def test_build_config_follows_pep_517(tmp_path: Path) -> None:
    assert build_config(tmp_path) is None  # tests without packaging: nothing to build
    (tmp_path / "setup.py").write_text("")
    assert build_config(tmp_path) == {
        "requires": ["setuptools>=40.8.0"],
        "build-backend": "setuptools.build_meta:__legacy__",
        "backend-path": [],
    }
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert build_config(tmp_path) == {
        "requires": [],
        "build-backend": "backend",
        "backend-path": ["_build"],
    }


def test_built_once_then_reused(tmp_path: Path, finder: InterpreterFinder) -> None:
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")
    python = finder.find("3.10")
    assert python is not None
    runtime = tmp_path / "runtime"
    uv = uv_path() or "uv"
    wheel = editable_wheel(project, python.path, runtime, uv, ["--no-index"])
    assert wheel is not None and wheel.name == "demoproj-0.1.0-py3-none-any.whl"
    assert editable_wheel(project, python.path, runtime, uv, ["--no-index"]) == wheel
    assert (project / "builds.txt").read_text() == "built\n"
    assert requirement(wheel, ("gpu",)) == f"demoproj[gpu] @ {wheel.as_uri()}"
    # A new build file (or a change to one) builds it again.
    (project / "setup.cfg").write_text("[metadata]\n")
    assert editable_wheel(project, python.path, runtime, uv, ["--no-index"]) != wheel
    assert (project / "builds.txt").read_text() == "built\nbuilt\n"


def test_no_build_environment_lives_in_the_tree_the_backend_walks(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """hatchling's editable build walks the project's tree, the tool's own folder included:
    a build environment under ``.dfvc/runtime`` (this build's, or another interpreter's
    removed beside it) made a CI run's walk fail on a folder gone between its listing and
    its stat. The backend here walks the tree as hatchling does and refuses to build when it
    meets a build environment."""
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")
    backend = project / "_build" / "backend.py"
    backend.write_text(
        backend.read_text().replace(
            "def build_editable(wheel_directory, config_settings=None, metadata_directory=None):\n",
            "def build_editable(wheel_directory, config_settings=None, metadata_directory=None):\n"
            "    for where, _, names in os.walk(ROOT):\n"
            "        if 'pyvenv.cfg' in names:\n"
            "            raise RuntimeError('a build environment in the project: ' + where)\n",
        )
    )
    python = finder.find("3.10")
    assert python is not None
    runtime = project / ".dfvc" / "runtime"
    wheel = editable_wheel(project, python.path, runtime, uv_path() or "uv", ["--no-index"])
    log = "".join(p.read_text() for p in (runtime / "editable").glob("*.log"))
    assert wheel is not None, log
    # Nothing of the build is left beside the wheel but its log.
    assert [p.name for p in (runtime / "editable").iterdir() if p.is_dir()] == [wheel.parent.name]
    assert [p.name for p in wheel.parent.iterdir()] == [wheel.name]


def test_a_project_that_does_not_build_falls_back(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")
    (project / "_build" / "backend.py").write_text("raise ImportError('broken backend')\n")
    python = finder.find("3.10")
    assert python is not None
    uv = uv_path() or "uv"
    assert editable_wheel(project, python.path, tmp_path / "runtime", uv, ["--no-index"]) is None
    logs = list((tmp_path / "runtime" / "editable").glob("*.log"))
    assert "broken backend" in logs[0].read_text()


@pytest.mark.slow
def test_cells_install_the_prebuilt_wheel(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    result = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-jobs=2")
    assert result.returncode == 0, result.output
    cells = result.matrix("m")["cells"]
    assert [c["status"] for c in cells] == ["passed", "passed"]
    assert (project / "builds.txt").read_text() == "built\n"  # once for both cells
    log = (project / ".dfvc" / "cells" / "m" / cells[0]["id"] / "log.txt").read_text()
    assert "demoproj @ file://" in log
    # Editable: a change to the source is what the next run tests, without a new build.
    init = project / "src" / "demoproj" / "__init__.py"
    init.write_text(init.read_text().replace("42", "41"))
    again = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-rerun")
    outcomes = {c["id"]: c["status"] for c in again.matrix("m")["cells"]}
    assert set(outcomes.values()) == {"failed"}, again.output
    assert (project / "builds.txt").read_text() == "built\n"
    assert json.loads((project / ".dfvc" / "results.json").read_text())["schema"] == 1


@pytest.mark.slow
def test_every_cell_installs_the_project_pointed_at_its_own_view(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """The editable wheel is built from the project (where .git is, for setuptools-scm and
    the like) and rewritten for each cell to point at that cell's view; a lone cell too."""
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "project")

    def run(versions: str) -> str:
        (project / "m.toml").write_text(
            f'python = ["3.10"]\n[packages.fakeframe]\nversions = {versions}\n'
            + offline_install(wheelhouse, tooling)
        )
        result = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-rerun")
        assert result.returncode == 0, result.output
        return (project / ".dfvc" / "cells" / "m" / "py3.10-fakeframe1.2.0" / "log.txt").read_text()

    cell_wheels = project / ".dfvc" / "cells" / "m" / "py3.10-fakeframe1.2.0" / "editable"
    for versions in ('["1.2.0"]', '["1.1.0", "1.2.0"]'):
        log = run(versions)
        assert f"demoproj @ file://{cell_wheels}" in log
        assert f"-e {project}" not in log
    (wheel,) = cell_wheels.glob("*.whl")
    view = project / ".dfvc" / "views" / "m" / "py3.10-fakeframe1.2.0"
    with zipfile.ZipFile(wheel) as zf:
        text = "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    assert str(view) in text


def test_the_wheel_builds_in_the_background_for_pythons_with_several_cells(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """A grid run starts each shared build while it reads the index; the cells then find
    the wheel built (or wait for it under the same lock), and a lone cell's Python builds
    nothing ahead (its own install builds the project as fast)."""
    require_pythons(finder, "3.10", "3.11")
    project = _project(tmp_path / "project")
    matrix = matrix_from_text(
        project, 'python = ["3.10", "3.11"]\n[packages.fakeframe]\nversions = ["1.1.0"]\n'
    )
    py310, py311 = finder.find("3.10"), finder.find("3.11")
    assert py310 is not None and py311 is not None
    cells = (
        Cell("m", "a", "3.10", (("fakeframe", "1.1.0"),), interpreter=py310.path),
        Cell("m", "b", "3.10", (("fakeframe", "1.2.0"),), interpreter=py310.path),
        Cell("m", "c", "3.11", (("fakeframe", "1.1.0"),), interpreter=py311.path),
    )
    workspace = Workspace(project / ".dfvc", project)
    threads = start_builds([MatrixPlan(matrix, cells)], workspace)
    assert len(threads) == 1
    for thread in threads:
        thread.join(timeout=120)
    wheel = project_wheel(matrix, cells[1], workspace, build=False)
    assert wheel is not None and wheel.name == "demoproj-0.1.0-py3-none-any.whl"
    assert (project / "builds.txt").read_text() == "built\n"
    assert list((project / ".dfvc" / "runtime" / "editable").glob("*/*.whl")) == [wheel]


def test_the_build_environment_is_resolved_with_the_cells_pypi_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build-system.requires`` resolves from the same sources, with the same cache
    lifetimes, as the cells' installs: without them, each build asked PyPI again for every
    page of its backend's requirements, in front of its Python's first cell."""
    from pytest_dfvc.cells import editable
    from pytest_dfvc.plan.uvargs import build_source_args

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc"))
    project = _project(tmp_path / "project")
    matrix = matrix_from_text(
        project, 'python = ["3.11"]\n[packages.fakeframe]\nversions = ["1.1.0"]\n'
    )
    asked: list[list[str]] = []

    def spy(*args: object, **kwargs: object) -> None:
        asked.append(list(args[4]))  # type: ignore[call-overload]
        return None

    monkeypatch.setattr(editable, "editable_wheel", spy)
    cell = Cell("m", "a", "3.11", (("fakeframe", "1.1.0"),), interpreter="/usr/bin/python3")
    project_wheel(matrix, cell, Workspace(project / ".dfvc", project), build=True)
    assert asked == [build_source_args(matrix)]
    assert "--config-file" in asked[0]
