"""Shared fixtures: the fake framework's wheels, built once per session; the tools a cell
needs as local wheels; the interpreters here. Helpers that are not fixtures are in
``helpers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import tooling_wheels


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake framework's wheels, built now, in every version of its history."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    fakeframe.build_all(folder)
    return folder


@pytest.fixture(scope="session")
def tooling() -> Path:
    return tooling_wheels("py39")


@pytest.fixture(scope="session")
def finder() -> InterpreterFinder:
    return InterpreterFinder()
