"""Warm re-runs: a cell whose inputs did not change keeps its last result.

A cell's key hashes everything its result depends on: the interpreter, the pins and install
options, the project's dependency files, the project's source and tests, the pytest
arguments, and this plugin's version. A hit skips the pre-check, nox, uv and pytest alike.
Entries live in ``<dfvc-out>/cache/`` and are written atomically, so two runs at once at
worst both compute the same entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .matrix import Matrix
from .plan import Cell
from .results import write_json_atomic

# Files whose content decides what a test run does; others (data, docs) are left out, as
# hashing a large repository's every file would cost more than the run it saves.
_SOURCE_SUFFIXES = {
    ".py",
    ".pyi",
    ".pyx",
    ".pxd",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".lock",
    ".json",
}
_SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist", "site-packages"}
CACHE_SCHEMA = 1


def project_fingerprint(root: Path, out: Path) -> str:
    """A hash of the project's source, tests and dependency files (content, not times)."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(root, out)):
        digest.update(str(path.relative_to(root)).encode())
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            continue
    return digest.hexdigest()


def _source_files(root: Path, out: Path) -> Iterator[Path]:
    out = out.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Skip hidden folders (.git, .venv, .nox, .dfvc), build output, and environments.
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not d.endswith(".egg-info")
            and not (here / d / "pyvenv.cfg").exists()
            and (here / d).resolve() != out
        ]
        for name in filenames:
            if Path(name).suffix in _SOURCE_SUFFIXES:
                yield here / name


def cell_key(
    matrix: Matrix,
    cell: Cell,
    *,
    interpreter_version: str,
    fingerprint: str,
    pytest_args: list[str],
    recorder_digest: str,
) -> str:
    """The hash of every input of one cell's result."""
    inputs = {
        "schema": CACHE_SCHEMA,
        "plugin": __version__,
        "recorder": recorder_digest,
        "interpreter": [cell.interpreter, interpreter_version],
        "packages": list(cell.packages),
        "cuda": cell.cuda,
        "install": asdict(matrix.install),
        "project": fingerprint,
        "pytest_args": pytest_args,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


class ResultCache:
    """Cell results by key, one file per cell."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, matrix: str, cell: Cell) -> Path:
        return self.folder / matrix / f"{cell.id}.json"

    def get(self, matrix: str, cell: Cell, key: str) -> dict[str, Any] | None:
        """The cached cell, or None; a damaged entry counts as a miss (it is rewritten)."""
        try:
            entry = json.loads(self._path(matrix, cell).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        cell_data = entry.get("cell")
        return cell_data if isinstance(cell_data, dict) else None

    def put(self, matrix: str, cell: Cell, key: str, data: dict[str, Any]) -> None:
        write_json_atomic(self._path(matrix, cell), {"key": key, "cell": data})
