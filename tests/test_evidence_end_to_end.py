"""The evidence rule with real cells: no verdict where no test ran, errors where nothing
could be found out, and the wrong answers real projects showed (issue "No verdict without
evidence"), each on a small project built here and the fake framework's wheels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from .helpers import MatrixRunResult, offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

TESTS = {
    "conftest.py": "",
    "tests/test_a.py": """
        import fakeframe


        def test_mean():
            assert fakeframe.mean([1, 3]) == 2


        def test_new_feature():
            assert fakeframe.new_feature() == 42
        """,
}


def project(
    root: Path, wheelhouse: Path, tooling: Path, files: dict[str, str], matrix: str = ""
) -> Path:
    write_project(root, files)
    (root / "m.toml").write_text(
        matrix
        or 'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    return root


def cells(result: MatrixRunResult) -> list[dict[str, Any]]:
    return list(result.matrix("m")["cells"])


@pytest.fixture(autouse=True)
def _pythons(finder: InterpreterFinder) -> None:
    require_pythons(finder, "3.10")


@pytest.mark.parametrize(
    ("args", "files", "why"),
    [
        (("-k", "no_such_test"), TESTS, "no test ran: 2 deselected"),
        (("-m", "no_such_marker"), TESTS, "no test ran: 2 deselected"),
        (
            (),
            {
                **TESTS,
                "tests/test_a.py": 'import pytest\n\npytest.importorskip("fakeframe", minversion="9")\n\n\n'
                "def test_x():\n    pass\n",
            },
            "no test ran: skipped: module 'fakeframe' has __version__",
        ),
        (
            (),
            {
                **TESTS,
                "tests/test_a.py": 'import pytest\n\n\n@pytest.mark.dfvc(fakeframe=">=9")\n'
                "def test_x():\n    pass\n",
            },
            "no test ran: skipped: dfvc: declared fakeframe>=9",
        ),
    ],
    ids=["-k typo", "-m nothing", "module-level importorskip", "declared ranges skip all"],
)
def test_a_cell_where_no_test_ran_is_never_compatible(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    args: tuple[str, ...],
    files: dict[str, str],
    why: str,
) -> None:
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml", *args)
    # Nothing was tested: no green range, no green badge, no exit status 0.
    assert result.returncode != 0, result.output
    assert "dfvc: nothing was tested: no cell ran a test" in result.output
    for cell in cells(result):
        assert cell["status"] == "skipped"
        assert cell["cause"]["category"] == "no-tests"
        assert cell["cause"]["reason"].startswith(why), cell["cause"]
    frame = result.matrix("m")["ranges"]["fakeframe"]
    assert frame["specifier"] is None and frame["compatible"] == []
    badge = json.loads((root / ".dfvc" / "badges" / "m-fakeframe.json").read_text())
    assert badge["color"] not in ("brightgreen", "green")


def test_module_level_skip_shows_in_the_table(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    files = {
        **TESTS,
        "tests/test_b.py": 'import pytest\n\npytest.importorskip("fakeframe", minversion="1.2")\n\n\n'
        "def test_new():\n    pass\n",
    }
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode == 0, result.output
    first, second = cells(result)
    skipped = next(t for t in first["tests"] if t["nodeid"].startswith("tests/test_b.py"))
    assert skipped["outcome"] == "skipped"
    assert next(t for t in second["tests"] if t["nodeid"] == "tests/test_b.py::test_new")[
        "outcome"
    ] == ("passed")
    row = next(line for line in result.output.splitlines() if "tests/test_b.py" in line)
    assert row.split()[-2:] == ["s", "."]


def test_a_test_dependency_nobody_declared_is_an_error_not_a_finding(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    """A numpy project whose tests import pandas without declaring it: not incompatible
    with every numpy, but an environment that lacks a module."""
    files = {**TESTS, "tests/test_io.py": "import nosuchpandas\n\n\ndef test_io():\n    pass\n"}
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode != 0, result.output
    for cell in cells(result):
        assert cell["status"] == "error"
        assert cell["cause"]["category"] == "missing-dependency"
        assert "nosuchpandas" in cell["cause"]["reason"]
        assert 'requirements = ["nosuchpandas"]' in cell["cause"]["reason"]
    assert "none among the versions tested" not in result.output
    assert result.matrix("m")["ranges"]["fakeframe"]["incompatible"] == []


def test_a_test_dependency_the_project_declares_elsewhere_is_named_with_its_place(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    """Issue 32, item 3: the project declares what its tests import in ``tests_require``;
    the error said "the project does not declare it"."""
    files = {
        **TESTS,
        "tests/test_io.py": "import nosuchpandas\n\n\ndef test_io():\n    pass\n",
        "setup.cfg": "[options]\ntests_require =\n    nosuchpandas>=1.2\n",
    }
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode != 0, result.output
    for cell in cells(result):
        reason = cell["cause"]["reason"]
        assert "the project declares it in setup.cfg [options] tests_require" in reason, reason
        assert 'requirements = ["nosuchpandas>=1.2"]' in reason
    assert "setup.cfg [options] tests_require" in result.output


def test_hostile_objects_on_a_failing_line_never_lose_an_outcome(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    from .test_recorder import HOSTILE

    root = project(tmp_path, wheelhouse, tooling, {**TESTS, "tests/test_hostile.py": HOSTILE})
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert "INTERNALERROR" not in result.output
    for cell in cells(result):
        outcomes = {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in cell["tests"]}
        assert outcomes["test_pipe_placeholder_on_failing_line"] == "failed"
        assert outcomes["test_passes_after_the_hostile_ones"] == "passed"
        # They fail the same way on every version: set apart, and said so.
        assert "tests/test_hostile.py::test_pipe_placeholder_on_failing_line" in cell["set_apart"]


def test_a_timeout_names_the_test_and_keeps_the_others(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    files = {
        **TESTS,
        "tests/test_z.py": "import time\n\n\ndef test_slow():\n    time.sleep(600)\n",
    }
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-timeout=12")
    assert result.returncode != 0
    cell = cells(result)[0]
    assert cell["status"] == "error"
    assert "during tests/test_z.py::test_slow" in cell["cause"]["reason"]
    outcomes = {t["nodeid"]: t["outcome"] for t in cell["tests"]}
    assert outcomes["tests/test_a.py::test_mean"] == "passed"
    assert outcomes["tests/test_z.py::test_slow"] == "error"


def test_pytest_refusing_its_arguments_is_an_error_with_its_own_words(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    """An option of a plugin the controller has and the cells do not (--cov without
    pytest-cov in the cells, say): here hypothesis's."""
    root = project(tmp_path, wheelhouse, tooling, TESTS)
    addopts = "--hypothesis-show-statistics --dfvc-jobs=1"
    (root / "pytest.ini").write_text(f"[pytest]\naddopts = {addopts}\n")
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode != 0
    for cell in cells(result):
        assert cell["status"] == "error"
        assert cell["cause"]["category"] == "pytest-usage"
        # pytest's own line; our option was taken out of addopts, the other was not ours.
        assert "unrecognized arguments: --hypothesis-show-statistics" in cell["cause"]["reason"]
        assert "dfvc" not in cell["cause"]["reason"]


