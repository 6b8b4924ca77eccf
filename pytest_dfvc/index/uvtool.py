"""Which uv pytest-dfvc calls, the environment every call gets, and its cache."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename


def uv_path() -> str | None:
    """``$UV``, else the uv installed beside us (the ``uv`` dependency), else the one on
    PATH."""
    if os.environ.get("UV"):
        return os.environ["UV"]
    candidate = Path(sys.executable).with_name("uv")
    return str(candidate) if candidate.exists() else shutil.which("uv")


def uv_environment(**extra: str) -> dict[str, str]:
    """Ours, with interpreter downloads off unless the user set ``UV_PYTHON_DOWNLOADS``: a
    cell runs on an interpreter of this machine, and a resolution for a Python this machine
    lacks (``--python-version``) needs none either, yet uv would fetch one (tens of seconds
    per call without a network, a real download with one)."""
    env = dict(os.environ, **extra)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env


def uv_cache_dir() -> Path | None:
    """Where uv keeps its cache for us (``UV_CACHE_DIR``, uv's settings, or its default):
    the cells share it with the user's own uv. None when uv cannot say."""
    uv = uv_path()
    if uv is None:
        return None
    try:
        found = subprocess.run(
            [uv, "cache", "dir"], capture_output=True, text=True, timeout=30, env=uv_environment()
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = found.stdout.strip()
    return Path(line) if found.returncode == 0 and line else None


def in_uv_cache(
    cache: Path, filename: str, folders: Mapping[str, Sequence[Path]] | None = None
) -> bool:
    """Whether uv's cache already holds this wheel, unpacked (so no cell downloads it
    again). Read from the cache's layout (``wheels-v*/<index>/<name>/<version>-<tags>``);
    where that cannot be read, a wheel counts as not cached. ``folders``: the cache's
    package folders by name (``package_folders``), read once for many wheels."""
    try:
        name, version, _, found = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    wanted = {str(t) for t in found}
    known = package_folders(cache) if folders is None else folders
    entries = (e for f in known.get(name, ()) for e in f.glob(f"{version}-*.http"))
    for entry in entries:
        stem = entry.name[len(f"{version}-") : -len(".http")]
        python, _, rest = stem.partition("-")
        abi, _, platform = rest.partition("-")
        # uv names an entry with the wheel's tags as its file name gives them, compressed
        # (``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64``).
        tags = {
            f"{p}-{a}-{o}"
            for p in python.split(".")
            for a in abi.split(".")
            for o in platform.split(".")
        }
        if tags & wanted:
            return True
    return False


def package_folders(cache: Path, names: Iterable[str] | None = None) -> dict[str, list[Path]]:
    """uv's folders of wheels that came from an index, by package name:
    ``wheels-v*/pypi/<name>`` and ``wheels-v*/index/<hash>/<name>`` (``url/`` holds direct
    references, which no index serves). One listing of each folder: a recursive glob per
    wheel over a cache of 30,000 folders took 2 s of every run. With ``names`` (normalised),
    only those packages', looked up in each index's folder rather than listing it: a cache
    that has seen many find-links folders holds thousands of them (1,800 here, 0.24 s of
    every run to list)."""
    wanted = None if names is None else sorted(set(names))
    found: dict[str, list[Path]] = {}
    for root in _folders(cache, "wheels-v*"):
        holders = [*_folders(root, "pypi"), *_folders(root / "index", "*")]
        for holder in holders:
            if wanted is None:
                folders = _folders(holder, "*")
            else:
                folders = [f for f in (holder / n for n in wanted) if os.path.isdir(f)]
            for folder in folders:
                found.setdefault(folder.name, []).append(folder)
    return found


def _folders(parent: Path, pattern: str) -> list[Path]:
    """The folders in ``parent`` whose names match ``pattern``, from one listing: the
    directory entries say which are folders, where a ``stat`` of each of uv's thousands of
    package folders took 0.3 s of every run."""
    try:
        with os.scandir(parent) as entries:
            return [
                Path(e.path) for e in entries if fnmatch.fnmatchcase(e.name, pattern) and e.is_dir()
            ]
    except OSError:
        return []
