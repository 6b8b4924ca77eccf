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

from ..model import MatrixJSON, RangeJSON
from ..plan.init_matrix import InitError, declared
from ..tomlcheck import tomllib


def suggestions(matrix: MatrixJSON, declared: Declared) -> list[str]:
    """Lines such as ``numpy>=1.19,<1.24`` and what they say against pyproject.toml."""
    lines = []
    for axis, entry in matrix["ranges"].items():
        if axis == "cuda":
            continue
        spec = entry["specifier"]
        inferred = " (rests on inferred versions)" if entry.get("inferred") else ""
        if axis == "python":
            lines += _requires_python(spec, inferred)
        else:
            lines.append(f"{axis}{spec}{inferred}" if spec else f"{axis}: no version passed")
        said = compare(axis, entry, declared.specifiers.get(axis), declared.source)
        lines += [f"    {note}" for note in said]
        if axis != "python":
            lines += [f"    {note}" for note in counterfactual_notes(matrix, axis)]
    return lines


def counterfactual_notes(matrix: MatrixJSON, axis: str) -> list[str]:
    """What counterfactual cells said about the axis's bounds: versions that pass only with
    another package set back (that package needs a bound), and versions incompatible
    through another package (the bound is that package's doing)."""
    culprits: dict[str, dict[str, str]] = {}
    through: dict[str, tuple[list[str], str]] = {}
    for cell in matrix.get("cells", ()):
        version = cell["packages"].get(axis)
        for test in cell["tests"] if version else ():
            cause = test.get("cause", {})
            if test["outcome"] == "other-package" and cause.get("culprit"):
                for name, pair in cause["culprit"]["packages"].items():
                    culprits.setdefault(name, {}).setdefault(str(version), pair["failing"])
            if cause.get("through"):
                through.setdefault(
                    str(version), (cause["through"]["packages"], cause["through"]["reason"])
                )
    notes = []
    for name, seen in culprits.items():
        versions = ", ".join(seen)
        first = next(iter(seen.values()))
        notes.append(
            f"{axis} {versions} pass only with {name} set back ({name} {first} broke the tests "
            f"there): {name} needs a bound of its own"
        )
    for version, (packages, reason) in through.items():
        names = " or ".join(packages)
        notes.append(
            f"{axis} {version}: incompatible through {names} ({reason}): the bound comes from "
            f"{names}, not from {axis} itself"
        )
    return notes


def _requires_python(spec: str | None, inferred: str) -> list[str]:
    """``requires-python`` from the Python range, without its upper bound: a cap there
    makes installers on newer Pythons fall back to old releases of the project instead of
    failing, so it is said as a note, never suggested."""
    if not spec:
        return ["requires-python: no Python passed"]
    lower = [s for s in SpecifierSet(spec) if s.operator not in ("<", "<=")]
    caps = [s for s in SpecifierSet(spec) if s.operator in ("<", "<=")]
    line = f'requires-python = "{",".join(sorted(str(s) for s in lower))}"{inferred}'
    if not caps:
        return [line]
    cap = caps[0].version
    above = cap if caps[0].operator == "<" else f"above {cap}"
    return [
        line,
        f"    Python {above} and newer: no test passed there (the results say "
        f'"{spec}"); test them before publishing. A cap in requires-python is not suggested',
    ]


def compare(
    axis: str, entry: RangeJSON, declared: str | None, source: str = "pyproject.toml"
) -> list[str]:
    """What the declared specifier says against what was observed; ``source``: the file the
    project declares its requirements in."""
    name = "requires-python" if axis == "python" else axis
    if declared is None:
        return [f"{name} is not declared in {source}"] if axis != "python" else []
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
    if axis != "python":  # said of Python with the requires-python line
        notes += _admits_untested_above(name, declared, spec, entry)
    passes_outside = [v for v in entry["compatible"] if not spec.contains(v, prereleases=True)]
    if passes_outside:
        notes.append(f"declares {name}{declared} but also passes on {', '.join(passes_outside)}")
    return notes or [f"declares {name}{declared}: consistent with what was tested"]


def _admits_untested_above(
    name: str, declared: str, spec: SpecifierSet, entry: RangeJSON
) -> list[str]:
    """A declared specifier open above, where the results stop at the newest pass because
    releases above it were never run."""
    observed = entry.get("specifier")
    if (
        not observed
        or not entry["compatible"]
        or (
            entry["incompatible"]
            and any(
                Version(v) > Version(max(entry["compatible"], key=Version))
                for v in entry["incompatible"]
            )
        )
    ):
        return []
    capped = any(s.operator in ("<", "<=", "==", "~=", "===") for s in SpecifierSet(observed))
    open_declared = not any(s.operator in ("<", "<=", "==", "~=", "===") for s in spec)
    if not (capped and open_declared):
        return []
    newest = max(entry["compatible"], key=Version)
    return [f"declares {name}{declared}, which admits versions above {newest} that were not tested"]


@dataclass(frozen=True)
class Declared:
    """What the project declares: ``{"python": requires-python, NAME: specifier}``, the
    Python versions its trove classifiers name, and the file it says so in."""

    specifiers: dict[str, str] = field(default_factory=dict)
    classifiers: list[str] = field(default_factory=list)
    source: str = "pyproject.toml"


def declared_in_pyproject(root: Path) -> Declared:
    """What the project at ``root`` declares: pyproject.toml's ``[project]``, else what
    setup.cfg or a literal ``setup()`` say (``plan.init_matrix.declared``)."""
    path = root / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8-sig")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        project = {}
    if not isinstance(project, dict) or "dependencies" not in project:
        legacy = _declared_elsewhere(root)
        if legacy is not None:
            return legacy
    if not isinstance(project, dict):
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


def _declared_elsewhere(root: Path) -> Declared | None:
    """setup.cfg's or setup.py's requirements, when the project declares them there."""
    try:
        found = declared(root)
    except InitError:
        return None
    if not found.source or found.source == "pyproject.toml":
        return None
    specifiers = {str(canonicalize_name(r.name)): str(r.specifier) for r in found.requirements}
    if found.requires_python is not None:
        specifiers["python"] = str(found.requires_python)
    return Declared(specifiers, [], found.source)


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
