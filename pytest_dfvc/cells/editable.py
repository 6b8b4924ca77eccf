"""The project as a PEP 660 editable wheel, built once per interpreter instead of once per cell.

``uv pip install -e PROJECT`` builds the editable wheel again in every environment: a fresh
build environment, the backend run twice, about half a second for a small project, which on a
matrix of small cells is a third of the work. The wheel does not depend on the cell: it holds
the project's metadata and a pointer back to its source folder (a ``.pth`` file or an import
hook), so every cell of one interpreter can install the same one. It is built by the same
hooks uv calls (``get_requires_for_build_editable``, ``build_editable``), in an isolated
environment with the project's ``build-system.requires``, and kept under the run's folder,
keyed by the interpreter and the project's build files; a change to those builds it again.

When the project cannot be built this way (no PEP 660 hook, a failing build), the cells fall
back to ``uv pip install -e`` and show the build's error in their own logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..index.uvtool import uv_environment
from ..plan.project import declares_package
from ..tomlcheck import tomllib

BUILD_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
# A build that hangs (an index that never answers) must not hold up the run: past this, the
# cells build the project themselves, under --dfvc-timeout.
BUILD_TIMEOUT = 900
_FORMAT = 2
# What pip and uv assume of a project without a [build-system] table.
_LEGACY = {"requires": ["setuptools>=40.8.0"], "build-backend": "setuptools.build_meta:__legacy__"}

# Run inside the build environment: one hook, its answer as JSON in a file (backends print).
_HOOK = """
import importlib, json, os, sys
hook, backend, backend_path, answer = sys.argv[1:5]
paths = [os.path.abspath(p) for p in json.loads(backend_path)]
sys.path[:0] = paths
module, _, attribute = backend.partition(":")
obj = importlib.import_module(module)
for part in filter(None, attribute.split(".")):
    obj = getattr(obj, part)
function = getattr(obj, hook, None)
if hook == "get_requires_for_build_editable":
    result = function() if function else []
elif function is None:
    sys.exit("the build backend has no build_editable hook (PEP 660)")
else:
    result = function(sys.argv[5])
with open(answer, "w") as f:
    json.dump(result, f)
