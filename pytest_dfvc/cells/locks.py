"""A project's lock file as pinned requirements, for ``resolution = "locked"``.

The lock holds what the project's users get for everything outside the matrix; a cell keeps
those pins and overrides only the matrix packages, so a failure is the axis's doing, not a
dependency that floated. ``uv.lock`` is exported by uv itself (``uv export --frozen``, markers
kept for uv to evaluate in the cell). A PEP 751 ``pylock.toml`` is read with ``packaging``:
its packages are selected for the cell's own Python (markers and wheel tags of that
interpreter, not the controller's), with the matrix's extras and dependency groups.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from packaging import pylock
from packaging.markers import default_environment
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name

from ..files import write_text_atomic
from ..index.interpreters import minor_key
from ..index.uvtool import uv_environment
from ..tomlcheck import tomllib

LOCK_FILES = ("uv.lock", "pylock.toml")


class LockMissing(Exception):
    """``resolution = "locked"`` in a project whose lock is missing or cannot be read."""


def locked_pins(
    project: Path,
    runtime: Path,
    uv: str,
    python_version: str,
    leave_out: Sequence[str],
    extras: Sequence[str] = (),
    groups: Sequence[str] = (),
) -> list[str]:
    """Requirement lines for everything the lock pins, but the project itself and the
    packages in ``leave_out`` (the matrix packages, which the cell pins)."""
    for name in LOCK_FILES:
        lock = project / name
        if lock.exists():
            if name == "uv.lock":
                return without(_uv_lock(lock, runtime, uv, extras, groups), leave_out)
            return _pylock(lock, project, python_version, leave_out, extras, groups)
    raise LockMissing(
        f'resolution = "locked" needs {project / "uv.lock"} (run `uv lock`) or '
        f"{project / 'pylock.toml'} (PEP 751)"
    )


def without(lines: Sequence[str], names: Sequence[str]) -> list[str]:
    """The lines that pin none of ``names`` (the cell pins those itself)."""
    left_out = {canonicalize_name(n) for n in names}
    kept = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name = stripped.split(";", 1)[0]
        for mark in ("==", " @ ", "[", "<", ">", "!", "~", " "):
            name = name.split(mark, 1)[0]
        if canonicalize_name(name) not in left_out:
            kept.append(stripped)
    return kept


def _uv_lock(
    lock: Path, runtime: Path, uv: str, extras: Sequence[str], groups: Sequence[str]
) -> list[str]:
    """Exported once per change of the lock (and of the extras and groups asked for)."""
    options = [f"--extra={e}" for e in extras] + [f"--group={g}" for g in groups]
    key = hashlib.sha256(json.dumps(options).encode() + lock.read_bytes()).hexdigest()[:16]
    exported = runtime / f"uv-lock-export-{key}.txt"
    if not exported.exists():
        result = subprocess.run(
            [uv, "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-header", *options],
            cwd=lock.parent,
            capture_output=True,
            text=True,
            check=False,
            env=uv_environment(),
        )
        if result.returncode != 0:
            raise LockMissing(f"uv export of {lock} failed: {result.stderr.strip()[:300]}")
        write_text_atomic(exported, result.stdout)
    return exported.read_text(encoding="utf-8").splitlines()


def _pylock(
    lock: Path,
    project: Path,
    python_version: str,
    leave_out: Sequence[str],
    extras: Sequence[str],
    groups: Sequence[str],
) -> list[str]:
    try:
        locked = pylock.Pylock.from_dict(tomllib.loads(lock.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, pylock.PylockValidationError) as exc:
        raise LockMissing(f"{lock} cannot be read: {exc}") from exc
    # Before selecting: a matrix package locked with wheels for another Python only must not
    # make the lock unusable for a cell that pins its own version anyway.
    names = {canonicalize_name(n) for n in leave_out}
    locked = replace(locked, packages=[p for p in locked.packages if p.name not in names])
    major, minor = minor_key(python_version)
    environment = dict(default_environment())
    environment["python_version"] = f"{major}.{minor}"
    environment["python_full_version"] = python_version
    tags = [*cpython_tags((major, minor)), *compatible_tags((major, minor))]
    try:
        selected = list(
            locked.select(
                environment=environment,  # type: ignore[arg-type]
                tags=tags,
                extras=extras,
                dependency_groups=groups or None,
            )
        )
    except pylock.PylockSelectError as exc:
        raise LockMissing(f"{lock} has nothing for Python {python_version} here: {exc}") from exc
    lines = []
    for package, source in selected:
        line = _requirement(package, source, lock.parent, project)
        if line:
            lines.append(line)
    return lines


def _requirement(package: pylock.Package, source: object, base: Path, project: Path) -> str:
    """``name==version`` for what an index serves, a direct reference for the rest; the
    project itself (a directory source at its root) is installed by the cell already."""
    name = str(package.name)
    if isinstance(source, pylock.PackageDirectory):
        path = (base / source.path).resolve()
        return "" if path == project.resolve() else f"{name} @ {path.as_uri()}"
    if isinstance(source, pylock.PackageVcs):
        url = source.url or (base / (source.path or ".")).resolve().as_uri()
        return f"{name} @ {source.type}+{url}@{source.commit_id}"
    if isinstance(source, pylock.PackageArchive):
        target = source.url or (base / (source.path or "")).resolve().as_uri()
        return f"{name} @ {target}"
    return f"{name}=={package.version}"
