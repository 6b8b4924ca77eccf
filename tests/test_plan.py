"""Expansion of a matrix into cells, release listing, interpreter discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from pytest_dfvc.index.interpreters import Interpreter, InterpreterFinder
from pytest_dfvc.index.pages import (
    IndexFile,
    Release,
    _AnchorParser,
    _releases_from_files,
    list_releases,
)
from pytest_dfvc.model import Cause
from pytest_dfvc.plan.cell import cell_id
from pytest_dfvc.plan.expand import axis_versions, expand, select_versions, with_newest
from pytest_dfvc.plan.matrix import MatrixError, PackageAxis
from pytest_dfvc.vocabulary import Select

from . import fakeframe
from .helpers import matrix_from_text


class FakeFinder(InterpreterFinder):
    """Interpreters by decree: the minors given exist, the rest do not."""

    def __init__(self, *minors: str) -> None:
        super().__init__()
        self._minors = minors

    def find(self, minor: str) -> Interpreter | None:
        if minor in self._minors:
            return Interpreter(minor=minor, version=f"{minor}.1", path=f"/py/{minor}/bin/python")
        return None


def releases(*versions: str, yanked: tuple[str, ...] = ()) -> list[Release]:
    return [Release(Version(v), v in yanked) for v in versions]


V = ["1.19.0", "1.19.5", "1.20.3", "1.21.0", "1.21.6", "2.0.0", "2.0.2", "2.1.0rc1"]


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("all", V[:7]),
        ("latest-patch", ["1.19.5", "1.20.3", "1.21.6", "2.0.2"]),
        ("latest-minor", ["1.21.6", "2.0.2"]),
    ],
)
def test_select(select: Select, expected: list[str]) -> None:
    chosen = select_versions([Version(v) for v in V if "rc" not in v], select)
    assert [str(v) for v in chosen] == expected


def test_axis_versions_drops_prereleases_and_yanked() -> None:
    from packaging.specifiers import SpecifierSet

    axis = PackageAxis("numpy", SpecifierSet(">=1.20"))
    rel = releases(*V, yanked=("2.0.2",))
    assert axis_versions(axis, rel) == ["1.20.3", "1.21.0", "1.21.6", "2.0.0"]
    asked = PackageAxis("numpy", SpecifierSet(">=2"), prereleases=True, yanked=True)
    assert axis_versions(asked, rel) == ["2.0.0", "2.0.2", "2.1.0rc1"]


def test_cell_ids_are_stable_file_names() -> None:
    assert cell_id("3.9", [("numpy", "1.23.5")], None) == "py3.9-numpy1.23.5"
    assert (
        cell_id("3.11", [("torch", "2.1.2+cu121"), ("numpy", "1.26.4")], "cu121")
        == "py3.11-torch2.1.2_cu121-numpy1.26.4-cu121"
    )
    assert cell_id("3.9", [("x", "../../etc")], None) == "py3.9-x.._.._etc"


def test_expand_product_excludes_and_missing_interpreters(tmp_path: Path) -> None:
    matrix = matrix_from_text(
        tmp_path,
        """
