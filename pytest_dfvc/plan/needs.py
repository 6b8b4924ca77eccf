"""What a project's tests need beyond the project itself, wherever the project says it.

A 2019 library declares pandas in ``tests_require``; another in an extra named ``test``, a
PEP 735 dependency group, ``requirements-test.txt`` or tox.ini's ``deps``. The cells install
the project, not those: without them every cell fails on an import the project did declare.
``--dfvc-init`` writes them into ``[install] requirements``, and a module no cell has is said
to be declared there, with the place.
"""

from __future__ import annotations

import ast
import configparser
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..tomlcheck import tomllib

# Extras and dependency groups that hold what the tests need.
TEST_GROUPS = ("test", "tests", "testing", "dev")
_REQUIREMENT_FILES = re.compile(
    r"^(?:requirements[-_](?:test|tests|testing|dev)\w*|(?:test|tests|dev)[-_]requirements\w*)\.txt$"
)


@dataclass(frozen=True)
class Need:
    """One requirement of the tests, and where the project declares it (``setup.py
    tests_require``, ``pyproject.toml [dependency-groups] test``, ``tox.ini deps``)."""

    requirement: Requirement
    where: str

    @property
    def name(self) -> str:
        return str(canonicalize_name(self.requirement.name))


def what_tests_need(project: Path) -> list[Need]:
    """Every requirement the project declares for its tests, first place first; a file that
    cannot be read gives nothing (``--dfvc-init`` says so when it reads the project)."""
    found: dict[str, Need] = {}
    for need in _all(project):
        found.setdefault(need.name, need)
    return list(found.values())


def _all(project: Path) -> Iterator[Need]:
    yield from _from_pyproject(project / "pyproject.toml")
    yield from _from_setup_cfg(project / "setup.cfg")
    yield from _from_setup_py(project / "setup.py")
    listed = [
        *sorted(project.glob("*.txt")),
        *sorted(project.glob("requirements/*.txt")),
        *sorted(project.glob("test*/requirements*.txt")),
    ]
    for path in listed:
        folder = path.parent.name
        if (
            _REQUIREMENT_FILES.match(path.name)
            or (folder == "requirements" and _test_file(path.stem))
            # yellowbrick's tests/requirements.txt: a requirements file in the tests' folder.
            or (folder in ("test", "tests") and path.parent.parent == project)
        ):
            yield from _from_lines(_read(path).splitlines(), path.relative_to(project).as_posix())
    yield from _from_tox(project / "tox.ini")


def _test_file(stem: str) -> bool:
    return any(word in stem.lower() for word in TEST_GROUPS)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return ""


def _from_pyproject(path: Path) -> Iterator[Need]:
    if not path.is_file():
        return
    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError:
        return
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    extras = project.get("optional-dependencies") or {}
    groups = data.get("dependency-groups") or {}
    for name in TEST_GROUPS:
        if isinstance(extras, dict) and isinstance(extras.get(name), list):
            where = f"pyproject.toml [project.optional-dependencies] {name}"
            yield from _from_lines(map(str, extras[name]), where)
        if isinstance(groups, dict) and isinstance(groups.get(name), list):
            where = f"pyproject.toml [dependency-groups] {name}"
            yield from _from_lines(_group(groups, name, set()), where)


def _group(groups: dict[str, object], name: str, seen: set[str]) -> Iterator[str]:
    """A PEP 735 group's requirements, its ``{include-group = ...}`` entries followed."""
    seen.add(name)
    entries = groups.get(name)
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            included = entry.get("include-group")
            if isinstance(included, str) and included not in seen:
                yield from _group(groups, included, seen)


def _from_setup_cfg(path: Path) -> Iterator[Need]:
    if not path.is_file():
        return
    parser = configparser.ConfigParser()
    try:
        parser.read_string(_read(path))
    except configparser.Error:
        return
    if parser.has_option("options", "tests_require"):
        lines = parser.get("options", "tests_require").splitlines()
        yield from _from_lines(lines, "setup.cfg [options] tests_require")
    for name in TEST_GROUPS:
        if parser.has_option("options.extras_require", name):
            lines = parser.get("options.extras_require", name).splitlines()
            yield from _from_lines(lines, f"setup.cfg [options.extras_require] {name}")


def _from_setup_py(path: Path) -> Iterator[Need]:
    if not path.is_file():
        return
    try:
        with tokenize.open(path) as handle:
            tree = ast.parse(handle.read(), filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if getattr(node.func, "id", getattr(node.func, "attr", "")) != "setup":
            continue
        for keyword in node.keywords:
            try:
                value = ast.literal_eval(keyword.value)
            except ValueError:
                continue
            if keyword.arg == "tests_require" and isinstance(value, (list, tuple)):
                yield from _from_lines(map(str, value), "setup.py tests_require")
            if keyword.arg == "extras_require" and isinstance(value, dict):
                for name in TEST_GROUPS:
                    if isinstance(value.get(name), (list, tuple)):
                        where = f"setup.py extras_require {name}"
                        yield from _from_lines(map(str, value[name]), where)


def _from_tox(path: Path) -> Iterator[Need]:
    if not path.is_file():
        return
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_read(path))
    except configparser.Error:
        return
    if parser.has_option("testenv", "deps"):
        yield from _from_lines(parser.get("testenv", "deps").splitlines(), "tox.ini [testenv] deps")


def _from_lines(lines: Iterable[str], where: str) -> Iterator[Need]:
    """Requirements, one a line: comments, options (``-r``, ``-e``, ``--index-url``),
    paths and tox's ``{substitutions}`` left out."""
    for line in lines:
        text = line.split(" #", 1)[0].split("#", 1)[0].strip()
        if not text or text.startswith(("-", ".", "/")) or "{" in text:
            continue
        try:
            yield Need(Requirement(text), where)
        except InvalidRequirement:
            continue
