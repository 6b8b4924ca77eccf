"""Against the real package index: real releases listed and installed by uv."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.pages import DEFAULT_INDEX, list_releases
from pytest_dfvc.index.uvconfig import pypi_config_args
from pytest_dfvc.index.uvtool import uv_environment, uv_path

from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_pypi_listing_has_real_releases() -> None:
    releases = {
        str(r.version): r.yanked for r in list_releases("iniconfig", index_url=DEFAULT_INDEX)
    }
    assert {"1.1.1", "2.0.0"} <= set(releases)
    assert releases["2.0.0"] is False


def test_real_releases_end_to_end(tmp_path: Path, finder: InterpreterFinder) -> None:
    """A test that parses passes on iniconfig 1.1.1 and 2.0.0; one that imports
    ``iniconfig.exceptions``, a module 2.0 added, fails on 1.1.1 (import-path)."""
    require_pythons(finder, "3.11")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_ini.py": """
            import iniconfig


            def test_parse():
                ini = iniconfig.IniConfig("x.ini", data="[a]\\nb = 1\\n")
                assert ini["a"]["b"] == "1"


            def test_exceptions_module():
                from iniconfig.exceptions import ParseError

                assert ParseError
            """,
        },
    )
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "ini.toml").write_text(
        'python = ["3.11"]\n[packages.iniconfig]\nversions = ">=1.1,<2.1"\nselect = "latest-minor"\n'
    )
    result = run_matrix(tmp_path)
    assert result.returncode == 0, result.output
    matrix = result.matrix("ini")
    assert [c["id"] for c in matrix["cells"]] == ["py3.11-iniconfig1.1.1", "py3.11-iniconfig2.0.0"]
    assert [c["status"] for c in matrix["cells"]] == ["failed", "passed"]
    failing = next(
        t for t in matrix["cells"][0]["tests"] if t["nodeid"].endswith("test_exceptions_module")
    )
    assert failing["cause"]["category"] == "import-path"
    # iniconfig 2.1 and newer are on PyPI, and "<2.1" left them out: never admitted.
    assert matrix["ranges"]["iniconfig"]["specifier"] == "==2.0.0"
    assert matrix["ranges"]["iniconfig"]["downgrade_boundary"] == "1.1.1"


def test_the_projects_own_matrix(tmp_path: Path, finder: InterpreterFinder) -> None:
    """pytest-dfvc on itself, with pytest-dfvc installed inside every cell (the recorder and
    the plugin side by side): the shipped matrices/pytest.toml on two of its Pythons, at
    pytest's declared floor and its newest release, its exclusion as shipped (the whole
    matrix is 20 cells: nox -s badges runs it)."""
    require_pythons(finder, "3.11", "3.12")
    root = Path(__file__).parent.parent
    shipped = (root / "matrices" / "pytest.toml").read_text()
    python = re.search(r"^python = .*$", shipped, re.M)
    versions = re.search(r"^versions = .*$", shipped, re.M)
    assert python and versions and '"7.0.1"' in versions.group() and '"9.2.0"' in versions.group()
    matrix = tmp_path / "pytest.toml"
    matrix.write_text(
        shipped.replace(python.group(), 'python = ["3.11", "3.12"]').replace(
            versions.group(), 'versions = ["7.0.1", "9.2.0"]'
        )
        # The floor on one Python, the newest on the other: two cells of the project's own
        # install (its test extras) instead of three.
        + '\n[[exclude]]\npython = "<3.12"\npytest = ">=9"\n'
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--dfvc-matrix={matrix}",
            f"--dfvc-out={out}",
            "-p",
            "no:cacheprovider",
            # One process per cell: the suite's own -n auto would start two workers in
            # each, and the cells would spend more on starting them than on the tests.
            "-n",
            "0",
            "tests/test_ranges.py",
            "tests/test_diagnose.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cells = json.loads((out / "results.json").read_text())["matrices"][0]["cells"]
    statuses = {c["id"]: c["status"] for c in cells}
    assert statuses == {
        "py3.11-pytest7.0.1": "passed",
        "py3.11-pytest9.2.0": "skipped",  # excluded by the test, to save a cell
        "py3.12-pytest7.0.1": "skipped",  # excluded as shipped: pytest 7.0 predates 3.12
        "py3.12-pytest9.2.0": "passed",
    }, result.stdout


def test_the_oldest_nox_and_uv_we_support(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """pyproject.toml's floors for nox and uv, installed from the index beside pytest-dfvc in
    a venv that is not activated (its bin folder not on PATH): the cells find uv and run."""
    require_pythons(finder, "3.10")
    root = Path(__file__).parent.parent
    floors = [
        line.split('"')[1].replace(">=", "==")
        for line in (root / "pyproject.toml").read_text().splitlines()
        if line.strip().startswith(('"nox>=', '"uv>='))
    ]
    assert len(floors) == 2
    venv = tmp_path / "venv"
    uv = uv_path() or "uv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, str(root), *floors], check=True
    )
    # What pytest-dfvc passes to uv for old releases and era resolution, the floor has.
    usage = subprocess.run(
        [str(venv / "bin" / "uv"), "pip", "install", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--excludes" in usage and "--exclude-newer-package" in usage
    project = tmp_path / "project"
    write_project(project)
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
        + 'requirements = ["fakeaddon"]\n'
    )
    result = run_matrix(
        project, "--dfvc-matrix=m.toml", python=python, env_extra={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.output
    cells = result.matrix("m")["cells"]
    # Built and run: 2.0.0 breaks most of the fake project's tests.
    assert [c["status"] for c in cells] == ["passed", "failed"], result.output
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in cells[0]["tests"]}
    assert outcomes["test_new_feature"] == "passed"


def test_era_resolution_on_pypi(tmp_path: Path, finder: InterpreterFinder) -> None:
    """pandas >=1.3,<2.3 on Python 3.10 with no numpy constraint: resolved today, every
    pandas 1.x cell gets numpy 2 (whose ABI break fails them all as third-party). Each
    cell's era (a month after its release, as checked by hand with uv) gives the numpy of
    its time: 1.3.5 -> 1.22.0, 1.5.3 -> 1.24.2, 2.0.3 -> 1.25.1."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.pandas]\nversions = ["1.3.5", "1.5.3", "2.0.3"]\n'
        '[install]\nexclude-newer = "release+30d"\n'
    )
    listed = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-list")
    assert listed.returncode == 0, listed.output
    eras = dict(
        re.findall(r"(py3\.10-pandas[\d.]+)  runnable \(resolved as of (\S+)\)", listed.output)
    )
    assert eras["py3.10-pandas1.5.3"].startswith("2023-02-1")  # released 2023-01-19
    python = finder.find("3.10")
    assert python is not None
    numpy = {}
    for cell, era in eras.items():
        pin = cell.split("pandas")[1]
        command = [uv_path() or "uv", "pip", "compile", "-", "--no-header", "--quiet"]
        command += ["--python", python.path, "--exclude-newer", era, "--only-binary", ":all:"]
        command += ["--exclude-newer-package", "pandas=2100-01-01T00:00:00Z"]
        compiled = subprocess.run(
            command,
            input=f"pandas=={pin}\n",
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        )
        found = re.search(r"^numpy==(\S+)", compiled.stdout, re.MULTILINE)
        assert found is not None, compiled.stdout
        numpy[pin] = found.group(1)
    assert numpy == {"1.3.5": "1.22.0", "1.5.3": "1.24.2", "2.0.3": "1.25.1"}


