"""A cell's nox session as data: the spec the controller writes and the session body runs,
and the uv arguments in it.

Nothing here builds or writes anything: ``install_inputs`` returns the uv arguments with the
files they name, which ``provision.prepare_session`` writes (after building the project's
wheel) before ``build_spec`` reads them back into the spec's keys.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import TypedDict

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from . import uvconfig
from .cell import Cell
from .cellargs import cell_environment_addopts
from .celldir import CellDir
from .environments import base_key, inputs_key
from .era import era_args
from .matrix import InstallOptions, Matrix
from .uvconfig import pypi_config_args

RECORDER_MODULE = "dfvc_recorder"
RECORDS_ENV = "DFVC_RECORDS"
# pytest's exit statuses that end a cell's session well: failing tests (1) are the
# controller's finding, and "no tests" (5) its own verdict (untested).
FINDINGS_CODES = (0, 1, 5)


class _SpecFields(TypedDict):
    name: str
    description: str
    python: str | None
    project: str
    cell_dir: str
    envdir: str
    install: list[str]
    install_env: dict[str, str]
    # For a pinned release whose metadata uv refuses (legacy.py).
    pins: list[str]
    sources: list[str]
    # What the environment is synced to (environments.py).
    inputs: str
    base: str
    pytest_plugins: list[str]
    pytest: list[str]
    env: dict[str, str]
    # The test run's exit statuses that are a successful session.
    success_codes: list[int]


class SessionSpec(_SpecFields, total=False):
    # Set for a second try, when uv refused this pin's metadata (legacy.py).
    legacy: str
    # --dfvc-rerun: resolve from the index afresh (no kept pages) and reinstall everything,
    # whatever the environment was synced to.
    afresh: bool


def dump_specs(specs: list[SessionSpec]) -> str:
    return json.dumps(specs, indent=2)


def session_name(matrix: str, cell: Cell) -> str:
    return f"dfvc-{matrix}-{cell.id}"


# uv's --torch-backend knows these; other frameworks take an index or a package per variant.
TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio"})


def pin_requirements(matrix: Matrix, cell: Cell) -> list[str]:
    """``numpy==1.23.5``; with a CUDA variant's substitution, ``tensorflow-cpu==2.15.0`` or
    ``jax[cuda12]==0.4.30``."""
    replaced = dict(matrix.install.variant(cell.cuda).packages)
    pins = []
    for name, version in cell.packages:
        if name in replaced:
            requirement = Requirement(replaced[name])
            extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            pins.append(f"{requirement.name}{extras}=={version}")
        else:
            pins.append(f"{name}=={version}")
    return pins


# Local version labels that name a build variant of the same release (a CUDA or CPU build):
# ``2.5.1+cpu`` is torch 2.5.1. Any other label (``1.0.0+broken``) is another build.
_VARIANT_LABEL = re.compile(r"^(cpu|cu\d+|rocm[\d.]+|xpu)$")


def wrong_pins(pins: list[str], resolved: dict[str, str]) -> list[str]:
    """The pins the environment does not hold as asked: ``==1.0.0`` matches ``1.0.0+broken``
    (PEP 440 ignores a local label the pin does not give), and uv takes the labelled build
    when a folder has both. Each says what was installed instead."""
    installed = {str(canonicalize_name(n)): v for n, v in resolved.items()}
    wrong = []
    for pin in pins:
        requirement = Requirement(pin)
        asked = next(iter(requirement.specifier)).version
        got = installed.get(str(canonicalize_name(requirement.name)))
        if got is None or got == asked:
            continue
        public, _, label = got.partition("+")
        if public == asked and (not label or _VARIANT_LABEL.match(label)):
            continue
        wrong.append(f"{requirement.name}=={asked} installed {got}")
    return wrong


def source_args(matrix: Matrix, cell: Cell) -> list[str]:
    """Where packages come from, shared by the pre-check and the install: wheels only for
    the matrix packages, the indexes and folders of the matrix and of the cell's variant."""
    install = matrix.install
    variant = install.variant(cell.cuda)
    args = build_source_args(matrix)
    pins = pin_requirements(matrix, cell)
    for pin in pins:
        args += ["--only-binary", Requirement(pin).name]
    args += era_args(cell, pins)
    for link in variant.find_links:
        args += ["--find-links", link]
    if variant.index_url and not install.no_index:
        # Searched before the default index: the variant's builds win (uv's first-index rule).
        args += ["--extra-index-url", variant.index_url]
    backend = variant.torch_backend
    if backend is None and cell.cuda and not variant.index_url and not variant.find_links:
        backend = cell.cuda if any(n in TORCH_FAMILY for n, _ in cell.packages) else ""
    if backend:
        args += ["--torch-backend", backend]
    return args


