"""What a plan's cells download before they test anything, and whether the disk has room.

A framework release is rarely the big part: torch 2.5.1's wheel is 0.9 GB and the CUDA
libraries it pins exactly (``nvidia-cudnn-cu12==9.1.0.70``, ...) another 2.5 GB. So each
cell counts its pinned wheels and the wheels those pin exactly, with the sizes the index
gives (PEP 691); what they leave open (``sympy``, ``filelock``) is small and left out. A wheel
uv's cache already holds is downloaded by no cell; a wheel two cells share is downloaded once.
uv unpacks what it downloads into its cache (measured: torch 2.5.1's 0.9 GB wheel takes
1.7 GB there, cuDNN's 0.66 GB 1.0 GB), and links the environments to it: the room a run
needs is taken as twice its downloads, where uv's cache is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..index.pages import IndexFile, close_connections
from ..index.uvconfig import Sources
from ..index.uvtool import in_uv_cache, package_folders
from .availability import (
    IndexReader,
    exact_version,
    marker_environments,
    supported_tags,
    wheel_rank,
)
from .cell import Cell, MatrixPlan
from .matrix import Matrix
from .uvargs import pin_requirements

# Unpacked in uv's cache, a wheel takes up to about twice its download.
UNPACKED = 2


@dataclass(frozen=True)
class CellFiles:
    """The wheels one cell installs that the index sizes: by file name, with their size
    and whether they come over the network (not from a folder on this machine)."""

    files: dict[str, tuple[int, bool]] = field(default_factory=dict)
    # Files the index lists with no size (an HTML page says none).
    unsized: int = 0


@dataclass(frozen=True)
class DiskPlan:
    """The plan's downloads, what uv's cache already holds, and the room where it is."""

    # Per (matrix, cell id): bytes that cell brings into uv's cache (none cached yet).
    per_cell: dict[tuple[str, str], int]
    # Distinct wheels over the network not in uv's cache, and those of them already in it.
    download: int
    cached: int
    # Distinct wheels from folders on this machine, unpacked into the cache all the same.
    local: int
    cache: Path | None
    free: int | None
    unsized: int = 0

    @property
    def needed(self) -> int:
        return (self.download + self.local) * UNPACKED


def cell_files(matrix: Matrix, cell: Cell, reader: IndexReader) -> CellFiles:
    """The cell's pinned wheels and the wheels they pin exactly, for its Python here. A
    CUDA variant's or PyTorch's CPU wheels come from another index than the one read here:
    their sizes are not known (``unsized``), rather than PyPI's counted instead."""
    if cell.cuda or cell.torch_backend:
        return CellFiles({}, len(cell.packages))
    sources = reader.sources(matrix)
    supported = supported_tags(cell.python)
    environments = marker_environments(cell)
    found: dict[str, tuple[int, bool]] = {}
    unsized = 0
    pins = [Requirement(p) for p in pin_requirements(matrix, cell)]
    for pin in pins:
        wheel = _best(reader, sources, pin, supported)
        if wheel is None:
            continue
        unsized += _add(found, wheel)
        metadata = reader.metadata(wheel)
        for requirement in _exact(metadata.requires_dist if metadata else (), environments):
            dependency = _best(reader, sources, requirement, supported)
            if dependency is not None:
                unsized += _add(found, dependency)
    return CellFiles(found, unsized)


def _best(
    reader: IndexReader,
    sources: Sources,
    requirement: Requirement,
    supported: dict[tags.Tag, int],
) -> IndexFile | None:
    """The wheel uv would take of an exactly pinned release: the best-ranked for here."""
    version = exact_version(requirement.specifier)
    if version is None:
        return None
    ranked = sorted(
        ((rank, f.filename), f)
        for f in reader.release(sources, requirement.name, version) or ()
        if (rank := wheel_rank(f.filename, supported)) is not None
    )
    return ranked[0][1] if ranked else None


def _exact(lines: Iterable[str], environments: Sequence[dict[str, str]]) -> list[Requirement]:
    """The requirements pinned to one version that apply on this machine."""
    exact = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker and not any(requirement.marker.evaluate(e) for e in environments):
            continue
        if exact_version(requirement.specifier) is not None:
            exact.append(requirement)
    return exact


