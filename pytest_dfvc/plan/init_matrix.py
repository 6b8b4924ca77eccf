"""``pytest --dfvc-init``: a first matrix from what the project declares.

The project's dependencies and ``requires-python`` (``pyproject.toml``; ``setup.cfg`` or a
literal ``setup()`` call where that is all there is) say what it claims; the frameworks are
the declared dependencies its code imports most (or those named: ``--dfvc-init=numpy,pandas``).
Each gets ``matrices/<name>.toml``: the declared lower bound and every minor series since,
widened to Scientific Python's SPEC 0 window (a minor series is supported for 24 months after
its first release, Python for 36), newest patch of each; the Pythons ``requires-python``
admits that have an interpreter here. An existing file is never overwritten.
"""

from __future__ import annotations

import ast
import configparser
import datetime
import re
import tokenize
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..files import write_text_atomic
from ..index.interpreters import InterpreterFinder
from ..index.pages import IndexUnavailable, Release, instant, list_releases
from ..index.uvconfig import uv_sources
from ..tomlcheck import tomllib
from .anchor import Anchor, era_versions, is_old, project_anchor
from .cell import KNOWN_PYTHONS
from .needs import Need, what_tests_need

PACKAGE_MONTHS = 24
PYTHON_MONTHS = 36
# CPython's x.y.0 releases: SPEC 0's window for Python is counted from these.
PYTHON_RELEASED = {
    "3.7": "2018-06-27",
    "3.8": "2019-10-14",
    "3.9": "2020-10-05",
    "3.10": "2021-10-04",
    "3.11": "2022-10-24",
    "3.12": "2023-10-02",
    "3.13": "2024-10-07",
    "3.14": "2025-10-07",
    "3.15": "2026-10-01",
}
# Distributions whose import name is not their own.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "scikit-image": "skimage",
    "pillow": "PIL",
    "opencv-python": "cv2",
    "opencv-python-headless": "cv2",
    "pyyaml": "yaml",
    "beautifulsoup4": "bs4",
    "tensorflow-cpu": "tensorflow",
    "protobuf": "google",
    "python-dateutil": "dateutil",
    "msgpack-python": "msgpack",
}
_SKIP_DIRS = {".git", ".dfvc", ".nox", ".tox", "build", "dist", "node_modules", "__pycache__"}
_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.M)


class InitError(Exception):
    """Nothing can be written: the message says why and what to do."""


class UnreadableFile(InitError):
    """A project file that could not be parsed (its requirements were left out)."""


@dataclass(frozen=True)
class Declared:
    """What the project says of itself."""

    name: str
    requirements: tuple[Requirement, ...]
    requires_python: SpecifierSet | None
    # The file that says so: pyproject.toml, setup.cfg or setup.py.
    source: str = ""
    # The project's own version, where it is written literally.
    version: str = ""


@dataclass(frozen=True)
class Written:
    """One matrix file: where, what it spans, and how big it is."""

    path: Path
    package: str
    lower: str
    series: tuple[str, ...]
    pythons: tuple[str, ...]
    existed: bool = False

    @property
    def cells(self) -> int:
        return len(self.series) * len(self.pythons)


def declared(project: Path) -> Declared:
    """The project's name, requirements (extras included) and ``requires-python``."""
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        try:
            # As Python and pip read it: a byte-order mark is no part of the text.
            table = tomllib.loads(pyproject.read_text(encoding="utf-8-sig")).get("project")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UnreadableFile(_unreadable(pyproject, exc)) from None
        if isinstance(table, dict) and (
            "dependencies" in table or "optional-dependencies" in table
        ):
            lines = list(table.get("dependencies", []))
            for extra in (table.get("optional-dependencies") or {}).values():
                lines += list(extra)
            return Declared(
                str(table.get("name", project.name)),
                _requirements(lines),
                _specifier(table.get("requires-python")),
                "pyproject.toml",
                str(table.get("version") or ""),
            )
    setup_cfg = project / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(setup_cfg, encoding="utf-8-sig")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise UnreadableFile(_unreadable(setup_cfg, exc)) from None
        if parser.has_option("options", "install_requires"):
            lines = parser.get("options", "install_requires").splitlines()
            if parser.has_section("options.extras_require"):
                for _, value in parser.items("options.extras_require"):
                    lines += value.splitlines()
            return Declared(
                parser.get("metadata", "name", fallback=project.name),
                _requirements(lines),
                _specifier(parser.get("options", "python_requires", fallback=None)),
                "setup.cfg",
                parser.get("metadata", "version", fallback=""),
            )
    setup_py = project / "setup.py"
    if setup_py.is_file():
        return _from_setup_py(project, setup_py)
    raise InitError(
        f"dfvc: {project} declares no dependencies (no pyproject.toml [project] dependencies, "
        "setup.cfg [options] install_requires or setup.py install_requires): name the "
        "frameworks with --dfvc-init=numpy,pandas"
    )


