"""Cells that depend on nothing but their inputs: exact environments, and a result cache
keyed on everything that can change a result (issue "Isolated, exact and reproducible")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent

FILES = {
    "conftest.py": "",
    "tests/test_a.py": """
        import importlib.util


        def test_addon_absent_unless_asked():
            assert importlib.util.find_spec("fakeaddon") is None
        """,
}


def _resolved(root: Path, out: str = ".dfvc") -> dict[str, dict[str, str]]:
    data: dict[str, Any] = json.loads((root / out / "results.json").read_text())
    return {c["id"]: c["resolved"] for c in data["matrices"][0]["cells"]}


def test_a_reused_environment_equals_a_fresh_one(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Drop a requirement from the matrix: the reused environment used to keep it (and the
    test that needs it gone kept failing), while a fresh one did not have it."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, FILES)
    base = 'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n' + offline_install(
        wheelhouse, tooling
    )
    matrix = tmp_path / "m.toml"
    matrix.write_text(base + 'requirements = ["fakeaddon"]\n')
    first = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    assert "fakeaddon" in _resolved(tmp_path)["py3.10-fakeframe1.0.0"]
    assert first.matrix("m")["cells"][0]["status"] == "failed"
    matrix.write_text(base)
    reused = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    fresh = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-out=.fresh")
    assert _resolved(tmp_path) == _resolved(tmp_path, ".fresh")
    assert "fakeaddon" not in _resolved(tmp_path)["py3.10-fakeframe1.0.0"]
    assert reused.matrix("m")["cells"][0]["status"] == "passed", reused.output
    assert fresh.returncode == 0


def test_the_cells_environment_is_explicit_and_keyed(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """[install] env reaches the tests; PYTEST_ADDOPTS that selects fewer tests is not a
    reason to reuse a result (the other tests used to vanish from the table)."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_env.py": """
            import os


            def test_backend():
                assert os.environ["MPLBACKEND"] == "Agg"


            def test_other():
                pass
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
        + 'env = { MPLBACKEND = "Agg" }\n'
    )
    first = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    assert first.matrix("m")["cells"][0]["status"] == "passed", first.output
    narrowed = run_matrix(
        tmp_path, "--dfvc-matrix=m.toml", env_extra={"PYTEST_ADDOPTS": "-k test_other"}
    )
    assert "1 cells run, 0 unchanged" in narrowed.output
    assert [t["nodeid"] for t in narrowed.matrix("m")["cells"][0]["tests"]] == [
        "tests/test_env.py::test_other"
    ]
    again = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "-q")
    # Back to the first inputs (-q changes only the output): its result is there to reuse.
    assert "0 cells run, 1 unchanged" in again.output
    assert len(again.matrix("m")["cells"][0]["tests"]) == 2


RACE = {
    "conftest.py": "",
    "tests/test_race.py": """
        import time
        from pathlib import Path

        import fakeframe


        def test_round_trip_through_a_file():
            Path("build_output.txt").write_text(fakeframe.__version__)
            time.sleep(1.5)
            assert Path("build_output.txt").read_text() == fakeframe.__version__


        def test_truncate_a_tracked_file():
            Path("data.txt").write_text("")
        """,
    "data.txt": "precious\n",
}


def test_parallel_cells_do_not_share_a_working_folder(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Three cells at once, each writing a file where it runs and reading it back: they used
    to race in the project folder (2 of 3 failed, blamed on the framework), and to write into
    the user's tree."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, RACE)
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    for attempt in range(2):
        result = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-jobs=3", "--dfvc-rerun")
        statuses = [c["status"] for c in result.matrix("m")["cells"]]
        assert statuses == ["passed"] * 3, (attempt, result.output)
    # Nothing a cell wrote reached the user's tree.
    assert not (tmp_path / "build_output.txt").exists()
    assert (tmp_path / "data.txt").read_text() == "precious\n"


LAYOUT = {
    "conftest.py": "",
    "tests/test_a_crash.py": """
        import os


        def test_dies():
            os._exit(3)
        """,
    "tests/test_b_where.py": """
        import os


        def test_where(dfvc_record):
            dfvc_record("cwd", os.getcwd())
        """,
}


def test_the_same_cell_layout_in_every_mode(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A local run, a --dfvc-cell job, and the restart after a crash all run the cell's
    tests in its own view of the project."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, LAYOUT)
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    view = tmp_path / ".dfvc" / "views" / "m" / "py3.10-fakeframe1.0.0"

    def cwd(result: Any) -> str:
        cell = result.matrix("m")["cells"][0]
        (test,) = [t for t in cell["tests"] if t["nodeid"].endswith("test_where")]
        return str(test["records"]["cwd"])

    local = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    # The crash came first: the cwd was recorded by the restarted pytest.
    crashed = next(t for t in local.matrix("m")["cells"][0]["tests"] if "dies" in t["nodeid"])
    assert crashed["cause"]["category"] == "crash"
    assert Path(cwd(local)) == view
    job = run_matrix(
        tmp_path, "--dfvc-matrix=m.toml", "--dfvc-cell=m/py3.10-fakeframe1.0.0", "--dfvc-rerun"
    )
    assert Path(cwd(job)) == view


def test_an_environment_built_from_other_inputs_is_made_anew(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """uv keeps what is installed when it satisfies a requirement: with a constraint
    lifted (or exclude-newer moved), a reused environment kept the old version where a fresh
    one resolves the new."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    extra = tmp_path / "extra"
    for version in ("1.0", "2.0"):
        fakeframe.simple_wheel(extra, "fakedep", version)
    project = tmp_path / "project"
    write_project(project, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    base = (
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling, extra)
        + 'requirements = ["fakedep"]\n'
    )
    matrix = project / "m.toml"
    matrix.write_text(base + 'constraints = ["fakedep<2"]\n')
    run_matrix(project, "--dfvc-matrix=m.toml")
    assert _resolved(project)["py3.10-fakeframe1.0.0"]["fakedep"] == "1.0"
    matrix.write_text(base)
    run_matrix(project, "--dfvc-matrix=m.toml")
    run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-out=.fresh")
    assert _resolved(project)["py3.10-fakeframe1.0.0"]["fakedep"] == "2.0"
    assert _resolved(project) == _resolved(project, ".fresh")


