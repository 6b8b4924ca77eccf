"""The processes a run starts: nox workers kept between cells, the cells' other processes,
and stopping them all at once.

Each process runs in a session of its own, out of Ctrl-C's reach, so a timeout or an
interrupted run stops a whole tree (nox, uv, pytest) instead of waiting for it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ..index.uvtool import uv_environment, uv_path
from .noxworker import NoxWorker, kill_tree


class RunningCells:
    """The processes of the cells running now, so an interrupted run stops them all instead
    of waiting for them (they run in sessions of their own, out of Ctrl-C's reach); and the
    nox workers idle between cells, so the next cell reuses one."""

    def __init__(self) -> None:
        self._processes: set[subprocess.Popen[Any]] = set()
        self._idle: list[NoxWorker] = []
        self._lock = threading.Lock()
        self.stopping = False

    def add(self, process: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._processes.add(process)
            stopping = self.stopping
        if stopping:
            kill_tree(process)

    def discard(self, process: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._processes.discard(process)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            running = list(self._processes)
            idle, self._idle = self._idle, []
        for process in running:
            kill_tree(process)
        for worker in idle:
            worker.kill()

    def run_nox(
        self, argv: list[str], env: dict[str, str], log_path: Path, deadline: float | None
    ) -> tuple[int, bool]:
        """One nox command line in an idle worker (or a new one); returns (exit status,
        timed out). A worker that ran out of time or died is not used again."""
        worker = self._take(env)
        self.add(worker.process)
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        try:
            code = worker.run(argv, env, str(Path.cwd()), log_path, timeout)
        except BaseException:
            worker.kill()
            raise
        finally:
            self.discard(worker.process)
        if code is not None:
            self._give(worker)
            return code, False
        timed_out = worker.alive()
        return worker.kill(), timed_out

    def warm(self, env: dict[str, str]) -> None:
        """Start a worker now when none is idle, so that its start-up overlaps other work."""
        with self._lock:
            if self._idle or self.stopping:
                return
        worker = NoxWorker(env)
        self._give(worker)

    def _take(self, env: dict[str, str]) -> NoxWorker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
        return NoxWorker(env)

    def _give(self, worker: NoxWorker) -> None:
        with self._lock:
            if not self.stopping:
                self._idle.append(worker)
                return
        worker.kill()

    def close(self) -> None:
        """End the idle workers (the run is over)."""
        with self._lock:
            idle, self._idle = self._idle, []
        # All told first, then waited for: they wind down together, not one after another.
        for worker in idle:
            worker.end_input()
        for worker in idle:
            worker.close()


def nox_arguments(name: str, envdir: str) -> list[str]:
    return [
        "--noxfile",
        str(Path(__file__).with_name("_noxfile.py")),
        "--envdir",
        envdir,
        "--sessions",
        name,
        "--no-color",
    ]


def run_logged(
    command: list[str],
    env: dict[str, str],
    cwd: str | None,
    log_path: Path,
    deadline: float | None,
    running: RunningCells,
    *,
    append: bool = False,
) -> tuple[int, bool]:
    """Run ``command`` with its output in the log; returns (exit status, timed out)."""
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.1)
    with log_path.open("a" if append else "w", encoding="utf-8") as log:
        # A session of its own, so a timeout can stop the whole tree (nox, uv, pytest).
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        running.add(process)
        try:
            return process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            kill_tree(process)
            return process.wait(), True
        except BaseException:
            kill_tree(process)
            raise
        finally:
            running.discard(process)


def nox_env(**extra: str) -> dict[str, str]:
    """nox's environment: uv's (no interpreter downloads), with uv found beside us."""
    env = uv_environment(**extra)
    _expose_uv(env)
    return env


def _expose_uv(env: dict[str, str]) -> None:
    """nox finds uv through ``$UV`` or PATH; point it at the uv installed beside us."""
    found = uv_path()
    if found:
        env["UV"] = found
