"""How this suite's tests are spread over pytest-xdist workers.

Two things ``--dist load`` does badly here. The tests that share a module-scoped fixture
(most of them one whole matrix run, asserted on a dozen ways) went to both workers, and
each worker ran the same matrix again. And the slow end-to-end tests came in collection
order, so one of them could start last and leave the other worker idle.

So each worker writes, when it has collected, which tests share such a fixture (one unit
of work); the controller's scheduler (xdist's ``loadscope``, units of several tests first)
reads that instead of cutting units from the test ids. (xdist's own ``loadgroup`` does
this through the test ids, which pytest 9.2 no longer lets a plugin change:
pytest-dev/pytest-xdist#1386.) And each worker orders its tests slow first, so the fast
ones fill the tail.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

# The folder the workers write their units to; set by the controller, inherited by them.
UNITS = "DFVC_TEST_XDIST_UNITS"


def start(config: pytest.Config) -> None:
    """In the controller of a distributed run: the folder for the workers' units."""
    if hasattr(config, "workerinput") or config.getoption("dist", "no") != "load":
        return
    os.environ[UNITS] = tempfile.mkdtemp(prefix="dfvc-test-units-")


def finish(config: pytest.Config) -> None:
    folder = os.environ.get(UNITS)
    if folder and not hasattr(config, "workerinput"):
        shutil.rmtree(folder, ignore_errors=True)


def shared_fixture(item: pytest.Item) -> str | None:
    """The module-scoped fixture (and its parameter) the test uses, if any."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name, ())
        if definitions and definitions[-1].scope == "module":
            callspec = getattr(item, "callspec", None)
            param = callspec.params.get(name, "") if callspec is not None else ""
            return f"{item.nodeid.split('::')[0]}::{name}[{param}]"
    return None


def order_and_write(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker: slow tests first (stable: pytest's order of parameters holds), and the
    tests that share a fixture written down as one unit each."""
    folder = os.environ.get(UNITS)
    if not folder or not hasattr(config, "workerinput"):
        return
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    units = {item.nodeid: unit for item in items if (unit := shared_fixture(item))}
    worker = config.workerinput["workerid"]
    target = Path(folder) / f"{worker}.json"
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(units))
    partial.replace(target)


class SharedFixtureScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """``loadscope`` whose units are the tests that share a fixture, every other test a
    unit of its own."""

    _units: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._units is None:
            # Every worker has written its file before it reported its collection, and
            # the scheduler splits only once all have.
            self._units = {}
            for path in Path(os.environ[UNITS]).glob("*.json"):
                self._units.update(json.loads(path.read_text()))
        return self._units.get(nodeid, nodeid)
