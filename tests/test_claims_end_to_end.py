"""Claims no larger than the runs, with real cells: fake wheels on a local folder, nox and uv
(issue 34's items, each as a user meets it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow


def _project(root: Path, test: str, matrix: str, *folders: Path) -> Path:
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(matrix + offline_install(*folders))
    return root


def _range(root: Path, *args: str, json_path: str = ".dfvc/results.json") -> dict[str, Any]:
    result = run_matrix(root, "--dfvc-matrix=m.toml", f"--dfvc-json={json_path}", *args)
    assert result.returncode == 0, result.output
    document = json.loads((root / json_path).read_text())
    ranges: dict[str, Any] = document["matrices"][0]["ranges"]["ff"]
    return ranges


def test_bisect_finds_a_test_that_passes_on_two_releases_of_sixteen(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 1: bisect used to set the test apart after the two ends and claim ``ff>=1.0``."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    for i in range(16):
        body = f"def api():\n    return {1 if i in (2, 3) else 0}\n"
        fakeframe.simple_wheel(wheels, "ff", f"1.{i}", body)
    root = _project(
        tmp_path / "p",
        "import ff\n\ndef test_api():\n    assert ff.api() == 1\n\ndef test_ok():\n    pass\n",
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n',
        wheels,
        tooling,
    )
    grid = _range(root, json_path=".dfvc/grid.json")
    bisect = _range(root, "--dfvc-strategy=bisect", "--dfvc-jobs=2")
    assert grid["specifier"] == bisect["specifier"] == ">=1.2,<1.4"
    assert bisect["upgrade_boundary"] == "1.4" and bisect["downgrade_boundary"] == "1.1"


def test_a_pre_release_passing_below_a_failing_final(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 3: 1.0 and 2.0rc1 pass, 2.0 fails: an INTERNALERROR, no report, no badge."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    for version, value in (("1.0", 1), ("2.0rc1", 1), ("2.0", 2)):
        fakeframe.simple_wheel(wheels, "ff", version, f"def api():\n    return {value}\n")
    root = _project(
        tmp_path / "p",
        "import ff\n\ndef test_api():\n    assert ff.api() == 1\n",
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
        "prereleases = true\n",
        wheels,
        tooling,
    )
    ff = _range(root)
    assert ff["specifier"] == ">=1.0,<=2.0rc1"
    assert (root / ".dfvc" / "badges" / "m-ff.svg").exists()
    assert (root / ".dfvc" / "report.md").exists()


def test_no_open_bound_over_releases_the_plan_left_out(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 4: ``versions = ">=1.0,<1.3"`` with 1.3-1.5 on the index, failing: the range
    used to be ``ff>=1.0``, and --dfvc-suggest called ``ff>=1.0`` consistent."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    for i in range(6):
        fakeframe.simple_wheel(wheels, "ff", f"1.{i}", f"def api():\n    return {int(i < 3)}\n")
    root = _project(
        tmp_path / "p",
        "import ff\n\ndef test_api():\n    assert ff.api() == 1\n",
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0,<1.3"\nselect = "all"\n',
        wheels,
        tooling,
    )
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\nrequires-python = ">=3.9"\n'
        'dependencies = ["ff>=1.0"]\n'
    )
    (root / "m.toml").write_text((root / "m.toml").read_text() + "project = false\n")
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-suggest")
    assert result.returncode == 0, result.output
    ff = result.matrix("m")["ranges"]["ff"]
    assert ff["specifier"] == ">=1.0,<=1.2"
    assert ff["newest_release"] == "1.5"
    assert "not run above 1.2: the newest release is 1.5 as of" in result.output
    assert "declares ff>=1.0, which admits versions above 1.2 that were not tested" in result.output
    python = result.matrix("m")["ranges"]["python"]
    assert python["specifier"] == ">=3.11,<3.12"
    assert 'requires-python = ">=3.11"' in result.output
    assert "Python 3.12 and newer: no test passed there" in result.output


def test_bisect_steps_over_releases_only_their_install_refuses(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 7: from 1.12 on, ff needs dep>=2 and the matrix constrains dep<2; only the
    install finds out. Bisect used to stop at ``>=1.0,<1.1``; grid finds the boundary 1.8."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "1.0")
    fakeframe.simple_wheel(wheels, "dep", "2.0")
    for i in range(16):
        requires = ("dep>=2",) if i >= 12 else ("dep",)
        body = f"def api():\n    return {int(i < 8)}\n"
        fakeframe.simple_wheel(wheels, "ff", f"1.{i}", body, requires)
    root = _project(
        tmp_path / "p",
        "import ff\n\ndef test_api():\n    assert ff.api() == 1\n",
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n',
        wheels,
        tooling,
    )
    (root / "m.toml").write_text(
        (root / "m.toml").read_text() + 'constraints = ["dep<2"]\nproject = false\n'
    )
    grid = _range(root, json_path=".dfvc/grid.json")
    bisect = _range(root, "--dfvc-strategy=bisect")
    assert grid["upgrade_boundary"] == bisect["upgrade_boundary"] == "1.8"
    assert grid["specifier"] == bisect["specifier"] == ">=1.0,<1.8"
