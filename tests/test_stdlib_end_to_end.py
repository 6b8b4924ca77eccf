"""The standard library is a package of the Python axis (issue 30, item 3): an API one
Python has and the next lacks is that Python's change, with the older Python's warning at
the same line as its precursor. Real interpreters: unittest's ``assertEquals`` is gone in
3.12 and deprecated in 3.11."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

TESTS = """\
import unittest


class TestOld(unittest.TestCase):
    def test_equal(self):
        self.assertEquals(1, 1)

    def test_true(self):
        self.assertTrue(True)
"""


def test_an_api_python_removed_is_a_python_version_break_warned_before(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom: ``missing-api`` with no API. Right: ``python-version:
    unittest.TestCase.assertEquals``, warned in 3.11 at the same line."""
    require_pythons(finder, "3.11", "3.12")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "ff", "1.0", "")
    root = tmp_path / "p"
    write_project(root, {"tests/test_u.py": TESTS})
    matrix = 'python = ["3.11", "3.12"]\n[packages.ff]\nversions = ["1.0"]\n'
    (root / "m.toml").write_text(matrix + offline_install(wheels, tooling))
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-jobs=2")
    assert result.returncode == 0, result.output
    cells = {c["python"][:4]: c for c in result.matrix("m")["cells"]}
    test = next(t for t in cells["3.12"]["tests"] if t["nodeid"].endswith("test_equal"))
    cause = test["cause"]
    assert cause["category"] == "python-version", cause
    assert cause["api"] == "unittest.TestCase.assertEquals"
    assert cause["precursor"]["version"] == "3.11"
    assert cause["precursor"]["location"] == "tests/test_u.py:6"
    assert "python-version: unittest.TestCase.assertEquals" in result.output
    assert "warned in 3.11: Please use assertEqual instead." in result.output
