"""The run's options, resolved once: command line over the ini file over the defaults.

One rule for paths: a path given on the command line is relative to where pytest runs (as
``--junitxml`` and every other pytest path option are); one set in the ini file is relative
to that file's folder (as ``testpaths`` is). The output folder defaults to ``.dfvc`` in the
project under test, which is only known once the matrices are read (``output_folder``).

This module imports nothing of the plugin's: plain ``pytest`` runs with the plugin
installed read the option names from here and pay for nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from .vocabulary import STRATEGIES, Strategy

# A run of more cells than this is refused until the user says so: 1,202 setuptools cells
# started at once, with no confirmation.
DEFAULT_MAX_CELLS = 300
DEFAULT_MATRIX = "matrices"
DEFAULT_OUT = ".dfvc"

# One help text per setting, for the option and for its ini key alike (as pytest-timeout
# does): both say the same thing.
HELP = {
    "matrix": "the matrix to run: a TOML file or a folder of them (default: matrices/). "
    "--dfvc-matrix runs it instead of the tests here; the ini setting alone runs nothing",
    "json": "where the aggregated results go (default: <dfvc-out>/results.json)",
    "out": "folder for results, reports, cell logs and environments (default: .dfvc/ in the "
    "project under test)",
    "jobs": "cells run at once (default: the CPU count)",
    "list": "print the planned cells of the matrix and their availability; run nothing",
    "timeout": "limit in seconds for one cell's test run; a cell past it is an error",
    "strategy": "which cells to run: grid (all), walk (from the baseline up and down to the "
    "first failure), bisect (binary search of the boundaries); default: grid",
    "drift_rtol": "drift is a value a test records with dfvc_record that changes from one "
    "version to the next while the test passes; numbers closer than this relative tolerance "
    "are the same (default: 1e-9)",
    "drift_atol": "the absolute tolerance of the same comparison (default: 0)",
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
    "audit": "after the run, run N of its cells again from scratch (a fresh environment and "
    "view, resolved from the index afresh; default: a tenth, at least one, chosen at random "
    "from the day or DFVC_AUDIT_SEED) and compare: a cell that differs from what the run "
    "reused or synced is an error naming the difference",
    "no_culprit": "do not run counterfactual cells: where a boundary's two cells differ in "
    "more packages than the axis, the run normally tries the failing tests with those set "
    "back, to name the package that broke them",
    "doctor": "say what this machine offers (interpreters, uv, nox, the index, free disk) and "
    "what the matrices will need (their Pythons, their downloads), each missing thing with "
    "what to do, and exit",
    "badges": "write the badges (SVG and shields.io JSON) to DIR, a folder the project commits "
    "(default <dfvc-out>/badges, which is git-ignored), and print the Markdown for that place",
    "trace": "where a test passes on one version and fails on the next with no exception "
    "from the framework (an assertion), run it again on both sides with a tracer of its "
    "calls into the matrix packages, to name the call whose result changed (default on)",
    "rerun": "run every cell again, even those whose inputs did not change, re-read the "
    "package index and reinstall every environment from it",
}

# Settings a project writes once in its ini file ([tool.pytest.ini_options]).
INI_SETTINGS = ("matrix", "out", "jobs", "timeout", "strategy", "badges")


@dataclass(frozen=True)
class Options:
    """Every dfvc option of one pytest run, read once in ``pytest_configure``."""

    # The matrix file or folder; None: not a matrix run (plain pytest).
    matrix: Path | None
    # Explicit output folder and results file; None: the defaults under the project.
    out: Path | None
    json: Path | None
    # Where the badges go; None: <out>/badges.
    badges: Path | None
    jobs: int
    timeout: float | None
    strategy: Strategy
    list_only: bool
    doctor: bool
    init: str | None
    rerun: bool
    culprit: bool
    trace: bool
    audit: int | None
    refine: bool
    gha: bool
    suggest: bool
    cells: str | None
    merge: Path | None
    drift_rtol: float
    drift_atol: float
    max_cells: int
    verbosity: int

    def output_folder(self, project: Path) -> Path:
        return self.out if self.out is not None else project / DEFAULT_OUT

    def badges_folder(self, project: Path) -> Path:
        return self.badges if self.badges is not None else self.output_folder(project) / "badges"

    def results_path(self, project: Path) -> Path:
        return self.json if self.json is not None else self.output_folder(project) / "results.json"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dfvc", "framework version compatibility (pytest-dfvc)")
    group.addoption(
        "--dfvc-matrix",
        dest="dfvc_matrix",
        nargs="?",
        const="",
        metavar="PATH",
        help=HELP["matrix"],
    )
    group.addoption("--dfvc-json", dest="dfvc_json", metavar="PATH", help=HELP["json"])
    group.addoption("--dfvc-badges", dest="dfvc_badges", metavar="DIR", help=HELP["badges"])
    group.addoption("--dfvc-out", dest="dfvc_out", metavar="DIR", help=HELP["out"])
    group.addoption("--dfvc-jobs", dest="dfvc_jobs", type=int, metavar="N", help=HELP["jobs"])
    group.addoption("--dfvc-list", dest="dfvc_list", action="store_true", help=HELP["list"])
    group.addoption("--dfvc-doctor", dest="dfvc_doctor", action="store_true", help=HELP["doctor"])
    group.addoption(
        "--dfvc-strategy", dest="dfvc_strategy", choices=STRATEGIES, help=HELP["strategy"]
    )
    group.addoption(
        "--dfvc-init", dest="dfvc_init", nargs="?", const="", metavar="NAMES", help=HELP["init"]
    )
    group.addoption("--dfvc-rerun", dest="dfvc_rerun", action="store_true", help=HELP["rerun"])
    group.addoption(
        "--dfvc-audit", dest="dfvc_audit", nargs="?", const="", metavar="N", help=HELP["audit"]
    )
    group.addoption(
        "--dfvc-no-culprit", dest="dfvc_no_culprit", action="store_true", help=HELP["no_culprit"]
    )
    group.addoption(
        "--dfvc-trace",
        dest="dfvc_trace",
        choices=("on", "off"),
        default="on",
        metavar="on|off",
        help=HELP["trace"],
    )
    group.addoption("--dfvc-refine", dest="dfvc_refine", action="store_true", help=HELP["refine"])
    group.addoption("--dfvc-gha", dest="dfvc_gha", action="store_true", help=HELP["gha"])
    group.addoption(
        "--dfvc-suggest", dest="dfvc_suggest", action="store_true", help=HELP["suggest"]
    )
    group.addoption("--dfvc-cell", dest="dfvc_cell", metavar="ID", help=HELP["cell"])
    group.addoption("--dfvc-merge", dest="dfvc_merge", metavar="DIR", help=HELP["merge"])
    group.addoption(
        "--dfvc-drift-rtol",
        dest="dfvc_drift_rtol",
        type=float,
        default=1e-9,
        metavar="R",
        help=HELP["drift_rtol"],
    )
    group.addoption(
        "--dfvc-drift-atol",
        dest="dfvc_drift_atol",
        type=float,
        default=0.0,
        metavar="A",
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
        "--dfvc-timeout", dest="dfvc_timeout", type=float, metavar="SECONDS", help=HELP["timeout"]
    )
    for name in INI_SETTINGS:
        parser.addini(f"dfvc_{name}", HELP[name], type="string", default="")


def runs_matrix(namespace: object) -> bool:
    """Whether these options ask for a matrix run: ``--dfvc-matrix``, or an option that
    implies it (--dfvc-gha, --dfvc-cell, --dfvc-merge). Works on the early namespace too,
    before the conftests load."""
    return (
        getattr(namespace, "dfvc_matrix", None) is not None
        or bool(getattr(namespace, "dfvc_gha", False))
        or any(getattr(namespace, o, None) is not None for o in ("dfvc_cell", "dfvc_merge"))
    )


def read_options(config: pytest.Config) -> Options:
    """The options of this run; a bad ini value is a usage error naming the file and key."""
    here = config.invocation_params.dir
    get = config.getoption
    cli_out, cli_json, merge = get("dfvc_out"), get("dfvc_json"), get("dfvc_merge")
    cli_badges = get("dfvc_badges")
    return Options(
        matrix=matrix_path(config) if runs_matrix(config.option) else None,
        out=Path(here, cli_out) if cli_out else _ini_path(config, "out"),
        json=Path(here, cli_json) if cli_json else None,
        badges=Path(here, cli_badges) if cli_badges else _ini_path(config, "badges"),
        jobs=get("dfvc_jobs") or int(_ini_number(config, "jobs", int) or 0) or os.cpu_count() or 1,
        timeout=_first(get("dfvc_timeout"), _ini_number(config, "timeout", float)),
        strategy=get("dfvc_strategy") or _ini_strategy(config),
        list_only=bool(get("dfvc_list")),
        doctor=bool(get("dfvc_doctor")),
        init=get("dfvc_init"),
        rerun=bool(get("dfvc_rerun")),
        culprit=not get("dfvc_no_culprit"),
        trace=get("dfvc_trace") != "off",
        audit=_audit_count(get("dfvc_audit")),
        refine=bool(get("dfvc_refine")),
        gha=bool(get("dfvc_gha")),
        suggest=bool(get("dfvc_suggest")),
        cells=get("dfvc_cell"),
        merge=Path(here, merge) if merge is not None else None,
        drift_rtol=float(get("dfvc_drift_rtol")),
        drift_atol=float(get("dfvc_drift_atol")),
        max_cells=int(get("dfvc_max_cells")),
        verbosity=int(get("verbose")),
    )


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def matrix_path(config: pytest.Config) -> Path:
    given = config.getoption("dfvc_matrix")
    if given:
        return Path(config.invocation_params.dir, given)
    return _ini_path(config, "matrix") or Path(config.invocation_params.dir, DEFAULT_MATRIX)


def _ini_value(config: pytest.Config, name: str) -> str:
    return str(config.getini(f"dfvc_{name}") or "").strip()


def _ini_folder(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath is not None else config.rootpath


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    value = _ini_value(config, name)
    return Path(_ini_folder(config), value) if value else None


def _ini_number(config: pytest.Config, name: str, kind: type[int] | type[float]) -> float | None:
    value = _ini_value(config, name)
    if not value:
        return None
    try:
        number = kind(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise _ini_error(config, name, value, f"a positive {kind.__name__}")
    return number


def _ini_strategy(config: pytest.Config) -> Strategy:
    value = _ini_value(config, "strategy") or "grid"
    if value not in STRATEGIES:
        raise _ini_error(config, "strategy", value, "one of " + ", ".join(STRATEGIES))
    return value


def _ini_error(config: pytest.Config, name: str, value: str, wanted: str) -> pytest.UsageError:
    where = config.inipath if config.inipath is not None else "the ini file"
    return pytest.UsageError(f"{where}: dfvc_{name} = {value!r}: expected {wanted}")


def _audit_count(value: str | None) -> int | None:
    """``--dfvc-audit[=N]``: None without it, 0 for the default share, else N >= 1."""
    if value is None:
        return None
    if value == "":
        return 0
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"--dfvc-audit={value}: expected a number of cells, 1 or more")
    return int(value)
