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
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import cast

from .. import __version__
from ..files import write_json_atomic, write_text_atomic
from ..index.uvconfig import config_files as uv_config_files
from ..model import CellJSON, cell_problem
from ..plan.cell import Cell
from ..plan.matrix import Matrix
from .cellargs import result_args
from .views import link_text, project_files

# 3: cells keep the deprecation warnings their tests met (older entries have none).
CACHE_SCHEMA = 3


def project_fingerprint(root: Path, out: Path, also_skip: Sequence[Path] = ()) -> str:
    """A hash of every file of the project that can change a test run (content, not times):
    every file git does not ignore, or, outside git, every file but hidden folders and
    environments. The output folder and the results file (which may lie inside the project,
    ``--dfvc-json=results.json``) are left out: a run must not change its own key."""
    return files_fingerprint(root, project_files(root, [out, *also_skip]))


def files_fingerprint(root: Path, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    root = root.resolve()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_symlink():
            # Where it points, not what is there: a link's target inside the project is a
            # file of its own here; one outside is not the project's.
            digest.update(b"link:" + link_text(path, root).encode())
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue  # deleted since it was listed
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


# pytest reads its configuration and conftest.py files from the folders above the project
# too (a monorepo's root): what the cells' pytest finds there can change a verdict.
_ABOVE = (
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "conftest.py",
    "uv.toml",
)


def above_fingerprint(project: Path) -> str:
    """A digest of the configuration files in the folders above ``project`` (pytest's and
    uv's), and of the user's and the system's uv configuration, which the cells' uv reads."""
    digest = hashlib.sha256()
    above = [folder / name for folder in project.resolve().parents for name in _ABOVE]
    for path in [*above, *uv_config_files(project)]:
        try:
            content = path.read_bytes()
        except OSError:
            continue
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def cell_key(
    matrix: Matrix,
    cell: Cell,
    *,
    interpreter_version: str,
    fingerprint: str,
    pytest_args: list[str],
    recorder_digest: str,
    environment: dict[str, str] | None = None,
    above: str = "",
) -> str:
    """The hash of every input of one cell's result: the arguments that can change what runs
    (output-only flags such as ``-q`` or ``-v`` left out) and the environment variables the
    cells get from us (``PYTEST_ADDOPTS``, the matrix's ``[install] env``, in ``install``)
    and the ``UV_*`` settings their installs inherit; ``above``: the configuration files
    above the project (``above_fingerprint``)."""
    inputs = {
        "schema": CACHE_SCHEMA,
        "plugin": __version__,
        "recorder": recorder_digest,
        "interpreter": [cell.interpreter, interpreter_version],
        "packages": list(cell.packages),
        "held": list(cell.held),
        "cuda": cell.cuda,
        "torch_backend": cell.torch_backend,
        "install": asdict(matrix.install),
        "project": fingerprint,
        "above": above,
        "pytest_args": result_args(pytest_args),
        "environment": environment or {},
        # Only a trace cell says so: every other cell's key stays as it was.
        **({"trace": True} if cell.trace else {}),
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

    def _path(self, matrix: str, cell: Cell, key: str) -> Path:
        # A few entries per cell: going back to earlier inputs (another -k, then none) finds
        # its result still there.
        return self.folder / matrix / cell.id / f"{key[:32]}.json"

    def _name(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def _digests(self) -> dict[str, str]:
        if self._index is None:
            try:
                data = json.loads(self._index_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            valid = isinstance(data, dict) and all(isinstance(v, str) for v in data.values())
            self._index = dict(data) if valid else {}
        return self._index

    def get(self, matrix: str, cell: Cell, key: str) -> CellJSON | None:
        """The cached cell, or None; a damaged or rewritten entry counts as a miss (the cell
        runs again and the entry is rewritten)."""
        path = self._path(matrix, cell, key)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        with self._lock:
            expected = self._digests().get(self._name(path))
        if expected != hashlib.sha256(raw).hexdigest():
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        cell_data = entry.get("cell")
        # Checked for what the report and the ranges read; the digest vouches for the rest.
        return cast(CellJSON, cell_data) if _well_formed(cell_data, cell) else None

    def put(self, matrix: str, cell: Cell, key: str, data: CellJSON) -> None:
        text = json.dumps({"key": key, "cell": data}, indent=2) + "\n"
        path = self._path(matrix, cell, key)
        write_text_atomic(path, text)
        with self._lock:
            digests = self._digests()
            digests[self._name(path)] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            for old in _older_entries(path.parent, KEEP_PER_CELL):
                old.unlink(missing_ok=True)
                digests.pop(self._name(old), None)
            write_json_atomic(self._index_path, digests)


KEEP_PER_CELL = 4


def _older_entries(folder: Path, keep: int) -> list[Path]:
    """The entries of one cell past the ``keep`` most recently written."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    return entries[keep:]


def _well_formed(data: object, cell: Cell) -> bool:
    """What the report and the ranges read of a cell is there, with the right types."""
    return cell_problem(data) is None and isinstance(data, dict) and data.get("id") == cell.id
