"""The cells' environments: one per Python and job slot, synced from one cell to the next.

Building an environment per cell pays for what every cell installs alike (pytest and its
dependencies, linked anew, and compiled to bytecode anew on the first import) when cells of
one Python differ in one framework package. A slot's environment is instead kept for the
run and synced to each cell's requirements: uv swaps what differs, and removes the bytecode
of what it uninstalls, so nothing compiled for one release is read under another.

Synced is not the same as fresh by default: uv prefers what is installed, and counts an
installed distribution as a candidate even where the index's copy is filtered out. So the
environment records what it was last synced to, at two levels:

- the same inputs again (a re-run): nothing to resolve, ``--exact`` audits it;
- other pins on the same base (the next cell: its framework version, its view's project
  wheel): resolve afresh (``--upgrade``, else a dependency an earlier cell held back would
  stay where a fresh environment resolves a newer one) and reinstall the project's wheel;
- another base (a constraint lifted, the index or ``exclude-newer`` moved, each cell's own
  era), or an environment whose last sync is unknown: emptied first (``uv pip uninstall``
  of everything in it), since an installed pytest 9.2 stays a candidate under an
  ``exclude-newer`` that a fresh environment resolves to pytest 7.3.1 (uv cannot know when
  an installed distribution was published, astral-sh/uv#6676). Not ``--reinstall``, its
  maintainers' answer there: it implies ``--refresh``, and uv then fetches and unpacks every
  wheel anew, a second copy of each in its cache (gigabytes per torch release).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from ..plan.cell import Cell

# Written in the environment after an install succeeds: the inputs it was synced to.
INPUTS_MARKER = "dfvc-inputs"

# uv options whose value is a file the resolution reads: its content is an input too.
_FILE_OPTIONS = frozenset({"--override", "--constraint", "--requirements", "-r", "-c"})


class EnvironmentSlots:
    """Hands each running cell an environment no other running cell holds: the lowest free
    slot of the cell's interpreter. With two jobs and two Pythons, each Python keeps one
    environment for the whole run."""

    def __init__(self) -> None:
        self._held: dict[str, set[int]] = defaultdict(set)
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, interpreter: str) -> Iterator[int]:
        with self._lock:
            held = self._held[interpreter]
            slot = next(i for i in range(len(held) + 1) if i not in held)
            held.add(slot)
        try:
            yield slot
        finally:
            with self._lock:
                self._held[interpreter].discard(slot)


def environment_name(cell: Cell, slot: int) -> str:
    """The nox session (and so the environment folder) of a slot: ``dfvc-py3.10.13-0``."""
    return f"dfvc-py{cell.interpreter_version or cell.python}-{slot}"


def base_key(python: str | None, install_env: Any, settings: Any, files: Sequence[Path]) -> str:
    """A digest of what a cell's install shares with the other cells of its matrix: the
    interpreter, uv's environment, the matrix's install settings (with the cell's era and
    CUDA variant) and the content of the files they make (constraints, a lock)."""
    inputs: list[Any] = [python, install_env, settings, *(_content(f) for f in files)]
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_key(python: str | None, install: Sequence[str], install_env: Any) -> str:
    """A digest of everything an install resolves from: the interpreter, uv's arguments,
    the content of the files they name, and the project's wheel (rebuilt in place, it keeps
    its name and version)."""
    inputs: list[Any] = [python, list(install), install_env]
    for option, value in zip(install, install[1:]):
        if option in _FILE_OPTIONS:
            inputs.append(_content(Path(value)))
    for _, wheel in _project_wheels(install):
        inputs.append(wheel.stat().st_mtime_ns if wheel.exists() else None)
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def starts_over(synced: Synced | None, base: str) -> bool:
    """Whether the environment is emptied before the install (another base, or a last sync
    unknown: ``synced`` None), so that nothing installed is a candidate."""
    return synced is None or synced.base != base


def resync_args(install: Sequence[str], synced: Synced | None, inputs: str, base: str) -> list[str]:
    """What an install adds to equal a fresh environment, given what the environment was
    last synced to (``synced``; None: unknown, or a new environment, emptied first: see
    ``starts_over``)."""
    if synced is None or synced.inputs == inputs or synced.base != base:
        return []
    args = ["--upgrade"]
    for name, _ in _project_wheels(install):
        args += ["--reinstall-package", name]
    return args


def _project_wheels(install: Sequence[str]) -> list[tuple[str, Path]]:
    """The project's editable wheel among uv's arguments (``name[extras] @ file://…``):
    its name and file."""
    found = []
    for arg in install:
        if " @ file://" in arg:
            try:
                name = Requirement(arg).name
            except InvalidRequirement:
                continue
            found.append((name, Path(arg.split(" @ file://", 1)[1])))
    return found


@dataclass(frozen=True)
class Synced:
    """What an environment was last synced to."""

    inputs: str
    base: str


def synced_to(location: Path) -> Synced | None:
    try:
        data = json.loads((location / INPUTS_MARKER).read_text(encoding="utf-8"))
        return Synced(str(data["inputs"]), str(data["base"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_sync(location: Path, inputs: str, base: str) -> None:
    text = json.dumps({"inputs": inputs, "base": base})
    (location / INPUTS_MARKER).write_text(text, encoding="utf-8")


# What a new environment holds that no distribution's RECORD lists.
_UNRECORDED = frozenset({"_virtualenv.py", "_virtualenv.pth"})


def strays(location: Path) -> list[Path]:
    """Files in the environment's site-packages that no installed distribution's RECORD
    lists (bytecode and metadata folders aside): what a test left there (a ``.pth`` runs in
    every later Python of the environment). ``--exact`` removes distributions, not these."""
    found: list[Path] = []
    for site in location.glob("lib*/python*/site-packages"):
        owned = _recorded(site)
        for dirpath, dirnames, filenames in os.walk(site):
            here = Path(dirpath)
            dirnames[:] = [
                d for d in dirnames if d != "__pycache__" and not d.endswith(".dist-info")
            ]
            for name in filenames:
                path = here / name
                relative = path.relative_to(site).as_posix()
                if relative not in owned and relative not in _UNRECORDED:
                    found.append(path)
    return sorted(found)


def installed(location: Path) -> list[str]:
    """The distributions installed in the environment, by name."""
    names = {
        info.name[: -len(".dist-info")].split("-")[0]
        for site in location.glob("lib*/python*/site-packages")
        for info in site.glob("*.dist-info")
    }
    return sorted(names)


def _recorded(site: Path) -> set[str]:
    owned: set[str] = set()
    for record in site.glob("*.dist-info/RECORD"):
        try:
            rows = record.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for row in csv.reader(rows):
            if row:
                owned.add(os.path.normpath(row[0]).replace(os.sep, "/"))
    return owned


def _content(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
