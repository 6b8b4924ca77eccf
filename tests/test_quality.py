"""The code base's own checks: ruff and mypy strict, as the noxfile runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "command",
    [
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "pytest_dfvc",
            "tests",
            "benchmarks",
            "tools",
            "noxfile.py",
        ],
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "pytest_dfvc",
            "tests",
            "benchmarks",
            "tools",
            "noxfile.py",
        ],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_static_checks(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_recorder_is_valid_python_37() -> None:
    """The recorder runs inside cells as old as Python 3.7: no newer syntax."""
    import ast

    source = (ROOT / "pytest_dfvc" / "incell" / "recorder.py").read_text()
    ast.parse(source, feature_version=(3, 7))