def _from_setup_py(project: Path, path: Path) -> Declared:
    """The literal ``install_requires``/``python_requires`` of a ``setup()`` call. Read as
    Python reads a source file (a byte-order mark, a coding cookie)."""
    try:
        with tokenize.open(path) as handle:
            tree = ast.parse(handle.read(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise UnreadableFile(_unreadable(path, exc)) from None
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup"
        ):
            for keyword in node.keywords:
                try:
                    found[str(keyword.arg)] = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
    requires = found.get("install_requires")
    lines = [str(r) for r in requires] if isinstance(requires, (list, tuple)) else []
    extras = found.get("extras_require")
    for extra in extras.values() if isinstance(extras, dict) else ():
        lines += [str(r) for r in extra]
    python = found.get("python_requires")
    return Declared(
        str(found.get("name", project.name)),
        _requirements(lines),
        _specifier(python if isinstance(python, str) else None),
        "setup.py",
        str(found.get("version") or ""),
    )


def _unreadable(path: Path, exc: Exception) -> str:
    """What a file we could not parse cost: its requirements were not read."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"dfvc: {path}: could not be read ({type(exc).__name__}: {reason}); the requirements "
        "it declares were skipped: name the frameworks with --dfvc-init=numpy,pandas"
    )


def _requirements(lines: Iterable[str]) -> tuple[Requirement, ...]:
    found = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            found.append(Requirement(line))
        except InvalidRequirement:
            continue
    return tuple(found)


def _specifier(value: object) -> SpecifierSet | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return SpecifierSet(value)
    except InvalidSpecifier:
        return None


def imported_counts(project: Path, names: Iterable[str]) -> Counter[str]:
    """For each distribution, how many of the project's Python files import it."""
    wanted = {import_name(n): str(canonicalize_name(n)) for n in names}
    counts: Counter[str] = Counter()
    for path in _python_files(project):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for module in set(_IMPORT.findall(text)):
            if module in wanted:
                counts[wanted[module]] += 1
    return counts


def import_name(distribution: str) -> str:
    name = str(canonicalize_name(distribution))
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def _python_files(project: Path) -> Iterable[Path]:
    stack = [project]
    while stack:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        if folder != project and (folder / "pyvenv.cfg").exists():
            continue  # a virtual environment inside the project
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in _SKIP_DIRS:
                stack.append(entry)
            elif entry.suffix == ".py":
                yield entry


def choose_frameworks(
    project: Path, found: Declared, named: Sequence[str], most: int = 3
) -> list[str]:
    """The frameworks to write matrices for: those named, else the declared dependencies the
    project's code imports, most imported first (at most ``most``)."""
    if named:
        return [str(canonicalize_name(n)) for n in named]
    declared_names = list(dict.fromkeys(str(canonicalize_name(r.name)) for r in found.requirements))
    counts = imported_counts(project, declared_names)
    chosen = sorted((n for n in declared_names if counts[n]), key=lambda n: -counts[n])[:most]
    if not chosen:
        raise InitError(
            f"dfvc: none of {found.name}'s declared dependencies "
            f"({', '.join(declared_names) or 'none'}) is imported by its code: name the "
            "frameworks with --dfvc-init=numpy,pandas"
        )
    return chosen


def lower_bound(found: Declared, package: str) -> Version | None:
    """The lowest version the project's requirement on ``package`` admits, if it says."""
    bounds = []
    for requirement in found.requirements:
        if canonicalize_name(requirement.name) != canonicalize_name(package):
            continue
        for spec in requirement.specifier:
            if spec.operator in (">=", "~=", "==", ">", "==="):
                try:
                    bounds.append(Version(spec.version.rstrip(".*")))
                except ValueError:
                    continue
    return min(bounds) if bounds else None


def minor_series(releases: Iterable[Release]) -> dict[str, tuple[Version, str | None]]:
    """Each minor series (``1.26``): its lowest final release and when it first came out."""
    series: dict[str, tuple[Version, str | None]] = {}
    for release in releases:
        version = release.version
        if release.yanked or version.is_prerelease or version.is_devrelease:
            continue
        key = f"{version.release[0]}.{version.release[1] if len(version.release) > 1 else 0}"
        low, first = series.get(key, (version, release.uploaded))
        if release.uploaded and (first is None or instant(release.uploaded) < instant(first)):
            first = release.uploaded
        series[key] = (min(low, version), first)
    return dict(sorted(series.items(), key=lambda kv: kv[1][0]))


def window_floor(
    series: dict[str, tuple[Version, str | None]], today: datetime.datetime, months: int
) -> Version | None:
    """SPEC 0: the oldest minor series first released within ``months`` of today (the
    newest series if none is); None when the index gives no upload times."""
    if not series or any(first is None for _, first in series.values()):
        return None
    since = today - datetime.timedelta(days=round(months * 30.44))
    recent = [low for low, first in series.values() if first and instant(first) >= since]
    return min(recent) if recent else max(low for low, _ in series.values())


def pythons_for(
    requires_python: SpecifierSet | None,
    finder: InterpreterFinder,
    today: datetime.datetime,
    *,
    era: bool = False,
) -> list[str]:
    """The minors ``requires-python`` admits (without it, SPEC 0's 36 months) that have an
    interpreter here. ``era``: ``today`` is an old project's anchor: only the minors out by
    then, within SPEC 0's window of then (and ``requires-python``, if it says)."""
    since = today - datetime.timedelta(days=round(PYTHON_MONTHS * 30.44))

    def of_then(minor: str) -> bool:
        released = PYTHON_RELEASED.get(minor)
        return released is not None and since <= instant(released) <= today

    if requires_python is not None:
        wanted = [m for m in KNOWN_PYTHONS if requires_python.contains(f"{m}.99", prereleases=True)]
        if era:
            wanted = [m for m in wanted if of_then(m)] or wanted
    elif era:
        wanted = [m for m in KNOWN_PYTHONS if of_then(m)]
    else:
        wanted = [
            m
            for m in KNOWN_PYTHONS
            if m in PYTHON_RELEASED and instant(PYTHON_RELEASED[m]) >= since
        ]
    return finder.available_minors(wanted)


def matrix_text(
    written: Written,
    found: Declared,
    window: Version | None,
    declared_low: Version | None,
    needs: Sequence[Need] = (),
) -> str:
    why = []
    if declared_low is not None:
        why.append(f"{found.name} declares {written.package}>={declared_low}")
    if window is not None:
        why.append(
            f"SPEC 0 supports {written.package} {window} and newer (minor series of the last "
            f"{PACKAGE_MONTHS} months)"
        )
    pythons = ", ".join(f'"{m}"' for m in written.pythons)
    return (
        f"# Written by pytest --dfvc-init: {'; '.join(why) or 'the newest minor series'}.\n"
        "# Every minor series from the lower of those on, newest patch of each; the Pythons\n"
        "# requires-python admits that have an interpreter here. Edit freely: see\n"
        "# docs/reference/matrix-file.md. `pytest --dfvc-matrix --dfvc-list` shows the cells.\n"
        f"python = [{pythons}]\n\n"
        f"[packages.{written.package}]\n"
        f'versions = ">={written.lower}"\n'
        'select = "latest-patch"\n' + _install_text(written.package, needs)
    )


def _install_text(package: str, needs: Sequence[Need]) -> str:
    """``[install] requirements``: what the project declares for its tests, each with where
    (the cells install the project, not its test requirements); the matrix's own package and
    pytest itself (every cell has one) left out."""
    wanted = [n for n in needs if n.name not in (str(canonicalize_name(package)), "pytest")]
    if not wanted:
        return ""
    lines = "".join(f'    "{n.requirement}",  # {n.where}\n' for n in wanted)
    return (
        "\n# What the project declares for its tests: the cells install it beside the project.\n"
        f"[install]\nrequirements = [\n{lines}]\n"
    )


def init_matrices(
    project: Path,
    named: Sequence[str],
    finder: InterpreterFinder,
    *,
    today: datetime.datetime | None = None,
    cache_dir: Path | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> list[Written]:
    """Write ``matrices/<framework>.toml`` for each framework; an existing file is kept.
    ``say``: a line for what could not be read (and so was left out)."""
    now = today or datetime.datetime.now(datetime.timezone.utc)
    found = declared(project) if not named else _declared_or_empty(project, say)
    sources = uv_sources(project)
    anchor = project_anchor(project, found.name, found.version, sources, cache_dir)
    old = anchor if anchor is not None and is_old(anchor, now, PACKAGE_MONTHS) else None
    when = old.moment if old is not None else now
    pythons = tuple(pythons_for(found.requires_python, finder, when, era=old is not None))
    if old is not None:
        say(
            f"dfvc: {found.name} is older than SPEC 0's {PACKAGE_MONTHS}-month window: its "
            f"matrices are of {old.day} ({old.what}), each cell resolved as of its release, "
            "with today's newest release as one cell more"
        )
        # The newest Python here, for today's newest release (older ones mostly lack it).
        newest_here = finder.available_minors(list(KNOWN_PYTHONS))[-1:]
        pythons = tuple(dict.fromkeys((*pythons, *newest_here)))
    if not pythons:
        wanted = str(found.requires_python) if found.requires_python else "SPEC 0's Pythons"
        raise InitError(
            f"dfvc: no interpreter here for {wanted}: install one (pyenv, uv python install)"
        )
    written = []
    needs = what_tests_need(project)
    for package in choose_frameworks(project, found, named):
        path = project / "matrices" / f"{package}.toml"
        try:
            releases = list_releases(
                package, indexes=sources.indexes, find_links=sources.find_links, cache_dir=cache_dir
            )
        except IndexUnavailable as exc:
            raise InitError(f"dfvc: cannot list {package}'s releases: {exc}") from None
        series = minor_series(releases)
        if not series:
            raise InitError(f"dfvc: {package} has no final release where the cells install from")
        declared_low = lower_bound(found, package)
        if old is not None:
            entry, text = _era_matrix(path, package, releases, old, found, pythons, needs)
            if not entry.existed:
                write_text_atomic(path, text)
            written.append(entry)
            continue
        window = window_floor(series, now, PACKAGE_MONTHS)
        candidates = [v for v in (declared_low, window) if v is not None]
        lower = min(candidates) if candidates else max(low for low, _ in series.values())
        spanned = tuple(k for k in series if _key(k) >= lower.release[:2])
        entry = Written(path, package, str(lower), spanned, pythons, existed=path.exists())
        if not entry.existed:
            text = matrix_text(entry, found, window, declared_low, needs)
            write_text_atomic(path, text)
        written.append(entry)
    return written


def _era_matrix(
    path: Path,
    package: str,
    releases: list[Release],
    anchor: Anchor,
    found: Declared,
    pythons: tuple[str, ...],
    needs: Sequence[Need],
) -> tuple[Written, str]:
    """An old project's matrix: the series SPEC 0 supported at its anchor (at or above what
    the project declares), and today's newest release."""
    versions, today = era_versions(releases, anchor, PACKAGE_MONTHS)
    declared_low = lower_bound(found, package)
    if declared_low is not None:
        versions = [v for v in versions if v >= declared_low] or versions
    listed = [*versions, *([today] if today else [])]
    series = tuple(f"{v.release[0]}.{(*v.release, 0)[1]}" for v in listed)
    lower = str(listed[0]) if listed else "?"
    entry = Written(path, package, lower, series, pythons, existed=path.exists())
    shown = ", ".join(f'"{v}"' for v in listed)
    newest = f";\n# {today} is today's newest release, one cell more" if today else ""
    text = (
        f"# Written by pytest --dfvc-init for a project of {anchor.day}\n"
        f"# ({anchor.what}): the newest patch of each {package} series SPEC 0\n"
        f"# supported then (first released in the {PACKAGE_MONTHS} months before){newest}.\n"
        "# The Pythons of then that exist here, and the newest one here for today's\n"
        "# release; each cell resolves as of its own release. Edit freely: see\n"
        "# docs/reference/matrix-file.md.\n"
        f"python = [{', '.join(f'{chr(34)}{m}{chr(34)}' for m in pythons)}]\n\n"
        f"[packages.{package}]\n"
        f"versions = [{shown}]\n\n"
        '[install]\nexclude-newer = "release"\n'
    )
    install = _install_text(package, needs)
    if install:
        # One [install] table: the requirements join the one above.
        text += install.split("[install]\n", 1)[1]
    return entry, text


def _key(series: str) -> tuple[int, ...]:
    return tuple(int(p) for p in series.split("."))


def _declared_or_empty(project: Path, say: Callable[[str], None]) -> Declared:
    try:
        return declared(project)
    except UnreadableFile as exc:
        say(str(exc).replace(": name the frameworks with --dfvc-init=numpy,pandas", ""))
    except InitError:
        pass
    return Declared(project.name, (), None)


def report_lines(written: Sequence[Written], jobs: int) -> list[str]:
    lines = []
    for entry in written:
        if entry.existed:
            lines.append(f"dfvc: {entry.path} exists: left as it is")
            continue
        low, high = entry.series[0], entry.series[-1]
        span = f"{low} … {high}" if len(entry.series) > 1 else low
        # A cell is an environment install plus the tests: 10 to 30 s is what the bundled
        # example and the fake-framework suite take; the project's own tests decide.
        least = entry.cells * 10 / max(jobs, 1) / 60
        most = entry.cells * 30 / max(jobs, 1) / 60
        lines.append(
            f"dfvc: wrote {entry.path}: {entry.package} >={entry.lower} (the newest patch of "
            f"{len(entry.series)} minor series, {span}) × Python {', '.join(entry.pythons)}: "
            f"up to {entry.cells} cells; at 10–30 s a cell, {jobs} at a time, about "
            f"{least:.0f}–{most:.0f} min"
        )
    lines.append(
        "dfvc: `pytest --dfvc-matrix --dfvc-list` shows which cells install; "
        "`pytest --dfvc-matrix` runs them"
    )
    return lines
