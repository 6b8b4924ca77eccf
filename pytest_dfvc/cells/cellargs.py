"""The pytest arguments a cell gets: the user's, minus pytest-dfvc's own options, wherever
they were given (command line, ``addopts``, ``PYTEST_ADDOPTS``). A cell runs a plain pytest
that does not know them, and would refuse to start (exit status 4)."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence

# Options whose value follows as the next argument when not written with "=".
VALUED_OPTIONS = (
    "--dfvc-json",
    "--dfvc-out",
    "--dfvc-jobs",
    "--dfvc-timeout",
    "--dfvc-strategy",
    "--dfvc-drift-rtol",
    "--dfvc-drift-atol",
    "--dfvc-cell",
    "--dfvc-merge",
    "--dfvc-max-cells",
)
OPTIONAL_VALUE = ("--dfvc-matrix", "--dfvc-init", "--dfvc-audit")


def strip_dfvc_options(args: Sequence[str]) -> list[str]:
    """``args`` without pytest-dfvc's options and their values."""
    return _without(args, _dfvc_option)


def _dfvc_option(arg: str, following: str | None) -> int:
    name = arg.split("=", 1)[0]
    if not name.startswith("--dfvc-"):
        return 0
    if "=" in arg:
        return 1
    takes_next = name in VALUED_OPTIONS or (
        name in OPTIONAL_VALUE and following is not None and not following.startswith("-")
    )
    return 2 if takes_next else 1


def _without(args: Sequence[str], consumed: Callable[[str, str | None], int]) -> list[str]:
    """``args`` minus what ``consumed(arg, next arg)`` says to drop: 0 keeps the argument,
    1 drops it, 2 drops it and the value after it."""
    kept: list[str] = []
    i = 0
    while i < len(args):
        following = args[i + 1] if i + 1 < len(args) else None
        dropped = consumed(args[i], following)
        if not dropped:
            kept.append(args[i])
        i += max(dropped, 1)
    return kept


def addopts_override(addopts: Sequence[str]) -> list[str]:
    """``-o addopts=...`` for the cells when the project's ini ``addopts`` holds our options
    (a project that always runs its matrix, say); nothing when it does not."""
    kept = strip_dfvc_options(addopts)
    if len(kept) == len(addopts):
        return []
    return ["-o", "addopts=" + shlex.join(kept)]


def cell_environment_addopts() -> dict[str, str]:
    """``PYTEST_ADDOPTS`` for the cells: the controller's, minus our options."""
    value = os.environ.get("PYTEST_ADDOPTS")
    if value is None:
        return {}
    return {"PYTEST_ADDOPTS": shlex.join(strip_dfvc_options(shlex.split(value)))}


# Options that change how a run is shown, never what it finds: toggling them must not run
# every cell again. Flags standing alone, and options whose value may follow.
_OUTPUT_FLAGS = frozenset(
    {"--quiet", "--verbose", "-l", "--showlocals", "--no-header", "--no-summary"}
)
_OUTPUT_VALUED = ("-r", "--tb", "--color", "--code-highlight", "--durations", "--durations-min")


def result_args(args: Sequence[str]) -> list[str]:
    """``args`` without the options that only change the output (``-q``, ``-vv``, ``-ra``,
    ``--tb=short``): what the cache key holds of the user's pytest arguments. ``-p
    no:cacheprovider`` is kept: a plugin that reads ``config.cache`` fails without it."""
    return _without(args, _output_option)


def _output_option(arg: str, following: str | None) -> int:
    if arg in _OUTPUT_FLAGS or re.fullmatch(r"-(q+|v+)", arg):
        return 1
    if arg in _OUTPUT_VALUED:
        return 2  # --tb short, -r a
    if arg.split("=", 1)[0] in _OUTPUT_VALUED or re.fullmatch(r"-r\w+", arg):
        return 1  # --tb=short, -ra
    return 0