"""

_locks: dict[Path, threading.Lock] = {}
_locks_lock = threading.Lock()
# Builds that failed in this process: the other cells go straight to ``-e`` (and a later
# run tries again, in case what was missing is there by then).
_failed: set[Path] = set()


def editable_wheel(
    project: Path,
    interpreter: str,
    runtime: Path,
    uv: str,
    index_args: Sequence[str],
    *,
    build: bool = True,
    build_requirements: Sequence[str] = (),
) -> Path | None:
    """The project's editable wheel for ``interpreter``: built on first use (unless
    ``build`` is false), then reused; None when there is none (the caller installs with
    ``-e`` instead). ``build_requirements`` (the matrix's ``[install] build-requirements``)
    go into the build environment beside ``build-system.requires``: what a legacy
    ``setup.py`` imports without declaring it."""
    config = build_config(project)
    if config is None:
        return None
    if build_requirements:
        config = {**config, "requires": [*config["requires"], *build_requirements]}
    folder = runtime / "editable" / _key(project, interpreter, config)
    with _lock(folder):
        found = sorted(folder.glob("*.whl"))
        if found:
            return found[0]
        if folder in _failed or not build:
            return None
        wheel = _build(project, interpreter, folder, config, uv, index_args)
        if wheel is None:
            _failed.add(folder)
        return wheel


def declares_python(project: Path, python: str) -> bool:
    """Whether the project's ``requires-python`` (pyproject.toml) admits ``python`` (3.X);
    True when it declares none or cannot be read."""
    try:
        table = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        declared = table.get("project", {}).get("requires-python")
        return not isinstance(declared, str) or SpecifierSet(declared).contains(
            python + ".0", prereleases=True
        )
    except (OSError, tomllib.TOMLDecodeError, InvalidSpecifier, AttributeError):
        return True


# PEP 517's [build-system] table, its fallbacks filled in.
BuildSystem = TypedDict(
    "BuildSystem", {"requires": list[str], "build-backend": str, "backend-path": list[str]}
)


def build_config(project: Path) -> BuildSystem | None:
    """``[build-system]``, with PEP 517's fallbacks to setuptools; None for a folder that is
    not a package, or a pyproject.toml that cannot be read (uv will say why)."""
    if not declares_package(project):
        return None
    table: Any = {}
    pyproject = project / "pyproject.toml"
    if pyproject.exists():
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("build-system", {})
        except (OSError, tomllib.TOMLDecodeError):
            return None
    if not isinstance(table, dict):
        return None
    return {
        "requires": list(table.get("requires", _LEGACY["requires"])),
        "build-backend": table.get("build-backend", _LEGACY["build-backend"]),
        "backend-path": list(table.get("backend-path", [])),
    }


def _key(project: Path, interpreter: str, config: BuildSystem) -> str:
    """The build files' contents, and the packages and modules at the top of the project and
    of ``src/``: a new one can change what an editable wheel maps (setuptools lists them)."""
    top = sorted(
        str(p.relative_to(project))
        for folder in (project, project / "src")
        if folder.is_dir()
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".py")
    )
    digest = hashlib.sha256()
    # _FORMAT: wheels built by an older pytest-dfvc (which kept Requires-Python) are not reused.
    key = [_FORMAT, str(project), interpreter, config, top]
    digest.update(json.dumps(key, sort_keys=True).encode())
    for name in BUILD_FILES:
        path = project / name
        if path.exists():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _lock(folder: Path) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(folder, threading.Lock())


def _build(
    project: Path,
    interpreter: str,
    folder: Path,
    config: BuildSystem,
    uv: str,
    index_args: Sequence[str],
) -> Path | None:
    # The build environment and the backend's output live outside the project: a backend
    # walks the project's tree (hatchling's editable build does, the tool's own folder
    # included), and another interpreter's build, created and removed beside it, made that
    # walk fail on a folder gone between its listing and its stat.
    staging = Path(tempfile.mkdtemp(prefix="dfvc-build-"))
    arriving = folder.with_name(folder.name + ".new")
    try:
        name = _build_in(staging, project, interpreter, folder, config, uv, index_args)
        if name is None:
            return None
        _drop_requires_python(staging / "wheels" / name)
        # Complete or not at all: the folder appears with its wheel in one rename.
        shutil.rmtree(arriving, ignore_errors=True)
        arriving.mkdir(parents=True)
        shutil.copyfile(staging / "wheels" / name, arriving / name)
        shutil.rmtree(folder, ignore_errors=True)
        arriving.rename(folder)
    finally:
        # A failed build leaves nothing behind but its log.
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(arriving, ignore_errors=True)
    return folder / name


def _build_in(
    staging: Path,
    project: Path,
    interpreter: str,
    folder: Path,
    config: BuildSystem,
    uv: str,
    index_args: Sequence[str],
) -> str | None:
    """Run the backend's hooks in a build environment under ``staging``; the wheel's file
    name in ``staging/wheels``, or None (the log says why)."""
    env = staging / "env"
    python = str(env / "bin" / "python")
    log = folder.parent / f"{folder.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    stopped: list[bool] = []  # a step its timeout stopped
    with log.open("w", encoding="utf-8") as out:

        def run(*command: str) -> bool:
            try:
                done = subprocess.run(
                    command,
                    cwd=project,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT,
                    env=uv_environment(),
                )
            except subprocess.TimeoutExpired:
                out.write(f"\ndfvc: stopped after {BUILD_TIMEOUT} s\n")
                stopped.append(True)
                return False
            return done.returncode == 0

        def hook(name: str, *args: str) -> Any:
            answer = staging / f"{name}.json"
            backend_path = json.dumps(config["backend-path"])
            command = [python, "-c", _HOOK, name, config["build-backend"], backend_path]
            if not run(*command, str(answer), *args):
                return None
            return json.loads(answer.read_text(encoding="utf-8"))

        install = [uv, "pip", "install", "--python", python, *index_args]
        if not run(uv, "venv", "--quiet", "--python", interpreter, str(env)):
            return None
        if config["requires"] and not run(*install, *config["requires"]):
            return None
        extra = hook("get_requires_for_build_editable")
        if extra is None or (extra and not run(*install, *extra)):
            return None
        wheels = staging / "wheels"
        wheels.mkdir()
        name = hook("build_editable", str(wheels))
        if name is None and not stopped:  # a hung build is not tried twice
            # A backend that walks the project (hatchling's editable build does) fails on
            # a folder listed and gone before it looks inside: the cells of another Python
            # change .dfvc meanwhile. Once more before the cells fall back to ``-e``, which
            # uv refuses where the project's requires-python leaves their Python out.
            out.write("\ndfvc: the backend failed; building once more\n")
            out.flush()
            name = hook("build_editable", str(wheels))
        if not isinstance(name, str) or not (wheels / name).exists():
            return None
        return name


def _drop_requires_python(wheel: Path) -> None:
    """The Python axis tests what the matrix asks for, as the package axes override the
    project's own bounds: the project's ``Requires-Python`` must not veto a cell (a matrix
    listing 3.7 for a project declaring >=3.8 tests 3.7, and the report compares)."""
    with zipfile.ZipFile(wheel) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    metadata = next((i for i, _ in entries if i.filename.endswith(".dist-info/METADATA")), None)
    if metadata is None:
        return
    changed: dict[str, bytes] = {}
    for info, data in entries:
        if info is metadata:
            lines = data.decode("utf-8").split("\n")
            kept = [line for line in lines if not line.lower().startswith("requires-python:")]
            if len(kept) == len(lines):
                return
            changed[info.filename] = "\n".join(kept).encode("utf-8")
    _write_wheel(entries, changed, wheel)


def _write_wheel(
    entries: Sequence[tuple[zipfile.ZipInfo, bytes]], changed: dict[str, bytes], target: Path
) -> None:
    """The wheel's ``entries`` with ``changed`` ones replaced and RECORD's hashes for them
    recomputed, written to ``target`` whole or not at all."""
    rewritten = target.with_suffix(".tmp")
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            data = changed.get(info.filename, data)
            if info.filename.endswith(".dist-info/RECORD"):
                data = _rehash(data, changed)
            zf.writestr(info, data)
    os.replace(rewritten, target)


def _rehash(record: bytes, changed: dict[str, bytes]) -> bytes:
    lines = []
    for line in record.decode("utf-8").splitlines():
        path = line.split(",", 1)[0]
        if path in changed:
            digest = hashlib.sha256(changed[path]).digest()
            encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            line = f"{path},sha256={encoded},{len(changed[path])}"
        lines.append(line)
    return ("\n".join(lines) + "\n").encode("utf-8")


def for_view(wheel: Path, project: Path, view: Path, folder: Path) -> Path:
    """The project's editable wheel pointing at a cell's ``view`` of the project instead of
    the project itself: the paths the backend wrote into it (a ``.pth`` line, an import
    finder's mapping) rewritten, RECORD hashed again. Kept in ``folder`` and reused while the
    wheel and the view are the same."""
    target = folder / wheel.name
    stamp = folder / f"{wheel.name}.from"
    source = f"{wheel} {wheel.stat().st_mtime_ns} {view}"
    if target.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == source:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    olds = {str(project), str(project.resolve())}
    pattern = re.compile(
        b"("
        + b"|".join(re.escape(o.encode()) for o in sorted(olds, key=len, reverse=True))
        + rb")(?=[/\\'\"\r\n]|$)",
        re.MULTILINE,
    )
    new = str(view).encode()
    with zipfile.ZipFile(wheel) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    changed = {
        info.filename: pattern.sub(lambda _: new, data)
        for info, data in entries
        if not info.filename.endswith(".dist-info/RECORD") and pattern.search(data)
    }
    _write_wheel(entries, changed, target)
    stamp.write_text(source, encoding="utf-8")
    return target


def requirement(wheel: Path, extras: Sequence[str]) -> str:
    """``name[extras] @ file:///…/name-1.0-py3-none-any.whl``, as uv takes it."""
    name = wheel.name.split("-", 1)[0]
    suffix = f"[{','.join(extras)}]" if extras else ""
    return f"{name}{suffix} @ {wheel.as_uri()}"
