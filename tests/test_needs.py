"""What a project's tests need, wherever it declares it (issue 32, item 3)."""

from __future__ import annotations

from pathlib import Path

from pytest_dfvc.plan.needs import what_tests_need


def needs(project: Path) -> dict[str, str]:
    return {n.name: f"{n.requirement} @ {n.where}" for n in what_tests_need(project)}


def test_setup_py_tests_require_and_test_extras(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_bytes(
        b"\xef\xbb\xbffrom setuptools import setup\n"
        b"setup(name='old', install_requires=['numpy'], tests_require=['pandas>=0.23', 'nose'],\n"
        b"      extras_require={'test': ['scipy'], 'plot': ['matplotlib']})\n"
    )
    assert needs(tmp_path) == {
        "pandas": "pandas>=0.23 @ setup.py tests_require",
        "nose": "nose @ setup.py tests_require",
        "scipy": "scipy @ setup.py extras_require test",
    }


def test_pyproject_extras_and_dependency_groups(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["numpy"]\n'
        '[project.optional-dependencies]\ntests = ["pandas"]\ndocs = ["sphinx"]\n'
        '[dependency-groups]\nlint = ["ruff"]\n'
        'test = ["hypothesis>=6", {include-group = "lint"}]\n'
    )
    assert needs(tmp_path) == {
        "pandas": "pandas @ pyproject.toml [project.optional-dependencies] tests",
        "hypothesis": "hypothesis>=6 @ pyproject.toml [dependency-groups] test",
        "ruff": "ruff @ pyproject.toml [dependency-groups] test",
    }


def test_setup_cfg_requirement_files_and_tox(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text(
        "[options]\ntests_require =\n    mock\n[options.extras_require]\ntesting =\n    xarray\n"
    )
    (tmp_path / "requirements-test.txt").write_text(
        "# for the tests\n-r requirements.txt\npytest-mock==3.10  # pinned\n-e .\n"
    )
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "requirements.txt").write_text("pytest-flakes>=4.0.0\n")
    (tmp_path / "tox.ini").write_text(
        "[testenv]\ndeps =\n    pytest\n    {env:EXTRA:}\n    -rrequirements-dev.txt\n    toolz\n"
    )
    assert needs(tmp_path) == {
        "mock": "mock @ setup.cfg [options] tests_require",
        "xarray": "xarray @ setup.cfg [options.extras_require] testing",
        "pytest-mock": "pytest-mock==3.10 @ requirements-test.txt",
        "pytest-flakes": "pytest-flakes>=4.0.0 @ tests/requirements.txt",
        "pytest": "pytest @ tox.ini [testenv] deps",
        "toolz": "toolz @ tox.ini [testenv] deps",
    }


def test_a_file_that_cannot_be_read_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("setup(tests_require=[\n")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert needs(tmp_path) == {}
