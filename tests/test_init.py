"""``pytest --dfvc-init``: a first matrix from what the project declares."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.plan.cell import KNOWN_PYTHONS
from pytest_dfvc.plan.init_matrix import declared, lower_bound
from pytest_dfvc.plan.matrix import load_matrix

from . import fakeframe
from .helpers import require_pythons
from .test_real_projects import _JsonIndex

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "numpy-demo"


def _ago(days: int) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _init(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dfvc-init", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def index(tmp_path: Path) -> Iterator[_JsonIndex]:
    """fakeframe's history with upload times: 1.0 five years ago … 2.1 half a year ago."""
    wheels = tmp_path / "wheels"
    ages = {"1.0.0": 1800, "1.1.0": 1500, "1.1.1": 1400, "1.2.0": 1100, "2.0.0": 540, "2.1.0": 180}
    served = _JsonIndex(
        {"fakeframe": [(fakeframe.build_wheel(v, wheels), _ago(d)) for v, d in ages.items()]}
    )
    yield served
    served.close()


def _project(root: Path, index: _JsonIndex, dependencies: str, python: str = ">=3.10") -> Path:
    (root / "src" / "proj").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['hatchling']\nbuild-backend = 'hatchling.build'\n"
        f"[project]\nname = 'proj'\nversion = '0.1'\nrequires-python = '{python}'\n"
        f"dependencies = {dependencies}\n"
        "[project.optional-dependencies]\nextra = ['unused-thing>=1']\n"
    )
    (root / "uv.toml").write_text(f'index-url = "{index.url}"\n')
    (root / "src" / "proj" / "__init__.py").write_text("import fakeframe\nimport json\n")
    (root / "src" / "proj" / "ops.py").write_text("from fakeframe import ops\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_p.py").write_text("import fakeframe\n\ndef test_p():\n    pass\n")
    return root


def test_a_first_matrix_from_the_declared_range_widened_to_spec_0(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    """Declared fakeframe>=1.1 and requires-python>=3.10: every minor series from 1.1 on
    (SPEC 0 alone would start at 2.0, released within two years), newest patch of each,
    on the Pythons >=3.10 this machine has; the undeclared-import and never-imported
    dependencies get no matrix."""
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "p", index, "['fakeframe>=1.1', 'otherlib']")
    done = _init(project)
    assert done.returncode == 0, done.stdout + done.stderr
    written = project / "matrices" / "fakeframe.toml"
    assert sorted(p.name for p in (project / "matrices").iterdir()) == ["fakeframe.toml"]
    matrix = load_matrix(written)
    assert str(matrix.packages[0].versions) == ">=1.1"
    assert matrix.packages[0].select == "latest-patch"
    pythons = finder.available_minors([f"3.{m}" for m in range(10, 16)])
    assert matrix.python == tuple(pythons)
    cells = 3 * len(pythons)  # the series 1.1, 1.2, 2.0 and 2.1 less 1.0: 1.1 … 2.1
    line = done.stdout.splitlines()[0]
    assert "fakeframe >=1.1 (the newest patch of 4 minor series, 1.1 … 2.1)" in line
    assert f"up to {4 * len(pythons)} cells" in line and cells
    assert (
        "declares fakeframe>=1.1; SPEC 0 supports fakeframe 2.0.0 and newer" in written.read_text()
    )


def test_a_declared_bound_newer_than_spec_0_is_widened_to_it(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "p", index, "['fakeframe>=2.1']")
    assert _init(project).returncode == 0
    matrix = load_matrix(project / "matrices" / "fakeframe.toml")
    assert str(matrix.packages[0].versions) == ">=2.0.0"  # what users of the last 2 years have


