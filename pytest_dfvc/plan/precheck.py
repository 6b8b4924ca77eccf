"""Availability pre-check: can a cell's pins be installed at all, before building anything?

First the index's file lists (availability.py): most cells of a long history are decided
there, without resolving. The rest go to ``uv pip compile``, which resolves the cell's pins
and constraints for the cell's own interpreter, wheels only for the matrix packages; a cell
that cannot resolve is ``unavailable`` with uv's reason. Its answers are kept for a day,
keyed by every input of the resolution and the index's files of the pinned releases, so a
warm plan resolves nothing. A cell of a CUDA variant whose sources resolve to another
variant's build (PyPI's torch is a CUDA build; a ``cpu`` cell must not test it) is
``unavailable`` too, with the build that was found.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement

from ..files import write_text_atomic
from ..index.builds import mismatch, pinned
from ..index.install_causes import install_failure, missing_pin
from ..index.legacy import refused_pin
from ..index.pages import close_connections
from ..index.uvtool import uv_environment, uv_path
from ..model import Cause
from ..vocabulary import Status
from .availability import INSTALLABLE, IndexReader, exact_version, from_index
from .cell import Cell, MatrixPlan
from .matrix import Matrix
from .uvargs import asked_afresh, keeps_pages, pin_requirements, source_args


def compile_command(matrix: Matrix, cell: Cell, constraints: Path | None) -> list[str]:
    command = [uv_path() or "uv", "pip", "compile", "-", "--no-header", "--quiet"]
    if cell.interpreter:
        command += ["--python", cell.interpreter]
    else:
        # Planning for other machines (GitHub Actions jobs set up their own Python).
        command += ["--python-version", cell.python]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return command + source_args(matrix, cell)


def precheck_cell(matrix: Matrix, cell: Cell, runtime: Path) -> tuple[Status, Cause] | None:
    """None when the cell's pins resolve for its Python; else the cell's status
    (``unavailable``, or ``error`` when uv could not find out) and why."""
    constraints = None
    if matrix.install.constraints:
        constraints = runtime / f"constraints-{matrix.name}.txt"
        write_text_atomic(constraints, "".join(c + "\n" for c in matrix.install.constraints))
    pins = "".join(
        p + "\n" for p in (*pin_requirements(matrix, cell), *matrix.install.requirements)
    )
    command = compile_command(matrix, cell, constraints)
    try:
        result = resolve(command, pins)
        if result.returncode != 0 and keeps_pages(command):
            missing = missing_pin(result.stderr, pin_requirements(matrix, cell))
            if missing is not None:
                # The plan saw the release; uv's kept page of the project may be older (as
                # a cell's install: cellrun.py): asked for again before it is called missing.
                result = resolve(asked_afresh(command, missing), pins)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "error", Cause("install", f"the pre-check could not run uv: {exc}")
    if result.returncode != 0:
        if refused_pin(result.stderr, pin_requirements(matrix, cell)):
            return None  # installed another way (legacy.py), so it runs
        return install_failure(result.stderr, cell.python, cell.cuda)
    build = mismatch(cell.cuda, pinned(result.stdout))
    if build is None:
        return None
    what = ", ".join(f"{n} {v}" for n, v in cell.packages)
    return "unavailable", Cause(
        "install",
        f"{what} has no {cell.cuda} build where this variant installs from: "
        f"it resolves to a {build.variant} build ({build.evidence})",
    )


def resolve(
    command: list[str], pins: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``uv pip compile`` (``command``) of these requirements, from ``cwd`` (where uv finds
    its configuration)."""
    return subprocess.run(
        command,
        input=pins,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=uv_environment(),
    )


# A resolution's answer may change when a dependency of the pins releases: kept a day.
ANSWER_MAX_AGE_S = 86400.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Counts:
    """How the pre-check decided: from the index, from kept answers, by resolving."""

    index: int = 0
    kept: int = 0
    resolved: int = 0


def precheck(
    plans: Sequence[MatrixPlan],
    runtime: Path,
    jobs: int,
    *,
    reader: IndexReader | None = None,
    progress: Progress | None = None,
) -> tuple[list[MatrixPlan], Counts]:
    """The plans with every cell that cannot be installed marked ``unavailable`` (or
    ``error``, when uv could not find out: an unreachable index), and how each was decided.
    ``progress(done, total)`` is called as cells are decided."""
    runtime.mkdir(parents=True, exist_ok=True)
    work = [(p.matrix, c) for p in plans for c in p.cells if c.status is None]
    ticker = _Ticker(len(work), progress)
    answers = _AnswerStore(None if reader is None or reader.cache_dir is None else reader)
    found: dict[tuple[str, str], tuple[Status, Cause]] = {}
    counts = {"index": 0, "kept": 0, "resolved": 0}

    # Many threads wait on the index at once; uv itself runs ``jobs`` at a time.
    resolving = threading.Semaphore(max(1, jobs))

    def decide(item: tuple[Matrix, Cell]) -> None:
        matrix, cell = item
        answer, how = _decide(matrix, cell, runtime, reader, answers, resolving)
        if answer is not None:
            found[(matrix.name, cell.id)] = answer
        ticker.tick(lambda: counts.__setitem__(how, counts[how] + 1))

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(decide, work))
    finally:
        close_connections()  # the pool's threads have ended
    return _marked(plans, found), Counts(**counts)


