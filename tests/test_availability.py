"""Availability from the index's file lists: the same answer uv gives, without resolving.

Each case is a release shaped as real ones are (a wheel for one CPython only, abi3, a
``requires-python`` only the metadata states, a sdist alone, a dependency to resolve) in a
find-links folder; the index's answer is compared with ``uv pip compile``'s on the same cell.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest
from packaging import tags

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.index.pages import IndexFile, project_files, wheel_metadata
from pytest_dfvc.model import Cause
from pytest_dfvc.plan.availability import INSTALLABLE, IndexReader, from_index
from pytest_dfvc.plan.cell import Cell
from pytest_dfvc.plan.expand import expand
from pytest_dfvc.plan.matrix import Matrix
from pytest_dfvc.plan.precheck import precheck, precheck_cell, screen

from .helpers import matrix_from_text, offline_install, run_matrix, write_project

PYTHONS = ("3.9", "3.11", "3.12")


def platform_tag() -> str:
    return next(t for t in tags.platform_tags() if t.startswith("manylinux"))


def shaped_wheel(
    folder: Path,
    version: str,
    tag: str = "py3-none-any",
    *,
    requires_python: str | None = None,
    requires: tuple[str, ...] = (),
    name: str = "shaped",
) -> Path:
    """An installable one-module wheel of ``name`` with these tags and metadata."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n",
        f"{dist_info}/RECORD": "",
    }
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shaped")
    plat = platform_tag()
    shaped_wheel(folder, "1.0")  # installs on every Python
    shaped_wheel(folder, "2.0", f"cp311-cp311-{plat}")  # CPython 3.11 only
    shaped_wheel(folder, "3.0", requires_python=">=3.12")  # said in the metadata only
    shaped_wheel(folder, "4.0", f"cp310-abi3-{plat}")  # 3.10 and newer
    (folder / "shaped-5.0.tar.gz").write_bytes(b"")  # a sdist alone: no wheel anywhere
    shaped_wheel(folder, "6.0", requires=("absent>=1",))  # a dependency nobody has
    shaped_wheel(folder, "7.0", "py2-none-any")  # Python 2 only
    shaped_wheel(folder, "8.0", requires=('absent; python_version < "3.0"',))  # none applies
    shaped_wheel(folder, "9.0", f"cp39-cp39-{plat}", requires=("helper==1.0",))
    shaped_wheel(folder, "1.0", name="helper")
    return folder


def shaped_matrix(folder: Path, shaped: Path, finder: InterpreterFinder, extra: str = "") -> Matrix:
    pythons = [m for m in PYTHONS if finder.find(m) is not None]
    if len(pythons) < 2:
        pytest.skip("needs two of CPython 3.9, 3.11, 3.12")
    versions = ", ".join(f'"{v}.0"' for v in range(1, 10))
    return matrix_from_text(
        folder,
        f"python = {pythons!r}\n".replace("'", '"')
        + f"[packages.shaped]\nversions = [{versions}]\n"
        + offline_install(shaped)
        + extra,
    )


