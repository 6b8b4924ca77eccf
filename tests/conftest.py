"""Shared fixtures: the fake framework's wheels, built once per session; the tools a cell
needs as local wheels; the interpreters here. Helpers that are not fixtures are in
``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe, xdist_units
from .helpers import tooling_wheels

# The runs these tests start (the controller, nox, each cell's pytest) write bytecode as
# on a user's machine: where the shell sets this (some sandboxes do), every cell compiled
# pytest and the framework again on each start, a fifth of a cell's time, and the suite's
# time said more about the sandbox than about the plugin.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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


def pytest_configure(config: pytest.Config) -> None:
    xdist_units.start(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    xdist_units.finish(config)


# After pytest's own ordering of parametrized fixtures, which the slow-first sort keeps.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    xdist_units.order_and_write(config, items)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: no error where it is not loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if os.environ.get(xdist_units.UNITS) is None:
        return None
    return xdist_units.SharedFixtureScheduling(config, log)