def build_source_args(matrix: Matrix) -> list[str]:
    """Where the matrix's packages, and the project's build requirements, come from, with
    PyPI's cache lifetimes where uv asks PyPI (``uvconfig.pypi_config_args``)."""
    install = matrix.install
    return [
        *pypi_config_args(
            matrix.path.parent, index_url=install.index_url, no_index=install.no_index
        ),
        *index_args(install),
    ]


def keeps_pages(args: list[str]) -> bool:
    """Whether uv, given these arguments, keeps PyPI's pages for their lifetime
    (``uv-pypi.toml``): then a release newer than its copy of a page is missing from it
    until the page is asked for again (``asked_afresh``)."""
    return str(uvconfig.PYPI_CONFIG) in args


def asked_afresh(args: list[str], name: str) -> list[str]:
    """The arguments again, asking the index for ``name``'s page: uv does not refresh a page
    whose lifetime a configuration sets, so with the configuration without it."""
    return [*_without_lifetime(args), "--refresh-package", name]


def _without_lifetime(args: list[str]) -> list[str]:
    kept, refreshed = str(uvconfig.PYPI_CONFIG), str(uvconfig.PYPI_REFRESH_CONFIG)
    return [refreshed if a == kept else a for a in args]


def asks_afresh(spec: SessionSpec) -> bool:
    """Whether a failed install of this spec may be tried again with a page asked afresh
    (not once it was: the second try's configuration keeps no pages)."""
    return keeps_pages(spec["install"])


def resolved_afresh(spec: SessionSpec) -> SessionSpec:
    """The spec resolving every package from the index afresh and reinstalling it: a
    new release of a floating dependency, or a wheel rebuilt at the same version, reaches
    the environment (what ``--dfvc-rerun`` promises)."""
    return {
        **spec,
        "install": _without_lifetime(spec["install"]),
        "sources": _without_lifetime(spec["sources"]),
        "afresh": True,
    }


def afresh(spec: SessionSpec, name: str) -> SessionSpec:
    """The spec of a second try that asks the index again for ``name``'s page."""
    install = asked_afresh(spec["install"], name)
    return {**spec, "install": install, "sources": _without_lifetime(spec["sources"])}


def index_args(install: InstallOptions) -> list[str]:
    """Where the matrix's packages, and the project's build requirements, come from."""
    args: list[str] = []
    for link in install.find_links:
        args += ["--find-links", link]
    if install.no_index:
        args.append("--no-index")
    elif install.index_url:
        args += ["--index-url", install.index_url]
    if install.exclude_newer:
        args += ["--exclude-newer", install.exclude_newer]
    return args


def in_view(args: list[str], project: Path, view: Path) -> list[str]:
    """Arguments that name paths inside the project (``/home/me/proj/tests/test_x.py``,
    ``--rootdir=/home/me/proj``) name the same paths in the cell's view."""
    if view == project:
        return list(args)
    old = str(project)
    moved = []
    for arg in args:
        name, eq, value = arg.partition("=")
        target, prefix = (value, name + eq) if eq and value.startswith(old) else (arg, "")
        if target == old or target.startswith(old + os.sep):
            arg = prefix + str(view) + target[len(old) :]
        moved.append(arg)
    return moved


def _rooted(pytest_args: list[str], here: Path) -> list[str]:
    """The cell's pytest is rooted in its view of the project, as pytest in the project
    would be: node ids relative to the project, and no conftest.py above the view (the
    project's own, which the view copies, would load twice) — also when the ini file that
    pytest finds lies above the project (a monorepo's ``mono/pytest.ini``, whose settings
    still apply). What the user gave wins."""
    rooted = []
    for option in ("--rootdir", "--confcutdir"):
        if not any(a == option or a.startswith(option + "=") for a in pytest_args):
            rooted.append(f"{option}={here}")
    return rooted


# uv variables that choose which environment or interpreter uv works on, not how it
# resolves: each cell's nox session sets its own (a nox session with the uv backend sets
# UV_PYTHON and UV_PROJECT_ENVIRONMENT to its environment; passed on, they made the cells'
# installs land in the environment pytest-dfvc itself ran from).
_ENVIRONMENT_VARIABLES = frozenset({"UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_SYSTEM_PYTHON"})


def uv_variables() -> dict[str, str]:
    """uv's settings in this environment (``UV_*``), which the cells' installs inherit;
    never those that choose the environment to install into."""
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("UV_") and k not in _ENVIRONMENT_VARIABLES
    }


def cell_environment(matrix: Matrix) -> dict[str, str]:
    """What the cells get from us on top of the environment they inherit: ``PYTEST_ADDOPTS``
    without our options, and the matrix's ``[install] env``. The cache key holds it."""
    return {**cell_environment_addopts(), **dict(matrix.install.env)}


