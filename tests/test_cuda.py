"""The CUDA axis, offline: per-variant wheel folders with local versions (+cpu, +cu121),
and a fake nvidia-smi on PATH standing in for a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.plan.precheck import precheck_cell
from pytest_dfvc.plan.uvargs import pin_requirements, source_args

from . import fakeframe
from .helpers import MatrixRunResult, matrix_from_text, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

FAKE_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H200 (UUID: GPU-0000)"; exit 0; fi
echo "NVIDIA H200, 550.54.15"
"""


def test_install_rules_per_variant(tmp_path: Path) -> None:
    matrix = matrix_from_text(
        tmp_path,
        """
python = ["3.11"]
cuda = ["cpu", "cu121", "cu118"]
[packages.torch]
versions = ["2.1.2"]
[packages.tensorflow]
versions = ["2.15.0"]
[install.cuda.cpu]
packages = {tensorflow = "tensorflow-cpu"}
[install.cuda.cu121]
packages = {tensorflow = "tensorflow[and-cuda]"}
[install.cuda.cu118]
index-url = "https://example.org/whl/cu118"
""",
    )

    def cell(cuda: str) -> Cell:
        return Cell(
            matrix="m",
            id="x",
            python="3.11",
            packages=(("torch", "2.1.2"), ("tensorflow", "2.15.0")),
            cuda=cuda,
        )

    assert pin_requirements(matrix, cell("cpu")) == ["torch==2.1.2", "tensorflow-cpu==2.15.0"]
    assert pin_requirements(matrix, cell("cu121")) == [
        "torch==2.1.2",
        "tensorflow[and-cuda]==2.15.0",
    ]
    # The PyTorch family uses uv's --torch-backend unless the variant names its own index.
    assert source_args(matrix, cell("cu121"))[-2:] == ["--torch-backend", "cu121"]
    cu118 = source_args(matrix, cell("cu118"))
    assert "--torch-backend" not in cu118
    assert cu118[cu118.index("--extra-index-url") + 1] == "https://example.org/whl/cu118"
    assert "--only-binary" in cu118 and "tensorflow" in cu118


@pytest.fixture(scope="module")
def variants(
    tmp_path_factory: pytest.TempPathFactory, tooling: Path, finder: InterpreterFinder
) -> Path:
    require_pythons(finder, "3.10")
    folders = fakeframe.build_variants(tmp_path_factory.mktemp("variants"))
    root = tmp_path_factory.mktemp("cuda-project")
    write_project(
        root,
        {
            "conftest.py": "",
            "tests/test_build.py": """
            import pytest
            import fakeframe

            def test_imports():
                assert fakeframe.__version__.startswith("2.")

            @pytest.mark.dfvc_gpu
            def test_on_the_gpu():
                assert fakeframe.device() == "cuda"
            """,
        },
    )
    (root / "m.toml").write_text(
        'python = ["3.10"]\ncuda = ["cpu", "cu121"]\n[packages.fakeframe]\nversions = ["2.0.0", "2.1.0"]\n'
        f'[install]\nno-index = true\nfind-links = ["{tooling}"]\n'
        f'[install.cuda.cpu]\nfind-links = ["{folders["cpu"]}"]\n'
        f'[install.cuda.cu121]\nfind-links = ["{folders["cu121"]}"]\n'
        '[gha.cuda]\ncu121 = ["self-hosted", "gpu"]\n'
    )
    return root


def _cells(result: MatrixRunResult) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result.matrix("m")["cells"]}


