"""The pytest front door: options, markers, and the hooks that hand over to the controller.

With ``--dfvc-matrix`` the session collects nothing here; its run loop provisions every cell
of the matrix through nox and uv, runs the project's tests inside each, and reports.
Everything heavy is imported inside the hook that needs it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .strategy import STRATEGIES

if TYPE_CHECKING:
    from .matrix import Matrix
    from .session import MatrixSession

# A run of more cells than this is refused until the user says so: 1,202 setuptools cells
# started at once, with no confirmation.
DEFAULT_MAX_CELLS = 300

HELP = {
    "matrix": "run the matrix at PATH (a TOML file or a folder of them; default: matrices/) "
    "instead of running the tests here",
    "json": "where the aggregated results go (default: <dfvc-out>/results.json)",
    "out": "folder for results, reports, cell logs and environments (default: .dfvc/)",
    "jobs": "cells run at once (default: the CPU count)",
    "list": "print the planned cells of the matrix and their availability; run nothing",
    "timeout": "limit in seconds for one cell's test run; a cell past it is an error",
    "strategy": "which cells to run: grid (all), walk (from the baseline up and down to the "
    "first failure), bisect (binary search of the boundaries); default: grid",
    "drift_rtol": "relative tolerance when comparing recorded numbers across cells (default: 1e-9)",
    "drift_atol": "absolute tolerance when comparing recorded numbers across cells (default: 0)",
    "init": "write a first matrix per framework to matrices/ from what the project declares "
    "(the frameworks its code imports most, or NAMES: numpy,pandas), and exit; an existing "
    "file is kept",
    "gha": 'print only a GitHub Actions matrix ({"include": [...]}) of the runnable cells, for '
    "fromJSON, write the shards of the cells found not installable, and exit",
    "cell": "run only these cells (matrix/cell-id, comma-separated) and write each one's shard "
    "to <dfvc-out>/shards/ (one CI job)",
    "merge": "merge the shards found under DIR into results and reports, as a local run",
    "suggest": "print the requirement specifiers the results support, compared with "
    "pyproject.toml (they are always in report.md)",
    "refine": "after the run, test the releases inside each boundary gap it left (a pass and "
    "a failure with untested releases between, as an explicit version list leaves them), "
    "bisecting them; bisect always does",
    "max_cells": "refuse a run of more cells than this (default 300) unless raised: narrow "
    "the matrix (select, exclude) or search it (--dfvc-strategy=bisect)",
    "rerun": "run every cell again, even those whose inputs did not change, and re-read the "
    "package index",
}

# The run's state: one plugin object, present only in a --dfvc-matrix run.
session_key: pytest.StashKey[MatrixSession] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dfvc", "framework version compatibility (pytest-dfvc)")
    group.addoption(
        "--dfvc-matrix",
        dest="dfvc_matrix",
        nargs="?",
        const="matrices",
        default=None,
        metavar="PATH",
        help=HELP["matrix"],
    )
    group.addoption(
        "--dfvc-json", dest="dfvc_json", default=None, metavar="PATH", help=HELP["json"]
    )
    group.addoption("--dfvc-out", dest="dfvc_out", default=".dfvc", metavar="DIR", help=HELP["out"])
    group.addoption(
        "--dfvc-jobs", dest="dfvc_jobs", type=int, default=None, metavar="N", help=HELP["jobs"]
    )
    group.addoption("--dfvc-list", dest="dfvc_list", action="store_true", help=HELP["list"])
    group.addoption(
        "--dfvc-strategy",
        dest="dfvc_strategy",
        choices=STRATEGIES,
        default="grid",
        help=HELP["strategy"],
    )
    group.addoption(
        "--dfvc-init",
        dest="dfvc_init",
        nargs="?",
        const="",
        default=None,
        metavar="NAMES",
        help=HELP["init"],
    )
    group.addoption("--dfvc-rerun", dest="dfvc_rerun", action="store_true", help=HELP["rerun"])
    group.addoption("--dfvc-refine", dest="dfvc_refine", action="store_true", help=HELP["refine"])
    group.addoption("--dfvc-gha", dest="dfvc_gha", action="store_true", help=HELP["gha"])
    group.addoption(
        "--dfvc-suggest", dest="dfvc_suggest", action="store_true", help=HELP["suggest"]
    )
    group.addoption("--dfvc-cell", dest="dfvc_cell", default=None, metavar="ID", help=HELP["cell"])
    group.addoption(
        "--dfvc-merge", dest="dfvc_merge", default=None, metavar="DIR", help=HELP["merge"]
    )
    group.addoption(
        "--dfvc-drift-rtol",
        dest="dfvc_drift_rtol",
        type=float,
        default=1e-9,
        help=HELP["drift_rtol"],
    )
    group.addoption(
        "--dfvc-drift-atol",
        dest="dfvc_drift_atol",
        type=float,
        default=0.0,
        help=HELP["drift_atol"],
    )
    group.addoption(
        "--dfvc-max-cells",
        dest="dfvc_max_cells",
        type=int,
        default=DEFAULT_MAX_CELLS,
        metavar="N",
        help=HELP["max_cells"],
    )
    group.addoption(
        "--dfvc-timeout",
        dest="dfvc_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=HELP["timeout"],
    )


# The fixture lives beside the in-cell recorder, so both sides share one implementation.
from .recorder import dfvc_record  # noqa: E402, F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside a matrix run, ``@pytest.mark.dfvc`` is a plain skip condition against the
    versions installed here (inside a cell, the recorder does the same)."""
    if not config.pluginmanager.hasplugin("dfvc_recorder"):
        from .recorder import apply_declared_ranges, apply_gpu_marks

        apply_declared_ranges(items)
        apply_gpu_marks(items)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    # Inside a cell the recorder may have declared them already.
    if not hasattr(pluginmanager.hook, "pytest_dfvc_rules"):
        pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dfvc(**ranges): the versions this test claims to support, e.g. "
        "dfvc(numpy='>=1.20,<2', python='>=3.9') (pytest-dfvc)",
    )
    config.addinivalue_line(
        "markers", "dfvc_gpu: the test needs a GPU; skipped with a reason on hosts without one"
    )
    target = _matrix_target(config)
    if target is None or hasattr(config, "workerinput"):
        return
    from .session import MatrixSession

    matrices = _load_matrices(config, target)
    session = MatrixSession(config, matrices, _cell_pytest_args(config))
    config.stash[session_key] = session
    config.pluginmanager.register(session, "dfvc-session")


