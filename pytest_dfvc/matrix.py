"""Matrix files: parse and validate ``matrices/*.toml`` into plain dataclasses.

Every error names the file, the key and the offending value, so a user can fix a matrix
without reading a traceback.
"""

from __future__ import annotations

import datetime
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SELECTS = ("all", "latest-patch", "latest-minor")
RESOLUTIONS = ("highest", "lowest-direct", "locked")

# PEP 508 names: letters, digits, ".", "-", "_", starting and ending alphanumeric.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_PYTHON_VERSION = re.compile(r"^3\.\d+$")
# The in-cell recorder's syntax and pytest's needs: no cell runs on an older Python.
MIN_CELL_PYTHON = (3, 7)


class MatrixError(Exception):
    """A matrix file is wrong; the message names the file, key and value."""

    def __init__(self, path: Path | str, key: str, value: object, problem: str) -> None:
        self.path = Path(path)
        self.key = key
        self.value = value
        self.problem = problem
        where = f"{self.path}: {key}" if key else str(self.path)
        shown = "" if value is _NOTHING else f" = {value!r}"
        super().__init__(f"{where}{shown}: {problem}")


_NOTHING = object()


@dataclass(frozen=True)
class PackageAxis:
    """One framework whose versions the matrix varies."""

    name: str
    versions: SpecifierSet | tuple[str, ...]
    select: str = "all"
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
class CudaVariant:
    """How one CUDA variant installs: its own index or wheel folders, uv's torch backend,
    and package substitutions (``tensorflow = "tensorflow-cpu"``, ``jax = "jax[cuda12]"``)."""

    index_url: str = ""
    find_links: tuple[str, ...] = ()
    # None: automatic (uv's --torch-backend for the PyTorch family when no index is given).
    torch_backend: str | None = None
    packages: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class InstallOptions:
    """How each cell's environment is built."""

    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    index_url: str = ""
    no_index: bool = False
    resolution: str = "highest"
    exclude_newer: str = ""
    cuda: tuple[tuple[str, CudaVariant], ...] = ()
    # Environment variables every cell gets (MPLBACKEND = "Agg"); part of the cache key.
    env: tuple[tuple[str, str], ...] = ()
    # exclude-newer = "release[+Nd]": each cell resolves as of its newest pinned release's
    # upload, plus N days (era.py); None otherwise.
    era_days: int | None = None
    # False: the project is not installed; its tests import it from its tree.
    project: bool = True
    # What the project's build imports without declaring it (a legacy setup.py's numpy).
    build_requirements: tuple[str, ...] = ()

    def variant(self, cuda: str | None) -> CudaVariant:
        return dict(self.cuda).get(cuda or "", CudaVariant())


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
_INSTALL_KEYS = (
    "extras",
    "groups",
    "requirements",
    "constraints",
    "find-links",
    "index-url",
    "no-index",
    "resolution",
    "exclude-newer",
    "cuda",
    "env",
    "project",
    "build-requirements",
)


