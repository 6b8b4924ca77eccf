"""Reused and installed means what was asked for, with real cells: fake wheels on a local
folder, nox and uv (issue 27)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.plan.uvargs import wrong_pins

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project
from .test_editable import BACKEND, PYPROJECT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("installed", "wrong"),
    [
        ("1.0.0", []),
        ("1.0.0+cpu", []),
        ("1.0.0+cu124", []),
        ("1.0.0+broken", ["ff==1.0.0 installed 1.0.0+broken"]),
        ("1.0.1", ["ff==1.0.0 installed 1.0.1"]),
    ],
)
def test_a_pin_is_held_exactly_or_as_a_build_variant(installed: str, wrong: list[str]) -> None:
    assert wrong_pins(["ff==1.0.0"], {"FF": installed}) == wrong


def test_a_pin_installs_the_release_it_names_not_another_build(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Issue 27, item 1: with ff 1.0.0 and 1.0.0+broken in the folder, ``==1.0.0`` installed
    the labelled build and the results credited 1.0.0 with its failure. The pin is made
    exact (``ff!=1.0.0+broken`` from the folder's listing); a cell whose environment still
    does not hold its pin is an error, never a verdict (``wrong_pins``, above)."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "ff", "1.0.0", "def api():\n    return 1\n")
    fakeframe.simple_wheel(wheels, "ff", "1.0.0+broken", "def api():\n    return 2\n")
    fakeframe.simple_wheel(wheels, "ff", "1.1.0", "def api():\n    return 1\n")
    root = tmp_path / "p"
    write_project(
        root,
        {
            "conftest.py": "",
            "tests/test_ff.py": "import ff\n\ndef test_api():\n    assert ff.api() == 1\n",
        },
    )
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ["1.0.0", "1.1.0"]\n'
        + offline_install(wheels, tooling)
    )
    result = run_matrix(root, "--dfvc-matrix=m.toml")
    assert result.returncode == 0, result.output
    cells = {c["packages"]["ff"]: c for c in result.matrix("m")["cells"]}
    assert cells["1.0.0"]["resolved"]["ff"] == "1.0.0", result.output
    assert cells["1.0.0"]["status"] == "passed"
    assert result.matrix("m")["ranges"]["ff"]["compatible"] == ["1.0.0", "1.1.0"]


def test_the_projects_uv_configuration_reaches_cells_whose_view_is_elsewhere(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 4: a monorepo's ``uv.toml`` sets ``no-index`` and a private ``find-links``; with
    ``--dfvc-out`` outside the tree, the plan listed from the private folder but the cells'
    uv, in views outside the tree, found no configuration and asked PyPI for the private
    name (``unavailable: … not found``, and a dependency-confusion hole)."""
    require_pythons(finder, "3.11")
    mono = tmp_path / "mono"
    wheels = mono / "wheels"
    for version in ("1.0", "1.1"):
        fakeframe.simple_wheel(wheels, "dfvc-private-ff", version, "def api():\n    return 1\n")
    (mono / "uv.toml").write_text(f'no-index = true\nfind-links = ["wheels", "{tooling}"]\n')
    root = mono / "proj"
    test = "import dfvc_private_ff\n\ndef test_api():\n    assert dfvc_private_ff.api() == 1\n"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.dfvc-private-ff]\nversions = ">=1.0"\nselect = "all"\n'
    )
    out = tmp_path / "out"
    result = run_matrix(
        root, "--dfvc-matrix=m.toml", f"--dfvc-out={out}", f"--dfvc-json={out}/r.json"
    )
    assert result.returncode == 0, result.output
    assert "2 cells passed" in result.output


def test_a_rerun_resolves_afresh_and_reinstalls(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 2: after a new release of a floating dependency, ``--dfvc-rerun`` kept the slot
    environment's old packages (synced to the same inputs, nothing was resolved again) and
    repeated the old verdict; a fresh environment fails."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n")
    fakeframe.simple_wheel(wheels, "ff", "1.0", "def api():\n    return 1\n", ("dep",))
    root = tmp_path / "p"
    test = "import dep\n\ndef test_helper():\n    assert dep.helper() == 1\n"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ["1.0"]\n' + offline_install(wheels, tooling)
    )
    first = run_matrix(root, "--dfvc-matrix=m.toml")
    assert "1 cell passed" in first.output, first.output
    fakeframe.simple_wheel(wheels, "dep", "2.0", "")
    again = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-rerun")
    (cell,) = again.matrix("m")["cells"]
    assert cell["resolved"]["dep"] == "2.0", again.output
    assert cell["status"] == "failed"


