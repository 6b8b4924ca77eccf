"""The cells' environments: one per Python and job slot, synced from one cell to the next.

Building an environment per cell pays for what every cell installs alike (pytest and its
dependencies, linked anew, and compiled to bytecode anew on the first import) when cells of
one Python differ in one framework package. A slot's environment is instead kept for the
run and synced to each cell's requirements: uv swaps what differs, and removes the bytecode
of what it uninstalls, so nothing compiled for one release is read under another.

Synced is not the same as fresh by default: ``uv pip install`` prefers what is installed, so
a dependency an earlier cell held back (``fakedep`` 1.0, the newest that allowed that cell's
framework) would stay where a fresh environment resolves a newer one. Whenever a cell's
install inputs differ from those the environment was last synced to, the install resolves
afresh (``--upgrade``) and reinstalls the project's own wheel; same inputs need no
resolution at all.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from .plan import Cell

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


def inputs_key(python: str | None, install: Sequence[str], install_env: Any) -> str:
    """A digest of everything an install resolves from: the interpreter, uv's arguments,
    the content of the files they name, and the project's wheel (rebuilt in place, it keeps
    its name and version)."""
    inputs: list[Any] = [python, list(install), install_env]
    for option, value in zip(install, install[1:]):
        if option in _FILE_OPTIONS:
            inputs.append(_content(Path(value)))
    for arg in install:
        if " @ file://" in arg:
            wheel = Path(arg.split(" @ file://", 1)[1])
            inputs.append(wheel.stat().st_mtime_ns if wheel.exists() else None)
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def resync_args(install: Sequence[str]) -> list[str]:
    """What an install adds when the environment was synced to other inputs: resolve as a
    fresh environment would, and reinstall the project's wheel (same name, new content)."""
    args = ["--upgrade"]
    for arg in install:
        if " @ file://" in arg:
            try:
                args += ["--reinstall-package", Requirement(arg).name]
            except InvalidRequirement:
                continue
    return args


def synced_to(location: Path) -> str | None:
    try:
        return (location / INPUTS_MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _content(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