def find_matrix_files(target: Path) -> list[Path]:
    """The matrix files at ``target``: the file itself, or every ``*.toml`` in a folder."""
    if target.is_dir():
        files = sorted(target.glob("*.toml"))
        if not files:
            raise MatrixError(target, "", _NOTHING, "folder holds no matrix files (*.toml)")
        return files
    if not target.exists():
        raise MatrixError(target, "", _NOTHING, "no such matrix file or folder")
    if target.suffix != ".toml":
        raise MatrixError(target, "", _NOTHING, "is not a matrix file (*.toml) or a folder of them")
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
        raise MatrixError(path, "", _NOTHING, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MatrixError(path, "", _NOTHING, "is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(path, "", _NOTHING, f"invalid TOML: {exc}") from None
    return parse_matrix(data, path)


def parse_matrix(data: dict[str, Any], path: Path) -> Matrix:
    """Validate the decoded TOML of a matrix file."""
    _reject_unknown(data, _TOP_KEYS, "", path)
    name = _string(data.get("name", path.stem), "name", path)
    if not _NAME.match(name):
        raise MatrixError(path, "name", name, "use letters, digits, '.', '-' and '_' only")
    if "python" not in data:
        raise MatrixError(path, "python", _NOTHING, "missing: list Python versions or a specifier")
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
        cuda=_no_duplicates(_string_list(data.get("cuda", []), "cuda", path), "cuda", path),
        install=_parse_install(data.get("install", {}), path),
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
    _reject_unknown(table, ("runs-on", "cuda"), "gha.", path)
    cuda = table.get("cuda", {})
    if not isinstance(cuda, dict):
        raise MatrixError(path, "gha.cuda", cuda, "must be a table of variant = runner label(s)")
    return GhaOptions(
        runs_on=_labels(table.get("runs-on", "ubuntu-latest"), "gha.runs-on", path),
        cuda_runs_on={k: _labels(v, f"gha.cuda.{k}", path) for k, v in cuda.items()},
    )


def _reject_unknown(table: dict[str, Any], known: tuple[str, ...], prefix: str, path: Path) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise MatrixError(path, prefix + key, table[key], "unknown key" + hint)


def _string(value: object, key: str, path: Path) -> str:
    if not isinstance(value, str):
        raise MatrixError(path, key, value, "must be a string")
    return value


def _bool(value: object, key: str, path: Path) -> bool:
    if not isinstance(value, bool):
        raise MatrixError(path, key, value, "must be true or false")
    return value


def _string_list(value: object, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(path, key, value, "must be a list of strings")
    return tuple(value)


def _no_duplicates(
    values: tuple[str, ...], key: str, path: Path, same: Any = lambda v: v
) -> tuple[str, ...]:
    """A value listed twice would make two cells with one id, and one would be lost."""
    seen: dict[Any, str] = {}
    for value in values:
        if same(value) in seen:
            raise MatrixError(path, key, value, f"listed twice (as {seen[same(value)]!r} too)")
        seen[same(value)] = value
    return values


def _specifier(value: str, key: str, path: Path) -> SpecifierSet:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        raise MatrixError(path, key, value, "not a valid version specifier") from None


def _version(value: str, key: str, path: Path) -> str:
    try:
        Version(value)
    except InvalidVersion:
        raise MatrixError(path, key, value, "not a valid version") from None
    return value


def _parse_python(value: object, path: Path) -> SpecifierSet | tuple[str, ...]:
    if isinstance(value, str):
        spec = _specifier(value, "python", path)
        if not str(spec):
            raise MatrixError(path, "python", value, "empty specifier: list versions instead")
        return spec
    versions = _string_list(value, "python", path)
    if not versions:
        raise MatrixError(path, "python", value, "list at least one Python version")
    for v in versions:
        if not _PYTHON_VERSION.match(v):
            raise MatrixError(path, "python", v, "write Python versions as 3.X, e.g. '3.12'")
        if tuple(int(p) for p in v.split(".")) < MIN_CELL_PYTHON:
            raise MatrixError(
                path, "python", v, "the in-cell recorder needs Python 3.7 or newer: leave it out"
            )
    _no_duplicates(versions, "python", path)
    return versions


def _parse_package(name: object, table: object, path: Path) -> PackageAxis:
    key = f"packages.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise MatrixError(path, key, name, "not a valid package name (PEP 508)")
    if not isinstance(table, dict):
        raise MatrixError(path, key, table, "must be a table with at least 'versions'")
    _reject_unknown(table, _PACKAGE_KEYS, key + ".", path)
    if "versions" not in table:
        raise MatrixError(path, key + ".versions", _NOTHING, "missing: a specifier or a list")
    raw = table["versions"]
    versions: SpecifierSet | tuple[str, ...]
    if isinstance(raw, str):
        versions = _specifier(raw, key + ".versions", path)
        if not str(versions):
            raise MatrixError(
                path, key + ".versions", raw, "empty specifier: write '>=0' for every release"
            )
    else:
        listed = _string_list(raw, key + ".versions", path)
        if not listed:
            raise MatrixError(path, key + ".versions", raw, "list at least one version")
        versions = tuple(_version(v, key + ".versions", path) for v in listed)
        _no_duplicates(versions, key + ".versions", path, same=Version)
    select = _string(table.get("select", "all"), key + ".select", path)
    if select not in SELECTS:
        raise MatrixError(path, key + ".select", select, f"must be one of {', '.join(SELECTS)}")
    baseline = table.get("baseline")
    if baseline is not None:
        baseline = _version(_string(baseline, key + ".baseline", path), key + ".baseline", path)
    expect = table.get("expect")
    if expect is not None:
        expect = _specifier(_string(expect, key + ".expect", path), key + ".expect", path)
    return PackageAxis(
        expect=expect,
        name=canonicalize_name(name),
        versions=versions,
        select=select,
        baseline=baseline,
        prereleases=_bool(table.get("prereleases", False), key + ".prereleases", path),
        yanked=_bool(table.get("yanked", False), key + ".yanked", path),
    )


def _parse_install(table: object, path: Path) -> InstallOptions:
    if not isinstance(table, dict):
        raise MatrixError(path, "install", table, "must be a table")
    _reject_unknown(table, _INSTALL_KEYS, "install.", path)
    requirements = _requirements(table, "requirements", path)
    constraints = _requirements(table, "constraints", path)
    extras = _string_list(table.get("extras", []), "install.extras", path)
    groups = _string_list(table.get("groups", []), "install.groups", path)
    for key, names in (("install.extras", extras), ("install.groups", groups)):
        for n in names:
            if not _NAME.match(n):
                raise MatrixError(path, key, n, "not a valid extra or group name")
    resolution = _string(table.get("resolution", "highest"), "install.resolution", path)
    if resolution not in RESOLUTIONS:
        raise MatrixError(
            path, "install.resolution", resolution, f"must be one of {', '.join(RESOLUTIONS)}"
        )
    exclude_newer, era_days = _exclude_newer(table.get("exclude-newer", ""), path)
    find_links = _links(table.get("find-links", []), "install.find-links", path)
    project = _bool(table.get("project", True), "install.project", path)
    build_requirements = _requirements(table, "build-requirements", path)
    if not project:
        # What only an installed project has cannot be asked of one that is not installed.
        for key, value in (("extras", extras), ("build-requirements", build_requirements)):
            if value:
                raise MatrixError(
                    path,
                    f"install.{key}",
                    list(value),
                    "needs the project installed, and install.project is false",
                )
    return InstallOptions(
        extras=extras,
        groups=groups,
        requirements=requirements,
        constraints=constraints,
        # Relative find-links folders are relative to the matrix file, like any path in it.
        find_links=tuple(_resolve_link(link, path) for link in find_links),
        index_url=_url(table.get("index-url", ""), "install.index-url", path),
        no_index=_bool(table.get("no-index", False), "install.no-index", path),
        resolution=resolution,
        exclude_newer=exclude_newer,
        era_days=era_days,
        cuda=_parse_variants(table.get("cuda", {}), path),
        env=_parse_env(table.get("env", {}), path),
        project=project,
        build_requirements=build_requirements,
    )


def _parse_variants(table: object, path: Path) -> tuple[tuple[str, CudaVariant], ...]:
    if not isinstance(table, dict):
        raise MatrixError(path, "install.cuda", table, "must be a table of [install.cuda.VARIANT]")
    variants = []
    for name, spec in table.items():
        key = f"install.cuda.{name}"
        if not isinstance(spec, dict):
            raise MatrixError(path, key, spec, "must be a table")
        _reject_unknown(
            spec, ("index-url", "find-links", "torch-backend", "packages"), key + ".", path
        )
        backend = spec.get("torch-backend")
        if backend is not None and not isinstance(backend, (str, bool)):
            raise MatrixError(
                path, key + ".torch-backend", backend, "must be a backend name or false"
            )
        packages = spec.get("packages", {})
        if not isinstance(packages, dict):
            raise MatrixError(
                path, key + ".packages", packages, "must be a table of NAME = requirement"
            )
        for package, replacement in packages.items():
            try:
                Requirement(_string(replacement, f"{key}.packages.{package}", path))
            except InvalidRequirement:
                raise MatrixError(
                    path, f"{key}.packages.{package}", replacement, "not a valid requirement"
                ) from None
        variants.append(
            (
                name,
                CudaVariant(
                    index_url=_url(spec.get("index-url", ""), key + ".index-url", path),
                    find_links=tuple(
                        _resolve_link(link, path)
                        for link in _links(spec.get("find-links", []), key + ".find-links", path)
                    ),
                    torch_backend=""
                    if backend is False
                    else (name if backend is True else backend),
                    packages=tuple((canonicalize_name(k), v) for k, v in packages.items()),
                ),
            )
        )
    return tuple(variants)


def _requirements(table: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    """PEP 508 requirements; anything else (a shell fragment, say) is refused here, never
    passed on to uv."""
    values = _string_list(table.get(key, []), f"install.{key}", path)
    for value in values:
        try:
            Requirement(value)
        except InvalidRequirement:
            raise MatrixError(path, f"install.{key}", value, "not a valid requirement") from None
    return values


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Ours: a matrix must not point the recorder elsewhere.
_RESERVED_ENV = ("DFVC_",)


def _parse_env(table: object, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise MatrixError(path, "install.env", table, 'must be a table: env = { NAME = "value" }')
    env = []
    for name, value in table.items():
        key = f"install.env.{name}"
        if not _ENV_NAME.match(name) or name.startswith(_RESERVED_ENV):
            raise MatrixError(path, key, value, "not an environment variable name of one's own")
        env.append((name, _string(value, key, path)))
    return tuple(sorted(env))


_ERA = re.compile(r"^release(?:\+(\d+)d)?$")


def _exclude_newer(value: object, path: Path) -> tuple[str, int | None]:
    """``exclude-newer``: a date, or ``release``/``release+30d`` (the era of each cell)."""
    key = "install.exclude-newer"
    if isinstance(value, str) and value.startswith("release"):
        found = _ERA.match(value)
        if found is None:
            raise MatrixError(
                path, key, value, "write release, or release+30d for 30 days after it"
            )
        return "", int(found.group(1) or 0)
    return _date(value, key, path), None


def _date(value: object, key: str, path: Path) -> str:
    """A date or an RFC 3339 timestamp, as uv's --exclude-newer takes it: checked here, so a
    typo is one clear error instead of every cell failing to resolve."""
    text = _string(value, key, path)
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


def _url(value: object, key: str, path: Path) -> str:
    """An index URL: http(s) or file, never something uv would read as an option."""
    text = _string(value, key, path)
    if text and not (text.startswith(_SCHEMES) and len(text) > len("file://")):
        raise MatrixError(
            path, key, text, "not an index URL: write http://, https:// or file:// and the address"
        )
    return text


def _links(value: object, key: str, path: Path) -> tuple[str, ...]:
    """find-links: URLs or folders (relative to the matrix file); nothing that looks like
    an option."""
    links = _string_list(value, key, path)
    for link in links:
        if not link or link.startswith("-") or ("://" in link and not link.startswith(_SCHEMES)):
            raise MatrixError(path, key, link, "not a folder or an http(s)/file URL")
    return links


def _resolve_link(link: str, path: Path) -> str:
    if "://" in link:
        return link
    return str((path.parent / link).resolve())


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
                python = _specifier(_string(raw, prefix + key, path), prefix + key, path)
            elif key == "cuda":
                cuda = (raw,) if isinstance(raw, str) else _string_list(raw, prefix + key, path)
            elif canonicalize_name(key) in packages:
                spec = _specifier(_string(raw, prefix + key, path), prefix + key, path)
                pins.append((canonicalize_name(key), spec))
            else:
                known = ("python", "cuda", *sorted(packages))
                _reject_unknown({key: raw}, known, prefix, path)
        if python is None and not cuda and not pins:
            raise MatrixError(path, f"exclude[{i}]", table, "an empty exclude removes every cell")
        excludes.append(Exclude(python=python, cuda=cuda, packages=tuple(pins)))
    return tuple(excludes)