def test_the_index_answers_as_uv_does(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    matrix = shaped_matrix(tmp_path, shaped, finder)
    plan = expand(matrix, finder)
    reader = IndexReader(tmp_path, tmp_path / "cache" / "index")
    decided = 0
    for cell in plan.cells:
        from_uv = precheck_cell(matrix, cell, tmp_path / "runtime")
        answer = from_index(matrix, cell, reader)
        if answer is None:
            continue
        decided += 1
        if answer == INSTALLABLE:
            assert from_uv is None, cell.id
        else:
            assert isinstance(answer, tuple)
            assert from_uv is not None, cell.id
            assert (answer[0], answer[1].category) == (from_uv[0], from_uv[1].category), cell.id
            assert answer[1].reason.startswith("shaped "), answer
    # Releases 1, 2, 4, 5, 7 and 8 are decided on every Python; 9 where it has no wheel;
    # 6 never (a dependency to resolve), nor 9 on 3.9.
    assert decided >= 6 * len(plan.pythons)
    by_id = {c.id: from_index(matrix, c, reader) for c in plan.cells}
    assert all(a is None for i, a in by_id.items() if i.endswith("shaped6.0"))
    assert all(a is None for i, a in by_id.items() if i == "py3.9-shaped9.0")


def test_what_the_index_says_of_each_shape(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    matrix = shaped_matrix(tmp_path, shaped, finder)
    reader = IndexReader(tmp_path)

    def answer(python: str, version: str) -> object:
        cell = Cell(matrix.name, "c", python, (("shaped", version),), interpreter_version=None)
        return from_index(matrix, cell, reader)

    assert answer("3.9", "1.0") == INSTALLABLE
    assert answer("3.9", "2.0") == (
        "unavailable",
        Cause("python-version", "shaped 2.0 has no wheel for CPython 3.9 on this platform"),
    )
    assert answer("3.11", "2.0") == INSTALLABLE
    assert answer("3.9", "4.0") == (
        "unavailable",
        Cause("python-version", "shaped 4.0 has no wheel for CPython 3.9 on this platform"),
    )
    assert answer("3.13", "4.0") == INSTALLABLE  # abi3 from 3.10 on
    assert answer("3.12", "5.0")[0] == "unavailable"  # type: ignore[index]
    assert answer("3.12", "7.0")[0] == "unavailable"  # type: ignore[index]
    assert answer("3.11", "3.0") is None  # the metadata shuts 3.11 out: uv says why
    assert answer("3.12", "3.0") == INSTALLABLE
    assert answer("3.12", "6.0") is None
    assert answer("3.12", "8.0") == INSTALLABLE  # its one dependency is for Python 2


def test_what_the_index_cannot_tell_is_left_to_uv(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    constrained = shaped_matrix(tmp_path, shaped, finder, 'constraints = ["helper<2"]\n')
    reader = IndexReader(tmp_path)
    cell = Cell(constrained.name, "c", "3.12", (("shaped", "1.0"),))
    assert from_index(constrained, cell, reader) is None  # more than the pins to resolve
    missing = Cell(constrained.name, "c", "3.12", (("shaped", "2.0"),))
    assert from_index(constrained, missing, reader) == (  # a missing wheel stays missing
        "unavailable",
        Cause("python-version", "shaped 2.0 has no wheel for CPython 3.12 on this platform"),
    )
    cuda = Cell(constrained.name, "c", "3.12", (("shaped", "1.0"),), cuda="cpu")
    assert from_index(constrained, cuda, reader) is None
    (tmp_path / "uv.toml").write_text('exclude-newer = "2020-01-01"\n')
    narrowed = IndexReader(tmp_path)
    assert from_index(constrained, missing, narrowed) is None  # uv may drop more files


def test_an_upload_cutoff_near_a_files_upload_is_left_to_uv(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    matrix = shaped_matrix(tmp_path, shaped, finder, 'exclude-newer = "2024-03-01"\n')
    reader = IndexReader(tmp_path)
    cell = Cell(matrix.name, "c", "3.12", (("shaped", "1.0"),))
    # A find-links folder gives no upload times: with a cut-off, only uv knows.
    assert from_index(matrix, cell, reader) is None


def test_wheel_metadata_from_a_folder_and_kept(tmp_path: Path, shaped: Path) -> None:
    files = project_files("shaped", find_links=(str(shaped),))
    wheel = files["shaped-3.0-py3-none-any.whl"]
    found = wheel_metadata(wheel, tmp_path)
    assert found is not None and found.requires_python == ">=3.12"
    assert wheel_metadata(files["shaped-6.0-py3-none-any.whl"]).requires_dist == (  # type: ignore[union-attr]
        "absent>=1",
    )
    assert wheel_metadata(IndexFile("x-1.0.tar.gz", location=str(shaped))) is None
    kept = list((tmp_path / "metadata").iterdir())
    assert len(kept) == 1


def test_a_warm_plan_resolves_nothing_and_a_changed_release_resolves_again(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for wheel in shaped.iterdir():
        os.link(wheel, folder / wheel.name)
    matrix = shaped_matrix(tmp_path, folder, finder)
    plan = expand(matrix, finder)
    reader = IndexReader(tmp_path, tmp_path / "cache" / "index")
    first, counts = precheck([plan], tmp_path / "runtime", 2, reader=reader)
    assert counts.resolved >= 2 * len(plan.pythons)  # 6.0 and 9.0 at least
    again, counts_again = precheck(
        [plan], tmp_path / "runtime", 2, reader=IndexReader(tmp_path, tmp_path / "cache" / "index")
    )
    assert counts_again.resolved == 0
    assert counts_again.kept == counts.resolved
    assert [(c.id, c.status, c.cause) for c in again[0].cells] == [
        (c.id, c.status, c.cause) for c in first[0].cells
    ]
    # A wheel added to release 6.0 changes its files: its answers are not reused.
    shaped_wheel(folder, "6.0", f"cp39-cp39-{platform_tag()}")
    time.sleep(0.01)
    _, counts_changed = precheck(
        [plan], tmp_path / "runtime", 2, reader=IndexReader(tmp_path, tmp_path / "cache" / "index")
    )
    assert 0 < counts_changed.resolved < counts.resolved


def test_list_says_how_cells_were_checked(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder
) -> None:
    shaped_matrix(tmp_path, shaped, finder)
    (tmp_path / "matrices").mkdir()
    (tmp_path / "m.toml").rename(tmp_path / "matrices" / "shaped.toml")
    write_project(tmp_path)
    result = run_matrix(tmp_path, "--dfvc-list")
    assert result.returncode == 0, result.output
    assert "cells can be installed..." in result.output
    line = next(x for x in result.output.splitlines() if " cells checked in " in x)
    assert "from the index's file lists" in line and "resolved with uv" in line
    assert "shaped2.0  unavailable: shaped 2.0 has no wheel for CPython" in result.output


def test_an_upload_cutoff_far_from_the_uploads_is_decided_and_a_later_release_left_to_uv(
    tmp_path: Path,
) -> None:
    from .test_real_projects import _JsonIndex

    wheels = tmp_path / "wheels"
    old = shaped_wheel(wheels, "1.0", f"cp311-cp311-{platform_tag()}")
    new = shaped_wheel(wheels, "2.0")
    index = _JsonIndex({"shaped": [(old, "2020-01-01T00:00:00Z"), (new, "2025-01-01T00:00:00Z")]})
    try:
        matrix = matrix_from_text(
            tmp_path,
            'python = ["3.12"]\n[packages.shaped]\nversions = ["1.0", "2.0"]\n'
            f'[install]\nindex-url = "{index.url}"\nexclude-newer = "2024-03-01"\n',
        )
        reader = IndexReader(tmp_path)
        before = Cell(matrix.name, "c", "3.12", (("shaped", "1.0"),))
        assert from_index(matrix, before, reader) == (
            "unavailable",
            Cause("python-version", "shaped 1.0 has no wheel for CPython 3.12 on this platform"),
        )
        after = Cell(matrix.name, "c", "3.12", (("shaped", "2.0"),))
        assert from_index(matrix, after, reader) is None  # not there as of the cut-off
    finally:
        index.close()


def test_a_run_screens_cells_without_reading_any_wheels_metadata(
    tmp_path: Path, shaped: Path, finder: InterpreterFinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run only needs the index's negatives (it learns the rest from each cell's own
    install): fetching every pinned wheel's metadata cost a cold run 1.6 s before its first
    cell, for answers it threw away."""
    matrix = shaped_matrix(tmp_path, shaped, finder)
    plan = expand(matrix, finder)
    reader = IndexReader(tmp_path)
    read: list[str] = []
    monkeypatch.setattr(reader, "metadata", lambda file: read.append(file.filename))
    screened = screen([plan], reader)
    assert read == []
    unavailable = {c.id for c in screened[0].cells if c.status == "unavailable"}
    assert {"py3.9-shaped2.0", "py3.9-shaped5.0"} <= unavailable
    assert not any(c.status for c in screened[0].cells if c.id.endswith("shaped1.0"))


def test_an_index_nobody_answers_is_tried_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead index cost every page its retries (3.5 s each, three pages before the first
    cell): once a host refused every try (or its name did not resolve), its other pages
    fail at once, with the same words. A dropped connection may be the load of the moment:
    each page is tried again."""
    import socket
    import urllib.error
    import urllib.request

    from pytest_dfvc.index import pages

    monkeypatch.setattr(pages, "_unreachable", {}, raising=False)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # pages sleeps through time
    asked: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> None:
        asked.append(request.full_url)
        if "dropping" in request.full_url:
            raise ConnectionResetError("connection reset by peer")
        if "nameless" in request.full_url:
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    for host in ("127.0.0.1:9", "nameless.invalid", "dropping.example"):
        asked.clear()
        for page in ("numpy", "scipy"):
            with pytest.raises(pages.IndexUnavailable, match="index unreachable after 3 tries"):
                pages._fetch(f"http://{host}/simple/{page}/")
        remembered = host != "dropping.example"
        assert len(asked) == (3 if remembered else 6), (host, asked)
