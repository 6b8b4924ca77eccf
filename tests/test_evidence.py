"""The evidence rule over hand-made cells: what counts as compatible, what is set apart as
not version-related, modules nobody installed, and no-test cells."""

from __future__ import annotations

from typing import Any, cast

from pytest_dfvc.model import CauseJSON, CellJSON, OutcomeJSON
from pytest_dfvc.verdicts.causes import cause_groups, merged_reason
from pytest_dfvc.verdicts.evidence import (
    NO_TESTS,
    message_shape,
    no_test_reason,
    not_version_related,
    settle,
    status_from_tests,
    verdicts,
)


def cell(
    cell_id: str, version: str, status: str = "failed", *tests: OutcomeJSON, python: str = "3.10"
) -> CellJSON:
    data = {
        "id": cell_id,
        "python": python,
        "packages": {"numpy": version},
        "cuda": None,
        "status": status,
        "cause": None,
        "resolved": {},
        "tests": [t.copy() for t in tests],
        "duration": 0.0,
    }
    return cast(CellJSON, data)


def passed(nodeid: str) -> OutcomeJSON:
    return {"nodeid": nodeid, "outcome": "passed"}


def failed(
    nodeid: str,
    category: str = "behavior",
    message: str = "assert 1 == 2",
    location: str = "tests/test_x.py:3",
    exception: str = "AssertionError",
    **extra: Any,
) -> OutcomeJSON:
    cause = {"category": category, "exception": exception, "message": message}
    cause["location"] = location
    return {"nodeid": nodeid, "outcome": "failed", "cause": cast(CauseJSON, {**cause, **extra})}


AXES = {"numpy": ["1.26.4", "2.0.2"]}


def test_a_stale_test_that_fails_the_same_way_everywhere_is_set_apart() -> None:
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), failed("t::stale")),
        cell("b", "2.0.2", "failed", passed("t::ok"), failed("t::stale")),
    ]
    assert settle(cells, AXES) == ["t::stale"]
    # The cells count as compatible: their only failure is set apart.
    assert [c["status"] for c in cells] == ["passed", "passed"]
    assert cells[0]["set_apart"] == ["t::stale"]


def test_a_failure_the_tool_blames_on_a_framework_api_is_never_set_apart() -> None:
    """``missing-api: numpy.float`` on every version tried is an incompatibility."""
    blamed = {"category": "missing-api", "api": "numpy.float"}
    message = "module 'numpy' has no attribute 'float'"
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), failed("t::f", message=message, **blamed)),
        cell("b", "2.0.2", "failed", passed("t::ok"), failed("t::f", message=message, **blamed)),
    ]
    assert settle(cells, AXES) == []
    assert [c["status"] for c in cells] == ["failed", "failed"]


def test_a_cause_that_changes_with_the_version_is_version_related() -> None:
    cells = [
        cell("a", "0.25.3", "failed", passed("t::ok"), failed("t::f", message="assert 3 == 4")),
        cell(
            "b",
            "1.0.5",
            "failed",
            passed("t::ok"),
            failed(
                "t::f",
                "behavior",
                "'DataFrame' object has no attribute 'ix'",
                exception="AttributeError",
            ),
        ),
    ]
    assert not_version_related(cells, {"numpy": ["0.25.3", "1.0.5"]}) == []


def test_nothing_is_set_apart_when_a_version_could_not_be_installed() -> None:
    """Where the test might pass was never tried."""
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), failed("t::stale")),
        cell("b", "2.0.2", "failed", passed("t::ok"), failed("t::stale")),
        cell("c", "2.1.3", "unavailable"),
    ]
    assert not_version_related(cells, {"numpy": ["1.26.4", "2.0.2", "2.1.3"]}) == []


def test_nothing_is_set_apart_while_a_strategy_has_left_versions_untried() -> None:
    """Bisect ran the two ends of 16 releases and saw the same failure at both: the test
    may pass on any of the 14 in between (issue 34, item 1)."""
    versions = [f"1.{i}" for i in range(16)]
    cells = [
        cell("a", "1.0", "failed", passed("t::ok"), failed("t::f")),
        cell("b", "1.15", "failed", passed("t::ok"), failed("t::f")),
        *(cell(f"s{v}", v, "skipped") for v in versions[1:-1]),
    ]
    assert not_version_related(cells, {"numpy": versions}) == []
    assert settle(cells, {"numpy": versions}) == []
    assert [c["status"] for c in cells[:2]] == ["failed", "failed"]