def test_an_old_release_uv_refuses_is_tested_on_pypi(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """pandas 0.24.2 declares ``pytz (>=2011k)``, which uv refuses: the cell was
    ``unavailable``. Installed another way, as of its release, its tests run."""
    require_pythons(finder, "3.7")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_frame.py": """
            import pandas as pd

            def test_frame():
                frame = pd.DataFrame({"a": [1, 2]})
                assert frame["a"].sum() == 3
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.7"]\n[packages.pandas]\nversions = ["0.24.2"]\n'
        '[install]\nexclude-newer = "release"\n'
    )
    run = run_matrix(tmp_path, "--dfvc-matrix=m.toml", timeout=900)
    (cell,) = run.matrix("m")["cells"]
    assert cell["status"] == "passed", run.output
    assert "pytz (>=2011k)" in cell["metadata_fallback"]
    assert cell["resolved"]["numpy"].startswith("1.16.")  # the numpy of March 2019


def test_a_second_resolution_asks_pypi_for_nothing(tmp_path: Path) -> None:
    """With the configuration the cells get, a second resolution takes the index page and
    the wheel's metadata from uv's cache without a request, as the cells of one run do (a
    mirror that sends no Cache-Control made uv fetch both again on every call: a third of a
    small cell's time here). The page is kept for PyPI's own ``max-age=600``."""
    env = {**uv_environment(), "UV_CACHE_DIR": str(tmp_path / "cache")}
    command = [
        uv_path() or "uv",
        "pip",
        "compile",
        "-",
        "--python-version",
        "3.11",
        *pypi_config_args(tmp_path, environ={"XDG_CONFIG_HOME": str(tmp_path)}),
        "-vv",
    ]
    for _ in range(2):
        result = subprocess.run(
            command, input="iniconfig==2.0.0\n", capture_output=True, text=True, env=env, check=True
        )
    log = result.stderr
    assert "Found fresh response for: https://files.pythonhosted.org/" in log, log[-3000:]
    assert "Sending revalidation request for: https://files.pythonhosted.org/" not in log
    assert "Found fresh response for: https://pypi.org/simple/iniconfig/" in log, log[-3000:]
    assert "Sending revalidation request for: https://pypi.org/simple/" not in log


def test_the_onnx_example_reports_the_layer_norm_drift(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """The example's README figures, for the two releases around its second change: real
    onnxruntime wheels, each cell resolved as of its release."""
    import shutil

    require_pythons(finder, "3.11")
    example = Path(__file__).resolve().parent.parent / "examples" / "onnx-drift"
    project = tmp_path / "onnx-drift"
    shutil.copytree(example, project, ignore=shutil.ignore_patterns(".dfvc"))
    (project / "matrices" / "onnxruntime.toml").write_text(
        (project / "matrices" / "onnxruntime.toml")
        .read_text()
        .replace('versions = ">=1.17"', 'versions = ["1.29.0", "1.30.0"]')
    )
    result = run_matrix(project)
    assert result.returncode == 0, result.output[-3000:]
    drift = {
        (d["nodeid"].split("[")[1].rstrip("]"), d["key"])
        for d in result.matrix("onnxruntime")["drift"]
    }
    assert ("layer_norm", "sum") in drift
    assert not {name for name, _ in drift} - {"layer_norm"}
    assert "onnxruntime 1.29.0 -> 1.30.0: 10.615867330227047 -> 10.615872150636278" in result.output