def test_cpu_only_host(variants: Path) -> None:
    result = run_matrix(
        variants, "--dfvc-matrix=m.toml", "--dfvc-rerun", env_extra={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.output
    cells = _cells(result)
    missing = cells["py3.10-fakeframe2.0.0-cu121"]
    assert missing["status"] == "unavailable"
    assert (
        missing["cause"]["reason"]
        == "fakeframe 2.0.0 has no cu121 build where this variant installs from"
    )
    gpu_build = cells["py3.10-fakeframe2.1.0-cu121"]
    assert gpu_build["resolved"]["fakeframe"] == "2.1.0+cu121"  # the installed build is recorded
    assert gpu_build["build"] == "cu121"
    assert cells["py3.10-fakeframe2.1.0-cpu"]["resolved"]["fakeframe"] == "2.1.0+cpu"
    skipped = next(t for t in gpu_build["tests"] if t["nodeid"].endswith("test_on_the_gpu"))
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith("dfvc_gpu: no GPU on this host")
    assert gpu_build["device"] == {"device": "no device"}
    assert "not a GPU pass" in gpu_build["note"]
    assert "not a GPU pass" in result.output
    # The job summary on CI must not read as a GPU pass either.
    report = (variants / ".dfvc" / "report.md").read_text()
    assert "`py3.10-fakeframe2.1.0-cu121` — passed (build cu121; a cu121 build tested" in report


def test_host_with_a_gpu(variants: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    result = run_matrix(
        variants,
        "--dfvc-matrix=m.toml",
        "--dfvc-rerun",
        env_extra={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.output
    gpu_build = _cells(result)["py3.10-fakeframe2.1.0-cu121"]
    ran = next(t for t in gpu_build["tests"] if t["nodeid"].endswith("test_on_the_gpu"))
    assert ran["outcome"] == "passed"
    assert gpu_build["device"] == {"device": "gpu", "gpus": ["NVIDIA H200"], "driver": "550.54.15"}
    assert "note" not in gpu_build
    cpu_build = _cells(result)["py3.10-fakeframe2.1.0-cpu"]
    assert (
        next(t for t in cpu_build["tests"] if t["nodeid"].endswith("test_on_the_gpu"))["outcome"]
        == "failed"
    )


def test_variants_map_to_runners(variants: Path) -> None:
    plan = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-matrix=m.toml", "--dfvc-gha", "--dfvc-out=.gha"],
        cwd=variants,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0, plan.stderr
    include = json.loads(plan.stdout)["include"]
    runners = {e["cell"]: e["runs-on"] for e in include}
    assert runners == {
        "m/py3.10-fakeframe2.0.0-cpu": "ubuntu-latest",
        "m/py3.10-fakeframe2.1.0-cpu": "ubuntu-latest",
        "m/py3.10-fakeframe2.1.0-cu121": ["self-hosted", "gpu"],
    }
    assert (variants / ".gha" / "shards" / "m-py3.10-fakeframe2.0.0-cu121.json").exists()


def test_precheck_knows_builds_without_a_label(tmp_path: Path) -> None:
    """PyPI's GPU wheels carry no +cuXYZ label: the runtime wheel they pin tells the build,
    so a variant fed from such an index gets only its own builds."""
    folder = fakeframe.build_unlabelled(tmp_path / "pypi-like")
    matrix = matrix_from_text(
        tmp_path,
        'python = ["3.11"]\ncuda = ["cpu", "cu130", "cu12"]\n'
        '[packages.fakeframe]\nversions = ["2.0.0", "2.1.0"]\n'
        f'[install]\nno-index = true\nfind-links = ["{folder}"]\n',
    )

    def cause(version: str, cuda: str) -> str | None:
        cell = Cell("m", "x", "3.11", (("fakeframe", version),), cuda=cuda)
        found = precheck_cell(matrix, cell, tmp_path / "runtime")
        if found is None:
            return None
        assert found[0] == "unavailable"
        return found[1].reason

    assert cause("2.1.0", "cu130") is None
    assert cause("2.0.0", "cu12") is None
    assert cause("2.0.0", "cu130") == (
        "fakeframe 2.0.0 has no cu130 build where this variant installs from: it resolves to "
        "a cu121 build (nvidia-cuda-runtime-cu12 12.1.105)"
    )
    assert cause("2.1.0", "cpu") == (
        "fakeframe 2.1.0 has no cpu build where this variant installs from: it resolves to "
        "a cu130 build (nvidia-cuda-runtime 13.0.96)"
    )