def screen(plans: Sequence[MatrixPlan], reader: IndexReader) -> list[MatrixPlan]:
    """The plans with the cells the index shows cannot be installed marked ``unavailable``;
    nothing is resolved, no wheel's metadata fetched (a run learns the rest from each cell's
    own install)."""
    work = [(p.matrix, c) for p in plans for c in p.cells if c.status is None]
    found = {}
    for matrix, cell in work:
        answer = from_index(matrix, cell, reader, positives=False)
        if isinstance(answer, tuple):
            found[(matrix.name, cell.id)] = answer
    return _marked(plans, found)


def _decide(
    matrix: Matrix,
    cell: Cell,
    runtime: Path,
    reader: IndexReader | None,
    answers: _AnswerStore,
    resolving: threading.Semaphore,
) -> tuple[tuple[Status, Cause] | None, str]:
    if reader is not None:
        answer = from_index(matrix, cell, reader)
        if answer == INSTALLABLE:
            return None, "index"
        if isinstance(answer, tuple):
            return answer, "index"
    key = answers.key(matrix, cell)
    kept = answers.get(key)
    if kept is not None:
        return kept[0], "kept"
    with resolving:
        found = precheck_cell(matrix, cell, runtime)
    if found is None or found[0] != "error":
        answers.put(key, found)  # an error (unreachable index) is asked again next time
    return found, "resolved"


def _marked(
    plans: Sequence[MatrixPlan], found: dict[tuple[str, str], tuple[Status, Cause]]
) -> list[MatrixPlan]:
    return [
        replace(
            plan,
            cells=tuple(
                replace(
                    c,
                    status=found[(plan.matrix.name, c.id)][0],
                    cause=found[(plan.matrix.name, c.id)][1],
                )
                if (plan.matrix.name, c.id) in found
                else c
                for c in plan.cells
            ),
        )
        for plan in plans
    ]


class _Ticker:
    """Calls ``progress`` at most every half second, and once at the end."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress = total, progress
        self.done = 0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self, also: Callable[[], None]) -> None:
        """One more cell done; ``also`` runs under the same lock (the counts)."""
        with self.lock:
            also()
            self.done += 1
            now = time.monotonic()
            if self.progress is not None and (now - self.last >= 0.5 or self.done == self.total):
                self.last = now
                self.progress(self.done, self.total)


class _AnswerStore:
    """uv's answers, one small file each, keyed by everything the resolution reads: the
    command and its input, the constraints, uv itself, and the index's files of the pinned
    releases (a wheel added to a release changes the key)."""

    def __init__(self, reader: IndexReader | None) -> None:
        self.reader = reader
        self.folder = (
            None
            if reader is None or reader.cache_dir is None
            else (reader.cache_dir.parent / "resolutions")
        )

    def key(self, matrix: Matrix, cell: Cell) -> str | None:
        if self.reader is None or self.folder is None:
            return None
        sources = self.reader.sources(matrix)
        releases = []
        for pin in pin_requirements(matrix, cell):
            requirement = Requirement(pin)
            version = exact_version(requirement.specifier)
            files = (
                None if version is None else self.reader.release(sources, requirement.name, version)
            )
            if files is None:
                return None
            releases.append(
                sorted((f.filename, f.yanked, f.uploaded, f.requires_python) for f in files)
            )
        uv = uv_path() or "uv"
        inputs = {
            "command": compile_command(matrix, cell, None)[1:],
            "interpreter": [cell.interpreter, cell.interpreter_version],
            "pins": [*pin_requirements(matrix, cell), *matrix.install.requirements],
            "constraints": list(matrix.install.constraints),
            "uv": [uv, _stamp(uv)],
            "sources": [list(sources.indexes), list(sources.find_links)],
            # uv's own settings from the environment (UV_EXCLUDE_NEWER, UV_INDEX_STRATEGY…).
            "environment": sorted((k, v) for k, v in os.environ.items() if k.startswith("UV_")),
            "releases": releases,
        }
        return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()[:32]

    def get(self, key: str | None) -> tuple[tuple[Status, Cause] | None] | None:
        """``(answer,)`` when kept and fresh, else None."""
        if key is None or self.folder is None:
            return None
        path = self.folder / f"{key}.json"
        try:
            if time.time() - path.stat().st_mtime >= ANSWER_MAX_AGE_S:
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
            if data is None:
                return (None,)
            status, category, reason = data
            if status not in ("unavailable", "error"):
                return None  # not an answer this version writes
            return ((status, Cause(str(category), str(reason))),)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, key: str | None, answer: tuple[Status, Cause] | None) -> None:
        if key is None or self.folder is None:
            return
        data = None if answer is None else [answer[0], answer[1].category, answer[1].reason]
        with contextlib.suppress(OSError):
            write_text_atomic(self.folder / f"{key}.json", json.dumps(data))


def _stamp(path: str) -> list[float]:
    try:
        found = os.stat(shutil.which(path) or path)
    except OSError:
        return []
    return [found.st_size, found.st_mtime]


def every(seconds: float, say: Callable[[int, int], object]) -> Callable[[int, int], None]:
    """``say(done, total)`` at most once per ``seconds``, first after ``seconds``, never for
    the last cell (a summary line follows)."""
    last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        if done < total and time.monotonic() - last >= seconds:
            last = time.monotonic()
            say(done, total)

    return progress
