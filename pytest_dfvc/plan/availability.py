"""Whether a cell can be installed, read from the index without resolving.

The matrix packages install only from wheels (``--only-binary``), so a pinned release with
no wheel whose tags the cell's Python takes on this platform, or whose ``requires-python``
shuts it out, cannot be installed: the index's file list says so, with the words uv would
use. A cell whose every pin has such a wheel, whose wheels declare no dependency for that
Python, and that asks for nothing else (requirements, constraints) surely installs. Every
other cell (a CUDA variant, dependencies to resolve, an upload cut-off near a file's upload
time, uv settings that narrow the files) is left to ``uv pip compile``: the index cannot tell.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Union, cast

from packaging import tags
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..index.pages import (
    Files,
    IndexFile,
    IndexUnavailable,
    WheelMetadata,
    instant,
    parse_filename,
    project_files,
    wheel_metadata,
)
from ..index.uvconfig import Sources, uv_sources
from ..model import Cause
from ..vocabulary import Status
from .cell import Cell, MatrixPlan
from .matrix import Matrix
from .uvargs import pin_requirements

INSTALLABLE: Literal["installable"] = "installable"
# ("unavailable", why), INSTALLABLE, or None: the index cannot tell.
Answer = Union[tuple[Status, Cause], Literal["installable"], None]

# An upload cut-off this close to a file's upload time is left to uv: a date without a time
# is read in the machine's zone, and the index's clock is not ours.
_CUTOFF_MARGIN_S = 2 * 86400


@dataclass
class IndexReader:
    """The index as the cells' uv sees it, each project's file list read once per run
    (and kept on disk for a while under ``cache_dir``), safe to share between threads."""

    project: Path
    cache_dir: Path | None = None
    _files: dict[tuple[Sources, str], Files | None] = field(default_factory=dict)
    _releases: dict[tuple[Sources, str], dict[Version, list[IndexFile]]] = field(
        default_factory=dict
    )
    _sources: dict[Path, Sources] = field(default_factory=dict)
    _locks: dict[object, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def sources(self, matrix: Matrix) -> Sources:
        with self._lock(matrix.path):
            if matrix.path not in self._sources:
                install = matrix.install
                self._sources[matrix.path] = uv_sources(
                    self.project,
                    index_url=install.index_url,
                    no_index=install.no_index,
                    find_links=install.find_links,
                )
            return self._sources[matrix.path]

    def files(self, sources: Sources, name: str) -> Files | None:
        """Every file of ``name`` uv may take; None when the index cannot be read."""
        key = (sources, canonicalize_name(name))
        with self._lock(key):
            if key not in self._files:
                try:
                    self._files[key] = project_files(
                        name,
                        indexes=sources.indexes,
                        find_links=sources.find_links,
                        cache_dir=self.cache_dir,
                    )
                except (IndexUnavailable, OSError, ValueError):
                    self._files[key] = None
            return self._files[key]

    def release(self, sources: Sources, name: str, version: Version) -> list[IndexFile] | None:
        """The files of one release of ``name``; None when the index cannot be read."""
        files = self.files(sources, name)
        if files is None:
            return None
        key = (sources, canonicalize_name(name))
        with self._lock(("releases", key)):
            if key not in self._releases:
                grouped: dict[Version, list[IndexFile]] = {}
                for file in files.values():
                    parsed = parse_filename(file.filename)
                    if parsed is not None and parsed[0] == key[1]:
                        grouped.setdefault(parsed[1], []).append(file)
                self._releases[key] = grouped
            return self._releases[key].get(version, [])

    def metadata(self, file: IndexFile) -> WheelMetadata | None:
        with self._lock(file.location):
            return wheel_metadata(file, self.cache_dir)

    def _lock(self, key: object) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def from_index(
    matrix: Matrix, cell: Cell, reader: IndexReader, *, positives: bool = True
) -> Answer:
    """What the index alone says of ``cell``: unavailable (and why), installable, or None.
    ``positives=False`` asks only whether it is unavailable: "installable" needs each wheel's
    metadata fetched, which a run (that learns it from the install) does without."""
    if cell.cuda or not _minor(cell.python):
        return None  # a variant's builds come from its own sources and labels: uv decides
    sources = reader.sources(matrix)
    if sources.narrowing:
        return None
    # In an era (exclude-newer = "release") the pinned releases are exempt from the date.
    cutoff = None if cell.exclude_newer else matrix.install.exclude_newer or None
    wheels: list[IndexFile] = []
    for pin in pin_requirements(matrix, cell):
        found = _pinned_wheels(pin, cell, sources, cutoff, reader)
        if found is None or isinstance(found, tuple):
            return found
        wheels.append(found)
    if not positives or matrix.install.requirements or matrix.install.constraints:
        return None  # more to resolve than the pins
    if all(_needs_nothing(w, cell, reader) for w in wheels):
        return INSTALLABLE
    return None


def _pinned_wheels(
    pin: str, cell: Cell, sources: Sources, cutoff: str | None, reader: IndexReader
) -> IndexFile | tuple[Status, Cause] | None:
    """The best wheel of the pinned release for the cell, or why there is none."""
    requirement = Requirement(pin)
    version = exact_version(requirement.specifier)
    if version is None or requirement.extras:
        return None
    release = reader.release(sources, requirement.name, version)
    if not release:
        return None  # not on the index: uv's own words say it best
    if cutoff is not None:
        if any(f.uploaded is None or _near(f.uploaded, cutoff) for f in release):
            return None
        release = [f for f in release if _before(f.uploaded, cutoff)]
        if not release:
            return None  # uploaded after the cut-off: uv's words say it best
    supported = supported_tags(cell.python)
    ranked = sorted(
        ((rank, f) for f in release if (rank := wheel_rank(f.filename, supported)) is not None),
        key=lambda pair: pair[0],
    )
    name, minor = requirement.name, _minor(cell.python)
    if not ranked:
        reason = f"{name} {version} has no wheel for CPython {minor} on this platform"
        return "unavailable", Cause("python-version", reason)
    admitted = [(f, _admits(f.requires_python, cell)) for _, f in ranked]
    if any(verdict is None for _, verdict in admitted):
        return None
    fitting = [f for f, verdict in admitted if verdict]
    if not fitting:
        spec = ranked[0][1].requires_python
        on = f" (this cell has {cell.interpreter_version or minor})"
        return "unavailable", Cause("python-version", f"{name} {version} requires Python{spec}{on}")
    return fitting[0]


def _needs_nothing(wheel: IndexFile, cell: Cell, reader: IndexReader) -> bool:
    """True when the wheel's metadata is readable, admits the cell's Python (a find-links
    folder, or an index page without ``requires-python``, says so only there) and declares
    no dependency for it."""
    metadata = reader.metadata(wheel)
    if metadata is None or _admits(metadata.requires_python, cell) is not True:
        return False
    for environment in marker_environments(cell):
        for line in metadata.requires_dist:
            try:
                marker = Requirement(line).marker
            except InvalidRequirement:
                return False  # uv may refuse it: let uv say
            if marker is None or marker.evaluate(environment):
                return False
    return True


def marker_environments(cell: Cell) -> list[dict[str, str]]:
    """Marker environments for the cell's Python on this machine: its own version, or the
    first and a late patch of its minor when only the minor is known."""
    minor = _minor(cell.python)
    base: dict[str, str] = {**cast("dict[str, str]", default_environment())}
    base.update(python_version=minor, extra="")
    return [{**base, "python_full_version": p, "implementation_version": p} for p in _patches(cell)]


def _admits(requires_python: str | None, cell: Cell) -> bool | None:
    """Whether the file's ``requires-python`` admits the cell's Python; None when that
    depends on a patch version we do not know (or the range cannot be read)."""
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    verdicts = {spec.contains(v, prereleases=True) for v in _patches(cell)}
    return verdicts.pop() if len(verdicts) == 1 else None


@functools.cache
def supported_tags(python: str) -> dict[tags.Tag, int]:
    """The wheel tags CPython ``python`` (``3.12``) takes on this platform, best first."""
    major, minor = (int(p) for p in _minor(python).split("."))
    platforms = list(tags.platform_tags())
    order = [
        *tags.cpython_tags((major, minor), platforms=platforms),
        *tags.compatible_tags((major, minor), f"cp{major}{minor}", platforms),
    ]
    return {tag: rank for rank, tag in reversed(list(enumerate(order)))}


def wheel_rank(filename: str, supported: dict[tags.Tag, int]) -> int | None:
    if not filename.endswith(".whl"):
        return None
    try:
        found = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return None
    ranks = [supported[t] for t in found if t in supported]
    return min(ranks) if ranks else None


def exact_version(specifier: SpecifierSet) -> Version | None:
    specs = list(specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return None
    try:
        return Version(specs[0].version)
    except InvalidVersion:
        return None


def _patches(cell: Cell) -> list[str]:
    if cell.interpreter_version:
        return [cell.interpreter_version]
    minor = _minor(cell.python)
    return [f"{minor}.0", f"{minor}.99"]


def _minor(python: str) -> str:
    parts = python.split(".")
    return python if len(parts) == 2 and all(p.isdigit() for p in parts) else ""


def _near(uploaded: str, cutoff: str) -> bool:
    try:
        return abs((instant(uploaded) - instant(cutoff)).total_seconds()) < _CUTOFF_MARGIN_S
    except ValueError:
        return True


def _before(uploaded: str | None, cutoff: str) -> bool:
    return uploaded is not None and instant(uploaded) < instant(cutoff)


# Local labels that name a build variant of the release itself (sessionspec.wrong_pins).
_VARIANT = ("cpu", "cu", "rocm", "xpu")


def exact_builds(plans: Sequence[MatrixPlan], reader: IndexReader) -> list[MatrixPlan]:
    """The plans with each cell's pins made exact: ``==1.0.0`` matches ``1.0.0+broken``
    (PEP 440 ignores a local label the pin does not give) and uv takes the labelled build
    where a folder or index holds both, so every other build of a pinned release the index
    lists becomes a ``!=`` constraint of the cell. A CUDA or CPU build (``+cu124``,
    ``+cpu``) is the release itself, and a CUDA cell's own sources decide: left alone."""
    done = []
    for plan in plans:
        sources = reader.sources(plan.matrix)
        # Each package's file list is read once per matrix, not once per cell: numpy's
        # 4,400 file names parsed for each of 12 cells took 0.4 s before the first cell.
        labelled: dict[str, dict[Version, list[Version]]] = {}
        cells = []
        for cell in plan.cells:
            if cell.status is None and not cell.cuda:
                others = _other_builds(plan.matrix, cell, sources, reader, labelled)
                cell = replace(cell, other_builds=others) if others else cell
            cells.append(cell)
        done.append(replace(plan, cells=tuple(cells)))
    return done


def _other_builds(
    matrix: Matrix,
    cell: Cell,
    sources: Sources,
    reader: IndexReader,
    labelled: dict[str, dict[Version, list[Version]]],
) -> tuple[str, ...]:
    found = []
    for pin in pin_requirements(matrix, cell):
        requirement = Requirement(pin)
        asked = Version(next(iter(requirement.specifier)).version)
        name = canonicalize_name(requirement.name)
        if name not in labelled:
            labelled[name] = _labelled_builds(reader.files(sources, requirement.name), name)
        for version in labelled[name].get(Version(asked.public), ()):
            found.append(f"{requirement.name}!={version}")
    return tuple(found)


def _labelled_builds(files: Files | None, name: str) -> dict[Version, list[Version]]:
    """The builds with a local label that is no build variant (``1.0.0+broken``, not
    ``+cu124``) among a package's files, by the public release they label."""
    versions = set()
    for file in (files or {}).values():
        parsed = parse_filename(file.filename)
        if parsed is not None and parsed[0] == name:
            versions.add(parsed[1])
    builds: dict[Version, list[Version]] = {}
    for version in sorted(versions):
        label = version.local or ""
        if label and not label.startswith(_VARIANT):
            builds.setdefault(Version(version.public), []).append(version)
    return builds
