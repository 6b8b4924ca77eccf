"""The release's version and notes, both from the tag being released.

    python tools/release.py stamp v0.2.0   # pytest_dfvc/__init__.py gets __version__ = "0.2.0"
    python tools/release.py notes v0.2.0   # CHANGELOG.md's "## 0.2.0" section, for the release

The tag is the one statement of a release's version: the release workflow stamps it into the
package before building, so a wheel can never carry another version than its tag. Both refuse
(exit 1, saying what to fix) a tag that is no version, or a version CHANGELOG.md has no
section for: a release without notes is a release nobody can read.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "pytest_dfvc" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
_VERSION_LINE = re.compile(r'^__version__ = "[^"]*"$', re.M)


class ReleaseError(Exception):
    """A tag or changelog the release cannot go on from; the message says what to fix."""


def version_of(tag: str) -> str:
    """``v1.2.0`` -> ``1.2.0``, in PEP 440's normal form; anything else is refused."""
    text = tag.removeprefix("refs/tags/").removeprefix("v")
    try:
        version = Version(text)
    except InvalidVersion:
        message = f"tag {tag!r} is no version: name release tags v<version>, e.g. v0.2.0"
        raise ReleaseError(message) from None
    if str(version) != text:
        raise ReleaseError(f"tag {tag!r}: write the version as {str(version)!r} (PEP 440's form)")
    return text


def notes(changelog: str, version: str) -> str:
    """The body of ``## <version>`` (``## [0.2.0] - 2026-12-07`` also counts), up to the next
    ``## `` heading."""
    heading = re.compile(rf"^## \[?{re.escape(version)}\]?(?:\s|$)", re.M)
    found = heading.search(changelog)
    if found is None:
        raise ReleaseError(
            f"CHANGELOG.md has no section for {version}: rename '## Unreleased' to"
            f" '## {version}' (with the date) before tagging"
        )
    line_end = changelog.find("\n", found.start())
    start = len(changelog) if line_end < 0 else line_end + 1
    following = re.compile(r"^## ", re.M).search(changelog, start)
    body = changelog[start : following.start() if following else len(changelog)].strip()
    if not body:
        raise ReleaseError(f"CHANGELOG.md's section for {version} is empty")
    return body + "\n"


def stamped(source: str, version: str) -> str:
    """The package's ``__init__.py`` with its one ``__version__`` line set to ``version``."""
    if len(_VERSION_LINE.findall(source)) != 1:
        raise ReleaseError(f'{VERSION_FILE} must have exactly one __version__ = "..." line')
    return _VERSION_LINE.sub(f'__version__ = "{version}"', source)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("stamp", "notes"):
        print("usage: python tools/release.py stamp|notes <tag>", file=sys.stderr)
        return 2
    command, tag = argv
    try:
        version = version_of(tag)
        text = notes(CHANGELOG.read_text(encoding="utf-8"), version)
        if command == "notes":
            sys.stdout.write(text)
        else:
            VERSION_FILE.write_text(
                stamped(VERSION_FILE.read_text(encoding="utf-8"), version), encoding="utf-8"
            )
            print(f"pytest-dfvc {version} (from tag {tag})")
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
