"""Matrix files: parse and validate ``matrices/*.toml`` into plain dataclasses.

Every error names the file, the key and the offending value, so a user can fix a matrix
without reading a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..tomlcheck import (
    NAME,
    NOTHING,
    MatrixError,
    Table,
    boolean,
    no_duplicates,
    reject_unknown,
    specifier,
    string,
    string_list,
    tomllib,
    version,
)
from ..vocabulary import SELECTS, Select
from .install_table import CudaVariant, InstallOptions, parse_install

# Defined with the [install] table; part of a matrix's vocabulary.
__all__ = ["CudaVariant", "InstallOptions", "MatrixError"]


_PYTHON_VERSION = re.compile(r"^3\.\d+$")
# The in-cell recorder's syntax and pytest's needs: no cell runs on an older Python.
MIN_CELL_PYTHON = (3, 7)


@dataclass(frozen=True)
class PackageAxis:
    """One framework whose versions the matrix varies."""

    name: str
    versions: SpecifierSet | tuple[str, ...]
    select: Select = "all"
    baseline: str | None = None
    prereleases: bool = False
    yanked: bool = False
    # The versions the project claims to support: a failure inside is a violation.
    expect: SpecifierSet | None = None

    @property
    def width(self) -> int | None:
        """How many release components name a tested version's series in ranges and
        badges: 2 with latest-patch (``1.26``), 1 with latest-minor (``1``), None: whole."""
        return {"latest-patch": 2, "latest-minor": 1}.get(self.select)


@dataclass(frozen=True)
class Exclude:
    """Cells to leave out: every key must match for a cell to be excluded."""

    python: SpecifierSet | None = None
    cuda: tuple[str, ...] = ()
    packages: tuple[tuple[str, SpecifierSet], ...] = ()


@dataclass(frozen=True)
class GhaOptions:
    """Where GitHub Actions runs the cells: a runner label (or list of labels), per CUDA
    variant if needed."""

    runs_on: str | tuple[str, ...] = "ubuntu-latest"
    cuda_runs_on: dict[str, str | tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Matrix:
    """One matrix file, validated."""

    name: str
    path: Path
    python: SpecifierSet | tuple[str, ...]
    packages: tuple[PackageAxis, ...]
    cuda: tuple[str, ...] = ()
    install: InstallOptions = field(default_factory=InstallOptions)
    exclude: tuple[Exclude, ...] = ()
    gha: GhaOptions = field(default_factory=GhaOptions)


_TOP_KEYS = ("name", "python", "cuda", "packages", "install", "exclude", "gha")
_PACKAGE_KEYS = ("versions", "select", "baseline", "prereleases", "yanked", "expect")


def find_matrix_files(target: Path) -> list[Path]:
    """The matrix files at ``target``: the file itself, or every ``*.toml`` in a folder."""
    if target.is_dir():
        files = sorted(target.glob("*.toml"))
        if not files:
            raise MatrixError(target, "", NOTHING, "folder holds no matrix files (*.toml)")
        return files
    if not target.exists():
        raise MatrixError(target, "", NOTHING, "no such matrix file or folder")
    if target.suffix != ".toml":
        raise MatrixError(target, "", NOTHING, "is not a matrix file (*.toml) or a folder of them")
    return [target]


def load_matrices(target: Path) -> list[Matrix]:
    """Every matrix at ``target`` (a file or a folder), validated; names must be unique."""
    matrices = [load_matrix(path) for path in find_matrix_files(target)]
    seen: dict[str, Path] = {}
    for matrix in matrices:
        if matrix.name in seen:
            raise MatrixError(
                matrix.path, "name", matrix.name, f"{seen[matrix.name].name} has the same name"
            )
        seen[matrix.name] = matrix.path
    return matrices


def load_matrix(path: Path) -> Matrix:
    """Read and validate one matrix file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(path, "", NOTHING, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MatrixError(path, "", NOTHING, "is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(path, "", NOTHING, f"invalid TOML: {exc}") from None
    return parse_matrix(data, path)


def parse_matrix(data: Table, path: Path) -> Matrix:
    """Validate the decoded TOML of a matrix file."""
    reject_unknown(data, _TOP_KEYS, "", path)
    name = string(data.get("name", path.stem), "name", path)
    if not NAME.match(name):
        raise MatrixError(path, "name", name, "use letters, digits, '.', '-' and '_' only")
    if "python" not in data:
        raise MatrixError(path, "python", NOTHING, "missing: list Python versions or a specifier")
    packages_table = data.get("packages", {})
    if not isinstance(packages_table, dict) or not packages_table:
        raise MatrixError(
            path, "packages", packages_table, "declare at least one [packages.NAME] table"
        )
    packages = tuple(_parse_package(n, t, path) for n, t in packages_table.items())
    return Matrix(
        name=name,
        path=path,
        python=_parse_python(data["python"], path),
        packages=packages,
        cuda=no_duplicates(string_list(data.get("cuda", []), "cuda", path), "cuda", path),
        install=parse_install(data.get("install", {}), path),
        exclude=_parse_excludes(data.get("exclude", []), {p.name for p in packages}, path),
        gha=_parse_gha(data.get("gha", {}), path),
    )


def _labels(value: object, key: str, path: Path) -> str | tuple[str, ...]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise MatrixError(path, key, value, "must be a runner label or a list of labels")


def _parse_gha(table: object, path: Path) -> GhaOptions:
    if not isinstance(table, dict):
        raise MatrixError(path, "gha", table, "must be a table")
    reject_unknown(table, ("runs-on", "cuda"), "gha.", path)
    cuda = table.get("cuda", {})
    if not isinstance(cuda, dict):
        raise MatrixError(path, "gha.cuda", cuda, "must be a table of variant = runner label(s)")
    return GhaOptions(
        runs_on=_labels(table.get("runs-on", "ubuntu-latest"), "gha.runs-on", path),
        cuda_runs_on={k: _labels(v, f"gha.cuda.{k}", path) for k, v in cuda.items()},
    )


def _parse_python(value: object, path: Path) -> SpecifierSet | tuple[str, ...]:
    if isinstance(value, str):
        spec = specifier(value, "python", path)
        if not str(spec):
            raise MatrixError(path, "python", value, "empty specifier: list versions instead")
        return spec
    versions = string_list(value, "python", path)
    if not versions:
        raise MatrixError(path, "python", value, "list at least one Python version")
    for v in versions:
        if not _PYTHON_VERSION.match(v):
            raise MatrixError(path, "python", v, "write Python versions as 3.X, e.g. '3.12'")
        if tuple(int(p) for p in v.split(".")) < MIN_CELL_PYTHON:
            raise MatrixError(
                path, "python", v, "the in-cell recorder needs Python 3.7 or newer: leave it out"
            )
    no_duplicates(versions, "python", path)
    return versions


def _parse_package(name: object, table: object, path: Path) -> PackageAxis:
    key = f"packages.{name}"
    if not isinstance(name, str) or not NAME.match(name):
        raise MatrixError(path, key, name, "not a valid package name (PEP 508)")
    if not isinstance(table, dict):
        raise MatrixError(path, key, table, "must be a table with at least 'versions'")
    reject_unknown(table, _PACKAGE_KEYS, key + ".", path)
    if "versions" not in table:
        raise MatrixError(path, key + ".versions", NOTHING, "missing: a specifier or a list")
    raw = table["versions"]
    versions: SpecifierSet | tuple[str, ...]
    if isinstance(raw, str):
        versions = specifier(raw, key + ".versions", path)
        if not str(versions):
            raise MatrixError(
                path, key + ".versions", raw, "empty specifier: write '>=0' for every release"
            )
    else:
        listed = string_list(raw, key + ".versions", path)
        if not listed:
            raise MatrixError(path, key + ".versions", raw, "list at least one version")
        versions = tuple(version(v, key + ".versions", path) for v in listed)
        no_duplicates(versions, key + ".versions", path, same=Version)
    select = string(table.get("select", "all"), key + ".select", path)
    if select not in SELECTS:
        raise MatrixError(path, key + ".select", select, f"must be one of {', '.join(SELECTS)}")
    baseline = table.get("baseline")
    if baseline is not None:
        baseline = version(string(baseline, key + ".baseline", path), key + ".baseline", path)
    expect = table.get("expect")
    if expect is not None:
        expect = specifier(string(expect, key + ".expect", path), key + ".expect", path)
    return PackageAxis(
        expect=expect,
        name=canonicalize_name(name),
        versions=versions,
        select=select,
        baseline=baseline,
        prereleases=boolean(table.get("prereleases", False), key + ".prereleases", path),
        yanked=boolean(table.get("yanked", False), key + ".yanked", path),
    )


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_excludes(value: object, packages: set[str], path: Path) -> tuple[Exclude, ...]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise MatrixError(path, "exclude", value, "must be an array of tables ([[exclude]])")
    excludes = []
    for i, table in enumerate(value):
        prefix = f"exclude[{i}]."
        python = None
        cuda: tuple[str, ...] = ()
        pins = []
        for key, raw in table.items():
            if key == "python":
                python = specifier(string(raw, prefix + key, path), prefix + key, path)
            elif key == "cuda":
                cuda = (raw,) if isinstance(raw, str) else string_list(raw, prefix + key, path)
            elif canonicalize_name(key) in packages:
                spec = specifier(string(raw, prefix + key, path), prefix + key, path)
                pins.append((canonicalize_name(key), spec))
            else:
                known = ("python", "cuda", *sorted(packages))
                reject_unknown({key: raw}, known, prefix, path)
        if python is None and not cuda and not pins:
            raise MatrixError(path, f"exclude[{i}]", table, "an empty exclude removes every cell")
        excludes.append(Exclude(python=python, cuda=cuda, packages=tuple(pins)))
    return tuple(excludes)
