"""What floats: a reused cell is the environment it was built in, and the index may have moved
since (a new release of a dependency the project leaves floating). A cell's resolution is
trusted for as long as uv keeps PyPI's pages (``DFVC_RESOLUTION_MAX_AGE``, default 600 s);
past that, before its kept result is reused, the cell is resolved again (``uv pip compile``:
no environment, no install; cheap when nothing moved) and reused only when every package of
that resolution is at the version the cell had.

The answers are kept in the run folder by cell key: when the cell ran, or was last checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from ..files import write_json_atomic, write_text_atomic
from ..plan.cell import Cell
from ..plan.matrix import Matrix
from ..plan.precheck import compile_command, resolve
from ..plan.uvargs import pin_requirements

# PyPI's page lifetime (index.PAGE_MAX_AGE), which uv keeps its pages for.
DEFAULT_MAX_AGE_S = 600.0


def max_age() -> float:
    value = os.environ.get("DFVC_RESOLUTION_MAX_AGE", "")
    try:
        return float(value) if value else DEFAULT_MAX_AGE_S
    except ValueError:
        return DEFAULT_MAX_AGE_S


class Resolutions:
    """When each cell's resolution was last known (it ran, or was checked), by cell key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def note(self, key: str) -> None:
        """The cell's resolution is known now (it just ran, or was checked)."""
        write_json_atomic(self._path(key), {"at": time.time()})

    def fresh(self, key: str) -> bool:
        try:
            at = float(json.loads(self._path(key).read_text(encoding="utf-8"))["at"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return time.time() - at < max_age()


def moved(
    matrix: Matrix,
    cell: Cell,
    resolved: Mapping[str, str],
    project: list[str],
    scratch: Path,
    root: Path,
) -> list[str] | None:
    """How the cell's resolution now differs from ``resolved`` (``dep 1.0 -> 2.0``); [] when
    it does not; None when uv could not resolve it (offline, say: nothing to compare).
    ``root``: the project, where uv finds its configuration, as the cells' installs do."""
    overrides = scratch / f"{cell.id}-overrides.txt"
    pins = pin_requirements(matrix, cell)
    write_text_atomic(overrides, "".join(p + "\n" for p in pins))
    constraints = None
    if matrix.install.constraints:
        constraints = scratch / f"{cell.id}-constraints.txt"
        write_text_atomic(constraints, "".join(c + "\n" for c in matrix.install.constraints))
    held = [f"{n}=={v}" for n, v in cell.held]
    wanted = [*project, *pins, *held, *matrix.install.requirements, "pytest"]
    command = [*compile_command(matrix, cell, constraints), "--override", str(overrides)]
    try:
        result = resolve(command, "".join(w + "\n" for w in wanted), root)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    had = {str(canonicalize_name(n)): v for n, v in resolved.items()}
    found = []
    for name, version in _pins(result.stdout):
        before = had.get(name)
        if before is None:
            found.append(f"+ {name} {version}")
        elif before != version and before.split("+", 1)[0] != version:
            found.append(f"{name} {before} -> {version}")
    return found


def _pins(output: str) -> list[tuple[str, str]]:
    """``name==version`` lines of ``uv pip compile``'s output (no local paths, comments)."""
    found = []
    for line in output.splitlines():
        requirement = line.split(";", 1)[0].split("#", 1)[0].strip()
        name, sep, version = requirement.partition("==")
        if sep and name and " " not in name:
            found.append((str(canonicalize_name(name.split("[", 1)[0])), version.strip()))
    return found
