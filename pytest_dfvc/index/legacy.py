"""Old releases whose metadata uv refuses, tested all the same.

pandas 0.23.4 and 0.24.2 declare ``pytz (>=2011k)``: ``2011k`` is no PEP 440 version, so uv
refuses the release outright, and the cell would be ``unavailable``, though pip installed it
for years and a user asking how far back their code works needs it. Such a pinned release
is installed in three steps instead: the release alone (``--no-deps``, into a scratch folder,
to read its metadata), everything else with its dependencies normalised (a clause that is
no version is dropped, and said), then the release itself without dependencies.
"""

from __future__ import annotations

import re
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier
from packaging.utils import canonicalize_name

# Where a cell's session says how it installed such a release, for the results.
NOTE = "legacy.txt"
# uv's words for a release whose metadata it cannot parse.
BAD_METADATA = re.compile(
    r"(?P<name>[\w.-]+)==(?P<version>\S+) has invalid metadata.*?could not be parsed:\s*\n"
    r"\s*(?P<why>[^\n]+)\n\s*(?P<requirement>[^\n]+)",
    re.DOTALL,
)
# "name (>=1.0, <2)" or "name>=1.0" with extras, then an optional "; marker".
_LEGACY = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*"
    r"(?:\((?P<paren>[^)]*)\)|(?P<bare>[^;]*))?\s*(?:;(?P<marker>.*))?$"
)


def refused_pin(log: str, pins: list[str]) -> str | None:
    """The cell's pin (``pandas==0.24.2``) that uv refused for its metadata, if any."""
    found = BAD_METADATA.search(log)
    if found is None:
        return None
    name, version = canonicalize_name(found["name"]), found["version"]
    for pin in pins:
        requirement = Requirement(pin)
        if canonicalize_name(requirement.name) == name and requirement.specifier.contains(
            version, prereleases=True
        ):
            return pin
    return None


def dependencies(dist_info: Path) -> tuple[list[str], list[str]]:
    """The release's ``Requires-Dist`` as requirements uv takes, and what was changed to
    make them so."""
    text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    requirements, changed = [], []
    for line in Parser().parsestr(text).get_all("Requires-Dist") or []:
        requirement, dropped = normalised(line)
        if requirement is None:
            changed.append(f"left out {line!r}: not a requirement")
            continue
        requirements.append(requirement)
        if dropped:
            changed.append(f"{line!r} -> {requirement!r} (dropped {', '.join(dropped)})")
    return requirements, changed


def normalised(line: str) -> tuple[str | None, list[str]]:
    """``pytz (>=2011k)`` -> ``pytz`` (the clause that is no version dropped); a valid
    requirement is returned as it is."""
    try:
        return str(Requirement(line)), []
    except InvalidRequirement:
        pass
    found = _LEGACY.match(line)
    if found is None:
        return None, []
    clauses = (found["paren"] or found["bare"] or "").split(",")
    kept, dropped = [], []
    for clause in (c.strip() for c in clauses):
        if not clause:
            continue
        try:
            kept.append(str(Specifier(clause)))
        except InvalidSpecifier:
            dropped.append(clause)
    text = found["name"] + (found["extras"] or "") + ",".join(kept)
    if found["marker"]:
        text += "; " + found["marker"].strip()
    try:
        return str(Requirement(text)), dropped
    except InvalidRequirement:
        try:  # a marker uv's parser refuses too: the dependency without it
            return str(Requirement(found["name"] + ",".join(kept))), [*dropped, found["marker"]]
        except InvalidRequirement:
            return None, []