def _add(found: dict[str, tuple[int, bool]], wheel: IndexFile) -> int:
    """Count the wheel; 1 when the index gave no size."""
    if wheel.size is None:
        return 1
    remote = wheel.location.startswith(("http://", "https://"))
    found[wheel.filename] = (wheel.size, remote)
    return 0


def disk_plan(plans: Sequence[MatrixPlan], reader: IndexReader, cache: Path | None) -> DiskPlan:
    """The downloads of every runnable cell of the plans, against uv's cache at ``cache``
    and the room there."""
    runnable = [(p.matrix, c) for p in plans for c in p.cells if c.status is None]
    # Each cell's first look at a release reads its metadata from the index: at once.
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            counted = list(pool.map(lambda mc: cell_files(mc[0], mc[1], reader), runnable))
    finally:
        close_connections()
    every: dict[str, tuple[int, bool]] = {}
    for files in counted:
        every.update(files.files)
    folders = package_folders(cache, _names(every)) if cache is not None else {}
    cached_names = {n: cache is not None and in_uv_cache(cache, n, folders) for n in every}
    per_cell = {
        (matrix.name, cell.id): sum(s for n, (s, _) in files.files.items() if not cached_names[n])
        for (matrix, cell), files in zip(runnable, counted)
    }
    unsized = sum(files.unsized for files in counted)
    download = sum(s for n, (s, remote) in every.items() if remote and not cached_names[n])
    local = sum(s for n, (s, remote) in every.items() if not remote and not cached_names[n])
    cached = sum(s for n, (s, remote) in every.items() if remote and cached_names[n])
    return DiskPlan(per_cell, download, cached, local, cache, free_space(cache), unsized)


def _names(filenames: Iterable[str]) -> set[str]:
    """The packages of these wheels, as uv names their folders."""
    names = set()
    for filename in filenames:
        try:
            names.add(str(parse_wheel_filename(filename)[0]))
        except InvalidWheelFilename:
            continue
    return names


def free_space(where: Path | None) -> int | None:
    """Bytes free on the disk that holds ``where`` (or its nearest existing folder)."""
    if where is None:
        return None
    for folder in (where, *where.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return None


def size_text(size: int) -> str:
    """``3.4 GB``, ``210 MB``, ``12 kB``: decimal units, as the index and ``du -h`` don't
    agree on any other."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else f"{size // scale} {unit}"
    return f"{size} B"


def header_line(disk: DiskPlan, cells: int) -> str | None:
    """The run's downloads and the room for them, when anything comes over the network."""
    if not disk.download and not disk.cached:
        return None
    where = f" in uv's cache ({disk.cache})" if disk.cache else ""
    free = f"; {size_text(disk.free)} free there" if disk.free is not None and disk.cache else ""
    of = f"{cells} cell{'s' if cells != 1 else ''}"
    if not disk.download:
        return (
            f"dfvc: downloads: none, the wheels of {of} ({size_text(disk.cached)}) are{where}{free}"
        )
    already = f"; {size_text(disk.cached)} already{where}" if disk.cached else ""
    return f"dfvc: downloads: {size_text(disk.download)} for {of}{already}{free}"


def shortage(disk: DiskPlan) -> str | None:
    """Why the run cannot fit on the disk, and what to do; None when it fits (or the room
    cannot be read)."""
    if disk.free is None or disk.needed <= disk.free:
        return None
    return (
        f"dfvc: the cells need about {size_text(disk.needed)} in uv's cache at {disk.cache} "
        f"({size_text(disk.download + disk.local)} of wheels, unpacked), and "
        f"{size_text(disk.free)} are free there; nothing was built. Make room (`uv cache "
        "prune` drops what no environment uses; old environments are in .dfvc/envs), point "
        "UV_CACHE_DIR at a larger disk, or run fewer cells at once (--dfvc-strategy=bisect, "
        'select = "latest-minor")'
    )
