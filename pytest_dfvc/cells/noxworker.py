"""Long-lived nox processes: each runs one cell's session after another.

A nox process per cell pays Python's start-up, nox's import and the loading of the noxfile
every time, about 0.3 s, which on a matrix of small cells is a fifth of the work. A worker
pays it once per job slot. It is still nox's own command line, run in-process: the session,
its uv environment and its log are those a ``nox -s NAME`` run gives.

The protocol is one JSON line each way: the controller sends ``{"argv", "env", "cwd", "log"}``
and the worker answers ``{"rc"}`` when the session is over. While a session runs, the worker's
standard output and error are the cell's log, so nox, uv and pytest write there directly.
A worker runs in a process group of its own: a timeout or Ctrl-C stops it with everything it
started, and the next cell gets a fresh worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


def serve(requests: IO[str], replies: IO[str]) -> None:
    """The worker's loop: run each requested nox command line, answer its exit status."""
    for line in requests:
        job = json.loads(line)
        os.environ.clear()
        os.environ.update(job["env"])
        os.chdir(job["cwd"])
        sys.argv = ["nox", *job["argv"]]
        with _output_to(job["log"]):
            rc = _run()
        replies.write(json.dumps({"rc": rc}) + "\n")
        replies.flush()


def _run() -> int:
    """nox's command line in this process; what goes wrong, nox's import included, is in
    the cell's log."""
    try:
        # Imported here, once (the module cache keeps it): only the worker pays for nox.
        import nox.registry
        from nox.__main__ import main

        # Each run registers its own cell; the last cell's sessions must not linger (older
        # nox has no reset(): clearing its registry is what reset() does).
        reset = getattr(nox.registry, "reset", None)
        if reset is not None:
            reset()
        else:
            getattr(nox.registry, "_REGISTRY", {}).clear()
        main()
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[None]:
    """Standard output and error, at the descriptor level (subprocesses inherit it), into
    the log for the length of one session."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "a", encoding="utf-8") as log:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


class NoxWorker:
    """The controller's handle on one worker process."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.process: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "pytest_dfvc.cells.noxworker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            text=True,
            start_new_session=True,
        )
        self._reply: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        log: Path,
        timeout: float | None,
    ) -> int | None:
        """The session's exit status; None when the time ran out (the worker is then
        stopped by the caller) or the worker died."""
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {"argv": list(argv), "env": dict(env), "cwd": cwd, "log": str(log)}
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        # readline has no timeout: a reader thread waits, the caller's thread keeps time.
        reader = threading.Thread(target=self._read_reply, daemon=True)
        self._reply.clear()
        reader.start()
        reader.join(timeout)
        if reader.is_alive() or not self._reply:
            return None
        return int(json.loads(self._reply[0])["rc"])

    def _read_reply(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line:
            self._reply.append(line)

    def end_input(self) -> None:
        """No more sessions: end of input ends the worker's loop."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()

    def close(self) -> None:
        """Let the worker finish, and wait for it."""
        self.end_input()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_tree(self.process)
        self._release()

    def kill(self) -> int:
        """Stop the worker and everything it started; its exit status."""
        kill_tree(self.process)
        self._release()
        return self.process.wait()

    def _release(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


def kill_tree(process: subprocess.Popen[Any]) -> None:
    """Stop a process started in a session of its own, with all it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    except ProcessLookupError:
        pass


def _warm_up() -> None:
    """What the first session would pay, paid while the controller prepares it (a worker
    starts while the project's wheel builds): nox's import, and nox asking uv its version
    (``uv self version``, 0.2 s), which nox keeps for the process."""
    with contextlib.suppress(Exception):
        import nox.__main__
        import nox.virtualenv

        nox.virtualenv.find_uv()


def main() -> None:
    # Replies go through a copy of the original standard output; descriptors 1 and 2 belong
    # to each session's log while it runs, and to nothing between sessions, so that no
    # stray output can pass for a reply.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _warm_up()
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
