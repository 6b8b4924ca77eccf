"""Which uv pytest-dfvc calls, and the environment every call gets."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


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