def test_our_options_in_pytest_addopts_do_not_reach_the_cells(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    root = project(tmp_path, wheelhouse, tooling, TESTS)
    result = run_matrix(
        root, "--dfvc-matrix=m.toml", env_extra={"PYTEST_ADDOPTS": "--dfvc-jobs=1 -q"}
    )
    assert [c["status"] for c in cells(result)] == ["passed", "passed"], result.output


def test_a_project_that_cannot_be_built_is_an_error_and_leaves_nothing_behind(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    """A build backend that imports what it does not have (a setup.py importing numpy),
    here an in-tree one, so no index is needed."""
    files = {
        **TESTS,
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n[project]\nname = "x"\nversion = "1"\n',
        "backend.py": "import nosuchbuilddep\n",
    }
    root = project(tmp_path, wheelhouse, tooling, files)
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode != 0
    for cell in cells(result):
        assert cell["status"] == "error", cell
        assert "the project itself could not be built" in cell["cause"]["reason"]
        assert "No module named 'nosuchbuilddep'" in cell["cause"]["reason"]
    # Nothing of the failed builds is left but their logs.
    assert all(p.suffix == ".log" for p in (root / ".dfvc" / "runtime" / "editable").iterdir())
    assert "nothing was tested" in result.output


def test_the_python_axis_tests_what_the_matrix_asks_for(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """The project declares requires-python >=3.11; the matrix asks for 3.10 too, as
    matrix packages override the project's own bounds."""
    require_pythons(finder, "3.11")
    files = {
        **TESTS,
        "pyproject.toml": '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "demo"\nversion = "1.0"\nrequires-python = ">=3.11"\n'
        "[tool.hatch.build.targets.wheel]\ninclude = ['demo_mod.py']\n",
        "demo_mod.py": "VALUE = 1\n",
    }
    matrix = (
        'python = ["3.10", "3.11"]\n[packages.fakeframe]\nversions = ["1.1.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    root = project(tmp_path, wheelhouse, tooling, files, matrix)
    # hatchling comes from the index, as any build requirement would.
    (root / "m.toml").write_text(matrix.replace("no-index = true\n", ""))
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-suggest")
    assert [c["status"] for c in cells(result)] == ["passed", "passed"], result.output
    assert "declares requires-python>=3.11 but also passes on 3.10" in result.output


def test_an_explicit_list_never_admits_the_untested_gap(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    """1.0.0 passes and 2.0.0 fails; 1.1.0 and 1.2.0 were never run."""
    files = {
        "conftest.py": "",
        "tests/test_a.py": "import fakeframe\n\n\ndef test_old():\n    assert fakeframe.old_mean([2]) == 2\n",
    }
    matrix = (
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    root = project(tmp_path, wheelhouse, tooling, files, matrix)
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-suggest")
    frame = result.matrix("m")["ranges"]["fakeframe"]
    assert frame["specifier"] == "==1.0.0"
    assert frame["upgrade_between"] == ["1.0.0", "2.0.0"]
    assert "upgrade boundary between 1.0.0 and 2.0.0" in result.output
    assert "fakeframe==1.0.0" in result.output
    # The refine step tests the releases in the gap (1.1.0, 1.2.0 on this index) by bisection.
    refined = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-refine")
    assert "refining m fakeframe between 1.0.0 and 2.0.0: 2 release(s) in the gap" in refined.output
    frame = refined.matrix("m")["ranges"]["fakeframe"]
    assert frame["specifier"] == ">=1.0.0,<2.0.0"
    assert frame["upgrade_boundary"] == "2.0.0"
    assert frame["upgrade_between"] is None
    assert [c["packages"]["fakeframe"] for c in cells(refined)] == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "2.0.0",
    ]
