"""Real projects as they are (issue "Real projects as they are"): install modes, layouts,
paths, and what every uv call gets."""

from __future__ import annotations

import hashlib
import http.server
import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.uvtool import uv_path
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.verdicts.judge import CellOutcome, judge

from .helpers import (
    matrix_from_text,
    offline_install,
    require_pythons,
    run_matrix,
    write_project,
)
from .test_editable import BACKEND, PYPROJECT, _project

pytestmark = pytest.mark.slow

# What the cells install beside the matrix packages (pytest and what it needs).
TOOLING_NAMES = {"pytest", "iniconfig", "packaging", "pluggy", "pygments", "tomli"}
TOOLING_NAMES |= {"exceptiongroup", "typing-extensions", "typing_extensions"}


def _uv_shim(folder: Path) -> tuple[Path, Path]:
    """A uv that logs each call's UV_PYTHON_DOWNLOADS and arguments, then runs the real one."""
    log = folder / "uv-calls.txt"
    shim = folder / "uv"
    shim.write_text(
        "#!/bin/sh\n"
        f'echo "${{UV_PYTHON_DOWNLOADS:-unset}} $*" >> "{log}"\n'
        f'exec "{uv_path()}" "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return shim, log


# Where uv looks for an interpreter to download when it is allowed to: a folder that is not
# there, so a run allowed downloads fails at once instead of retrying a network for 13 s.
NO_DOWNLOADS_ANSWER = {"UV_PYTHON_INSTALL_MIRROR": "file:///nonexistent-python-mirror"}


def test_no_uv_call_may_download_an_interpreter(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pre-check for GitHub Actions (``uv pip compile --python-version 3.10``, no local
    interpreter) ran without UV_PYTHON_DOWNLOADS=never, so uv fetched a managed CPython (28 s
    per cell here without a network). Every call must set it unless the user did."""
    require_pythons(finder, "3.10")
    monkeypatch.delenv("UV_PYTHON_DOWNLOADS", raising=False)
    shim, log = _uv_shim(tmp_path)
    project = tmp_path / "project"
    _project(project)  # an in-tree build backend: the editable build runs offline
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
        # A constraint leaves the plan to uv: the index alone cannot tell then.
        + 'constraints = ["fakeframe<3"]\n'
    )
    env = {"UV": str(shim)}
    planned = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-gha", env_extra=env)
    assert planned.returncode == 0, planned.output
    ran = run_matrix(project, "--dfvc-matrix=m.toml", env_extra=env)
    assert ran.returncode == 0, ran.output
    calls = log.read_text().splitlines()
    assert any(" pip compile " in f" {c} " for c in calls), calls
    assert any(" pip install " in f" {c} " for c in calls), calls
    assert [c for c in calls if not c.startswith("never ")] == []
    # A user who wants downloads says so, and is obeyed.
    log.unlink()
    run_matrix(
        project,
        "--dfvc-matrix=m.toml",
        "--dfvc-gha",
        "--dfvc-rerun",  # nothing from the earlier plan: uv is asked again
        # The downloads uv then tries fail at once: this machine may have no network.
        env_extra={**env, "UV_PYTHON_DOWNLOADS": "automatic", **NO_DOWNLOADS_ANSWER},
    )
    assert all(c.startswith("automatic ") for c in log.read_text().splitlines())


SYNCED_TESTS = {
    "conftest.py": "",
    "tests/test_v.py": """
        import fakeframe

        def test_v():
            assert fakeframe.__version__
        """,
}

PATHS = {
    "conftest.py": "",
    "pytest.ini": "[pytest]\n",
    "tests/test_s.py": "def test_s():\n    pass\n",
    "tests/test_t.py": "def test_t():\n    pass\n",
}


def test_test_paths_are_relative_to_where_pytest_ran(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``cd tests && pytest --dfvc-matrix=../m.toml test_s.py``: every cell was ``error:
    file or directory not found: test_s.py``, since cells run at the project's root."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, PATHS)
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    run = run_matrix(tmp_path / "tests", "--dfvc-matrix=../m.toml", "test_s.py::test_s")
    assert run.returncode == 0, run.output
    results = json.loads((tmp_path / ".dfvc" / "results.json").read_text())
    (cell,) = results["matrices"][0]["cells"]
    assert cell["status"] == "passed", cell
    assert [t["nodeid"] for t in cell["tests"]] == ["tests/test_s.py::test_s"]


@pytest.mark.parametrize("word", ["tests/test_s.py", "tests"])
def test_a_bare_word_after_the_matrix_option_is_its_path(tmp_path: Path, word: str) -> None:
    """``pytest --dfvc-matrix tests/test_s.py`` read the test file as TOML ("invalid TOML:
    Expected '=' after a key"): say that the bare word is taken as the matrix path."""
    write_project(tmp_path, PATHS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-matrix", word],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert "a bare word after --dfvc-matrix is its path: write --dfvc-matrix=PATH" in output
    assert "invalid TOML" not in output
    assert not (tmp_path / ".dfvc").exists()


# A legacy build that imports what it does not declare (a setup.py's `import numpy`): an
# in-tree backend, so that the build runs offline.
LEGACY_BACKEND = """
import fakeframe  # imported at build time, declared nowhere
""" + BACKEND.replace("demoproj", "legacyproj")

LEGACY = {
    "pyproject.toml": PYPROJECT.replace("demoproj", "legacyproj"),
    "_build/backend.py": LEGACY_BACKEND,
    "src/legacyproj/__init__.py": "import fakeframe\n\ndef answer():\n    return 42\n",
    "tests/test_legacy.py": """
        import legacyproj

        def test_answer():
            assert legacyproj.answer() == 42
        """,
}


def _matrix(root: Path, wheelhouse: Path, tooling: Path, install: str = "") -> None:
    (root / "matrices").mkdir(exist_ok=True)
    (root / "matrices" / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
        + install
    )


def test_build_requirements_reach_a_legacy_build(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A build that imports an undeclared package fails in every cell, loudly; with
    ``[install] build-requirements`` it gets it, and the project is installed."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, LEGACY)
    _matrix(tmp_path, wheelhouse, tooling)
    failed = run_matrix(tmp_path, "--dfvc-matrix")
    (cell,) = failed.matrix("m")["cells"]
    assert failed.returncode == 1 and cell["status"] == "error", failed.output
    assert "No module named 'fakeframe'" in cell["cause"]["reason"]
    assert "[install] build-requirements" in cell["cause"]["reason"]
    assert "[install] project = false" in cell["cause"]["reason"]
    _matrix(tmp_path, wheelhouse, tooling, 'build-requirements = ["fakeframe"]\n')
    built = run_matrix(tmp_path, "--dfvc-matrix")
    (cell,) = built.matrix("m")["cells"]
    assert built.returncode == 0 and cell["status"] == "passed", built.output
    assert "legacyproj" in cell["resolved"]


def test_a_project_that_is_not_installed_is_imported_from_its_tree(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``[install] project = false``: no build at all; the tests import the project's
    modules from its tree (its root importable, as ``PYTHONPATH=.`` makes it)."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            **LEGACY,
            "helpers.py": "import fakeframe\n\nVERSION = fakeframe.__version__\n",
            "tests/test_tree.py": "import helpers\n\ndef test_v():\n    assert helpers.VERSION\n",
        },
    )
    (tmp_path / "tests" / "test_legacy.py").unlink()
    _matrix(tmp_path, wheelhouse, tooling, "project = false\n")
    run = run_matrix(tmp_path, "--dfvc-matrix")
    (cell,) = run.matrix("m")["cells"]
    assert run.returncode == 0 and cell["status"] == "passed", run.output
    assert "legacyproj" not in cell["resolved"]
    assert (
        "build-system"
        not in (tmp_path / ".dfvc" / "cells" / "m")
        .joinpath("py3.10-fakeframe1.0.0", "log.txt")
        .read_text()
    )


@pytest.mark.parametrize(
    "config",
    [
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
            "[tool.ruff]\nline-length = 99\n"
        },
        {"setup.cfg": "[tool:pytest]\ntestpaths = tests\n"},
    ],
    ids=["pyproject-tool-only", "setup-cfg-tool-only"],
)
def test_tool_configuration_alone_is_not_a_package(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
    config: dict[str, str],
) -> None:
    """A scripts repository whose pyproject.toml holds only tool settings was built with
    setuptools ("Multiple top-level packages discovered in a flat-layout: ['lib',
    'matrices', ...]"), and a setup.cfg with only [tool:pytest] installed a bogus
    distribution. Neither declares a package: the tree is used as it is."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            **config,
            "lib/__init__.py": "",
            "lib/stats.py": "import fakeframe\n\ndef mean(xs):\n    return fakeframe.mean(xs)\n",
            "notebooks/readme.txt": "",
            "tests/test_lib.py": "from lib import stats\n\ndef test_mean():\n"
            "    assert stats.mean([1, 3]) == 2\n",
        },
    )
    _matrix(tmp_path, wheelhouse, tooling)
    run = run_matrix(tmp_path, "--dfvc-matrix")
    (cell,) = run.matrix("m")["cells"]
    assert run.returncode == 0 and cell["status"] == "passed", run.output
    assert set(cell["resolved"]) <= {"fakeframe", *TOOLING_NAMES}, cell["resolved"]


def test_the_controller_does_not_load_the_projects_conftest(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A conftest.py that imports the framework failed the controller (exit 4) when the
    framework was not installed beside pytest-dfvc. The cells load it; its options, ini
    keys (under --strict-config) and diagnosis rules still work."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\naddopts = --strict-config\nslow_reason = too slow\n",
            "conftest.py": """
                import fakeframe  # the framework, which only the cells have

                def pytest_addoption(parser):
                    parser.addoption("--runslow", action="store_true")
                    parser.addoption("--flavour", default="plain")
                    parser.addini("slow_reason", "why slow tests skip")

                def pytest_dfvc_rules():
                    return [("resource", r"RuntimeError$", r"NCCL error")]
                """,
            "tests/test_x.py": """
                import pytest

                def test_options(request):
                    assert request.config.getoption("--runslow")
                    assert request.config.getoption("--flavour") == "salty"
                    assert request.config.getini("slow_reason") == "too slow"

                def test_collective():
                    raise RuntimeError("NCCL error: unhandled system error")
                """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    run = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--runslow", "--flavour=salty")
    assert run.returncode == 0, run.output
    (cell,) = run.matrix("m")["cells"]
    outcomes = {t["nodeid"].rsplit("::", 1)[1]: t for t in cell["tests"]}
    assert outcomes["test_options"]["outcome"] == "passed"
    assert outcomes["test_collective"]["cause"]["category"] == "resource"
    assert "Unknown config option" not in run.output


def _local_index(root: Path, wheels: list[Path]) -> str:
    """A PEP 503 index in a folder (``file://``), as a private index looks to uv."""
    page = root / "simple" / "fakeframe" / "index.html"
    page.parent.mkdir(parents=True)
    links = "".join(f'<a href="{w.as_uri()}">{w.name}</a>\n' for w in wheels)
    page.write_text(f"<html><body>\n{links}</body></html>\n")
    return (root / "simple").as_uri()


def test_releases_are_listed_from_where_the_cells_install(
    tmp_path: Path,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uv configured for a private index (the project's uv.toml): listing asked PyPI, which
    has no such project (or worse, one of the same name), while the cells installed from
    the private index. Both must use the index uv uses."""
    require_pythons(finder, "3.10")
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS", "UV_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    private = _local_index(
        tmp_path, [wheelhouse / f"fakeframe-{v}-py3-none-any.whl" for v in ("1.0.0", "2.0.0")]
    )
    project = tmp_path / "project"
    write_project(project, SYNCED_TESTS)
    (project / "uv.toml").write_text(
        f'[pip]\nindex-url = "{private}"\nfind-links = ["{tooling}"]\n'
    )
    (project / "m.toml").write_text('python = ["3.10"]\n[packages.fakeframe]\nversions = ">=1"\n')
    run = run_matrix(
        project,
        "--dfvc-matrix=m.toml",
        # Point PIP_INDEX_URL elsewhere: uv ignores it, and so must the listing.
        env_extra={"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.output
    cells = {c["id"]: c["status"] for c in run.matrix("m")["cells"]}
    assert cells == {"py3.10-fakeframe1.0.0": "passed", "py3.10-fakeframe2.0.0": "passed"}


def test_a_monorepo_package_is_the_project_that_owns_the_matrix(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """From ``mono/pkga`` under ``mono/pytest.ini``, rootdir is ``mono/``: pkga was never
    installed, every cell failed with a misleading missing-api, and .dfvc/ landed in mono/.
    The project is the one that owns the matrix file; the header says which."""
    require_pythons(finder, "3.10")
    mono = tmp_path / "mono"
    write_project(
        mono,
        {
            "pytest.ini": "[pytest]\nmarkers =\n    slow: slow tests\n",
            "conftest.py": "",
            "pkgb/pyproject.toml": PYPROJECT.replace("demoproj", "pkgb"),
        },
    )
    pkga = mono / "pkga"
    _project(pkga)
    (pkga / "pytest.ini").unlink()  # the monorepo's pytest.ini is the one pytest finds
    (pkga / "tests" / "test_marked.py").write_text(
        "import pytest\n\n@pytest.mark.slow\ndef test_marked():\n    pass\n"
    )
    _matrix(pkga, wheelhouse, tooling)
    run = run_matrix(pkga, "--dfvc-matrix", "--strict-markers")
    assert "dfvc: testing the project here:" in run.output
    assert (pkga / ".dfvc" / "results.json").exists()
    assert not (mono / ".dfvc").exists()
    results = json.loads((pkga / ".dfvc" / "results.json").read_text())
    (cell,) = results["matrices"][0]["cells"]
    assert cell["status"] == "passed", run.output
    assert "demoproj" in cell["resolved"]
    # Node ids are the project's; mono/pytest.ini's settings (its marker) still apply.
    assert sorted(t["nodeid"] for t in cell["tests"]) == [
        "tests/test_demo.py::test_answer",
        "tests/test_marked.py::test_marked",
    ]
    # From the monorepo's root, naming the package's matrix, the header names the package.
    again = run_matrix(mono, "--dfvc-matrix=pkga/matrices")
    assert "dfvc: testing pkga:" in again.output
    assert not (mono / ".dfvc").exists()


class _JsonIndex:
    """A PEP 691 JSON index with PEP 700 upload times, served over HTTP from this process:
    what PyPI gives, offline."""

    def __init__(
        self, releases: dict[str, list[tuple[Path, str]]], page_lifetime: str | None = None
    ) -> None:
        """``page_lifetime``: the pages' Cache-Control (PyPI's is ``max-age=600``)."""
        self.files = {w.name: w for entries in releases.values() for w, _ in entries}
        self.pages = releases
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def _answer(self, *, with_body: bool) -> None:
                parts = self.path.strip("/").split("/")
                if parts[0] == "simple" and len(parts) == 2 and parts[1] in index.pages:
                    port = int(cast("tuple[str, int]", self.server.server_address)[1])
                    page = json.dumps(index.page(parts[1], port)).encode()
                    kind = "application/vnd.pypi.simple.v1+json"
                    self._send(page, kind, with_body, page_lifetime)
                elif parts[0] == "files" and len(parts) == 2 and parts[1] in index.files:
                    body = index.files[parts[1]].read_bytes()
                    self._send(body, "application/octet-stream", with_body)
                else:
                    self.send_error(404)

            def _send(
                self, body: bytes, kind: str, with_body: bool, lifetime: str | None = None
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                if lifetime:
                    self.send_header("Cache-Control", lifetime)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def page(self, name: str, port: int) -> dict[str, object]:
        files = [
            {
                "filename": wheel.name,
                "url": f"http://127.0.0.1:{port}/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
                "upload-time": uploaded,
            }
            for wheel, uploaded in self.pages[name]
        ]
        return {"meta": {"api-version": "1.1"}, "name": name, "files": files}

    def add(self, name: str, wheel: Path, uploaded: str) -> None:
        """A new release of ``name`` on the index."""
        self.pages.setdefault(name, []).append((wheel, uploaded))
        self.files[wheel.name] = wheel

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_era_resolution_installs_each_cell_as_of_its_release(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """fakebase 1.0 (2020) breaks with fakedep 2.0 (2021), as pandas 1.x breaks with numpy
    2: resolved today, its cell failed as third-party. With exclude-newer = "release" each
    cell resolves as of its own release: 1.0 with fakedep 1.0, 2.0 with fakedep 2.0."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    wheels = tmp_path / "wheels"
    old_api = "def old_api():\n    return 1\n"
    index = _JsonIndex(
        {
            "fakebase": [
                (
                    fakeframe.simple_wheel(
                        wheels, "fakebase", "1.0", "from fakedep import old_api\n", ("fakedep",)
                    ),
                    "2020-01-10T12:00:00.000000Z",
                ),
                (
                    fakeframe.simple_wheel(wheels, "fakebase", "2.0", "", ("fakedep",)),
                    "2023-03-01T08:00:00.000000Z",
                ),
            ],
            "fakedep": [
                (fakeframe.simple_wheel(wheels, "fakedep", "1.0", old_api), "2019-05-01T00:00:00Z"),
                (fakeframe.simple_wheel(wheels, "fakedep", "2.0", ""), "2021-06-01T00:00:00Z"),
            ],
        }
    )
    try:
        project = tmp_path / "project"
        write_project(
            project,
            {"conftest.py": "", "tests/test_b.py": "import fakebase\n\ndef test_b():\n    pass\n"},
        )
        base = (
            'python = ["3.10"]\n[packages.fakebase]\nversions = ">=1"\n'
            f'[install]\nindex-url = "{index.url}"\nfind-links = ["{tooling}"]\n'
        )
        matrix = project / "m.toml"
        matrix.write_text(base)
        today = run_matrix(project, "--dfvc-matrix=m.toml")
        cells = {c["id"]: c for c in today.matrix("m")["cells"]}
        assert cells["py3.10-fakebase1.0"]["status"] == "failed", today.output
        assert cells["py3.10-fakebase1.0"]["resolved"]["fakedep"] == "2.0"
        assert 'exclude-newer = "release"' in today.output  # the third-party suggestion

        matrix.write_text(base + 'exclude-newer = "release"\n')
        listed = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-list")
        assert "py3.10-fakebase1.0  runnable (resolved as of 2020-01-10T12:00:01Z)" in listed.output
        era = run_matrix(project, "--dfvc-matrix=m.toml")
        cells = {c["id"]: c for c in era.matrix("m")["cells"]}
        assert [c["status"] for c in cells.values()] == ["passed", "passed"], era.output
        assert cells["py3.10-fakebase1.0"]["resolved"]["fakedep"] == "1.0"
        assert cells["py3.10-fakebase2.0"]["resolved"]["fakedep"] == "2.0"
        assert cells["py3.10-fakebase1.0"]["exclude_newer"] == "2020-01-10T12:00:01Z"
        assert cells["py3.10-fakebase2.0"]["exclude_newer"] == "2023-03-01T08:00:01Z"

        # Thirty days on, fakedep 2.0 is still not out: the same; a find-links folder has no
        # upload times, which era resolution says it needs.
        matrix.write_text(base + 'exclude-newer = "release+30d"\n')
        assert run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-list").returncode == 0
        matrix.write_text(
            'python = ["3.10"]\n[packages.fakebase]\nversions = ">=1"\n'
            + offline_install(wheels, tooling)
            + 'exclude-newer = "release"\n'
        )
        refused = run_matrix(project, "--dfvc-matrix=m.toml")
        assert refused.returncode == 4, refused.output
        assert "fakebase 1.0 has no upload time where it is listed from" in refused.output
    finally:
        index.close()


def test_a_kept_environment_follows_a_moved_exclude_newer(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """uv counts an installed distribution as a candidate even where exclude-newer filters
    the index's copy out: after a run that installed fakedep 2.0 (2021), setting
    exclude-newer = 2020-06-01 kept it, where a fresh environment resolves fakedep 1.0."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    wheels = tmp_path / "wheels"
    index = _JsonIndex(
        {
            "fakebase": [
                (
                    fakeframe.simple_wheel(wheels, "fakebase", "1.0", "", ("fakedep",)),
                    "2020-01-10T12:00:00Z",
                )
            ],
            "fakedep": [
                (fakeframe.simple_wheel(wheels, "fakedep", "1.0"), "2019-05-01T00:00:00Z"),
                (fakeframe.simple_wheel(wheels, "fakedep", "2.0"), "2021-06-01T00:00:00Z"),
            ],
        }
    )
    try:
        project = tmp_path / "project"
        write_project(project, {"conftest.py": "", "tests/test_b.py": "def test_b():\n    pass\n"})
        base = (
            'python = ["3.10"]\n[packages.fakebase]\nversions = ["1.0"]\n'
            f'[install]\nindex-url = "{index.url}"\nfind-links = ["{tooling}"]\n'
        )
        (project / "m.toml").write_text(base)
        run_matrix(project, "--dfvc-matrix=m.toml")
        first = json.loads((project / ".dfvc" / "results.json").read_text())
        assert first["matrices"][0]["cells"][0]["resolved"]["fakedep"] == "2.0"
        (project / "m.toml").write_text(base + 'exclude-newer = "2020-06-01"\n')
        run_matrix(project, "--dfvc-matrix=m.toml")
        run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-out=.fresh")
        kept = json.loads((project / ".dfvc" / "results.json").read_text())
        fresh = json.loads((project / ".fresh" / "results.json").read_text())
        resolved = kept["matrices"][0]["cells"][0]["resolved"]
        assert resolved["fakedep"] == "1.0"
        assert resolved == fresh["matrices"][0]["cells"][0]["resolved"]
    finally:
        index.close()


def test_a_release_whose_metadata_uv_refuses_is_still_tested(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """pandas 0.23.4 and 0.24.2 declare ``pytz (>=2011k)``, which uv refuses: they were
    ``unavailable``. Installed without their metadata's dependencies, which are installed
    after normalising the malformed specifier, they are tested, and the results say how."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(
        wheels,
        "fakebase",
        "0.9",
        "import fakedep\n",
        ("fakedep (>=2011k)", "fakeextra; extra == 'x'"),
    )
    fakeframe.simple_wheel(wheels, "fakebase", "1.0", "import fakedep\n", ("fakedep>=1",))
    fakeframe.simple_wheel(wheels, "fakedep", "1.0")
    project = tmp_path / "project"
    write_project(
        project,
        {
            "conftest.py": "",
            "tests/test_b.py": "import fakebase\nimport fakedep\n\ndef test_b():\n    pass\n",
        },
    )
    (project / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakebase]\nversions = ["0.9", "1.0"]\n'
        + offline_install(wheels, tooling)
        + 'requirements = ["pytest"]\n'
    )
    listed = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-list")
    assert "py3.10-fakebase0.9  runnable" in listed.output, listed.output
    run = run_matrix(project, "--dfvc-matrix=m.toml")
    cells = {c["id"]: c for c in run.matrix("m")["cells"]}
    old = cells["py3.10-fakebase0.9"]
    assert old["status"] == "passed", run.output
    assert old["resolved"]["fakebase"] == "0.9" and old["resolved"]["fakedep"] == "1.0"
    assert "fakeextra" not in old["resolved"]
    assert "uv refuses its metadata" in old["metadata_fallback"]
    assert "'fakedep (>=2011k)' -> 'fakedep' (dropped >=2011k)" in old["metadata_fallback"]
    assert "metadata_fallback" not in cells["py3.10-fakebase1.0"]
    assert cells["py3.10-fakebase1.0"]["status"] == "passed"


def test_a_release_newer_than_uvs_copy_of_its_page_is_still_installed(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """An index of the user's that gives its pages a lifetime, as PyPI does (10 minutes):
    uv keeps its copy of a page that long, and so does the plan, each from its own moment.
    A release only the plan's copy lists still installs: a cell that resolves afresh
    (``--upgrade``, ``--reinstall``) has uv ask the index again."""
    from . import fakeframe

    require_pythons(finder, "3.10")
    wheels = tmp_path / "wheels"
    uploaded = "2024-01-10T12:00:00Z"
    index = _JsonIndex(
        {"fakebase": [(fakeframe.simple_wheel(wheels, "fakebase", "1.0"), uploaded)]},
        page_lifetime="max-age=600",
    )
    try:
        project = tmp_path / "project"
        write_project(
            project,
            {"conftest.py": "", "tests/test_b.py": "import fakebase\n\ndef test_b():\n    pass\n"},
        )
        (project / "m.toml").write_text(
            'python = ["3.10"]\n[packages.fakebase]\nversions = ">=1"\n'
            f'[install]\nindex-url = "{index.url}"\nfind-links = ["{tooling}"]\n'
        )
        first = run_matrix(project, "--dfvc-matrix=m.toml")
        assert [c["status"] for c in first.matrix("m")["cells"]] == ["passed"], first.output
        index.add("fakebase", fakeframe.simple_wheel(wheels, "fakebase", "2.0"), uploaded)
        # --dfvc-rerun reads the index afresh: the plan has 2.0, uv's kept page not yet.
        again = run_matrix(project, "--dfvc-matrix=m.toml", "--dfvc-rerun")
        cells = {c["id"]: c for c in again.matrix("m")["cells"]}
        assert cells["py3.10-fakebase2.0"]["status"] == "passed", again.output
        assert cells["py3.10-fakebase2.0"]["resolved"]["fakebase"] == "2.0"
    finally:
        index.close()


@dataclass(frozen=True)
class _PlayedPyPI:
    """A local JSON index in PyPI's place with fakebase 1.0, and the Python the cells use."""

    index: _JsonIndex
    wheels: Path
    python: str
    matrix: str

    def release(self, version: str) -> None:
        from . import fakeframe

        wheel = fakeframe.simple_wheel(self.wheels, "fakebase", version)
        self.index.add("fakebase", wheel, "2024-01-10T12:00:00Z")


@pytest.fixture
def played_pypi(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[_PlayedPyPI]:
    """PyPI played by a local index, through the paths of the configurations the cells' uv
    gets for PyPI (with its page lifetime, and without it), with a uv cache of its own."""
    from pytest_dfvc.index import uvconfig

    require_pythons(finder, "3.10")
    python = finder.find("3.10")
    assert python is not None
    index = _JsonIndex({})
    try:
        controls = {
            "lifetimes.toml": '{ api = "max-age=600", files = "max-age=60" }',
            "files.toml": '{ files = "max-age=60" }',
        }
        for name, control in controls.items():
            (tmp_path / name).write_text(
                f'[[index]]\nurl = "{index.url}"\ndefault = true\ncache-control = {control}\n'
            )
        monkeypatch.setattr(uvconfig, "PYPI_CONFIG", tmp_path / "lifetimes.toml")
        monkeypatch.setattr(uvconfig, "PYPI_REFRESH_CONFIG", tmp_path / "files.toml")
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
        matrix = (
            'python = ["3.10"]\n[packages.fakebase]\nversions = ["1.0", "2.0"]\n'
            f'[install]\nfind-links = ["{tooling}"]\n'
        )
        played = _PlayedPyPI(index, tmp_path / "wheels", python.path, matrix)
        played.release("1.0")
        yield played
    finally:
        index.close()


def test_a_pin_missing_from_uvs_kept_page_is_asked_for_again(
    tmp_path: Path, played_pypi: _PlayedPyPI
) -> None:
    """The cells' uv keeps PyPI's pages for their 10 minutes even where it resolves afresh
    (``uv-pypi.toml``; uv's ``--refresh`` does not override a configured lifetime), so a
    release the plan's copy of the page lists may be missing from uv's: its cell said
    "not on the index" of a release that is. The install now asks the index again for that
    project (a configuration without the page lifetime, ``--refresh-package``), once."""
    from pytest_dfvc.cells.provision import Workspace, prepare, run
    from pytest_dfvc.cells.workers import RunningCells

    project = tmp_path / "project"
    write_project(project, {"tests/test_b.py": "import fakebase\n\ndef test_b():\n    pass\n"})
    matrix = matrix_from_text(project, played_pypi.matrix)
    workspace = Workspace(project / ".dfvc", project)

    def cell_run(version: str) -> tuple[CellOutcome, str]:
        cell = Cell(
            "m",
            f"py3.10-fakebase{version}",
            "3.10",
            (("fakebase", version),),
            interpreter=played_pypi.python,
        )
        running = RunningCells()
        try:
            args = ["-p", "no:cacheprovider"]
            prepared = prepare(matrix, cell, workspace, args, running=running, slot=0)
            ran = run(prepared, timeout=None, running=running)
        finally:
            running.close()
        return judge(cell, ran), ran.output

    assert cell_run("1.0")[0].status == "passed"
    played_pypi.release("2.0")
    second, log = cell_run("2.0")
    assert second.status == "passed", log
    assert "asking the index again for fakebase" in log
    assert f"--config-file {tmp_path / 'files.toml'}" in log


def test_the_pre_check_asks_again_for_a_pin_missing_from_uvs_kept_page(
    tmp_path: Path, played_pypi: _PlayedPyPI
) -> None:
    """The pre-check (``--dfvc-list``, the GitHub Actions plan, CUDA cells) resolves with
    ``uv pip compile`` and the same kept pages: a release the plan sees but uv's copy of
    the page lacks is asked for again before the cell is called unavailable."""
    from pytest_dfvc.plan.precheck import precheck_cell

    matrix = matrix_from_text(tmp_path, played_pypi.matrix)

    def check(version: str) -> object:
        cell = Cell("m", "x", "3.10", (("fakebase", version),), interpreter=played_pypi.python)
        return precheck_cell(matrix, cell, tmp_path)

    assert check("1.0") is None
    played_pypi.release("2.0")
    assert check("2.0") is None


def test_a_misspelt_option_of_ours_is_still_refused(tmp_path: Path) -> None:
    """Options the controller does not know are taken to be a conftest's (they reach the
    cells), but not one that starts like ours: a typo must not vanish into the cells."""
    write_project(tmp_path, {"conftest.py": "", "m.toml": 'python = ["3.10"]\n'})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-matrix=m.toml", "--dfvc-jbos=2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 4
    assert "unrecognized arguments: --dfvc-jbos=2" in run.stderr