python = ["3.9", "3.12", "3.13"]
[packages.numpy]
versions = ">=1.20"
select = "latest-minor"
[[exclude]]
python = ">=3.12"
numpy = "<2"
""",
    )
    plan = expand(matrix, FakeFinder("3.9", "3.12"), lambda axis, m: releases(*V))
    by_id = {c.id: c for c in plan.cells}
    assert list(by_id) == [
        "py3.9-numpy1.21.6",
        "py3.9-numpy2.0.2",
        "py3.12-numpy1.21.6",
        "py3.12-numpy2.0.2",
        "py3.13-numpy1.21.6",
        "py3.13-numpy2.0.2",
    ]
    assert by_id["py3.9-numpy1.21.6"].status is None
    assert by_id["py3.9-numpy1.21.6"].interpreter == "/py/3.9/bin/python"
    assert by_id["py3.12-numpy1.21.6"].status == "skipped"
    assert by_id["py3.12-numpy1.21.6"].cause == Cause(
        "excluded", "left out by exclude[0] of m.toml"
    )
    assert by_id["py3.13-numpy2.0.2"].status == "unavailable"
    assert "no CPython 3.13 interpreter" in str(by_id["py3.13-numpy2.0.2"].cause)
    assert plan.versions == {"numpy": ("1.21.6", "2.0.2")}


def test_ids_that_collide_once_made_safe_stay_apart(tmp_path: Path) -> None:
    """``cuda = ["a/b", "a_b"]`` used to give one id to two cells: one was lost."""
    matrix = matrix_from_text(
        tmp_path,
        'python = ["3.9"]\ncuda = ["a/b", "a_b", "c"]\n[packages.numpy]\nversions = ["1.0"]\n',
    )
    plan = expand(matrix, FakeFinder("3.9"))
    ids = [c.id for c in plan.cells]
    assert len(set(ids)) == 3
    assert ids[2] == "py3.9-numpy1.0-c"
    assert ids[0].startswith("py3.9-numpy1.0-a_b-") and ids[1].startswith("py3.9-numpy1.0-a_b-")
    # Stable from run to run.
    assert [c.id for c in expand(matrix, FakeFinder("3.9")).cells] == ids


def test_python_specifier_expands_to_interpreters_here(tmp_path: Path) -> None:
    matrix = matrix_from_text(tmp_path, 'python = ">=3.10"\n[packages.numpy]\nversions = ["1.0"]\n')
    plan = expand(matrix, FakeFinder("3.9", "3.10", "3.12"))
    assert plan.pythons == ("3.10", "3.12")
    with pytest.raises(MatrixError, match="no matching interpreter"):
        expand(matrix, FakeFinder("3.9"))


def test_specifier_matching_nothing_is_an_error(tmp_path: Path) -> None:
    matrix = matrix_from_text(tmp_path, 'python = ["3.9"]\n[packages.numpy]\nversions = ">=9"\n')
    with pytest.raises(
        MatrixError, match=r"packages.numpy.versions = '>=9': matches no released version"
    ):
        expand(matrix, FakeFinder("3.9"), lambda axis, m: releases(*V))


def test_find_links_folder_listing(tmp_path: Path) -> None:
    fakeframe.build_all(tmp_path, ("1.0.0", "2.0.0"))
    (tmp_path / "fakeframe-3.0.0.tar.gz").write_text("")
    (tmp_path / "other-1.0-py3-none-any.whl").write_text("")
    found = list_releases("FakeFrame", index_url=None, find_links=(str(tmp_path),))
    assert [str(r.version) for r in found] == ["1.0.0", "2.0.0", "3.0.0"]


def test_yanked_only_when_every_file_is_and_uploaded_with_its_first_file() -> None:
    files = [
        IndexFile("a-1.0-py3-none-any.whl", True, "2020-03-02T10:00:00Z"),
        IndexFile("a-1.0.tar.gz", False, "2020-03-01T09:30:00.123456Z"),
        IndexFile("a-2.0.tar.gz", True, None),
    ]
    assert _releases_from_files("a", files) == [
        Release(Version("1.0"), False, "2020-03-01T09:30:00.123456Z"),
        Release(Version("2.0"), True, None),
    ]


def test_simple_html_page() -> None:
    parser = _AnchorParser()
    parser.feed(
        '<a href="../x/a-1.0.tar.gz#sha256=00">a-1.0.tar.gz</a>'
        '<a href="a-2.0-py3-none-any.whl" data-yanked="" data-requires-python="&gt;=3.8">w</a>'
    )
    assert parser.files == {
        "a-1.0.tar.gz": IndexFile("a-1.0.tar.gz", location="../x/a-1.0.tar.gz"),
        "a-2.0-py3-none-any.whl": IndexFile(
            "a-2.0-py3-none-any.whl",
            yanked=True,
            requires_python=">=3.8",
            location="a-2.0-py3-none-any.whl",
        ),
    }


def test_interpreters_found_by_absolute_path(finder: InterpreterFinder) -> None:
    found = [finder.find(m) for m in ("3.9", "3.10", "3.11", "3.12")]
    present = [f for f in found if f is not None]
    assert present, "at least one CPython 3.9-3.12 is expected on a development machine"
    for interp in present:
        assert Path(interp.path).is_absolute()
        assert interp.version.startswith(interp.minor + ".")
    assert finder.find("3.99") is None


def test_pyenv_versions_folder_is_searched(tmp_path: Path) -> None:
    import sys

    bin_dir = tmp_path / "versions" / "3.77.1" / "bin"
    bin_dir.mkdir(parents=True)
    # A real interpreter behind a pyenv-shaped path, reporting its own version.
    fake = bin_dir / "python3.77"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} -c \'print("3.77.1"); print("{fake}")\'\n')
    fake.chmod(0o755)
    found = InterpreterFinder(pyenv_root=str(tmp_path), uv_dir=str(tmp_path / "none")).find("3.77")
    assert found == Interpreter(minor="3.77", version="3.77.1", path=str(fake))


def test_the_plan_knows_each_axis_newest_release(tmp_path: Path) -> None:
    """Where an open upper bound would reach (issue 34, item 4): the newest release the
    matrix's filters admit, whatever its ``versions`` say; an explicit list asks too."""
    matrix = matrix_from_text(
        tmp_path, 'python = ["3.9"]\n[packages.numpy]\nversions = ">=1.20,<2"\n'
    )
    lister = lambda axis, m: releases(*V)  # noqa: E731
    plan = expand(matrix, FakeFinder("3.9"), lister)
    assert plan.versions["numpy"][-1] == "1.21.6"
    assert plan.newest == {"numpy": "2.0.2"}  # not the pre-release 2.1.0rc1
    assert plan.listed_on
    listed = matrix_from_text(tmp_path, 'python = ["3.9"]\n[packages.numpy]\nversions = ["1.0"]\n')

    def unreadable(axis: PackageAxis, m: object) -> list[Release]:
        raise MatrixError(tmp_path, "x", "y", "the index did not answer")

    assert expand(listed, FakeFinder("3.9"), lister).newest == {}
    assert with_newest(expand(listed, FakeFinder("3.9"), lister), lister).newest == {
        "numpy": "2.0.2"
    }
    assert with_newest(expand(listed, FakeFinder("3.9"), lister), unreadable).newest == {}
