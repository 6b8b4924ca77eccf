"""What the tests share besides fixtures: the tools a cell needs as local wheels, a fake
project that uses the fake framework, matrix files, and a way to run ``pytest --dfvc-matrix``
on a project as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.plan.matrix import Matrix, load_matrix

HERE = Path(__file__).parent
# pytest and its dependencies as wheels, for cells that may not reach an index. Kept between
# runs: the first run on a machine downloads them (CI has the index), later runs are offline.
TOOLING = {
    "py39": [
        "pytest>=8,<9",
        "exceptiongroup",
        "tomli",
        "typing-extensions",
        "iniconfig",
        "pluggy",
        "packaging",
        "pygments",
        # For cells that run their tests with -n (pytest-xdist).
        "pytest-xdist",
        "execnet",
    ],
    "py37": [
        "pytest==6.2.5",
        "py",
        "attrs",
        "toml",
        "iniconfig",
        "pluggy<1",
        "packaging<24",
        "importlib-metadata<7",
        "zipp<3.16",
        "typing-extensions<4.8",
    ],
}


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("DFVC_TEST_WHEELHOUSE", Path(base) / "pytest-dfvc-tests"))


def tooling_wheels(tag: str) -> Path:
    """A folder of wheels that installs pytest offline for that Python generation."""
    folder = _cache_root() / f"tooling-{tag}"
    # The stamp holds the list it was downloaded for: a changed list downloads again.
    stamp = folder / ".complete"
    wanted = json.dumps(TOOLING[tag])
    if stamp.exists() and stamp.read_text() == wanted:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    python_version = {"py39": "3.9", "py37": "3.7"}[tag]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            python_version,
            "--dest",
            str(folder),
            *TOOLING[tag],
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return folder


def require_pythons(finder: InterpreterFinder, *minors: str) -> None:
    missing = [m for m in minors if finder.find(m) is None]
    if missing:
        pytest.skip(f"needs CPython {', '.join(missing)} on this machine")


PROJECT_FILES = {
    "conftest.py": "",
    "demo_mod.py": """
        import fakeframe


        def average(xs):
            return fakeframe.old_mean(xs)
        """,
    "tests/test_api.py": """
        import fakeframe
        from fakeframe import ops

        import demo_mod


        def test_average():
            assert demo_mod.average([1, 2, 3]) == 2


        def test_conv():
            assert ops.conv([1, 2], filters=2) == [2, 4]


        def test_new_feature():
            assert fakeframe.new_feature() == 42


        def test_stale():
            assert fakeframe.mean([1, 1]) == 2
        """,
    "tests/test_more.py": """
        import fakeframe
        from fakeframe import ops


        def test_flatten():
            assert ops.flatten([(1, 2), (3,)]) == [1, 2, 3]


        def test_device():
            assert fakeframe.device() == "cpu"


        def test_addon():
            import fakeaddon

            assert fakeaddon.extra() == 1.5
        """,
    "tests/test_utils.py": """
        from fakeframe.utils import helper


        def test_helper():
            assert helper() == "help"
        """,
    "tests/test_match.py": """
        def kind(x):
            match x:
                case 1:
                    return "one"
                case _:
                    return "other"


        def test_kind():
            assert kind(1) == "one"
        """,
}


def matrix_from_text(folder: Path, text: str) -> Matrix:
    """A matrix file ``m.toml`` with this text, loaded and validated."""
    path = folder / "m.toml"
    path.write_text(text)
    return load_matrix(path)


def write_project(root: Path, files: dict[str, str] = PROJECT_FILES) -> None:
    # A config file makes the project's folder pytest's rootdir even when the temporary
    # folder lies inside another project (nox puts TMPDIR inside this repository).
    files = {"pytest.ini": "[pytest]\n", **files}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def offline_install(*folders: Path) -> str:
    links = ", ".join(json.dumps(str(f)) for f in folders)
    return f"[install]\nno-index = true\nfind-links = [{links}]\n"


@dataclass
class MatrixRunResult:
    returncode: int
    output: str
    root: Path

    @property
    def results(self) -> dict[str, Any]:
        # Read as any JSON: tests look into it as users' scripts do, keys and all.
        data: dict[str, Any] = json.loads((self.root / ".dfvc" / "results.json").read_text())
        return data

    def matrix(self, name: str) -> dict[str, Any]:
        return next(m for m in self.results["matrices"] if m["name"] == name)


# Plugins of this suite's own environment that a run it starts has no use for: hypothesis's
# loads all of hypothesis (0.3 s of every controller's start).
NO_TEST_PLUGINS = ("-p", "no:hypothesispytest")


def run_matrix(
    root: Path,
    *args: str,
    timeout: float = 600,
    env_extra: dict[str, str] | None = None,
    python: str = sys.executable,
) -> MatrixRunResult:
    """``pytest --dfvc-matrix`` in a subprocess, as a user runs it (with the pytest-dfvc
    installed for ``python``, and the uv installed beside it: not one named by $UV)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DFVC_")) and k != "UV"
    }
    env.update(env_extra or {})
    proc = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "--dfvc-matrix",
            "-p",
            "no:cacheprovider",
            *NO_TEST_PLUGINS,
            *args,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return MatrixRunResult(proc.returncode, proc.stdout + proc.stderr, root)
