"""Suggested requirement specifiers from the results, compared with what the project
declares in pyproject.toml. Nothing here edits the user's files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .model import MatrixJSON, RangeJSON
from .tomlcheck import tomllib


def suggestions(matrix: MatrixJSON, declared: Declared) -> list[str]:
    """Lines such as ``numpy>=1.19,<1.24`` and what they say against pyproject.toml."""
    lines = []
    for axis, entry in matrix["ranges"].items():
        if axis == "cuda":
            continue
        spec = entry["specifier"]
        inferred = " (rests on inferred versions)" if entry.get("inferred") else ""
        if axis == "python":
            lines.append(
                f'requires-python = "{spec}"{inferred}'
                if spec
                else "requires-python: no Python passed"
            )
        else:
            lines.append(f"{axis}{spec}{inferred}" if spec else f"{axis}: no version passed")
        lines += [f"    {note}" for note in compare(axis, entry, declared.specifiers.get(axis))]
    return lines


def compare(axis: str, entry: RangeJSON, declared: str | None) -> list[str]:
    """What the declared specifier says against what was observed."""
    name = "requires-python" if axis == "python" else axis
    if declared is None:
        return [f"{name} is not declared in pyproject.toml"] if axis != "python" else []
    try:
        spec = SpecifierSet(declared)
    except InvalidSpecifier:
        return [f"declares {name}{declared}, which is not a valid specifier"]
    notes = []
    failing = [v for v in entry["incompatible"] if spec.contains(v, prereleases=True)]
    if failing:
        notes.append(f"declares {name}{declared or ' (any)'} but fails on {', '.join(failing)}")
    tested = entry["compatible"] + entry["incompatible"]
    if tested:
        low = min(tested, key=Version)
        below = [s for s in spec if s.operator in (">=", ">", "~=", "==")]
        for s in below:
            bound = s.version.rstrip(".*")
            if Version(bound) < Version(low):
                notes.append(f"declares {name}{declared} but nothing below {low} was tested")
    if not any(s.operator in ("<", "<=", "==", "~=") for s in spec) and entry["incompatible"]:
        high = max(entry["incompatible"], key=Version)
        passing = entry["compatible"]
        if passing and Version(high) > Version(max(passing, key=Version)):
            boundary = entry.get("upgrade_boundary") or high
            notes.append(f"declares {name} with no upper bound but fails from {boundary} on")
    passes_outside = [v for v in entry["compatible"] if not spec.contains(v, prereleases=True)]
    if passes_outside:
        notes.append(f"declares {name}{declared} but also passes on {', '.join(passes_outside)}")
    return notes or [f"declares {name}{declared}: consistent with what was tested"]


@dataclass(frozen=True)
class Declared:
    """What pyproject.toml declares: ``{"python": requires-python, NAME: specifier}``, and
    the Python versions its trove classifiers name."""

    specifiers: dict[str, str] = field(default_factory=dict)
    classifiers: list[str] = field(default_factory=list)


def declared_in_pyproject(root: Path) -> Declared:
    """What the project at ``root`` declares (nothing when it has no pyproject.toml)."""
    path = root / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return Declared()
    declared: dict[str, str] = {}
    if isinstance(project.get("requires-python"), str):
        declared["python"] = project["requires-python"]
    for dependency in project.get("dependencies", []) or []:
        try:
            requirement = Requirement(dependency)
        except InvalidRequirement:
            continue
        declared[str(canonicalize_name(requirement.name))] = str(requirement.specifier)
    classifiers = [
        m.group(1)
        for c in project.get("classifiers", []) or []
        if (m := re.match(r"Programming Language :: Python :: (3\.\d+)$", str(c)))
    ]
    return Declared(declared, classifiers)


def classifier_notes(matrix: MatrixJSON, classifiers: list[str]) -> list[str]:
    python = matrix["ranges"].get("python")
    if not python or not classifiers:
        return []
    notes = []
    failing = [v for v in classifiers if v in python["incompatible"]]
    if failing:
        notes.append(f"classifiers name Python {', '.join(failing)}, which failed")
    missing = [v for v in python["compatible"] if v not in classifiers]
    if missing:
        notes.append(f"Python {', '.join(missing)} passed but has no classifier")
    return notes
