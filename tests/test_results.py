"""Aggregation as pure functions: a matrix of the results file from hand-made cells (ranges,
cause groups, violations, module errors counted against their tests) and the merge of CI
shards. No environment is built."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pytest_dfvc.model import Cause, CauseJSON, CellJSON, OutcomeJSON
from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.verdicts.documents import merged_document
from pytest_dfvc.verdicts.results import matrix_json

from .helpers import matrix_from_text

VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
MISSING: CauseJSON = {
    "category": "missing-api",
    "api": "x.old",
    "exception": "AttributeError",
    "message": "module 'x' has no attribute 'old'",
    "location": "src/p.py:3",
}


def _plan(tmp_path: Path, extra: str = "") -> MatrixPlan:
    matrix = matrix_from_text(
        tmp_path,
        'python = ["3.10"]\n[packages.x]\nversions = ["1.0.0", "1.1.0", "2.0.0"]\n' + extra,
    )
    cells = tuple(Cell("m", f"py3.10-x{v}", "3.10", (("x", v),)) for v in VERSIONS)
    return MatrixPlan(matrix, cells, {"x": VERSIONS}, ("3.10",))


def _cell(version: str, *tests: OutcomeJSON) -> CellJSON:
    failing = any(t["outcome"] in ("failed", "error") for t in tests)
    return {
        "id": f"py3.10-x{version}",
        "python": "3.10.13",
        "packages": {"x": version},
        "cuda": None,
        "status": "failed" if failing else "passed",
        "cause": None,
        "resolved": {"x": version},
        "tests": list(tests),
        "duration": 1.0,
    }


def _ok(nodeid: str) -> OutcomeJSON:
    return {"nodeid": nodeid, "outcome": "passed"}


def _broken(nodeid: str, cause: CauseJSON = MISSING) -> OutcomeJSON:
    return {"nodeid": nodeid, "outcome": "failed", "cause": cause}


def test_ranges_boundaries_and_one_cause_group_from_hand_made_cells(tmp_path: Path) -> None:
    cells = [
        _cell("1.0.0", _ok("t::a"), _ok("t::b")),
        _cell("1.1.0", _ok("t::a"), _ok("t::b")),
        _cell("2.0.0", _ok("t::a"), _broken("t::b")),
    ]
    matrix = matrix_json(_plan(tmp_path), cells)
    x = matrix["ranges"]["x"]
    # An explicit version list may leave releases between 1.1.0 and 2.0.0 untested: the
    # specifier stops at the newest pass, and the boundary is said to lie in the gap.
    assert (x["specifier"], x["compatible"], x["incompatible"]) == (
        ">=1.0.0,<=1.1.0",
        ["1.0.0", "1.1.0"],
        ["2.0.0"],
    )
    assert (x.get("upgrade_boundary"), x.get("upgrade_between")) == ("2.0.0", ["1.1.0", "2.0.0"])
    # Per test: t::a passes everywhere, t::b carries the boundary.
    assert x["tests"]["t::a"]["incompatible"] == []
    assert x["tests"]["t::b"]["incompatible"] == ["2.0.0"]
    assert matrix["ranges"]["python"]["compatible"] == ["3.10"]
    (group,) = matrix["causes"]
    assert (group["category"], group.get("api"), group["tests"], group["cells"]) == (
        "missing-api",
        "x.old",
        ["t::b"],
        ["py3.10-x2.0.0"],
    )
    assert group["versions"] == {"x": ["2.0.0"], "python": ["3.10"]}
    assert matrix["violations"] == [] and matrix["not_version_related"] == []


def test_a_failure_inside_the_matrixs_expect_is_a_violation(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 'expect = ">=1.0,<3"\n')
    cells = [
        _cell("1.0.0", _ok("t::a")),
        _cell("1.1.0", _ok("t::a")),
        _cell("2.0.0", _broken("t::a")),
    ]
    matrix = matrix_json(plan, cells)
    assert matrix["violations"] == [
        {
            "nodeid": "t::a",
            "cell": "py3.10-x2.0.0",
            "declared": {"x": "<3,>=1.0"},
            "by": "expect",
            "cause": MISSING,
        }
    ]
    (declared,) = matrix["declared"]
    assert declared["fails_inside"] == ["2.0.0"]


def test_a_module_that_failed_to_import_counts_against_each_of_its_tests(tmp_path: Path) -> None:
    import_error: CauseJSON = {
        "category": "import-path",
        "exception": "ImportError",
        "message": "cannot import name 'old' from 'x'",
        "api": "x.old",
    }
    module: OutcomeJSON = {
        "nodeid": "tests/test_m.py",
        "outcome": "error",
        "collect_error": True,
        "cause": import_error,
    }
    cells = [
        _cell("1.0.0", _ok("tests/test_m.py::t1"), _ok("tests/test_m.py::t2")),
        _cell("1.1.0", _ok("tests/test_m.py::t1"), _ok("tests/test_m.py::t2")),
        _cell("2.0.0", module),
    ]
    matrix = matrix_json(_plan(tmp_path), cells)
    last = matrix["cells"][-1]
    assert [(t["nodeid"], t["outcome"], t.get("from_module")) for t in last["tests"]] == [
        ("tests/test_m.py::t1", "error", "tests/test_m.py"),
        ("tests/test_m.py::t2", "error", "tests/test_m.py"),
    ]
    assert last["status"] == "failed"
    assert matrix["ranges"]["x"]["incompatible"] == ["2.0.0"]


def test_a_test_failing_the_same_way_everywhere_is_set_apart_not_a_boundary(
    tmp_path: Path,
) -> None:
    stale: CauseJSON = {
        "category": "behavior",
        "exception": "AssertionError",
        "message": "assert 1 == 2",
        "location": "tests/t.py:9",
    }
    cells = [_cell(v, _ok("t::a"), _broken("t::stale", stale)) for v in VERSIONS]
    matrix = matrix_json(_plan(tmp_path), cells)
    assert matrix["not_version_related"] == ["t::stale"]
    assert [c["status"] for c in matrix["cells"]] == ["passed"] * 3
    assert matrix["ranges"]["x"]["compatible"] == list(VERSIONS)
    assert matrix["cells"][0].get("set_apart") == ["t::stale"]


def test_a_merge_reports_cells_without_a_shard_as_skipped(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    excluded = Cell(
        "m",
        "py3.9-x1.0.0",
        "3.9",
        (("x", "1.0.0"),),
        status="skipped",
        cause=Cause("excluded", "r"),
    )
    plan = replace(plan, cells=(*plan.cells, excluded))
    shards = {"m": [_cell("1.0.0", _ok("t::a")), _cell("2.0.0", _broken("t::a"))]}
    document = merged_document([plan], shards)
    cells = {c["id"]: c for c in document["matrices"][0]["cells"]}
    assert cells["py3.10-x1.1.0"]["status"] == "skipped"
    assert cells["py3.10-x1.1.0"]["cause"] == {
        "category": "missing-shard",
        "reason": "no shard was found for this cell",
    }
    assert cells["py3.9-x1.0.0"]["cause"] == {"category": "excluded", "reason": "r"}
    x = document["matrices"][0]["ranges"]["x"]
    assert (x["compatible"], x["incompatible"], x["untested"]) == (["1.0.0"], ["2.0.0"], ["1.1.0"])
