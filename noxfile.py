"""The one way to run things: tests, lint, type check, the demo, the built wheel."""

from __future__ import annotations

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
    """The test suite against the built wheel: catches a missing data file or py.typed."""
    session.install("build")
    tmp = session.create_tmp()
    session.run("python", "-m", "build", "--wheel", "--outdir", tmp)
    wheels = sorted(Path(tmp).glob("pytest_dfvc-*.whl"))
    session.install(f"{wheels[-1]}[test]")
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
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "pytest_dfvc", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "pytest_dfvc", "tests", "benchmarks", "noxfile.py")


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
    tracer``: the tracer's cost alone)."""
    session.install("-e", ".", "tox", "tox-uv", "virtualenv")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def badges(session: nox.Session) -> None:
    """The project's own compatibility badges for README.md: its pure-logic tests under the
    pytest versions and Pythons of matrices/pytest.toml, badges copied to docs/badges/."""
    import shutil

    session.install("-e", ".")
    session.run(
        "pytest",
        "--dfvc-matrix=matrices/pytest.toml",
        "tests/test_ranges.py",
        "tests/test_strategy.py",
        "tests/test_diagnose.py",
    )
    target = Path("docs/badges")
    target.mkdir(parents=True, exist_ok=True)
    for badge in Path(".dfvc/badges").glob("pytest-*"):
        shutil.copy(badge, target / badge.name)
