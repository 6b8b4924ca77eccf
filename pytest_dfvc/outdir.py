"""The output folder: made and checked before a run, locked while one runs, and a clear
error naming the path when it turns read-only or full."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# In every output folder (outdir.prepare_output): no earlier run's output, wherever it was
# put, is ever part of the project a cell sees.
OUTPUT_MARKER = ".dfvc-output"


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_UNWRITABLE = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR}
)


def is_unwritable(exc: OSError) -> bool:
    """The error of a folder that takes no more files (read-only, full, not a folder)."""
    return exc.errno in _UNWRITABLE


def prepare_output(out: Path, json_path: Path) -> None:
    """The output folders exist and take files, or one usage error names the path (exit
    status 4) before anything runs. A folder made here gets a ``.gitignore`` of ``*``, as
    pytest's own cache folder does, so ``git status`` stays clean."""
    created = not out.exists()
    if json_path.is_dir():
        raise pytest.UsageError(
            f"dfvc: cannot write the results to {json_path}: it is a folder; name a file "
            "(--dfvc-json=PATH.json)"
        )
    for folder in dict.fromkeys((out, json_path.parent)):
        probe = folder / f".dfvc-write-check-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise pytest.UsageError(unwritable(folder, exc)) from None
    with contextlib.suppress(OSError):
        (out / OUTPUT_MARKER).write_text(
            "pytest-dfvc's output: never copied into a cell's view of the project.\n"
        )
    ignore = out / ".gitignore"
    if (created or out.name == ".dfvc") and not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text("# Created by pytest-dfvc: everything here is generated.\n*\n")


def check_cell_paths(out: Path) -> None:
    """Cells run under the output folder (their views, environments and the in-cell
    recorder), and PYTHONPATH and PATH split a path on ``os.pathsep``: one usage error
    before anything is built, instead of every cell failing to load the recorder."""
    where = out.resolve()
    if os.pathsep in str(where):
        raise pytest.UsageError(
            f"dfvc: cannot run cells under {where}: its path holds {os.pathsep!r}, which "
            "PYTHONPATH and PATH split paths on; give the output a folder without it "
            "(--dfvc-out=DIR)"
        )


def unwritable(path: Path, exc: OSError) -> str:
    return (
        f"dfvc: cannot write {path}: {exc.strerror or exc}; give the results a folder that "
        "takes files (--dfvc-out, --dfvc-json)"
    )


@contextlib.contextmanager
def run_lock(out: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One matrix run at a time per output folder: two would build the same environments
    and rewrite the same results. A second run says whom it waits for, then waits."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "lock"
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            say(f"dfvc: {path} is held by {holder}: waiting for that run to finish...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
