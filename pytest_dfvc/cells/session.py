"""The body of a cell's nox session (uv backend): sync its environment to the cell, install,
and run its pytest with the in-cell recorder, writing how far it got to the cell's folder.
The controller's runs and a project's own noxfile (``pytest_dfvc.nox``) register the same
sessions."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import nox
from packaging.requirements import Requirement

from ..index import legacy
from ..phases import PHASE_INSTALL, PHASE_TEST, STAGE_DONE
from .celldir import CellDir
from .environments import (
    INPUTS_MARKER,
    installed,
    record_sync,
    resync_args,
    starts_over,
    strays,
    synced_to,
)
from .sessionspec import SessionSpec


def cell_session(spec: SessionSpec) -> Callable[[nox.Session], None]:
    """The body of one cell's session, from a spec made by ``provision.prepare_session``."""
    cell_dir = CellDir(Path(spec["cell_dir"]))

    def cell(session: nox.Session) -> None:
        session.chdir(spec["project"])
        session.log(spec["description"])
        cell_dir.phase_file.write_text(PHASE_INSTALL, encoding="utf-8")
        cell_dir.mark_stage(PHASE_INSTALL)
        _sync(session, spec, cell_dir)
        # Where the environment's executables are: a crashed test run restarts from there.
        cell_dir.bin_file.write_text(str(session.bin), encoding="utf-8")
        cell_dir.phase_file.write_text(PHASE_TEST, encoding="utf-8")
        cell_dir.mark_stage(PHASE_TEST)
        args = list(session.posargs) if session.posargs else list(spec["pytest"])
        session.run(
            "python",
            "-m",
            "pytest",
            *spec["pytest_plugins"],
            *args,
            env=spec["env"],
            # The controller's sessions take failing tests as its finding (and "no tests"
            # as its own verdict); a user's noxfile fails on them, as `nox -s tests` does.
            success_codes=spec["success_codes"],
        )
        cell_dir.mark_stage(STAGE_DONE)

    cell.__doc__ = spec["description"]
    return cell


def _sync(session: nox.Session, spec: SessionSpec, cell_dir: CellDir) -> None:
    """Install the cell's requirements exactly (``environments.py``): what the environment
    was last synced to decides what the install adds; the record is written only once the
    install succeeded, so a failed one starts over next time."""
    location = Path(session.virtualenv.location)
    install = list(spec["install"])
    inputs, base = spec.get("inputs", ""), spec.get("base", "")
    synced = synced_to(location)
    left = strays(location) if synced is not None else []
    if left:
        # An earlier cell's test wrote where no distribution owns files: removed, and
        # everything reinstalled (it may have changed owned files too), as a fresh one.
        shown = ", ".join(p.name for p in left[:3]) + (" …" if len(left) > 3 else "")
        session.log(f"dfvc: the environment held files no package owns ({shown}): remade")
        for path in left:
            path.unlink(missing_ok=True)
        synced = None
    if spec.get("afresh"):
        # Asked afresh (--dfvc-rerun): nothing kept is trusted, pages nor packages.
        install += ["--refresh", "--reinstall", "--upgrade"]
    elif starts_over(synced, base):
        names = installed(location)
        if names:
            # As a fresh environment: nothing installed is a candidate (environments.py).
            session.run_install(
                "uv", "pip", "uninstall", *names, env=_target(session), external=True
            )
    else:
        install += resync_args(install, synced, inputs, base)
    (location / INPUTS_MARKER).unlink(missing_ok=True)
    pin = spec.get("legacy")
    if pin:
        _install_refused_release(session, spec, cell_dir, install, pin)
    else:
        session.install(*install, env=_install_env(session, spec))
    if inputs and base:
        record_sync(location, inputs, base)


def _target(session: nox.Session) -> dict[str, str]:
    """The session's own environment, named where uv looks first. ``UV_PYTHON`` chooses
    where ``uv pip`` writes before ``VIRTUAL_ENV`` does, and nox sets it for its sessions
    only since 2025: with an older nox an inherited one (a user's ``export UV_PYTHON=3.12``,
    a nox session that started this run) sent each ``--exact`` install elsewhere."""
    location = str(session.virtualenv.location)
    return {"UV_PYTHON": location, "VIRTUAL_ENV": location}


def _install_env(session: nox.Session, spec: SessionSpec) -> dict[str, str]:
    return {**(spec.get("install_env") or {}), **_target(session)}


def _install_refused_release(
    session: nox.Session, spec: SessionSpec, cell_dir: CellDir, install: list[str], pin: str
) -> None:
    """A pinned release whose metadata uv refuses (``legacy.py``): read its metadata from
    a copy installed alone, install everything else with its dependencies normalised and
    the release excluded from the resolution, then the release without dependencies."""
    env = _install_env(session, spec)
    scratch = cell_dir.legacy_scratch
    shutil.rmtree(scratch, ignore_errors=True)
    session.install("--no-deps", "--target", str(scratch), pin, *spec["sources"], env=env)
    dist_info = next(scratch.glob("*.dist-info"), None)
    if dist_info is None:
        raise RuntimeError(f"dfvc: {pin} installed alone left no metadata to read in {scratch}")
    requirements, changed = legacy.dependencies(dist_info)
    shutil.rmtree(scratch, ignore_errors=True)
    excludes = cell_dir.legacy_excludes_file
    excludes.write_text(Requirement(pin).name + "\n", encoding="utf-8")
    rest = [arg for arg in install if arg != pin]
    session.install(*rest, *requirements, "--excludes", str(excludes), env=env)
    session.install("--no-deps", pin, *spec["sources"], env=env)
    note = (
        f"{pin}: uv refuses its metadata, so it was installed without its dependencies, "
        f"and they were installed from its metadata ({', '.join(requirements) or 'none'})"
    )
    if changed:
        note += "; normalised: " + "; ".join(changed)
    cell_dir.legacy_note_file.write_text(note, encoding="utf-8")
    session.log(f"dfvc: {note}")


def register(spec: SessionSpec) -> None:
    """Register one cell as a nox session (uv backend, environment reused and synced)."""
    nox.session(
        name=spec["name"],
        python=spec["python"],
        venv_backend="uv",
        reuse_venv=True,
    )(cell_session(spec))


def register_from_file(path: str | os.PathLike[str]) -> list[str]:
    """Register the sessions of a plan file written by the controller."""
    specs: list[SessionSpec] = json.loads(Path(path).read_text(encoding="utf-8"))
    for spec in specs:
        register(spec)
    return [s["name"] for s in specs]
