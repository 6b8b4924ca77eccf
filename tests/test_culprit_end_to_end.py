"""Which package broke it, with real cells: a framework and a neighbour on a local folder,
nox and uv (issue 26). A pass on one version and a failure on the next is evidence against
the next only when nothing else that changed between the two cells explains it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

TESTS = """\
import dep
import ff


def test_helper():
    assert dep.helper() == 1


def test_api():
    assert ff.api() == 1
"""


def _neighbour_moves(wheels: Path) -> None:
    """ff 1.0 and 1.1 cap dep below 2; 1.2 and 1.3 drop the cap, so the resolution brings
    dep 2.0, which removed ``helper``; ff 2.0 requires dep 2 itself."""
    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n")
    fakeframe.simple_wheel(wheels, "dep", "2.0", "")
    for version, requires in (
        ("1.0", "dep<2"),
        ("1.1", "dep<2"),
        ("1.2", "dep"),
        ("1.3", "dep"),
        ("2.0", "dep>=2"),
    ):
        fakeframe.simple_wheel(wheels, "ff", version, "def api():\n    return 1\n", (requires,))


def _run(root: Path, *args: str) -> tuple[dict[str, Any], str]:
    result = run_matrix(root, "--dfvc-matrix=m.toml", *args)
    assert result.returncode == 0, result.output
    return result.matrix("m"), result.output


def _project(tmp_path: Path, tooling: Path) -> Path:
    wheels = tmp_path / "wheels"
    _neighbour_moves(wheels)
    root = tmp_path / "p"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": TESTS})
    matrix = 'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
    (root / "m.toml").write_text(matrix + offline_install(wheels, tooling))
    return root


def test_a_neighbour_the_resolution_moved_is_the_culprit_not_the_axis(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 1: the range stopped at ``<1.2`` and the cause blamed ff. With dep 1.0 set
    back, ff 1.2 and 1.3 pass: they are compatible (from those passing runs, and the results
    say so), dep 2.0 is named, and ff 2.0, beside which no dep with ``helper`` installs, is
    incompatible through dep."""
    require_pythons(finder, "3.11")
    root = _project(tmp_path, tooling)
    matrix, output = _run(root, "--dfvc-jobs=2")
    ff = matrix["ranges"]["ff"]
    assert ff["specifier"] == ">=1.0,<2.0", output
    assert ff["compatible"] == ["1.0", "1.1", "1.2", "1.3"]
    assert ff["incompatible"] == ["2.0"]
    cells = {c["packages"]["ff"]: c for c in matrix["cells"]}
    helper = next(t for t in cells["1.2"]["tests"] if t["nodeid"].endswith("test_helper"))
    assert helper["outcome"] == "other-package"
    assert helper["cause"]["category"] == "third-party"
    assert helper["cause"]["api"] == "dep.helper"
    assert helper["cause"]["distribution"] == "dep"
    culprit = helper["cause"]["culprit"]
    assert culprit["packages"] == {"dep": {"failing": "2.0", "passing": "1.0"}}
    # The passing run it rests on is recorded under the boundary it explains.
    probes = cells["1.2"]["counterfactuals"]
    assert [p["id"] for p in probes] == [culprit["cell"]]
    assert probes[0]["held"] == {"dep": "1.0"} and probes[0]["status"] == "passed"
    assert probes[0]["tests"] == {helper["nodeid"]: "passed"}
    # ff 2.0 itself requires dep>=2: no dep with helper installs beside it.
    through = next(t for t in cells["2.0"]["tests"] if t["nodeid"].endswith("test_helper"))
    assert through["outcome"] == "failed"
    assert through["cause"]["through"]["packages"] == ["dep"]
    assert "incompatible through dep" in output
    assert "third-party: dep.helper" in output
    # ff 2.0's own requirement (dep>=2) rules out the dep it passed with: known without a
    # run, in the release's words (issue 29).
    assert through["cause"]["through"]["reason"] == "ff 2.0 requires dep>=2"
    # Cost: two boundaries one package apart: two extra cells.
    assert sum(len(c.get("counterfactuals", [])) for c in matrix["cells"]) == 2