def test_installed_paths_do_not_make_failures_differ() -> None:
    message = "cannot import name 'interp' from 'scipy' (/w/.dfvc/envs/{}/lib/python3.10/site-packages/scipy/__init__.py)"
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), failed("t::f", message=message.format("a"))),
        cell("b", "2.0.2", "failed", passed("t::ok"), failed("t::f", message=message.format("b"))),
    ]
    assert not_version_related(cells, AXES) == ["t::f"]
    groups = [g for g in cause_groups(cells, {"t::f"}) if g.get("tests")]
    assert len(groups) == 1
    assert groups[0]["set_apart"] is True
    assert "…/site-packages/scipy/__init__.py" in groups[0]["message"]


def test_one_api_is_one_group_across_source_lines() -> None:
    missing = {"category": "missing-api", "api": "scipy.interp", "exception": "ImportError"}
    cells = [
        cell(
            "a",
            "2.0.2",
            "failed",
            failed("t::f", location="src/a.py:3", message="cannot import name 'interp'", **missing),
            failed("t::g", location="src/b.py:9", message="cannot import name 'interp'", **missing),
        )
    ]
    groups = cause_groups(cells, set())
    assert len(groups) == 1
    assert groups[0]["locations"] == ["src/a.py:3", "src/b.py:9"]


def test_no_wheel_reasons_for_several_versions_are_one_group() -> None:
    cells = []
    for i, (version, python) in enumerate(
        [("1.23.5", "3.12"), ("1.24.4", "3.12"), ("1.24.4", "3.13")]
    ):
        c = cell(f"c{i}", version, "unavailable", python=python)
        c["cause"] = {
            "category": "python-version",
            "reason": f"numpy {version} has no wheel for CPython {python}",
        }
        cells.append(c)
    groups = cause_groups(cells, set())
    assert len(groups) == 1
    assert groups[0]["reason"] == "numpy … has no wheel for CPython …"
    assert groups[0]["versions"]["numpy"] == ["1.23.5", "1.24.4"]
    assert merged_reason(["a 1 b", "a 2 b"]) == "a … b"


def test_a_cell_where_no_test_ran_is_untested() -> None:
    assert status_from_tests([]) is None
    assert status_from_tests([{"nodeid": "m.py", "outcome": "skipped"}]) is None
    assert status_from_tests([passed("a"), {"nodeid": "b", "outcome": "skipped"}]) == "passed"
    assert no_test_reason([], deselected=3) == "no test ran: 3 deselected"
    skipped = [{"nodeid": "m.py", "outcome": "skipped", "reason": "could not import 'torch'"}]
    assert no_test_reason(skipped) == "no test ran: skipped: could not import 'torch'"
    assert NO_TESTS == "no-tests"


def no_module(nodeid: str, module: str) -> OutcomeJSON:
    return failed(
        nodeid,
        "import-path",
        f"No module named '{module}'",
        "tests/test_io.py:1",
        "ModuleNotFoundError",
    )


def test_a_module_missing_in_every_cell_is_the_environments_fault() -> None:
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), no_module("t::io", "pandas")),
        cell("b", "2.0.2", "failed", passed("t::ok"), no_module("t::io", "pandas")),
    ]
    settle(cells, AXES)
    assert [c["status"] for c in cells] == ["error", "error"]
    cause = cells[0]["cause"]
    assert cause is not None
    assert cause["category"] == "missing-dependency"
    assert cause["module"] == "pandas"
    assert 'requirements = ["pandas"]' in cause["reason"]
    assert "tests/test_io.py:1" in cause["reason"]
    # Settling again (a merge of shards) gives the same answer.
    settle(cells, AXES)
    assert [c["cause"] and c["cause"]["category"] for c in cells] == ["missing-dependency"] * 2


def test_a_module_missing_in_some_cells_is_a_third_party_finding() -> None:
    cells = [
        cell("a", "0.19.2", "failed", passed("t::ok"), no_module("t::io", "scipy")),
        cell("b", "0.20.4", "passed", passed("t::ok"), passed("t::io")),
    ]
    settle(cells, {"numpy": ["0.19.2", "0.20.4"]})
    assert cells[0]["status"] == "failed"
    cause = cells[0]["tests"][1]["cause"]
    assert cause["category"] == "third-party"
    assert cause["module"] == "scipy"
    assert "0.19.2" in cause["reason"] and "0.20.4" in cause["reason"]


