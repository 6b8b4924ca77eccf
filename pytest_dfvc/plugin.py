"""The pytest front door: options, markers, and the hooks that hand over to the controller.

With ``--dfvc-matrix`` the session collects nothing here; its run loop provisions every cell
of the matrix through nox and uv, runs the project's tests inside each, and reports.
Everything heavy is imported inside the hook that needs it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .options import Options, add_options, read_options, runs_matrix

if TYPE_CHECKING:
    from .controller import Controller
    from .plan.matrix import Matrix

# The run's options, read once; and the controller, the plugin object of a --dfvc-matrix run.
options_key: pytest.StashKey[Options] = pytest.StashKey()
controller_key: pytest.StashKey[Controller] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.fixture
def dfvc_record(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """``dfvc_record(key, value)`` records a value of this test in each cell, so the
    controller can report drift between versions; outside a matrix run it does nothing."""
    # The in-cell recorder holds the one implementation; imported only when a test asks.
    from .incell.recorder import value_recorder

    return value_recorder(request.node)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside a matrix run, ``@pytest.mark.dfvc`` is a plain skip condition against the
    versions installed here (inside a cell, the recorder does the same)."""
    if config.pluginmanager.hasplugin("dfvc_recorder"):
        return
    # Most runs mark nothing of ours: the recorder module is not imported for them.
    if any(i.get_closest_marker("dfvc") or i.get_closest_marker("dfvc_gpu") for i in items):
        from .incell.recorder import apply_declared_ranges, apply_gpu_marks

        apply_declared_ranges(items)
        apply_gpu_marks(items)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    # Inside a cell the recorder may have declared them already.
    if not hasattr(pluginmanager.hook, "pytest_dfvc_rules"):
        pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dfvc(**ranges): the versions this test claims to support, e.g. "
        "dfvc(numpy='>=1.20,<2', python='>=3.9') (pytest-dfvc)",
    )
    config.addinivalue_line(
        "markers", "dfvc_gpu: the test needs a GPU; skipped with a reason on hosts without one"
    )
    options = _options(config)
    # ``--help`` and ``--version`` print and exit: no matrix is read for them.
    asked_only = config.option.help or config.option.version
    if options.matrix is None or hasattr(config, "workerinput") or asked_only:
        return
    from .controller import Controller

    matrices = _load_matrices(config, options.matrix)
    controller = Controller(config, options, matrices, _cell_pytest_args(config))
    config.stash[controller_key] = controller
    config.pluginmanager.register(controller, "dfvc-session")


def _options(config: pytest.Config) -> Options:
    """The options, read on first use (pytest_cmdline_main comes before pytest_configure)."""
    if options_key not in config.stash:
        config.stash[options_key] = read_options(config)
    return config.stash[options_key]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's plugin object goes with its config (pytester runs many in one process)."""
    controller = config.stash.get(controller_key, None)
    if controller is not None:
        config.pluginmanager.unregister(controller)
        del config.stash[controller_key]


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
    if not runs_matrix(namespace):
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


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--dfvc-gha`` prints the matrix JSON and nothing else, so no session is started:
    its output goes straight into ``$GITHUB_OUTPUT``."""
    options = _options(config)
    if options.doctor:
        from .commands import examine_machine

        return examine_machine(config, options)
    if options.init is not None:
        from .commands import write_first_matrices

        return write_first_matrices(config.invocation_params.dir, options)
    if options.matrix is None:
        return None
    _no_test_workers_here(config)
    if not options.gha:
        return None
    from .commands import print_gha_matrix

    return print_gha_matrix(config, options, _load_matrices(config, options.matrix))


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


def _load_matrices(config: pytest.Config, path: Path) -> list[Matrix]:
    """Validate every matrix file before anything else happens; a bad one stops the run
    with one message naming the file, key and value."""
    from .plan.matrix import MatrixError, load_matrices

    target = config.getoption("dfvc_matrix") or ""
    try:
        return load_matrices(path)
    except MatrixError as exc:
        message = str(exc)
        if target and exc.path == path and _bare_matrix_word(config.invocation_params.args, target):
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
    from .cells.cellargs import addopts_override, strip_dfvc_options

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
