"""What a plan downloads and whether the disk has room (issue 29, item 4): the index's file
sizes of each cell's pinned wheels and of what they pin exactly, counted once, and a run
that would fill the disk stopped before it builds anything."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.uvtool import in_uv_cache, package_folders
from pytest_dfvc.plan import downloads
from pytest_dfvc.plan.availability import IndexReader
from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.plan.downloads import cell_files, disk_plan, header_line, shortage, size_text

from . import fakeframe
from .helpers import matrix_from_text, offline_install, require_pythons, write_project


def _wheels(folder: Path) -> dict[str, int]:
    """``big`` 1.0 and 2.0 pin ``biglib`` exactly (as torch pins its CUDA libraries) and ask
    for ``small`` loosely; sizes as the folder holds them."""
    for version, lib in (("1.0", "1.0"), ("2.0", "2.0")):
        fakeframe.simple_wheel(folder, "biglib", lib, "# " + "x" * 5000 * int(lib[0]))
        requires = (f"biglib=={lib}", "small>=1", "never==1.0; python_version < '3.0'")
        fakeframe.simple_wheel(folder, "big", version, "", requires)
    fakeframe.simple_wheel(folder, "small", "1.0", "")
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def _plan(tmp_path: Path) -> tuple[MatrixPlan, dict[str, int]]:
    sizes = _wheels(tmp_path / "wheels")
    text = 'python = ["3.11"]\n[packages.big]\nversions = ["1.0", "2.0"]\n'
    text += offline_install(tmp_path / "wheels")
    matrix = matrix_from_text(tmp_path, text)
    cells = tuple(
        Cell("m", f"py3.11-big{v}", "3.11", (("big", v),), interpreter="python3.11")
        for v in ("1.0", "2.0")
    )
    return MatrixPlan(matrix, cells), sizes


def test_a_cell_counts_its_pins_and_what_they_pin_exactly(tmp_path: Path) -> None:
    plan, sizes = _plan(tmp_path)
    files = cell_files(plan.matrix, plan.cells[1], IndexReader(tmp_path))
    names = {"big-2.0-py3-none-any.whl", "biglib-2.0-py3-none-any.whl"}
    assert files.files == {n: (sizes[n], False) for n in names}


def test_the_plan_counts_each_wheel_once_and_says_the_room_there_is(tmp_path: Path) -> None:
    plan, sizes = _plan(tmp_path)
    disk = disk_plan([plan], IndexReader(tmp_path), tmp_path / "uv-cache")
    wheels = [n for n in sizes if not n.startswith("small")]
    assert disk.local == sum(sizes[n] for n in wheels)
    assert disk.download == disk.cached == 0
    assert (
        disk.per_cell[("m", "py3.11-big1.0")]
        == sizes["big-1.0-py3-none-any.whl"] + sizes["biglib-1.0-py3-none-any.whl"]
    )
    assert disk.needed == 2 * disk.local
    assert disk.free is not None and disk.free > 0
    # Nothing over the network: no downloads line.
    assert header_line(disk, 2) is None
    assert shortage(disk) is None


def test_a_plan_larger_than_the_free_room_is_refused_with_what_to_do(tmp_path: Path) -> None:
    disk = downloads.DiskPlan(
        {}, download=21 * 10**9, cached=3 * 10**9, local=0, cache=tmp_path, free=12 * 10**9
    )
    assert header_line(disk, 7) == (
        f"dfvc: downloads: 21 GB for 7 cells; 3.0 GB already in uv's cache ({tmp_path}); "
        "12 GB free there"
    )
    warm = downloads.DiskPlan(
        {}, download=0, cached=159 * 10**6, local=0, cache=tmp_path, free=10**9
    )
    assert header_line(warm, 9) == (
        f"dfvc: downloads: none, the wheels of 9 cells (159 MB) are in uv's cache ({tmp_path}); "
        "1.0 GB free there"
    )
    message = shortage(disk)
    assert message is not None
    assert f"need about 42 GB in uv's cache at {tmp_path}" in message
    assert "12 GB are free there; nothing was built" in message
    assert "uv cache prune" in message and "UV_CACHE_DIR" in message


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (999, "999 B"),
        (1_500, "1.5 kB"),
        (12_345, "12 kB"),
        (210_000_000, "210 MB"),
        (3_400_000_000, "3.4 GB"),
    ],
)
def test_sizes_read_as_people_write_them(size: int, text: str) -> None:
    assert size_text(size) == text


def test_a_run_that_would_fill_the_disk_stops_before_building_anything(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tooling: Path,
    finder: InterpreterFinder,
) -> None:
    """The free room, read at its one place, is smaller than the cells' wheels: the run
    says how much is needed and where, and no cell folder or environment exists after."""
    require_pythons(finder, "3.11")
    root = pytester.path
    _wheels(root / "wheels")
    write_project(root, {"tests/test_big.py": "import big\n\ndef test_big():\n    pass\n"})
    text = 'python = ["3.11"]\n[packages.big]\nversions = ["1.0", "2.0"]\n'
    (root / "m.toml").write_text(text + offline_install(root / "wheels", tooling))
    monkeypatch.setattr(downloads, "free_space", lambda where: 1000)
    result = pytester.runpytest_inprocess("--dfvc-matrix=m.toml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error = result.stderr.str()
    assert "dfvc: the cells need about" in error and "1.0 kB are free there" in error
    assert not (root / ".dfvc" / "cells").exists()
    assert not (root / ".dfvc" / "envs").exists()


def test_a_wheel_in_uvs_cache_is_no_download(tmp_path: Path) -> None:
    """uv names a cached wheel by its version and its file name's tags, compressed as the
    file name gives them (read from its layout: ``wheels-v*/<index>/<name>/``)."""
    bucket = tmp_path / "wheels-v8" / "pypi" / "triton"
    bucket.mkdir(parents=True)
    (bucket / "3.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.http").touch()
    tags = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
    assert in_uv_cache(tmp_path, f"triton-3.1.0-{tags}.whl")
    assert not in_uv_cache(tmp_path, f"triton-3.2.0-{tags}.whl")
    assert not in_uv_cache(tmp_path, "triton-3.1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert not in_uv_cache(tmp_path / "elsewhere", f"triton-3.1.0-{tags}.whl")


def test_the_packages_asked_for_are_found_without_listing_every_index(tmp_path: Path) -> None:
    """With the names a plan needs, each index folder is asked for those alone: the same
    folders as a full listing gives for them, and no other package's."""
    for holder in ("pypi", "index/aa11", "index/bb22", "index/cc33"):
        for name in ("numpy", "scipy"):
            if holder != "index/cc33" or name == "scipy":
                (tmp_path / "wheels-v8" / holder / name).mkdir(parents=True)
    every = package_folders(tmp_path)
    asked = package_folders(tmp_path, ["numpy", "missing"])
    assert set(asked) == {"numpy"}
    assert sorted(asked["numpy"]) == sorted(every["numpy"])
    assert len(asked["numpy"]) == 3 and len(every["scipy"]) == 4


def test_wheels_from_another_index_are_not_counted_as_pypis(tmp_path: Path) -> None:
    """PyTorch's CPU wheels (or a CUDA variant's) come from another index: their size is
    unknown here, never the size of the build this index lists."""
    plan, _ = _plan(tmp_path)
    cpu = replace(plan.cells[0], torch_backend="cpu")
    files = cell_files(plan.matrix, cpu, IndexReader(tmp_path))
    assert files.files == {} and files.unsized == 1
