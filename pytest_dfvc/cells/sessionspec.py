"""A cell's nox session as data: the spec the controller writes and the session body runs,
with the uv arguments of its install (built from ``uvargs.py``'s).

Nothing here builds or writes anything: ``install_inputs`` returns the uv arguments with the
files they name, which ``provision.prepare_session`` writes (after building the project's
wheel) before ``build_spec`` reads them back into the spec's keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TypedDict

from packaging.requirements import Requirement

from ..phases import FINDINGS_CODES
from ..plan.cell import Cell
from ..plan.matrix import Matrix
from ..plan.uvargs import (
    asked_afresh,
    keeps_pages,
    pin_requirements,
    source_args,
    uv_variables,
    without_lifetime,
)
from .cellargs import cell_environment_addopts
from .celldir import CellDir
from .environments import base_key, inputs_key

RECORDER_MODULE = "dfvc_recorder"
RECORDS_ENV = "DFVC_RECORDS"


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
        "install": without_lifetime(spec["install"]),
        "sources": without_lifetime(spec["sources"]),
        "afresh": True,
    }


def afresh(spec: SessionSpec, name: str) -> SessionSpec:
    """The spec of a second try that asks the index again for ``name``'s page."""
    install = asked_afresh(spec["install"], name)
    return {**spec, "install": install, "sources": without_lifetime(spec["sources"])}


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
    its tree (it is not installed), as PYTHONPATH=. would, and PYTHONPATH=src for a
    src-layout project."""
    tree = [here, here / "src"] if (project / "src").is_dir() else [here]
    pythonpath = os.pathsep.join(
        p
        for p in (
            str(runtime),
            *(str(t) for t in tree if pythonpath_tree),
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
        # pytest's cache stays on, in the cell's own view (its rootdir), where no other cell
        # reads or writes it: turned off (-p no:cacheprovider) it stopped plugins that read
        # config.cache (pytest-flakes), and an -o cache_dir= of ours would clash with a
        # user's -p no:cacheprovider under --strict-config. A module that fails to import
        # is a finding, so the other modules must still run.
        "pytest_plugins": [
            "-p",
            RECORDER_MODULE,
            "--continue-on-collection-errors",
            *_rooted(pytest_args, here),
        ],
        "pytest": in_view(pytest_args, project, here),
        "env": {
            RECORDS_ENV: str(cell_dir.records_file),
            "DFVC_CELL": json.dumps(
                {
                    "packages": dict(cell.packages),
                    "cuda": cell.cuda,
                    "held": dict(cell.held),
                    # The distributions pinned (a CUDA variant may name another:
                    # tensorflow-cpu for tensorflow).
                    "pinned": [Requirement(p).name for p in pin_requirements(matrix, cell)],
                    **({"trace": True} if cell.trace else {}),
                }
            ),
            "PYTHONPATH": pythonpath,
            **cell_environment(matrix),
        },
        "success_codes": list(success_codes),
    }
