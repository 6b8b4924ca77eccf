"""GitHub Actions: the matrix JSON, shards, and a merge that equals a local run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.plan.matrix import load_matrix
from pytest_dfvc.publish.gha import MAX_JOBS, gha_matrix, parse_cell_refs

from .helpers import NO_TEST_PLUGINS, offline_install, require_pythons, run_matrix, write_project

ROOT = Path(__file__).parent.parent


def _plan(tmp_path: Path, count: int, extra: str = "") -> MatrixPlan:
    path = tmp_path / "m.toml"
    path.write_text(
        f'python = ["3.10"]\ncuda = ["cpu", "cu121"]\n[packages.x]\nversions = ["1.0"]\n{extra}'
    )
    matrix = load_matrix(path)
    cells = tuple(
        Cell(
            matrix="m",
            id=f"c{i}",
            python="3.10",
            packages=(("x", "1.0"),),
            cuda="cu121" if i % 2 else "cpu",
        )
        for i in range(count)
    )
    return MatrixPlan(matrix=matrix, cells=cells, versions={"x": ("1.0",)}, pythons=("3.10",))


def test_one_job_per_cell_with_runner_labels(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path, 4, '[gha]\nruns-on = "ubuntu-24.04"\n[gha.cuda]\ncu121 = ["self-hosted", "gpu"]\n'
    )
    include = gha_matrix([plan])["include"]
    assert [(e["cell"], e["runs-on"]) for e in include] == [
        ("m/c0", "ubuntu-24.04"),
        ("m/c2", "ubuntu-24.04"),
        ("m/c1", ["self-hosted", "gpu"]),
        ("m/c3", ["self-hosted", "gpu"]),
    ]
    assert include[0]["python"] == "3.10"
    assert include[0]["artifact"] == "dfvc-m-c0"
    assert len({e["artifact"] for e in include}) == 4


def test_past_256_jobs_cells_are_grouped(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 600)
    include = gha_matrix([plan])["include"]
    assert len(include) <= MAX_JOBS
    cells = [c for e in include for c in e["cell"].split(",")]
    assert sorted(cells) == sorted(f"m/c{i}" for i in range(600))
    assert len({e["artifact"] for e in include}) == len(include)


def test_past_256_jobs_a_job_holds_one_python(tmp_path: Path) -> None:
    """Grouping mixed Pythons (``py3.11-…,py3.12-…`` with ``python: 3.11``): the 3.12 cell
    ran where its interpreter was not set up."""
    path = tmp_path / "m.toml"
    path.write_text('python = ["3.11", "3.12"]\n[packages.x]\nversions = ["1.0"]\n')
    matrix = load_matrix(path)
    cells = tuple(
        Cell(matrix="m", id=f"py{py}-x{i}", python=py, packages=(("x", str(i)),))
        for py in ("3.11", "3.12")
        for i in range(151)
    )
    plan = MatrixPlan(matrix=matrix, cells=cells, versions={}, pythons=("3.11", "3.12"))
    include = gha_matrix([plan])["include"]
    assert len(include) <= MAX_JOBS
    for entry in include:
        assert {ref.split("/")[1].split("-")[0] for ref in entry["cell"].split(",")} == {
            "py" + entry["python"]
        }
    assert sorted(c for e in include for c in e["cell"].split(",")) == sorted(
        f"m/{c.id}" for c in cells
    )


def test_cell_refs() -> None:
    assert parse_cell_refs("numpy/py3.9-numpy1.0, py3.10-numpy2.0") == [
        ("numpy", "py3.9-numpy1.0"),
        (None, "py3.10-numpy2.0"),
    ]


@pytest.mark.parametrize(
    "workflow",
    [
        "docs/github-actions/dfvc.yml",
        ".github/workflows/ci.yml",
        ".github/workflows/dfvc-matrix.yml",
        ".github/workflows/release.yml",
    ],
)
def test_workflows_pass_actionlint(workflow: str) -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(actionlint).exists():
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    result = subprocess.run([actionlint, workflow], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *NO_TEST_PLUGINS, *args],
        cwd=root,
        capture_output=True,
        text=True,
    )


def _comparable(matrix: dict[str, Any]) -> dict[str, Any]:
    """What must match between a merge and a local run (logs and timings differ)."""
    cells = {
        c["id"]: (
            c["status"],
            c.get("cause"),
            [(t["nodeid"], t["outcome"], t.get("cause")) for t in c["tests"]],
        )
        for c in matrix["cells"]
    }
    return {
        "cells": cells,
        "ranges": matrix["ranges"],
        "causes": matrix["causes"],
        "drift": matrix["drift"],
    }


@pytest.mark.slow
def test_cells_run_one_by_one_then_merged_equal_a_local_run(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.9", "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_x.py": """
            import fakeframe

            def test_old(dfvc_record):
                dfvc_record("scaled", fakeframe.scale([1.0])[0])
                assert fakeframe.old_mean([2]) == 2
            """,
        },
    )
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "fake.toml").write_text(
        'python = ["3.9", "3.10"]\n[packages.fakeframe]\nversions = ["1.2.0", "2.0.0", "2.1.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    local = run_matrix(tmp_path, "--dfvc-out=.local")
    assert local.returncode == 0, local.output
    local_results = json.loads((tmp_path / ".local" / "results.json").read_text())

    plan = _pytest(tmp_path, "--dfvc-gha", "--dfvc-out=.plan")
    assert plan.returncode == 0, plan.stderr
    matrix = json.loads(plan.stdout)  # only the JSON on stdout
    cells = [e["cell"] for e in matrix["include"]]
    assert "fake/py3.9-fakeframe2.1.0" not in cells  # not installable: no job...
    assert len(cells) == 5
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for shard in (tmp_path / ".plan" / "shards").glob(
        "*.json"
    ):  # ...its shard comes from the plan job
        shutil.copy(shard, downloads)
    for i, cell in enumerate(cells):
        job = _pytest(tmp_path, f"--dfvc-cell={cell}", f"--dfvc-out=.job{i}")
        assert job.returncode == 0, job.stdout
        for shard in (tmp_path / f".job{i}" / "shards").glob("*.json"):
            shutil.copy(shard, downloads)
    merged = _pytest(tmp_path, "--dfvc-merge=downloads", "--dfvc-out=.merged")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "merged 6 shards" in merged.stdout
    merged_results = json.loads((tmp_path / ".merged" / "results.json").read_text())
    assert _comparable(merged_results["matrices"][0]) == _comparable(local_results["matrices"][0])
    shard = json.loads(next(downloads.glob("fake-py3.10-fakeframe2.0.0.json")).read_text())
    assert shard["runner"]["device"] == "no device" or shard["runner"]["device"] == "gpu"
    assert shard["runner"]["os"]

    # Missing and duplicate shards are reported, not fatal.
    (downloads / "fake-py3.10-fakeframe2.0.0.json").unlink()
    (downloads / "copy").mkdir()
    shutil.copy(downloads / "fake-py3.10-fakeframe1.2.0.json", downloads / "copy")
    partial = _pytest(tmp_path, "--dfvc-merge=downloads", "--dfvc-out=.partial")
    assert "missing shard: fake/py3.10-fakeframe2.0.0" in partial.stdout
    assert "duplicate shard for fake/py3.10-fakeframe1.2.0" in partial.stdout
    # Without every cell's shard, no second wave: the shards are judged as they are.
    assert "no second wave" in partial.stdout

    # Bad shards are refused with a clear message.
    bad = tmp_path / "bad"
    bad.mkdir()
    good = json.loads((downloads / "fake-py3.10-fakeframe1.2.0.json").read_text())
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("schema", {"schema": 99}, "shard schema 99"),
        ("other", {"matrix": "other"}, "a shard of matrix 'other'"),
        ("edited", {"matrix_digest": "0" * 64}, "made from another version of"),
        (
            "escape",
            {"cell": {**good["cell"], "id": "../../etc"}},
            "the shard's cell has no valid id",
        ),
    ]
    for name, change, message in cases:
        for old in bad.glob("*.json"):
            old.unlink()
        (bad / f"{name}.json").write_text(json.dumps({**good, **change}))
        refused = _pytest(tmp_path, "--dfvc-merge=bad", "--dfvc-out=.bad")
        assert refused.returncode == pytest.ExitCode.USAGE_ERROR
        assert message in refused.stderr, refused.stderr
    assert not (tmp_path / "etc").exists()


def test_the_documented_caller_passes_the_reusable_workflows_inputs(tmp_path: Path) -> None:
    """actionlint checks a call to a local reusable workflow against its inputs and the
    permissions its jobs ask for: the documented caller beside the workflow in a repository
    of its own; a misspelt input, and a caller that does not grant ``id-token: write``, are
    caught the same way."""
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(actionlint).exists():
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(ROOT / ".github" / "workflows" / "dfvc-matrix.yml", workflows)
    caller = (ROOT / "docs" / "github-actions" / "dfvc-caller.yml").read_text()
    # The documented call names the workflow's repository at a commit; here the same
    # workflow is beside the caller, so actionlint checks inputs and permissions against it.
    remote = "uses: <owner>/pytest-dfvc/.github/workflows/dfvc-matrix.yml@<commit>  # <tag>"
    assert remote in caller
    caller = caller.replace(remote, "uses: ./.github/workflows/dfvc-matrix.yml")
    (workflows / "caller.yml").write_text(caller)
    (workflows / "misspelt.yml").write_text(caller.replace("matrix: matrices", "matrixx: m"))
    good = subprocess.run(
        [actionlint, str(workflows / "caller.yml")], cwd=tmp_path, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run(
        [actionlint, str(workflows / "misspelt.yml")], cwd=tmp_path, capture_output=True, text=True
    )
    assert 'input "matrixx" is not defined' in bad.stdout
    (workflows / "ungranted.yml").write_text(caller.replace("      id-token: write\n", ""))
    ungranted = subprocess.run(
        [actionlint, str(workflows / "ungranted.yml")], cwd=tmp_path, capture_output=True, text=True
    )
    assert 'nested job "source"' in ungranted.stdout
    assert '"id-token: write"' in ungranted.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "workflow", ["docs/github-actions/dfvc.yml", ".github/workflows/dfvc-matrix.yml"]
)
def test_the_documented_plan_step_fails_when_planning_fails(tmp_path: Path, workflow: str) -> None:
    """``echo "matrix=$(pytest --dfvc-gha)"`` exited 0 with an empty matrix when planning
    failed. The workflow's plan step, run as GitHub runs it (bash -e), must fail."""
    text = (ROOT / workflow).read_text()
    step = text.split("id: plan", 1)[1].split("run: |\n", 1)[1]
    lines = []
    for line in step.splitlines():
        if not line.startswith("          "):
            break
        lines.append(line.strip())
    assert any(line.startswith('matrix="$(pytest --dfvc-') for line in lines), lines
    write_project(tmp_path, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ">=1"\n'
        '[install]\nindex-url = "http://127.0.0.1:9/simple"\n'
    )
    output = tmp_path / "github-output"
    script = "\n".join(lines).replace("pytest ", f"{sys.executable} -m pytest ")
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DFVC_"))},
            "GITHUB_OUTPUT": str(output),
            # The reusable workflow's inputs, as the caller's defaults give them.
            "DFVC_MATRIX": "matrices",
            "DFVC_ARGS": "",
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert not output.exists() or "include" not in output.read_text()


