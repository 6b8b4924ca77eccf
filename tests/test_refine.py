"""The refine step as pure functions: which gaps, which releases, which new cells."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from packaging.version import Version

from pytest_dfvc.index.pages import Release
from pytest_dfvc.model import RangeJSON
from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.plan.refine import Gap, gaps, refined_plan, releases_between

from .helpers import matrix_from_text


def plan(tmp_path: Path) -> MatrixPlan:
    matrix = matrix_from_text(
        tmp_path,
        'python = ["3.9", "3.10"]\n[packages.pandas]\nversions = ["1.1.5", "1.5.3", "2.0.3"]\n',
    )
    cells = tuple(
        Cell("m", f"py{py}-pandas{v}", py, (("pandas", v),), interpreter=f"/py{py}")
        for py in ("3.9", "3.10")
        for v in ("1.1.5", "1.5.3", "2.0.3")
    )
    return MatrixPlan(matrix, cells, {"pandas": ("1.1.5", "1.5.3", "2.0.3")}, ("3.9", "3.10"))


def test_gaps_are_the_untested_stretches_around_the_range(tmp_path: Path) -> None:
    p = plan(tmp_path)
    ranges = {
        "pandas": {
            "upgrade_between": ["1.5.3", "2.0.3"],
            "compatible": ["1.5.3"],
            "incompatible": ["1.1.5", "2.0.3"],
        }
    }
    assert gaps(cast(dict[str, RangeJSON], ranges), p) == [
        Gap("pandas", "1.5.3", "2.0.3"),
        Gap("pandas", "1.1.5", "1.5.3"),
    ]
    # A gap already filled is not refined again.
    filled = MatrixPlan(p.matrix, p.cells, p.versions, p.pythons, {"pandas": (("1.5.3", "2.0.3"),)})
    assert gaps(cast(dict[str, RangeJSON], ranges), filled) == [Gap("pandas", "1.1.5", "1.5.3")]


def test_releases_between_follow_the_matrix_filters(tmp_path: Path) -> None:
    axis = plan(tmp_path).matrix.packages[0]
    releases = [
        Release(Version(v), yanked=(v == "2.0.1"))
        for v in ("1.5.3", "2.0.0rc1", "2.0.0", "2.0.1", "2.0.2", "2.0.3")
    ]
    assert releases_between(axis, releases, Gap("pandas", "1.5.3", "2.0.3")) == ["2.0.0", "2.0.2"]


def test_refined_plan_adds_a_cell_per_line_and_marks_the_gap(tmp_path: Path) -> None:
    p = plan(tmp_path)
    refined, added = refined_plan(p, Gap("pandas", "1.5.3", "2.0.3"), ["2.0.0", "2.0.2"])
    assert [c.id for c in added] == [
        "py3.9-pandas2.0.0",
        "py3.9-pandas2.0.2",
        "py3.10-pandas2.0.0",
        "py3.10-pandas2.0.2",
    ]
    assert added[0].interpreter == "/py3.9"
    assert refined.versions["pandas"] == ("1.1.5", "1.5.3", "2.0.0", "2.0.2", "2.0.3")
    assert refined.dense["pandas"] == (("1.5.3", "2.0.3"),)
    # In the plan's own order.
    assert [c.id for c in refined.cells][:5] == [
        "py3.9-pandas1.1.5",
        "py3.9-pandas1.5.3",
        "py3.9-pandas2.0.0",
        "py3.9-pandas2.0.2",
        "py3.9-pandas2.0.3",
    ]
