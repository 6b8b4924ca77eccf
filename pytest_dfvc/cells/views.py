"""Each cell's own view of the project.

Cells run at once, and tests write files relative to where they run (``build_output.txt``,
then read back): run in the user's folder, parallel cells raced, a different two of three
failed each time, and the failure was blamed on the framework; cells also wrote into the
user's tree. So a run takes one **snapshot** of the project when it starts (the files git does
not ignore, or every file but hidden folders and environments outside git; kept under
``<out>/runtime/snapshots/`` and reused while the project is unchanged), and each cell runs
in a fresh **view**: a copy of the snapshot (copy-on-write where the filesystem can,
``cp --reflink=auto``; hard links would let a test that truncates a file write through to
the snapshot) under ``<out>/views/<matrix>/<cell>/``. The cell's working directory, its
rootdir and configuration, its tests and its editable install all point there; a source
edit made while the matrix runs reaches none of its cells. About 10 ms a cell for a small
project.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..outdir import OUTPUT_MARKER

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}
# How a results document this tool wrote begins (``files.write_json_atomic``): wherever
# ``--dfvc-json`` put it, an earlier run's results are no input of the project's cells.
_RESULTS_HEAD = re.compile(rb'^\{\s*"schema": \d+,\s*"matrices": \[')
_COMPLETE = ".dfvc-snapshot-complete"
KEEP_SNAPSHOTS = 2


def project_files(root: Path, skip: Sequence[Path] = ()) -> list[Path]:
    """The project's files, sorted: every file git does not ignore under ``root``, or
    outside git every file but hidden folders, caches and virtual environments; never
    anything under ``skip`` (the output folder, the results file). A symbolic link is one
    entry of its own (``link_text`` says where it goes), never followed."""
    root = root.resolve()
    files = _git_files(root)
    if files is None:
        files = list(_walk_files(root))
    outputs = [f.parent for f in files if f.name == OUTPUT_MARKER]
    resolved = [s.resolve() for s in (*skip, *outputs)]
    return sorted(
        f
        for f in files
        if (f.is_symlink() or f.is_file())
        and not any(f == s or s in f.parents for s in resolved)
        and not _results_document(f)
    )


def _results_document(path: Path) -> bool:
    """A results file an earlier run wrote (its first bytes say so; a link is never one)."""
    if path.suffix != ".json" or path.is_symlink():
        return False
    try:
        with path.open("rb") as handle:
            return _RESULTS_HEAD.match(handle.read(64)) is not None
    except OSError:
        return False


def link_text(link: Path, root: Path) -> str:
    """Where a link of the project points, as its copy in a snapshot or view must: a link
    that stays inside the project relative to its folder (so a view's link reaches the
    view's file, not the user's), one that leaves it absolute (the same outside place)."""
    target = link.resolve()
    if target == root or root in target.parents:
        return os.path.relpath(target, link.parent)
    return str(target)


def _git_files(root: Path) -> list[Path] | None:
    """Tracked and untracked files under ``root`` that git does not ignore; None outside a
    git work tree (or without git), and where git ignores all of ``root``."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    names = [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    if not names:
        # Git says nothing of this folder: a copy under an ignored folder of another
        # repository (.nox/tmp/, build/). Its files are the project's all the same.
        return None
    # Not resolved: a tracked link stays the link (resolving gave its target, a folder
    # dropped as no file, or a path outside the project).
    return [root / name for name in dict.fromkeys(names)]


def _walk_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # A link to a folder is an entry of its own, never walked into.
        yield from (here / d for d in dirnames if (here / d).is_symlink())
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        # Hidden folders (.git, .venv, .nox, .dfvc), caches and environments.
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not (here / d / OUTPUT_MARKER).exists()
        ]
        for name in filenames:
            yield here / name


def take_snapshot(root: Path, files: Sequence[Path], folder: Path, key: str) -> Path:
    """The project's files copied under ``folder/<key>`` (complete or not at all), reused
    when a snapshot of the same content exists; older snapshots are removed."""
    target = folder / key[:16]
    if (target / _COMPLETE).exists():
        return target
    staging = target.with_name(target.name + ".taking")
    shutil.rmtree(staging, ignore_errors=True)
    root = root.resolve()
    for path in files:
        copy = staging / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            os.symlink(link_text(path, root), copy)
        else:
            shutil.copy2(path, copy)
    staging.mkdir(parents=True, exist_ok=True)
    (staging / _COMPLETE).write_text(key, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _prune(folder, keep=target)
    return target


def _prune(folder: Path, keep: Path) -> None:
    others = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    for old in others[KEEP_SNAPSHOTS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def make_view(snapshot: Path, view: Path) -> Path:
    """A fresh copy of ``snapshot`` at ``view``: whatever an earlier run of the cell wrote
    there is gone."""
    shutil.rmtree(view, ignore_errors=True)
    view.parent.mkdir(parents=True, exist_ok=True)
    copied = False
    if shutil.which("cp"):
        # GNU cp shares the blocks on filesystems that can (btrfs, XFS); a plain copy else.
        done = subprocess.run(
            ["cp", "-a", "--reflink=auto", str(snapshot), str(view)],
            capture_output=True,
            check=False,
        )
        copied = done.returncode == 0
    if not copied:
        shutil.rmtree(view, ignore_errors=True)
        shutil.copytree(snapshot, view, symlinks=True)
    (view / _COMPLETE).unlink(missing_ok=True)
    return view