@pytest.mark.slow
def test_a_cell_job_runs_exactly_its_cells_whatever_the_strategy(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Bisect or --dfvc-refine set for the project (ini, the workflow's pytest-args) stay
    out of a --dfvc-cell job: a 3-cell job under bisect used to skip its middle cell, and a
    refine step planned releases (and shards) the merge does not know (issue 34, item 5)."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\ndfvc_strategy = bisect\n",
            "conftest.py": "",
            "tests/test_x.py": "import fakeframe\n\ndef test_old():\n    assert fakeframe.old_mean([2]) == 2\n",
        },
    )
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "fake.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.1.0", "1.2.0", "2.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    cells = "fake/py3.10-fakeframe1.1.0,fake/py3.10-fakeframe1.2.0,fake/py3.10-fakeframe2.0.0"
    job = _pytest(tmp_path, f"--dfvc-cell={cells}", "--dfvc-refine", "--dfvc-out=.job")
    assert job.returncode == 0, job.stdout + job.stderr
    assert "runs exactly the cells it names" in job.stdout
    shards = sorted(p.name for p in (tmp_path / ".job" / "shards").glob("*.json"))
    assert shards == [
        "fake-py3.10-fakeframe1.1.0.json",
        "fake-py3.10-fakeframe1.2.0.json",
        "fake-py3.10-fakeframe2.0.0.json",
    ]
    statuses = [json.loads((tmp_path / ".job" / "shards" / s).read_text()) for s in shards]
    assert [s["cell"]["status"] for s in statuses] == ["passed", "passed", "failed"]
    merged = _pytest(tmp_path, "--dfvc-merge=.job/shards", "--dfvc-out=.merged")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "merged 3 shards" in merged.stdout