def test_an_audit_reruns_reused_cells_from_scratch_and_catches_what_reuse_missed(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """``--dfvc-audit=N`` re-runs N of the run's cells in a fresh environment and view,
    resolved afresh, and compares: equal after a plain warm run; after a release of a
    floating dependency on the local index, the reused verdicts are stale, and the audit
    names what changed as an error."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n")
    for version in ("1.0", "1.1"):
        fakeframe.simple_wheel(wheels, "ff", version, "def api():\n    return 1\n", ("dep",))
    root = tmp_path / "p"
    test = "import dep\n\ndef test_helper():\n    assert dep.helper() == 1\n"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
        + offline_install(wheels, tooling)
    )
    assert run_matrix(root, "--dfvc-matrix=m.toml").returncode == 0
    warm = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-audit=2")
    assert warm.returncode == 0, warm.output
    assert "2 cells reused" in warm.output or "2 unchanged and reused" in warm.output
    assert "audit: 2 of 2 cells run again from scratch" in warm.output
    assert "every one equal" in warm.output
    audit = warm.matrix("m")["audit"]
    assert sorted(audit["cells"]) == ["py3.11-ff1.0", "py3.11-ff1.1"] and audit["differ"] == []
    fakeframe.simple_wheel(wheels, "dep", "2.0", "")
    stale = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-audit=1")
    assert stale.returncode != 0, stale.output
    (differ,) = stale.matrix("m")["audit"]["differ"]
    cell = next(c for c in stale.matrix("m")["cells"] if c["id"] == differ)
    assert cell["status"] == "error" and cell["cause"]["category"] == "audit"
    reason = cell["cause"]["reason"]
    assert "dep 1.0 -> 2.0" in reason and "test_helper: passed -> failed" in reason
    # The fresh result replaced the stale entry: the next run does not reuse it.
    after = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-no-culprit")
    again = next(c for c in after.matrix("m")["cells"] if c["id"] == differ)
    assert again["status"] == "failed" and again["resolved"]["dep"] == "2.0"


def test_a_reused_cell_is_checked_against_the_index_once_its_resolution_is_old(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Item 3: after a new release of a floating dependency, a plain re-run reused the
    stale verdict. A cell's resolution is trusted for a while (DFVC_RESOLUTION_MAX_AGE,
    default 600 s, PyPI's page lifetime); past it, the cell is resolved again (no install)
    and reused only when the resolved set is the same."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n")
    for version in ("1.0", "1.1"):
        fakeframe.simple_wheel(wheels, "ff", version, "def api():\n    return 1\n", ("dep",))
    root = tmp_path / "p"
    test = "import dep\n\ndef test_helper():\n    assert dep.helper() == 1\n"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
        + offline_install(wheels, tooling)
    )
    assert run_matrix(root, "--dfvc-matrix=m.toml").returncode == 0
    # Nothing moved: reused, even once the resolution is old (re-checked, the same).
    aged = {"DFVC_RESOLUTION_MAX_AGE": "0"}
    same = run_matrix(root, "--dfvc-matrix=m.toml", env_extra=aged)
    assert "2 unchanged and reused" in same.output, same.output
    fakeframe.simple_wheel(wheels, "dep", "2.0", "")
    # Within the lifetime, the kept resolution is trusted: reused.
    trusted = run_matrix(root, "--dfvc-matrix=m.toml")
    assert "2 unchanged and reused" in trusted.output, trusted.output
    moved = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-no-culprit", env_extra=aged)
    assert "dep 1.0 -> 2.0" in moved.output, moved.output
    cells = moved.matrix("m")["cells"]
    assert [c["resolved"]["dep"] for c in cells] == ["2.0", "2.0"]
    assert all(c["status"] == "failed" for c in cells)


# --- the property: whatever changed between runs, a reused or synced cell equals a fresh one

STEPS = ("release", "edit", "resolution", "rerun")


@settings(
    # Each example is up to 4 runs with an audit (a minute for 3 on 2 cores): the sequences
    # differ from run to run of the suite, so CI tries new ones each time.
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=3))
def test_after_any_sequence_of_changes_every_cell_equals_a_fresh_one(
    steps: list[str], tmp_path_factory: pytest.TempPathFactory, tooling: Path
) -> None:
    """Random sequences of a dependency released on the local index, a project file edited,
    ``UV_RESOLUTION`` changed and ``--dfvc-rerun``; after each, the matrix runs (reusing and
    syncing what it can, the kept resolutions checked at once) and ``--dfvc-audit`` runs
    every cell again from scratch: no cell may differ from its fresh run."""
    tmp_path = tmp_path_factory.mktemp("property")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n")
    for version in ("1.0", "1.1"):
        fakeframe.simple_wheel(wheels, "ff", version, "def api():\n    return 1\n", ("dep>=1.0",))
    root = tmp_path / "p"
    test = "import dep\n\ndef test_helper():\n    assert dep.helper() == 1\n"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": test})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
        + offline_install(wheels, tooling)
    )
    env = {"DFVC_RESOLUTION_MAX_AGE": "0", "DFVC_AUDIT_SEED": "1"}
    assert run_matrix(root, "--dfvc-matrix=m.toml", env_extra=env).returncode == 0
    releases = iter(("1.5", "2.0", "2.5"))
    for step in steps:
        args = ["--dfvc-matrix=m.toml", "--dfvc-audit=2", "--dfvc-no-culprit"]
        if step == "release":
            version = next(releases)
            body = "def helper():\n    return 1\n" if version != "2.0" else ""
            fakeframe.simple_wheel(wheels, "dep", version, body)
        elif step == "edit":
            with (root / "tests" / "test_ff.py").open("a") as f:
                f.write("\n\ndef test_more():\n    pass\n")
        elif step == "resolution":
            env["UV_RESOLUTION"] = "lowest-direct" if "UV_RESOLUTION" not in env else "highest"
        else:
            args.append("--dfvc-rerun")
        result = run_matrix(root, *args, env_extra=env)
        audit = result.matrix("m")["audit"]
        assert audit["differ"] == [], f"after {step}: {result.output}"
        assert len(audit["cells"]) == 2


@pytest.mark.parametrize("installed", [True, False], ids=["project installed", "from its tree"])
def test_which_results_file_a_run_writes_never_changes_what_it_reuses(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder, installed: bool
) -> None:
    """Issue 31, item 1: a re-run that changed only ``--dfvc-json`` (``out/results.json`` ->
    ``out/warm.json``) ran every cell again: the first run's results file, outside the
    output folder, had become one of the project's files. Output paths are no input."""
    require_pythons(finder, "3.11")
    root = tmp_path / "p"
    files = {
        "tests/test_demo.py": "import fakeframe\n\ndef test_mean():\n    assert fakeframe.mean([1, 3]) == 2\n"
    }
    if installed:
        # The in-tree backend of test_editable, without its log of builds (a project file).
        backend = "\n".join(
            line
            for line in BACKEND.splitlines()
            if "builds.txt" not in line and "log.write" not in line
        )
        files.update(
            {
                "_build/backend.py": backend,
                "pyproject.toml": PYPROJECT,
                "src/demoproj/__init__.py": "",
            }
        )
    write_project(root, files)
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    first = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-json=out/results.json")
    assert first.returncode == 0, first.output
    assert "2 cells run" in first.output
    again = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-json=out/warm.json")
    assert again.returncode == 0, again.output
    assert "0 cells run, 2 unchanged and reused" in again.output, again.output
    # Another output folder (results, reports and badges in it): the same cells.
    elsewhere = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-json=out/third.json")
    assert "0 cells run, 2 unchanged and reused" in elsewhere.output, elsewhere.output
    # Badges written into the project (issue 32, item 6) are no input either.
    for _ in range(2):
        badged = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-badges=docs/badges")
        assert "0 cells run, 2 unchanged and reused" in badged.output, badged.output
        assert "](docs/badges/m-fakeframe.svg)" in badged.output
    assert (root / "docs" / "badges" / "m-fakeframe.svg").exists()