def test_a_missing_submodule_of_an_installed_package_stays_an_import_path() -> None:
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), no_module("t::io", "numpy.oldmod")),
        cell("b", "2.0.2", "failed", passed("t::ok"), no_module("t::io", "numpy.oldmod")),
    ]
    settle(cells, AXES)
    assert [c["status"] for c in cells] == ["failed", "failed"]


def test_strategies_see_module_errors_as_their_tests() -> None:
    """A module that fails to import in one cell fails the tests other cells collected."""
    module_error = {
        "nodeid": "tests/test_s.py",
        "outcome": "error",
        "collect_error": True,
        "cause": {"category": "import-path", "exception": "ImportError", "message": "x"},
    }
    cells = [
        cell("a", "1.5", "passed", passed("tests/test_s.py::t1"), passed("tests/test_s.py::t2")),
        cell("b", "1.13", "failed", cast(OutcomeJSON, module_error)),
    ]
    found = verdicts(cells, {"numpy": ["1.5", "1.13"]})
    assert found["b"] == {"tests/test_s.py::t1": False, "tests/test_s.py::t2": False}
    # The cells themselves are untouched.
    assert cells[1]["tests"] == [module_error]


def test_a_module_import_error_carries_the_declared_ranges_of_its_tests() -> None:
    """``from numpy import api`` at the top of a module whose test declares
    ``numpy>=1.0``: where the import fails, that is a failure inside the declared range, as
    a failing call would be (issue 34, item 2)."""
    broken: OutcomeJSON = {
        **failed("tests/test_x.py", "import-path", "cannot import name 'api' from 'numpy'"),
        "collect_error": True,
    }
    declared: OutcomeJSON = {
        **passed("tests/test_x.py::test_api"),
        "declared": {"numpy": ">=1.0"},
        "inside": True,
    }
    cells = [cell("a", "1.26.4", "failed", broken), cell("b", "2.0.2", "passed", declared)]
    settle(cells, AXES)
    member = cells[0]["tests"][0]
    assert member["nodeid"] == "tests/test_x.py::test_api"
    assert (member.get("declared"), member.get("inside")) == ({"numpy": ">=1.0"}, True)
    outside = [cell("a", "0.9", "failed", broken), cell("b", "2.0.2", "passed", declared)]
    settle(outside, {"numpy": ["0.9", "2.0.2"]})
    assert outside[0]["tests"][0].get("inside") is False


def test_one_version_never_sets_a_failure_apart() -> None:
    """``versions = ["1.2.0"]`` with two Pythons: a test broken by 1.2.0 fails alike in both
    cells, and was set apart as "not version-related" with a green range; one tried version
    shows nothing about whether the failure is its doing (issue 26, item 3)."""
    cells = [
        cell("a", "1.2.0", "failed", passed("t::ok"), failed("t::f"), python="3.10"),
        cell("b", "1.2.0", "failed", passed("t::ok"), failed("t::f"), python="3.11"),
    ]
    assert not_version_related(cells, {"numpy": ["1.2.0"]}) == []


def test_a_test_another_package_breaks_on_every_version_is_set_apart() -> None:
    """Issue 26, symptom 2: four tests failing on every scipy version because of a pinned
    scikit-learn made the range "none compatible". Failing everywhere the same way, because
    of a package that is no axis, they are set apart; a failure naming the axis is not."""
    sklearn = {"distribution": "scikit-learn", "version": "1.3.2", "api": "sklearn.utils.x"}
    broken = failed("t::sk", "third-party", "no attribute 'x'", **sklearn)
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), broken),
        cell("b", "2.0.2", "failed", passed("t::ok"), broken),
    ]
    assert settle(cells, AXES) == ["t::sk"]
    assert [c["status"] for c in cells] == ["passed", "passed"]
    on_axis = failed("t::np", "third-party", "dtype size changed", distribution="numpy")
    cells = [
        cell("a", "1.26.4", "failed", passed("t::ok"), on_axis),
        cell("b", "2.0.2", "failed", passed("t::ok"), on_axis),
    ]
    assert settle(cells, AXES) == []


def test_pytests_temporary_folders_do_not_part_one_failure_into_many() -> None:
    """Every cell's pytest numbers its temporary folders afresh (issue 29, item 2)."""
    shapes = {
        message_shape(f"File format not supported: filepath=/tmp/pytest-of-root/pytest-{n}/t0/m.h5")
        for n in (3, 41)
    }
    assert shapes == {"File format not supported: filepath=…/pytest-of-…/t0/m.h5"}
