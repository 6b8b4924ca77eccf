"""Checked values of TOML tables: each check returns the value or raises a ``MatrixError``
naming the file, key and value; and the one ``tomllib`` for every Python we run on."""

from __future__ import annotations

import datetime
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ["NAME", "NOTHING", "MatrixError", "Table", "tomllib"]

# A decoded TOML table: any TOML value under each key, checked where it is read.
Table = dict[str, Any]

# PEP 508 names: letters, digits, ".", "-", "_", starting and ending alphanumeric.
NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


class MatrixError(Exception):
    """A matrix file is wrong; the message names the file, key and value."""

    def __init__(self, path: Path | str, key: str, value: object, problem: str) -> None:
        self.path = Path(path)
        self.key = key
        self.value = value
        self.problem = problem
        where = f"{self.path}: {key}" if key else str(self.path)
        shown = "" if value is NOTHING else f" = {value!r}"
        super().__init__(f"{where}{shown}: {problem}")


NOTHING = object()


def reject_unknown(table: Table, known: tuple[str, ...], prefix: str, path: Path) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise MatrixError(path, prefix + key, table[key], "unknown key" + hint)


def string(value: object, key: str, path: Path) -> str:
    if not isinstance(value, str):
        raise MatrixError(path, key, value, "must be a string")
    return value


def boolean(value: object, key: str, path: Path) -> bool:
    if not isinstance(value, bool):
        raise MatrixError(path, key, value, "must be true or false")
    return value


def string_list(value: object, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(path, key, value, "must be a list of strings")
    return tuple(value)


def no_duplicates(
    values: tuple[str, ...], key: str, path: Path, same: Any = lambda v: v
) -> tuple[str, ...]:
    """A value listed twice would make two cells with one id, and one would be lost."""
    seen: dict[Any, str] = {}
    for value in values:
        if same(value) in seen:
            raise MatrixError(path, key, value, f"listed twice (as {seen[same(value)]!r} too)")
        seen[same(value)] = value
    return values


def specifier(value: str, key: str, path: Path) -> SpecifierSet:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        raise MatrixError(path, key, value, "not a valid version specifier") from None


def version(value: str, key: str, path: Path) -> str:
    try:
        Version(value)
    except InvalidVersion:
        raise MatrixError(path, key, value, "not a valid version") from None
    return value


def date(value: object, key: str, path: Path) -> str:
    """A date or an RFC 3339 timestamp, as uv's --exclude-newer takes it: checked here, so a
    typo is one clear error instead of every cell failing to resolve."""
    text = string(value, key, path)
    if not text:
        return text
    try:
        if len(text) == 10:
            datetime.date.fromisoformat(text)
        else:
            datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MatrixError(
            path, key, text, "not a date: write YYYY-MM-DD (or an RFC 3339 timestamp)"
        ) from None
    return text


_SCHEMES = ("http://", "https://", "file://")


def url(value: object, key: str, path: Path) -> str:
    """An index URL: http(s) or file, never something uv would read as an option."""
    text = string(value, key, path)
    if text and not (text.startswith(_SCHEMES) and len(text) > len("file://")):
        raise MatrixError(
            path, key, text, "not an index URL: write http://, https:// or file:// and the address"
        )
    return text


def links(value: object, key: str, path: Path) -> tuple[str, ...]:
    """find-links: URLs or folders (relative to the matrix file); nothing that looks like
    an option."""
    links = string_list(value, key, path)
    for link in links:
        if not link or link.startswith("-") or ("://" in link and not link.startswith(_SCHEMES)):
            raise MatrixError(path, key, link, "not a folder or an http(s)/file URL")
    return links


def resolve_link(link: str, path: Path) -> str:
    if "://" in link:
        return link
    return str((path.parent / link).resolve())


def requirement_list(table: Table, key: str, path: Path) -> tuple[str, ...]:
    """PEP 508 requirements; anything else (a shell fragment, say) is refused here, never
    passed on to uv."""
    values = string_list(table.get(key, []), f"install.{key}", path)
    for value in values:
        try:
            Requirement(value)
        except InvalidRequirement:
            raise MatrixError(path, f"install.{key}", value, "not a valid requirement") from None
    return values
