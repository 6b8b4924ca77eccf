"""Find Python interpreters already on this machine; never download one.

uv and nox both stop at pyenv's shims, which resolve only the global version (and uv fails
outright on a dead shim), so we look in pyenv's versions folder and uv's managed folder
ourselves and hand nox an absolute path.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def python_minor(version: object) -> str:
    """``3.10`` of ``3.10.14`` (or of ``3.10``): the one rule for a Python's minor series."""
    return ".".join(str(version).split(".")[:2])


def minor_key(version: str) -> tuple[int, ...]:
    """A Python version's minor series, for sorting: ``(3, 10)``."""
    return tuple(int(p) for p in python_minor(version).split("."))


# Without ``site`` and ``platform`` (the version is sys.version's first word, as
# platform.python_version() reads it): 17 ms a probe instead of 58, on every run's start.
_PROBE = "import sys; print(sys.version.split()[0]); print(sys.executable)"


@dataclass(frozen=True)
class Interpreter:
    """A working interpreter: its ``X.Y`` minor, full version and absolute path."""

    minor: str
    version: str
    path: str


class InterpreterFinder:
    """Looks up ``X.Y`` interpreters once each and remembers the answer."""

    def __init__(self, *, pyenv_root: str | None = None, uv_dir: str | None = None) -> None:
        self._pyenv_root = pyenv_root or os.environ.get("PYENV_ROOT") or "~/.pyenv"
        self._uv_dir = (
            uv_dir or os.environ.get("UV_PYTHON_INSTALL_DIR") or "~/.local/share/uv/python"
        )
        self._found: dict[str, Interpreter | None] = {}

    def find(self, minor: str) -> Interpreter | None:
        """The first working ``minor`` interpreter: PATH, then pyenv, then uv-managed."""
        if minor not in self._found:
            self._found[minor] = self._search(minor)
        return self._found[minor]

    def available_minors(self, candidates: list[str]) -> list[str]:
        """Those of ``candidates`` with an interpreter here."""
        return [m for m in candidates if self.find(m) is not None]

    def _search(self, minor: str) -> Interpreter | None:
        for candidate in self._candidates(minor):
            found = _probe(candidate)
            if found is not None and found.minor == minor:
                return found
        return None

    def _candidates(self, minor: str) -> list[str]:
        on_path = shutil.which(f"python{minor}")
        pyenv = os.path.expanduser(self._pyenv_root)
        uv_dir = os.path.expanduser(self._uv_dir)
        # A pyenv shim costs a dozen shell scripts per call (0.3 s) only to end in the
        # versions folder, which is searched next anyway.
        shim = on_path and Path(on_path).parent == Path(pyenv, "shims")
        candidates = [on_path] if on_path and not shim else []
        candidates += sorted(
            glob.glob(f"{pyenv}/versions/{minor}.*/bin/python{minor}"), key=_newest, reverse=True
        )
        candidates += sorted(
            glob.glob(f"{uv_dir}/cpython-{minor}.*/bin/python{minor}"), key=_newest, reverse=True
        )
        return candidates


def _newest(path: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(x) for x in match.groups()) if match else (0,)


def _probe(path: str) -> Interpreter | None:
    """Run the interpreter once: a pyenv shim for an inactive version exits non-zero."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        out = subprocess.run(
            [path, "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) < 2:
        return None
    version = lines[0]
    minor = python_minor(version)
    # Hand nox the real executable, not a shim that may resolve differently later.
    return Interpreter(minor=minor, version=version, path=str(Path(lines[1]).resolve()))


class AssumedInterpreters(InterpreterFinder):
    """For plans made for other machines (the GitHub Actions plan and merge jobs): every
    Python is taken to exist there, with no path here."""

    def find(self, minor: str) -> Interpreter | None:
        return Interpreter(minor=minor, version=minor, path="")
