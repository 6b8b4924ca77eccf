"""The one way to run things: tests, lint, type check, the demo, the built wheel."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tests against the source tree (no environments built, no index):
    ``nox -s tests -- -m ""`` runs them all, as CI and the README's command do."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["-m", "not slow and not network"]))


@nox.session
def wheel(session: nox.Session) -> None:
    """The test suite against the built wheel: catches a missing data file or py.typed.
    ``DFVC_WHEEL=dist/pytest_dfvc-….whl`` tests that wheel (the release's own artifact);
    otherwise one is built here."""
    built = os.environ.get("DFVC_WHEEL")
    if not built:
        session.install("build")
        tmp = session.create_tmp()
        session.run("python", "-m", "build", "--wheel", "--outdir", tmp)
        built = str(sorted(Path(tmp).glob("pytest_dfvc-*.whl"))[-1])
    session.install(f"{Path(built).resolve()}[test]")
    # Static checks read the source tree, not the wheel: the lint and typecheck sessions run them.
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "--ignore=tests/test_quality.py",
        *session.posargs,
    )


@nox.session
def dist(session: nox.Session) -> None:
    """What a release ships, checked the way a user meets it: the sdist and the wheel built
    from it by ``uv build`` into dist/, ``twine check --strict`` and ``check-wheel-contents``,
    then the wheel alone in a clean virtual environment (no source tree on its path) running
    README command 1 on a copy of the bundled example."""
    session.install("uv", "twine", "check-wheel-contents")
    dist = Path("dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--out-dir", str(dist))
    wheels = sorted(dist.glob("pytest_dfvc-*.whl"))
    sdists = sorted(dist.glob("pytest_dfvc-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"uv build made {[p.name for p in dist.iterdir()]}: one sdist, one wheel")
    session.run("twine", "check", "--strict", *map(str, wheels + sdists))
    session.run("check-wheel-contents", str(wheels[0]))

    tmp = Path(session.create_tmp()).resolve()
    clean, example = tmp / "clean", tmp / "numpy-demo"
    shutil.rmtree(clean, ignore_errors=True)
    shutil.rmtree(example, ignore_errors=True)
    session.run("uv", "venv", "-q", "--python", sys.executable, str(clean))
    scripts = clean / ("Scripts" if sys.platform == "win32" else "bin")
    python = str(scripts / "python")
    session.run("uv", "pip", "install", "-q", "--python", python, str(wheels[0].resolve()))
    shutil.copytree(
        "examples/numpy-demo", example, ignore=shutil.ignore_patterns(".dfvc", "__pycache__")
    )
    session.chdir(example)
    # From the example's folder the plugin must come from the wheel, not from a source tree.
    installed = f"import pytest_dfvc; assert pytest_dfvc.__file__.startswith({str(clean)!r})"
    session.run(python, "-c", installed, external=True)
    session.run(str(scripts / "pytest"), "--dfvc-matrix", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "pytest_dfvc", "tests", "benchmarks", "tools", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "pytest_dfvc", "tests", "benchmarks", "tools", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's first command: the plugin on the bundled numpy example."""
    session.install("-e", ".")
    session.chdir("examples/numpy-demo")
    session.run("pytest", "--dfvc-matrix", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """The examples that download too much for the test suite: torch-demo (torch 2.4-2.6,
    gigabytes of wheels the first time)."""
    session.install("-e", ".")
    session.chdir("examples/torch-demo")
    session.run("pytest", "--dfvc-matrix", *session.posargs)


@nox.session
def benchmark(session: nox.Session) -> None:
    """Cold, warm and search-strategy timings against a hand uv loop, nox+pip and tox-uv,
    and the plan of a long history (``nox -s benchmark -- plan``: that case alone; ``--
    tracer``: the tracer's cost alone; ``-- peers``: every peer doing the same work, the
    project installed and from its tree, beside the heavier peers; ``-- stages``: a cold
    run taken apart against the hand loop's steps)."""
    session.install("-e", ".", "tox", "tox-uv", "virtualenv")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def badges(session: nox.Session) -> None:
    """The project's own compatibility badges for README.md, and the versions its Install
    section states: the pure-logic tests under the pytest versions and Pythons of
    matrices/pytest.toml, the end-to-end tests under the nox and uv versions of
    matrices/tooling.toml (about 6 minutes more); badges copied to docs/badges/."""
    session.install("-e", ".")
    logic = ["tests/test_ranges.py", "tests/test_strategy.py", "tests/test_diagnose.py"]
    session.run("pytest", "--dfvc-matrix=matrices/pytest.toml", *logic)
    session.run("pytest", "--dfvc-matrix=matrices/tooling.toml", "tests/test_end_to_end.py")
    target = Path("docs/badges")
    target.mkdir(parents=True, exist_ok=True)
    for pattern in ("pytest-*", "tooling-nox.*", "tooling-uv.*"):
        for badge in Path(".dfvc/badges").glob(pattern):
            shutil.copy(badge, target / badge.name)