def test_no_counterfactual_without_another_change_and_none_when_turned_off(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A boundary whose two cells differ only in the axis runs no extra cell; nor does any
    boundary under --dfvc-no-culprit, and then the axis takes the blame as before."""
    require_pythons(finder, "3.11")
    root = _project(tmp_path, tooling)
    matrix, _ = _run(root, "--dfvc-no-culprit")
    assert matrix["ranges"]["ff"]["specifier"] == ">=1.0,<1.2"
    assert not any(c.get("counterfactuals") for c in matrix["cells"])
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "ff", "3.0", "def api():\n    return 2\n", ("dep>=2",))
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ">=2.0"\nselect = "all"\n'
        + offline_install(wheels, tooling)
    )
    (root / "tests" / "test_ff.py").write_text(
        "import ff\n\n\ndef test_api():\n    assert ff.api() == 1\n"
    )
    matrix, _ = _run(root)
    assert matrix["ranges"]["ff"]["specifier"] == ">=2.0,<3.0"
    assert not any(c.get("counterfactuals") for c in matrix["cells"])


def test_a_package_that_breaks_a_test_on_every_version_is_set_apart_by_name(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 2: a pinned neighbour broke one test on every ff version, and the tool said
    "none compatible". That test is set apart under the neighbour's name; the range comes
    from the rest."""
    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    fakeframe.simple_wheel(wheels, "dep", "2.0", "")
    for version, value in (("1.0", 1), ("1.1", 1), ("1.2", 2)):
        fakeframe.simple_wheel(wheels, "ff", version, f"def api():\n    return {value}\n")
    root = tmp_path / "p"
    write_project(root, {"conftest.py": "", "tests/test_ff.py": TESTS})
    (root / "m.toml").write_text(
        'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
        '[install]\nrequirements = ["dep==2.0"]\n'
        + offline_install(wheels, tooling).replace("[install]\n", "")
    )
    matrix, output = _run(root, "--dfvc-strategy=bisect")
    assert matrix["ranges"]["ff"]["specifier"] == ">=1.0,<1.2", output
    assert [n.rsplit("::", 1)[-1] for n in matrix["not_version_related"]] == ["test_helper"]
    assert "because of dep 2.0" in output


def test_a_github_actions_merge_runs_the_counterfactual_cells_as_a_second_wave(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Cell jobs run exactly their cells, so no job sees a boundary: the merge, which sees
    them all, runs the boundaries' second runs and counterfactual cells where the Pythons
    are set up, and its ranges equal a local run's."""
    require_pythons(finder, "3.11")
    root = _project(tmp_path, tooling)
    local, _ = _run(root)
    plan = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-gha", "--dfvc-out=.plan")
    assert plan.returncode == 0, plan.output
    downloads = root / "downloads"
    downloads.mkdir()
    # Two jobs of several cells each (as a CI matrix may batch them): still no job sees
    # more than its cells, and the merge has every cell's shard.
    ids = [c["id"] for c in local["cells"]]
    for i, batch in enumerate((ids[:3], ids[3:])):
        cells = ",".join(f"m/{cell}" for cell in batch)
        job = run_matrix(
            root, "--dfvc-matrix=m.toml", f"--dfvc-cell={cells}", f"--dfvc-out=.job{i}"
        )
        assert job.returncode == 0, job.output
        for shard in (root / f".job{i}" / "shards").glob("*.json"):
            shutil.copy(shard, downloads)
    merged = run_matrix(
        root, "--dfvc-matrix=m.toml", "--dfvc-merge=downloads", "--dfvc-out=.merged"
    )
    assert merged.returncode == 0, merged.output
    document = json.loads((root / ".merged" / "results.json").read_text())
    matrix = document["matrices"][0]
    assert matrix["ranges"]["ff"]["specifier"] == local["ranges"]["ff"]["specifier"] == ">=1.0,<2.0"
    assert sum(len(c.get("counterfactuals", [])) for c in matrix["cells"]) == 2


def test_a_neighbour_era_resolution_moved_is_the_culprit(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 1 as the issue met it: each cell resolved as of its release
    (``exclude-newer = "release"``) on an index with upload times; ff 1.2's era brings dep
    2.0, which removed ``helper``. ff 1.2 passes with dep 1.0 set back: compatible."""
    from .test_real_projects import _JsonIndex

    require_pythons(finder, "3.11")
    wheels = tmp_path / "wheels"
    index = _JsonIndex(
        {
            "ff": [
                (fakeframe.simple_wheel(wheels, "ff", v, "def api():\n    return 1\n"), day)
                for v, day in (
                    ("1.0", "2020-01-10T12:00:00Z"),
                    ("1.1", "2021-01-10T12:00:00Z"),
                    ("1.2", "2022-01-10T12:00:00Z"),
                )
            ],
            "dep": [
                (
                    fakeframe.simple_wheel(wheels, "dep", "1.0", "def helper():\n    return 1\n"),
                    "2019-05-01T00:00:00Z",
                ),
                (fakeframe.simple_wheel(wheels, "dep", "2.0", ""), "2021-06-01T00:00:00Z"),
            ],
        }
    )
    try:
        root = tmp_path / "p"
        write_project(root, {"conftest.py": "", "tests/test_ff.py": TESTS})
        (root / "m.toml").write_text(
            'python = ["3.11"]\n[packages.ff]\nversions = ">=1.0"\nselect = "all"\n'
            f'[install]\nindex-url = "{index.url}"\nfind-links = ["{tooling}"]\n'
            'requirements = ["dep"]\nexclude-newer = "release"\n'
        )
        matrix, output = _run(root)
        cells = {c["packages"]["ff"]: c for c in matrix["cells"]}
        assert [cells[v]["resolved"]["dep"] for v in ("1.0", "1.1", "1.2")] == ["1.0", "1.0", "2.0"]
        assert matrix["ranges"]["ff"]["compatible"] == ["1.0", "1.1", "1.2"], output
        helper = next(t for t in cells["1.2"]["tests"] if t["nodeid"].endswith("test_helper"))
        assert helper["outcome"] == "other-package"
        assert helper["cause"]["culprit"]["packages"] == {
            "dep": {"failing": "2.0", "passing": "1.0"}
        }
    finally:
        index.close()