SYNCED = {
    "conftest.py": "",
    "tests/test_v.py": """
        import importlib.metadata
        import json
        import os

        import fakeframe


        def test_the_pinned_release_is_the_one_imported():
            pinned = json.loads(os.environ["DFVC_CELL"])["packages"]["fakeframe"]
            assert importlib.metadata.version("fakeframe") == pinned
            assert fakeframe.__version__ == pinned
        """,
}


def test_cells_of_one_python_share_one_synced_environment(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """One job, one Python, three releases: one environment, synced from cell to cell
    (each cell imports exactly its pinned release), instead of one environment per cell."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, SYNCED)
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0", "1.1.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    run = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-jobs=1")
    cells = run.matrix("m")["cells"]
    assert [c["status"] for c in cells] == ["passed"] * 3, run.output
    envs = list((tmp_path / ".dfvc" / "envs").glob("*/pyvenv.cfg"))
    assert len(envs) == 1, envs


def test_a_synced_environment_resolves_as_a_fresh_one(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """uv prefers what is installed: after a cell on fakebase 1.0 (which holds fakedep below
    2), a synced cell on fakebase 2.0 kept fakedep 1.0 where a fresh environment resolves
    2.0. Each cell must equal its fresh environment, whatever cell the slot ran before."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "fakebase", "1.0", requires=("fakedep<2",))
    fakeframe.simple_wheel(wheels, "fakebase", "2.0", requires=("fakedep",))
    fakeframe.simple_wheel(wheels, "fakedep", "1.0")
    fakeframe.simple_wheel(wheels, "fakedep", "2.0")
    project = tmp_path / "project"
    write_project(project, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakebase]\nversions = ["1.0", "2.0"]\n'
        + offline_install(wheels, tooling)
    )
    run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-jobs=1")
    resolved = _resolved(project)
    assert resolved["py3.10-fakebase1.0"]["fakedep"] == "1.0"
    assert resolved["py3.10-fakebase2.0"]["fakedep"] == "2.0"
    # The other order, and each cell alone in an environment of its own, agree.
    for cell in ("py3.10-fakebase2.0", "py3.10-fakebase1.0"):
        run_matrix(project, "--dfvc-matrix=m.toml", f"--dfvc-cell=m/{cell}", "--dfvc-rerun")
        run_matrix(project, "--dfvc-matrix=m.toml", f"--dfvc-cell=m/{cell}", f"--dfvc-out=.{cell}")
        assert _resolved(project)[cell] == _resolved(project, f".{cell}")[cell] == resolved[cell]


@pytest.mark.slow
def test_what_a_test_leaves_in_site_packages_never_reaches_the_next_cell(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """On 1.1.0 a test writes a ``.pth`` into site-packages; the next cell in that slot's
    environment ran it at start-up (``--exact`` removes distributions, not files nobody
    owns) and failed there (issue 27, item 7)."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_env.py": """
            import os
            import site

            import fakeframe

            def test_leaves_a_pth():
                if fakeframe.__version__ == "1.1.0":
                    path = os.path.join(site.getsitepackages()[0], "zz_left_behind.pth")
                    with open(path, "w") as f:
                        f.write("import os; os.environ['LEFT_BEHIND'] = '1'\\n")

            def test_clean_start():
                assert "LEFT_BEHIND" not in os.environ
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
        + "project = false\n"
    )
    result = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-jobs=1")
    assert result.returncode == 0, result.output
    cells = {c["id"]: c for c in result.matrix("m")["cells"]}
    assert cells["py3.10-fakeframe1.2.0"]["status"] == "passed", result.output