def install_inputs(
    matrix: Matrix,
    cell: Cell,
    cell_dir: CellDir,
    project: list[str],
    locked: Path | None,
    root: Path | None = None,
) -> tuple[list[str], dict[Path, str]]:
    """``uv pip install`` arguments, and the files they name with their text: the project
    (``project``: its editable requirement, or nothing when the cells do not install it)
    with its extras, the cell's pins (as overrides too, so the project's own bounds cannot
    veto a version under test), the constraints, and pytest. Matrix packages come from
    wheels only; ``locked``: the project's lock as requirements (resolution = locked).
    ``root``: the project's folder, where uv finds its configuration as the plan did."""
    install = matrix.install
    pins = pin_requirements(matrix, cell)
    # A counterfactual cell's packages set back: requirements, not overrides, so their own
    # bounds still apply to everything but the axis (the recorder reports the conflicts).
    held = [f"{name}=={version}" for name, version in cell.held]
    args = [*project, *pins, *held, *install.requirements, "pytest"]
    for name, _ in cell.held:
        args += ["--only-binary", name]
    # A reused environment holds exactly what its inputs ask for: --exact removes what the
    # resolution does not hold; one synced to other inputs resolves afresh (environments.py).
    args += ["--exact"]
    files = {cell_dir.overrides_file: "".join(p + "\n" for p in pins)}
    args += ["--override", str(cell_dir.overrides_file)]
    constraints = [*install.constraints, *cell.other_builds]
    if constraints:
        files[cell_dir.constraints_file] = "".join(c + "\n" for c in constraints)
        args += ["--constraint", str(cell_dir.constraints_file)]
    for group in install.groups:
        args += ["--group", group]
    args += source_args(matrix, cell)
    if install.resolution == "lowest-direct":
        args += ["--resolution", "lowest-direct"]
    elif install.resolution == "locked" and locked is not None:
        args += ["--requirements", str(locked)]
    if root is not None:
        # uv's configuration (a uv.toml or [tool.uv] in the project or above it: a private
        # find-links, no-index) is found from the project, as the plan found it, never
        # from the cell's view: a view outside the tree has none, and uv would ask PyPI
        # for a private name. Every path in these arguments is absolute.
        args += ["--directory", str(root)]
    return args, files


def build_spec(
    matrix: Matrix,
    cell: Cell,
    cell_dir: CellDir,
    *,
    name: str,
    here: Path,
    project: Path,
    runtime: Path,
    envdir: Path,
    install: list[str],
    pytest_args: list[str],
    pythonpath_tree: bool,
    success_codes: tuple[int, ...] = FINDINGS_CODES,
) -> SessionSpec:
    """Everything nox needs to build and test one cell, as plain JSON. ``here``: where the
    cell runs (its view of ``project``); ``pythonpath_tree``: the project is imported from
    its tree (it is not installed), as PYTHONPATH=. would."""
    pythonpath = os.pathsep.join(
        p
        for p in (
            str(runtime),
            str(here) if pythonpath_tree else "",
            os.environ.get("PYTHONPATH", ""),
        )
        if p
    )
    # The user's UV_* settings are inherited by the install; named here, they are part of
    # what a synced environment is keyed on (UV_RESOLUTION=lowest resolves otherwise).
    install_env = {**uv_variables(), "UV_PYTHON_DOWNLOADS": "never"}
    return {
        "name": name,
        "description": f"{matrix.name}: {cell.id}",
        "python": cell.interpreter,
        "project": str(here),
        "cell_dir": str(cell_dir.path),
        "envdir": str(envdir),
        "install": install,
        "install_env": install_env,
        "pins": pin_requirements(matrix, cell),
        "sources": source_args(matrix, cell),
        "inputs": inputs_key(cell.interpreter, install, install_env),
        "base": base_key(
            cell.interpreter,
            install_env,
            [asdict(matrix.install), cell.cuda, cell.exclude_newer],
            [cell_dir.constraints_file, cell_dir.locked_file],
        ),
        # The cache provider would race between cells sharing the project folder; a module
        # that fails to import is a finding, so the other modules must still run.
        "pytest_plugins": [
            "-p",
            RECORDER_MODULE,
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            *_rooted(pytest_args, here),
        ],
        "pytest": in_view(pytest_args, project, here),
        "env": {
            RECORDS_ENV: str(cell_dir.records_file),
            "DFVC_CELL": json.dumps(
                {"packages": dict(cell.packages), "cuda": cell.cuda, "held": dict(cell.held)}
            ),
            "PYTHONPATH": pythonpath,
            **cell_environment(matrix),
        },
        "success_codes": list(success_codes),
    }