def test_an_existing_matrix_is_never_overwritten(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = _project(tmp_path / "p", index, "['fakeframe>=1.1']")
    (project / "matrices").mkdir()
    mine = 'python = ["3.10"]\n[packages.fakeframe]\nversions = ["2.0.0"]\n'
    (project / "matrices" / "fakeframe.toml").write_text(mine)
    done = _init(project)
    assert done.returncode == 0
    assert "fakeframe.toml exists: left as it is" in done.stdout
    assert (project / "matrices" / "fakeframe.toml").read_text() == mine


def test_named_frameworks_and_setup_py_projects(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = tmp_path / "legacy"
    project.mkdir()
    (project / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='legacy', install_requires=['fakeframe>=1.2', 'six'], "
        "python_requires='>=3.10')\n"
    )
    (project / "uv.toml").write_text(f'index-url = "{index.url}"\n')
    found = declared(project)
    assert [r.name for r in found.requirements] == ["fakeframe", "six"]
    assert str(lower_bound(found, "FakeFrame")) == "1.2"
    # Nothing imports fakeframe here: it must be named.
    refused = _init(project)
    assert refused.returncode == 4
    assert "none of legacy's declared dependencies (fakeframe, six) is imported" in refused.stderr
    assert "--dfvc-init=numpy,pandas" in refused.stderr
    done = _init(project, "--dfvc-init=fakeframe")
    assert done.returncode == 0, done.stderr
    assert str(load_matrix(project / "matrices" / "fakeframe.toml").packages[0].versions) == ">=1.2"


def test_a_setup_py_with_a_byte_order_mark_is_read_as_python_reads_it(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    """Issue 32, item 1: ``SyntaxError: invalid non-printable character U+FEFF`` as a raw
    traceback, with or without named frameworks."""
    require_pythons(finder, "3.10")
    project = tmp_path / "bom"
    project.mkdir()
    (project / "setup.py").write_bytes(
        b"\xef\xbb\xbffrom setuptools import setup\n"
        b"setup(name='bom', install_requires=['fakeframe>=1.2'], python_requires='>=3.10')\n"
    )
    (project / "uv.toml").write_text(f'index-url = "{index.url}"\n')
    assert [r.name for r in declared(project).requirements] == ["fakeframe"]
    done = _init(project, "--dfvc-init=fakeframe")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert str(load_matrix(project / "matrices" / "fakeframe.toml").packages[0].versions) == ">=1.2"


def test_what_the_tests_need_goes_into_the_first_matrix(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    """Issue 32, item 3: pandas declared in ``tests_require``; the first run failed
    everywhere with "the tests import pandas, which no cell has"."""
    require_pythons(finder, "3.10")
    project = tmp_path / "old"
    project.mkdir()
    (project / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='old', install_requires=['fakeframe>=1.2'], python_requires='>=3.10',\n"
        "      tests_require=['pandas>=0.23', 'pytest', 'fakeframe'])\n"
    )
    (project / "tox.ini").write_text("[testenv]\ndeps =\n    nose\n")
    (project / "uv.toml").write_text(f'index-url = "{index.url}"\n')
    done = _init(project, "--dfvc-init=fakeframe")
    assert done.returncode == 0, done.stderr
    written = project / "matrices" / "fakeframe.toml"
    assert load_matrix(written).install.requirements == ("pandas>=0.23", "nose")
    text = written.read_text()
    assert '"pandas>=0.23",  # setup.py tests_require' in text
    assert '"nose",  # tox.ini [testenv] deps' in text


def test_an_old_project_gets_the_window_of_its_own_time(
    tmp_path: Path, finder: InterpreterFinder
) -> None:
    """Issue 32, item 2: a project last released long ago, with no requires-python, got
    today's window (the newest series on the newest Python) and every cell failed."""
    require_pythons(finder, "3.10", "3.12")
    wheels = tmp_path / "wheels"
    ages = {"1.0.0": 1800, "1.1.0": 1500, "1.1.1": 1400, "1.2.0": 1100, "2.0.0": 540, "2.1.0": 180}
    history = [(fakeframe.build_wheel(v, wheels), _ago(d)) for v, d in ages.items()]
    old = fakeframe.simple_wheel(wheels, "old", "0.3.1")
    served = _JsonIndex({"fakeframe": history, "old": [(old, _ago(1000))]})
    try:
        project = tmp_path / "old"
        (project / "old").mkdir(parents=True)
        (project / "setup.py").write_text(
            "from setuptools import setup\n"
            "setup(name='old', version='0.3.1', install_requires=['fakeframe'])\n"
        )
        (project / "old" / "__init__.py").write_text("import fakeframe\n")
        (project / "uv.toml").write_text(f'index-url = "{served.url}"\n')
        done = _init(project)
        # A project of another's name (version 9.9, not on the index) is not that one.
        other = tmp_path / "other"
        shutil.copytree(project, other, ignore=shutil.ignore_patterns("matrices"))
        (other / "setup.py").write_text(
            "from setuptools import setup\n"
            "setup(name='old', version='9.9', install_requires=['fakeframe'])\n"
        )
        not_old = _init(other)
    finally:
        served.close()
    assert not_old.returncode == 0, not_old.stdout + not_old.stderr
    assert "older than" not in not_old.stdout
    assert load_matrix(other / "matrices" / "fakeframe.toml").install.era_days is None
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert "old is older than SPEC 0's 24-month window" in said
    assert "(old 0.3.1, its last release on the index)" in said
    matrix = load_matrix(project / "matrices" / "fakeframe.toml")
    # 1.1 and 1.2 came out in the 24 months before it (1.0 earlier, 2.x after); 2.1.0 is
    # today's newest, one cell more.
    assert list(matrix.packages[0].versions) == ["1.1.1", "1.2.0", "2.1.0"]
    assert matrix.install.era_days == 0  # exclude-newer = "release"
    # The Pythons out in the 36 months before (3.10 to 3.12 here), and the newest one here.
    then = finder.available_minors(["3.10", "3.11", "3.12"])
    newest = finder.available_minors(list(KNOWN_PYTHONS))[-1]
    assert list(matrix.python) == list(dict.fromkeys([*then, newest]))


def test_a_file_that_cannot_be_parsed_is_named_never_a_traceback(
    tmp_path: Path, index: _JsonIndex, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    project = tmp_path / "broken"
    project.mkdir()
    (project / "setup.py").write_text("setup(name='broken', install_requires=[\n")
    (project / "uv.toml").write_text(f'index-url = "{index.url}"\n')
    refused = _init(project)
    assert refused.returncode == 4
    assert "Traceback" not in refused.stdout + refused.stderr
    assert f"{project / 'setup.py'}: could not be read (SyntaxError" in refused.stderr
    assert "the requirements it declares were skipped" in refused.stderr
    named = _init(project, "--dfvc-init=fakeframe")
    assert named.returncode == 0, named.stderr
    assert "could not be read (SyntaxError" in named.stdout
    assert (project / "matrices" / "fakeframe.toml").exists()


def test_a_project_that_declares_nothing_is_told_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = _init(tmp_path)
    assert done.returncode == 4
    assert "declares no dependencies" in done.stderr and "--dfvc-init=numpy,pandas" in done.stderr
    assert not (tmp_path / "matrices").exists()


@pytest.mark.network
def test_the_bundled_example_from_nothing(tmp_path: Path, finder: InterpreterFinder) -> None:
    """The example without its matrix: --dfvc-init writes one from its pyproject (numpy>=1.20,
    Python >=3.10), and --dfvc-list plans it."""
    require_pythons(finder, "3.10")
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".dfvc", "matrices"))
    done = _init(project)
    assert done.returncode == 0, done.stdout + done.stderr
    matrix = load_matrix(project / "matrices" / "numpy.toml")
    assert str(matrix.packages[0].versions) == ">=1.20"
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dfvc-matrix", "--dfvc-list"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stdout[-3000:]
    assert "py3.10-numpy1.20.3  unavailable" in listed.stdout  # no wheel for 3.10: said so
    assert "py3.10-numpy1.26.4  runnable" in listed.stdout
