"""Why a cell could not be installed, in uv's own words: evidence that it cannot be
(``unavailable``: no wheel, requires-python, a resolver conflict, metadata uv refuses) or
that we could not find out (``error``: an unreachable index, the project's own build)."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..model import Cause
from ..vocabulary import Status
from . import legacy


def log_tail(log: str, lines: int = 3) -> str:
    kept = [line.strip() for line in log.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])[:500]


_REQUIRES_PYTHON = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) (?:depends on|requires) Python ?"
    r"(?P<spec>[<>=!~][^ ,]+)"
)


_NO_WHEEL = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) has no wheels with a matching "
    r"Python (?:ABI|version|implementation) tag(?: \(e\.g\., `(?P<tag>\w+)`\))?"
)


_ONLY_SDIST = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>[\w.+!-]+) "
    r"(?:has no usable wheels|is only available as a source)"
)


_PYTHON_VERSION = re.compile(r"current Python version \((?P<python>[\d.]+)\)")


_UNREACHABLE = re.compile(r"Failed to fetch: `?(?P<url>[^\s`]+)`?")


# Old releases whose metadata uv refuses (pandas <= 0.24: ``pytz (>=2011k)``).
_NO_VERSION = re.compile(r"there is no version of (?P<name>[\w.\[\],-]+?)==(?P<version>[^\s,]+)")


def missing_pin(log: str, pins: list[str]) -> str | None:
    """The project (canonical name) of a cell's pin uv says there is no version of."""
    pinned = set()
    for pin in pins:
        try:
            pinned.add(canonicalize_name(Requirement(pin).name))
        except InvalidRequirement:
            continue
    for found in _NO_VERSION.finditer(log):
        name = canonicalize_name(found["name"].split("[", 1)[0])
        if name in pinned:
            return name
    return None


def install_failure(
    log: str, python_minor: str | None = None, cuda: str | None = None
) -> tuple[Status, Cause]:
    """``("unavailable", cause)`` when uv's words are evidence that the cell cannot be
    installed here (no wheel, requires-python, a resolver conflict, metadata uv refuses, a
    version the index does not have); ``("error", cause)`` when we could not find out (an
    unreachable index, the project failing to build, anything uv did not explain)."""
    unreachable = _UNREACHABLE.search(log)
    if unreachable:
        # uv explains with indented "cause:" (or "Caused by:") lines; the last is the root.
        why = re.findall(r"(?:cause|Caused by): ([^\n]+)", log[unreachable.end() :])
        detail = f" ({why[-1].strip()})" if why else ""
        return "error", Cause("install", f"index unreachable: {unreachable['url']}{detail}")
    if _PROJECT_BUILD.search(log):
        return "error", Cause("install", project_build_reason(log))
    bad = legacy.BAD_METADATA.search(log)
    if bad:
        reason = (
            f"{bad['name']} {bad['version']} has metadata uv cannot read "
            f"({bad['requirement'].strip()}: {bad['why'].strip()})"
        )
        return "unavailable", Cause("install", reason)
    missing = _NO_VERSION.search(log)
    if missing and cuda:
        name, version = missing["name"], missing["version"]
        reason = f"{name} {version} has no {cuda} build where this variant installs from"
        return "unavailable", Cause("install", reason)
    # uv wraps its explanation to the terminal's width (COLUMNS=80 under pytest-xdist, or
    # in a user's narrow terminal): the sentences are read with their line breaks undone.
    flat = " ".join(line.strip() for line in log.splitlines())
    python = _PYTHON_VERSION.search(flat)
    match = _REQUIRES_PYTHON.search(flat)
    if match:
        on = f" (this cell has {python.group('python')})" if python else ""
        reason = f"{match['name']} {match['version']} requires Python{match['spec']}{on}"
        return "unavailable", Cause("python-version", reason)
    match = _NO_WHEEL.search(flat)
    if match:
        tag = match.group("tag") or ""
        target = (
            f"CPython {tag[2]}.{tag[3:]}"
            if tag.startswith("cp") and len(tag) > 3
            else "this Python"
        )
        reason = f"{match['name']} {match['version']} has no wheel for {target}"
        return "unavailable", Cause("python-version", reason)
    match = _ONLY_SDIST.search(flat)
    if match:
        target = f"CPython {python_minor}" if python_minor else "this Python"
        reason = f"{match['name']} {match['version']} has no wheel for {target} on this platform"
        return "unavailable", Cause("python-version", reason)
    if missing:
        reason = f"{missing['name']} {missing['version']} is not on the index: {_uv_error(log)}"
        return "unavailable", Cause("install", reason[:600])
    if "No solution found" in log:
        return "unavailable", Cause("install", _uv_error(log))
    return "error", Cause("install", _uv_error(log))


# Only the project under test is installed editable, from its folder: a failing editable
# hook, or build environment, is its build.
_PROJECT_BUILD = re.compile(
    r"build_editable|prepare_metadata_for_build_editable|"
    r"Failed to resolve requirements from `(?:setup\.py|pyproject\.toml|setup\.cfg)` build|"
    r"Failed to build `[^`]+ @ file://"
)


def project_build_reason(log: str) -> str:
    """The project's own build failed: the backend's last error line (or uv's words), and
    where to read the rest."""
    errors = re.findall(r"^\s*(\w*(?:Error|Exception)\b:? ?[^\n]*)$", log, re.MULTILINE)
    detail = f" ({errors[-1].strip()[:300]})" if errors else f" ({_uv_error(log)[:300]})"
    return (
        f"the project itself could not be built{detail}; its build backend's output is in "
        "the cell's log. Give the build what it imports ([install] build-requirements), or "
        "test the tree without installing it ([install] project = false)"
    )


# The box-drawing and cross marks uv draws its explanations with.
_TREE = r"^[\s\u00d7\u2570\u2500\u25b6\u2502]+"


def _uv_error(log: str) -> str:
    """uv's own words, shortened: the lines from its first error marker."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("\u00d7", "error:")) or "No solution found" in stripped:
            kept = [
                re.sub(r"^(error|cause|Caused by|hint):\s*", "", re.sub(_TREE, "", s).strip())
                for s in lines[i : i + 6]
            ]
            return " ".join(s for s in kept if s and not s.startswith("nox >"))[:600]
    return log_tail(log) or "the environment could not be built"