def _matrix_target(config: pytest.Config) -> str | None:
    """The matrix path of this run; --dfvc-cell, --dfvc-merge and --dfvc-gha imply the
    default one."""
    target: str | None = config.getoption("dfvc_matrix")
    implied = config.getoption("dfvc_gha") or any(
        config.getoption(o) is not None for o in ("dfvc_cell", "dfvc_merge")
    )
    return target or ("matrices" if implied else None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """A matrix run collects nothing here, so the project's ``conftest.py`` files are not
    loaded: the cells load them, where the frameworks they import are installed (here, a
    conftest that imports torch failed the run when torch was not installed beside
    pytest-dfvc). What they would have added (options such as ``--runslow``, ini keys) is
    accepted as it is and goes to the cells."""
    namespace = early_config.known_args_namespace
    if not _runs_matrix(namespace):
        return
    namespace.noconftest = True
    _accept_conftest_additions(early_config, parser, args)


def _accept_conftest_additions(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Options and ini keys nothing loaded here knows are taken to be the conftests'."""
    _, unknown = parser.parse_known_and_unknown_args(args)
    added: set[str] = set()
    for arg in unknown:
        name, eq, _ = arg.partition("=")
        # A misspelt option of ours is not a conftest's: pytest names it here.
        if not name.startswith("--") or len(name) <= 2 or name.startswith("--dfvc"):
            continue
        if name not in added:
            added.add(name)
            # A value written "--env prod" stays a positional argument here; it reaches the
            # cells in its place all the same.
            action = "store" if eq else "store_true"
            parser.addoption(name, action=action, help=argparse.SUPPRESS)
    # pytest 9 keeps the ini file's keys in _inicfg (its public inicfg is deprecated).
    ini = vars(early_config).get("_inicfg")
    if ini is None:
        ini = getattr(early_config, "inicfg", None) or {}
    known = set(getattr(parser, "_inidict", {})) | set(getattr(parser, "_ini_aliases", {}))
    for key in sorted(set(ini) - known):
        parser.addini(key, "set for the project's conftest.py, which the cells load")


def _runs_matrix(options: object) -> bool:
    """Whether these options (parsed early, before the conftests) ask for a matrix run:
    ``--dfvc-matrix``, or an option that implies it."""
    return bool(
        getattr(options, "dfvc_matrix", None)
        or getattr(options, "dfvc_gha", False)
        or any(getattr(options, o, None) is not None for o in ("dfvc_cell", "dfvc_merge"))
    )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--dfvc-gha`` prints the matrix JSON and nothing else, so no session is started:
    its output goes straight into ``$GITHUB_OUTPUT``."""
    if config.getoption("dfvc_init") is not None:
        from .session import write_first_matrices

        return write_first_matrices(config)
    if _matrix_target(config) is not None:
        _no_test_workers_here(config)
    if not config.getoption("dfvc_gha"):
        return None
    from .session import print_gha_matrix

    target = _matrix_target(config)
    assert target is not None
    return print_gha_matrix(config, _load_matrices(config, target))


# pytest-xdist's options, and the value that keeps its workers from starting.
_XDIST_OFF: tuple[tuple[str, object], ...] = (
    ("numprocesses", None),
    ("dist", "no"),
    ("distload", False),
    ("tx", []),
)


def _no_test_workers_here(config: pytest.Config) -> None:
    """``-n 4`` (on the command line or in addopts) is for the cells' pytest, which gets it;
    the controller runs no test, so pytest-xdist must not start workers for it. Runs before
    xdist reads the options (its pytest_cmdline_main is trylast)."""
    for name, off in _XDIST_OFF:
        if hasattr(config.option, name):
            setattr(config.option, name, off)


def _load_matrices(config: pytest.Config, target: str) -> list[Matrix]:
    """Validate every matrix file before anything else happens; a bad one stops the run
    with one message naming the file, key and value."""
    from .matrix import MatrixError, load_matrices

    path = Path(config.invocation_params.dir, target)
    try:
        return load_matrices(path)
    except MatrixError as exc:
        message = str(exc)
        if exc.path == path and _bare_matrix_word(config.invocation_params.args, target):
            # `pytest --dfvc-matrix tests/test_x.py` meant a test path, not a matrix.
            message += (
                f"; a bare word after --dfvc-matrix is its path: write --dfvc-matrix=PATH "
                f"(or --dfvc-matrix alone for matrices/) and put {target} after it"
            )
        raise pytest.UsageError(message) from None


def _bare_matrix_word(args: Sequence[str], target: str) -> bool:
    return any(a == "--dfvc-matrix" and b == target for a, b in zip(args, args[1:]))


def _cell_pytest_args(config: pytest.Config) -> list[str]:
    """The user's pytest arguments minus ours: each cell runs a plain pytest. Ours in the
    ini's ``addopts`` are taken out there too (``PYTEST_ADDOPTS``: see provision)."""
    from .cellargs import addopts_override, strip_dfvc_options

    args = strip_dfvc_options(config.invocation_params.args)
    return [*addopts_override(config.getini("addopts")), *_test_paths_absolute(args, config)]


def _test_paths_absolute(args: Sequence[str], config: pytest.Config) -> list[str]:
    """Test paths as pytest parsed them are relative to where it was run (``cd tests &&
    pytest --dfvc-matrix=../matrices test_s.py``); a cell runs elsewhere (its view of the
    project), so they go to it absolute, and the cell's view maps them into itself."""
    positional = set(getattr(config.option, "file_or_dir", None) or ())
    here = config.invocation_params.dir
    moved = []
    for arg in args:
        path, sep, rest = arg.partition("::")
        if arg in positional and path and not os.path.isabs(path) and (here / path).exists():
            arg = os.path.normpath(here / path) + sep + rest
        moved.append(arg)
    return moved