@pytest.mark.network
@pytest.mark.parametrize("nox_version", ["2024.4.15", "2026.10.20"])
def test_an_inherited_uv_python_never_chooses_where_a_cell_installs(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
    nox_version: str,
) -> None:
    """``UV_PYTHON`` chooses the environment ``uv pip install`` writes to, before
    ``VIRTUAL_ENV``. nox sets it to the session's environment only since 2025; with an older
    nox (the floor pyproject.toml allows) a ``UV_PYTHON`` the run inherited (a user's
    ``export UV_PYTHON=...``; any process a nox session started, such as a test of a cell)
    sent every cell's ``--exact`` install into that environment: it was stripped of what the
    cell did not list, and the cell's own environment had no pytest. Found by
    matrices/tooling.toml at nox 2024.4.15."""
    require_pythons(finder, "3.10", "3.12")
    uv = str(Path(sys.executable).with_name("uv"))
    controller, decoy = tmp_path / "controller", tmp_path / "decoy"
    python312 = finder.find("3.12")
    assert python312 is not None
    for env in (controller, decoy):
        subprocess.run([uv, "venv", "-q", "--python", str(python312.path), str(env)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(controller / "bin" / "python"),
            "-e",
            str(ROOT),
            f"nox=={nox_version}",
            "uv==0.13.9",
            "iniconfig",
        ],
        check=True,
    )
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(decoy / "bin" / "python"), "iniconfig"],
        check=True,
    )
    project = tmp_path / "project"
    write_project(project, FILES)
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    run = run_matrix(
        project,
        "--dfvc-matrix=m.toml",
        python=str(controller / "bin" / "python"),
        env_extra={"UV_PYTHON": str(decoy)},
    )
    assert run.returncode == 0, run.output
    cells = run.matrix("m")["cells"]
    assert [c["status"] for c in cells] == ["passed", "passed"], run.output
    left = subprocess.run(
        [uv, "pip", "freeze", "--python", str(decoy / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split("==")[0] for line in left.split()] == ["iniconfig"], left


def test_a_src_layout_project_imports_itself_from_its_tree(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``[install] project = false`` put only the project's root on ``PYTHONPATH``: a
    src-layout project imported itself only if its pytest settings said
    ``pythonpath = ["src"]``, and otherwise every test failed to import it. ``src/`` goes on
    the path as well, as a hand-written ``PYTHONPATH=src`` loop has it."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "src/statlib/__init__.py": "import fakeframe\n\ndef twice(x):\n    return 2 * x\n",
            "tests/test_statlib.py": """
                import statlib

                def test_twice():
                    assert statlib.twice(2) == 4
                """,
        },
    )
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'statlib'\nversion = '1.0'\n")
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0"]\n'
        + offline_install(wheelhouse, tooling)
        + "project = false\n"
    )
    result = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    assert result.returncode == 0, result.output
    [cell] = result.matrix("m")["cells"]
    assert cell["status"] == "passed", result.output


def test_a_plugin_that_needs_pytests_cache_runs_in_every_cell(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Every cell's pytest ran with ``-p no:cacheprovider`` (so cells would not race on one
    ``.pytest_cache``), and a plugin that reads ``config.cache`` in ``pytest_configure``
    (pytest-flakes, which yellowbrick's conftest loads) stopped every cell with an
    INTERNALERROR. Each cell runs in a view of its own, so each has a cache of its own
    there; and a user's own ``-p no:cacheprovider`` under ``--strict-config`` (this
    project's settings) still runs."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": """
                def pytest_configure(config):
                    seen = config.cache.get("flakes/seen", 0)
                    config.cache.set("flakes/seen", seen + 1)
                """,
            "tests/test_a.py": """
                import fakeframe

                def test_a():
                    assert fakeframe.__version__
                """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
        + "project = false\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-matrix=m.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / ".dfvc" / "results.json").read_text())
    cells = data["matrices"][0]["cells"]
    assert [c["status"] for c in cells] == ["passed", "passed"], result.stdout
    views = tmp_path / ".dfvc" / "views" / "m"
    caches = sorted(p.relative_to(views) for p in views.glob("*/.pytest_cache"))
    assert caches == [
        Path("py3.10-fakeframe1.1.0/.pytest_cache"),
        Path("py3.10-fakeframe1.2.0/.pytest_cache"),
    ]
    # A user's own -p no:cacheprovider (their conftest no longer reading the cache).
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-config\n")
    strict = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--dfvc-matrix=m.toml",
            "--dfvc-rerun",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert strict.returncode == 0, strict.stdout + strict.stderr
