"""Reused and installed means what was asked for, with real cells: fake wheels on a local
folder, nox and uv (issue 27)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.interpreters import InterpreterFinder
from pytest_dfvc.sessionspec import wrong_pins

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("installed", "wrong"),
    [
        ("1.0.0", []),
        ("1.0.0+cpu", []),
        ("1.0.0+cu124", []),
        ("1.0.0+broken", ["ff==1.0.0 installed 1.0.0+broken"]),
        ("1.0.1", ["ff==1.0.0 installed 1.0.1"]),
    ],
)
def test_a_pin_is_held_exactly_or_as_a_build_variant(installed: str, wrong: list[str]) -> None:
    assert wrong_pins(["ff==1.0.0"], {"FF": installed}) == wrong


def test_a_pin_that_installs_another_build_is_an_error_never_a_verdict(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Issue 27, item 1: with ff 1.0.0 and 1.0.0+broken in the folder, ``==1.0.0`` installed
    the labelled build and the results credited 1.0.0 with its failure."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "ff", "1.0.0", "def api():\n    return 1\n")
    fakeframe.simple_wheel(wheels, "ff", "1.0.0+broken", "def api():\n    return 2\n")
    fakeframe.simple_wheel(wheels, "ff", "1.1.0", "def api():\n    return 1\n")
    root = tmp_path / "p"
    write_project(
        root,
        {
            "conftest.py": "",
            "tests/test_ff.py": "import ff\n\ndef test_api():\n    assert ff.api() == 1\n",
        },
    )
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ["1.0.0", "1.1.0"]\n'
        + offline_install(wheels, tooling)
    )
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    cells = {c["packages"]["ff"]: c for c in result.matrix("m")["cells"]}
    assert cells["1.0.0"]["status"] == "error", result.output
    assert "1.0.0+broken" in cells["1.0.0"]["cause"]["reason"]
    assert "1.0.0" not in result.matrix("m")["ranges"]["ff"]["incompatible"]
    assert result.returncode != 0
