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
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .matrix import Matrix
from .plan import Cell
from .results import write_json_atomic, write_text_atomic

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
    """Cell results by key, one file per cell, and an index of each file's digest.

    The cells run the project's code with the user's rights, and a test can rewrite any file
    (one that rewrites every ``*.json`` it finds did: a failing version then read as a
    reused pass). An entry is used only when its content still has the digest the
    controller recorded when it wrote it, and it holds a well-formed cell; anything else is
    a miss, and the cell runs again. This catches accidents, not an attacker: see the
    security model in the docs.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._index_path = folder / "index.json"
        self._lock = threading.Lock()
        self._index: dict[str, str] | None = None

    def _path(self, matrix: str, cell: Cell) -> Path:
        return self.folder / matrix / f"{cell.id}.json"

    def _digests(self) -> dict[str, str]:
        if self._index is None:
            try:
                data = json.loads(self._index_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            valid = isinstance(data, dict) and all(isinstance(v, str) for v in data.values())
            self._index = dict(data) if valid else {}
        return self._index

    def get(self, matrix: str, cell: Cell, key: str) -> dict[str, Any] | None:
        """The cached cell, or None; a damaged or rewritten entry counts as a miss (the cell
        runs again and the entry is rewritten)."""
        try:
            raw = self._path(matrix, cell).read_bytes()
        except OSError:
            return None
        with self._lock:
            expected = self._digests().get(f"{matrix}/{cell.id}")
        if expected != hashlib.sha256(raw).hexdigest():
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        cell_data = entry.get("cell")
        return cell_data if _well_formed(cell_data, cell) else None

    def put(self, matrix: str, cell: Cell, key: str, data: dict[str, Any]) -> None:
        text = json.dumps({"key": key, "cell": data}, indent=2) + "\n"
        write_text_atomic(self._path(matrix, cell), text)
        with self._lock:
            digests = self._digests()
            digests[f"{matrix}/{cell.id}"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            write_json_atomic(self._index_path, digests)


def _well_formed(data: object, cell: Cell) -> bool:
    """What the report and the ranges read of a cell is there, with the right types."""
    if not isinstance(data, dict) or data.get("id") != cell.id:
        return False
    tests = data.get("tests")
    return (
        isinstance(data.get("status"), str)
        and isinstance(data.get("packages"), dict)
        and isinstance(tests, list)
        and all(isinstance(t, dict) and "nodeid" in t and "outcome" in t for t in tests)
    )
