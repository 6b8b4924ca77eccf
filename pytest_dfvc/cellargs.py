"""The pytest arguments a cell gets: the user's, minus pytest-dfvc's own options, wherever
they were given (command line, ``addopts``, ``PYTEST_ADDOPTS``). A cell runs a plain pytest
that does not know them, and would refuse to start (exit status 4)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

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
OPTIONAL_VALUE = ("--dfvc-matrix", "--dfvc-init")


def strip_dfvc_options(args: Sequence[str]) -> list[str]:
    """``args`` without pytest-dfvc's options and their values."""
    kept: list[str] = []
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        name = arg.split("=", 1)[0]
        if not name.startswith("--dfvc-"):
            kept.append(arg)
            continue
        if "=" in arg:
            continue
        following = args[i + 1] if i + 1 < len(args) else None
        if name in VALUED_OPTIONS or (
            name in OPTIONAL_VALUE and following is not None and not following.startswith("-")
        ):
            skip_next = True
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
# every cell again. Flags standing alone, and options whose value follows.
_OUTPUT_FLAGS = frozenset(
    {"-q", "--quiet", "-v", "--verbose", "-l", "--showlocals", "--no-header", "--no-summary"}
)
_OUTPUT_VALUED = ("-r", "--tb", "--color", "--code-highlight", "--durations", "--durations-min")


def result_args(args: Sequence[str]) -> list[str]:
    """``args`` without the options that only change the output (``-q``, ``-vv``, ``-ra``,
    ``--tb=short``, ``-p no:cacheprovider``, which every cell gets anyway): what the cache
    key holds of the user's pytest arguments."""
    kept: list[str] = []
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if arg in _OUTPUT_FLAGS or (len(arg) > 1 and set(arg[1:]) <= {"q"} and arg[0] == "-"):
            continue
        if len(arg) > 1 and arg[0] == "-" and set(arg[1:]) <= {"v"}:
            continue
        if arg == "-p" and i + 1 < len(args) and args[i + 1] == "no:cacheprovider":
            skip_next = True
            continue
        name = arg.split("=", 1)[0]
        if name in _OUTPUT_VALUED or (arg.startswith("-r") and not arg.startswith("--")):
            # -ra is one argument; --tb short and -r a take the next one.
            skip_next = "=" not in arg and arg in _OUTPUT_VALUED
            continue
        kept.append(arg)
    return kept
