"""Which CUDA variant a set of distributions is a build of."""

from __future__ import annotations

import pytest

from pytest_dfvc.index.builds import Build, build_of, matches, mismatch, pinned


@pytest.mark.parametrize(
    ("distributions", "expected"),
    [
        # PyTorch's own indexes: the local label says it.
        ({"torch": "2.5.1+cu124", "numpy": "2.1.3"}, Build("cu124", "torch 2.5.1+cu124")),
        ({"torch": "2.13.0+cpu"}, Build("cpu", "torch 2.13.0+cpu")),
        ({"torch": "2.5.1+rocm6.2"}, Build("rocm6.2", "torch 2.5.1+rocm6.2")),
        # PyPI's builds: the NVIDIA runtime wheel's version does (CUDA 12, then CUDA 13 naming).
        (
            {"torch": "2.5.1", "nvidia-cuda-runtime-cu12": "12.4.127"},
            Build("cu124", "nvidia-cuda-runtime-cu12 12.4.127"),
        ),
        (
            {"torch": "2.14.1", "nvidia-cuda-runtime": "13.0.96"},
            Build("cu130", "nvidia-cuda-runtime 13.0.96"),
        ),
        ({"tensorflow-cpu": "2.15.0", "numpy": "1.26.4"}, None),
        ({"torch": "2.5.1+local.build"}, None),
    ],
)
def test_build_of(distributions: dict[str, str], expected: Build | None) -> None:
    assert build_of(distributions) == expected


@pytest.mark.parametrize(
    ("variant", "build", "expected"),
    [
        ("cu124", "cu124", True),
        ("cu12", "cu124", True),  # a family name takes any of its builds
        ("cuda12", "cu126", True),  # JAX's spelling of it
        ("cuda12", "cpu", False),
        ("cu121", "cu124", False),
        ("cu12", "cu130", False),
        ("cpu", "cu130", False),
        ("cu130", "cpu", False),
        ("cpu", "cpu", True),
        ("gpu", "cu124", True),  # the author's own word: nothing to check it against
    ],
)
def test_matches(variant: str, build: str, expected: bool) -> None:
    assert matches(variant, build) is expected


def test_mismatch_needs_a_variant_and_a_known_build() -> None:
    cuda13 = {"torch": "2.14.1", "nvidia-cuda-runtime": "13.0.96"}
    assert mismatch(None, cuda13) is None
    assert mismatch("cu130", cuda13) is None
    assert mismatch("cpu", cuda13) == Build("cu130", "nvidia-cuda-runtime 13.0.96")
    assert mismatch("cpu", {"tensorflow-cpu": "2.15.0"}) is None


def test_pinned_reads_uv_pip_compile_output() -> None:
    compiled = """\
nvidia-cuda-runtime==13.0.96
    # via torch
Torch[opt]==2.14.1 ; sys_platform == 'linux'
    # via -r -
-e file:///project
"""
    assert pinned(compiled) == {"nvidia-cuda-runtime": "13.0.96", "torch": "2.14.1"}
