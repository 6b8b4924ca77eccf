"""``pytest --dfvc-doctor``: what this machine offers and what the project's matrices will
need, one line each, every missing thing with what to do about it. Starts nothing and
builds nothing: it reads the interpreters, the tools, the index and the disk."""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .index.interpreters import InterpreterFinder, minor_key
from .index.pages import IndexUnavailable, list_releases
from .index.uvconfig import uv_sources
from .index.uvtool import uv_cache_dir, uv_path
from .plan.availability import IndexReader
from .plan.cell import KNOWN_PYTHONS
from .plan.downloads import UNPACKED, disk_plan, free_space, size_text
from .plan.expand import expand_all
from .plan.install_table import InstallOptions
from .plan.matrix import Matrix, MatrixError, load_matrices

# A release list every index has: asking for it shows the index answers.
_PROBE_PACKAGE = "pip"


@dataclass(frozen=True)
class Finding:
    """One line of the report: whether it is fine, what was found, and what to do."""

    ok: bool
    what: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else "!! "
        return f"  {mark} {self.what}" + (f" — {self.fix}" if self.fix and not self.ok else "")


def examine(
    project: Path, matrices: Sequence[Matrix], out: Path, finder: InterpreterFinder
) -> list[Finding]:
    """Every finding, in the order a newcomer needs them."""
    findings = [*_interpreters(matrices, finder), *_tools()]
    findings += _indexes(project, matrices)
    findings += _room(project, matrices, out, finder)
    return findings


def _interpreters(matrices: Sequence[Matrix], finder: InterpreterFinder) -> list[Finding]:
    wanted: dict[str, list[str]] = {}
    for matrix in matrices:
        # A specifier takes the interpreters there are; a list asks for each one.
        for minor in matrix.python if isinstance(matrix.python, tuple) else ():
            wanted.setdefault(minor, []).append(matrix.name)
    found, absent = [], []
    for minor in sorted(set(KNOWN_PYTHONS) | set(wanted), key=minor_key):
        interpreter = finder.find(minor)
        if interpreter is not None:
            found.append(
                Finding(True, f"Python {minor}: {interpreter.path} ({interpreter.version})")
            )
        elif minor in wanted:
            names = ", ".join(sorted(set(wanted[minor])))
            found.append(
                Finding(
                    False,
                    f"Python {minor}: not found, and matrix {names} asks for it",
                    f"install it (`pyenv install {minor}`, `uv python install {minor}`, or your "
                    "system's package) or leave it out of the matrix's python list; its cells "
                    "are skipped until then",
                )
            )
        else:
            absent.append(minor)
    if absent:
        found.append(
            Finding(True, f"Python {', '.join(absent)}: not found (no matrix asks for them)")
        )
    return found


def _tools() -> list[Finding]:
    findings = []
    uv = uv_path()
    if uv is None:
        findings.append(
            Finding(False, "uv: not found", "`pip install uv` (the cells are built with it)")
        )
    else:
        version = _output([uv, "--version"]) or "version unknown"
        findings.append(Finding(True, f"uv: {version} ({uv})"))
    for name, why in (("nox", "each cell is a nox session"), ("pytest", "the cells' runner")):
        try:
            findings.append(Finding(True, f"{name}: {importlib.metadata.version(name)}"))
        except importlib.metadata.PackageNotFoundError:
            findings.append(
                Finding(False, f"{name}: not installed", f"`pip install {name}` ({why})")
            )
    return findings


def _output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _indexes(project: Path, matrices: Sequence[Matrix]) -> list[Finding]:
    """Each place the cells install from, asked for one release list."""
    findings = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    # Without a matrix: where uv itself installs from, as the project configures it.
    for install in [m.install for m in matrices] or [InstallOptions()]:
        sources = uv_sources(
            project,
            index_url=install.index_url,
            no_index=install.no_index,
            find_links=install.find_links,
        )
        key = (tuple(sources.indexes), tuple(sources.find_links))
        if key in seen:
            continue
        seen.add(key)
        for folder in sources.find_links:
            if "://" not in folder and not Path(project, folder).exists():
                findings.append(
                    Finding(
                        False, f"find-links {folder}: no such folder", "fix [install] find-links"
                    )
                )
        for index in sources.indexes:
            try:
                releases = list_releases(_PROBE_PACKAGE, index_url=index, cache_dir=None)
            except IndexUnavailable as exc:
                findings.append(
                    Finding(
                        False,
                        f"index {index}: does not answer ({exc})",
                        "check the network or proxy, or point the cells at a mirror or a "
                        "folder of wheels ([install] index-url, find-links)",
                    )
                )
            else:
                findings.append(
                    Finding(True, f"index {index}: answers ({len(releases)} releases of pip)")
                )
        if not sources.indexes:
            findings.append(
                Finding(True, "index: none (no-index): the cells install from find-links only")
            )
    return findings


def _room(
    project: Path, matrices: Sequence[Matrix], out: Path, finder: InterpreterFinder
) -> list[Finding]:
    cache = uv_cache_dir()
    findings = []
    free_cache, free_out = free_space(cache), free_space(out)
    if free_cache is not None:
        findings.append(
            Finding(True, f"disk: {size_text(free_cache)} free for uv's cache ({cache})")
        )
    if free_out is not None:
        findings.append(
            Finding(True, f"disk: {size_text(free_out)} free for the environments ({out})")
        )
    if not matrices:
        findings.append(
            Finding(
                False,
                "matrices: none here",
                "`pytest --dfvc-init` writes a first one from what the project declares",
            )
        )
        return findings
    try:
        plans = expand_all(list(matrices), finder, out, project)
    except MatrixError as exc:
        return [*findings, Finding(False, f"matrices: {exc}", "fix the matrix file")]
    cells = sum(1 for p in plans for c in p.cells if c.status is None)
    disk = disk_plan(plans, IndexReader(project, out / "cache" / "index"), cache)
    wheels = disk.download + disk.local
    fits = disk.free is None or disk.needed <= disk.free
    of = f"{cells} runnable cell{'s' if cells != 1 else ''}"
    if wheels:
        what = (
            f"downloads: {size_text(wheels)} for {of} ({size_text(disk.cached)} already in "
            f"uv's cache), about {size_text(wheels * UNPACKED)} unpacked"
        )
    else:
        what = f"downloads: none for {of}: their wheels ({size_text(disk.cached)}) are cached"
    fix = (
        "make room (`uv cache prune`), point UV_CACHE_DIR at a larger disk, or run fewer cells "
        '(--dfvc-strategy=bisect, select = "latest-minor")'
    )
    findings.append(Finding(fits, what, fix))
    return findings


def run_doctor(project: Path, matrix_path: Path, out: Path, say: Callable[[str], None]) -> int:
    """``--dfvc-doctor``: the matrices at ``matrix_path`` (none when it does not exist)."""
    matrices: list[Matrix] = []
    if matrix_path.exists():
        try:
            matrices = load_matrices(matrix_path)
        except MatrixError as exc:
            say(f"dfvc doctor: {exc}")
            return 1
    return report(examine(project, matrices, out, InterpreterFinder()), say)


def report(findings: Sequence[Finding], say: Callable[[str], None]) -> int:
    """The findings, one a line; exit status 1 when something the matrices need is
    missing."""
    say("dfvc doctor: what this machine offers, and what the matrices need")
    for finding in findings:
        say(finding.line())
    missing = [f for f in findings if not f.ok]
    say(f"{len(missing)} thing(s) to fix" if missing else "nothing to fix")
    return 1 if missing else 0
