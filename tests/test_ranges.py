"""Ranges: specifiers, boundaries and the per-axis view, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pytest_dfvc.verdicts.ranges import (
    Observation,
    axis_range,
    boundaries,
    considered_cells,
    project_passed,
    specifier_for,
    upgrade_gap,
)


@pytest.mark.parametrize(
    ("good", "bad", "width", "expected"),
    [
        (["1.19.5", "1.23.5"], ["1.24.4"], 2, ">=1.19,<1.24"),
        (["1.19.5", "1.20.3", "1.22.4"], ["1.21.6", "1.24.4"], 2, ">=1.19,!=1.21.*,<1.24"),
        # Releases between 1.2 and 2.0 may exist that nobody ran: the bound stops at 1.2.
        (["1.0", "1.2"], ["1.1", "2.0"], None, ">=1.0,!=1.1,<=1.2"),
        # Nothing planned above the newest pass, and the index's newest release unknown:
        # whatever came after was never run (issue 34, item 4).
        (["3.10", "3.11"], ["3.9"], 2, ">=3.10,<=3.11"),
        (["2.0.0"], [], None, "==2.0.0"),
        (["1.0", "1.2"], [], None, ">=1.0,<=1.2"),
        ([], ["1.0"], None, None),
        # Rounding would admit the failing 1.24.0: fall back to exact bounds.
        (["1.24.1"], ["1.24.0"], 2, "==1.24.1"),
        (["1.24.0"], ["1.24.1"], 2, "==1.24.0"),
    ],
)
def test_specifier_for(
    good: list[str], bad: list[str], width: int | None, expected: str | None
) -> None:
    assert specifier_for(good, bad, width) == expected


def test_a_newest_patch_stands_for_its_series_only_when_the_matrix_asked_for_all_of_it() -> None:
    """``>=1.23,<2.2`` with latest-patch: 2.1.3 is 2.1's newest patch, so ``<2.2``; with
    ``<2.1`` and latest-minor, 2.0.0 is not 2's newest release (2.1 was never run)."""
    asked = SpecifierSet(">=1.23,<2.2")
    assert specifier_for(["2.1.3"], [], 2, newest="2.3.1", asked=asked) == ">=2.1,<2.2"
    assert specifier_for(["2.0.0"], [], 1, newest="2.1.0", asked=SpecifierSet("<2.1")) == "==2.0.0"


@pytest.mark.parametrize(
    ("good", "bad", "width", "expected"),
    [
        (["3.10", "3.11"], ["3.9"], 2, ">=3.10"),
        (["2.0.0"], [], None, ">=2.0.0"),
        (["1.24.1"], ["1.24.0"], 2, ">=1.24.1"),
    ],
)
def test_an_open_upper_bound_only_when_the_newest_pass_is_the_newest_release(
    good: list[str], bad: list[str], width: int | None, expected: str
) -> None:
    assert specifier_for(good, bad, width, newest=good[-1]) == expected
    # A newer release on the index that the plan did not reach: bounded.
    assert specifier_for(good, bad, width, newest="99") != expected


@pytest.mark.parametrize(
    ("good", "bad", "planned", "width", "complete", "expected"),
    [
        # A real pandas library: 2.0.0 was never run, and fails too. Never admitted.
        (
            ["1.1.5", "1.5.3"],
            ["2.0.3"],
            ["1.1.5", "1.5.3", "2.0.3"],
            None,
            False,
            ">=1.1.5,<=1.5.3",
        ),
        # Every release in the range was planned: the next one is the bound.
        (
            ["1.0", "1.2"],
            ["1.1", "2.0"],
            ["1.0", "1.1", "1.2", "2.0"],
            None,
            True,
            ">=1.0,!=1.1,<2.0",
        ),
        # An untested value above the newest pass (not installable) is not admitted either.
        (["1.0"], ["3.0"], ["1.0", "2.0", "3.0"], None, True, ">=1.0,<2.0"),
        (["1.0"], [], ["1.0", "2.0"], None, False, "==1.0"),
        # Series rounding was asked for: up to the next series planned, not past it.
        (["1.23.5"], ["1.25.2"], ["1.23.5", "1.24.4", "1.25.2"], 2, False, ">=1.23,<1.24"),
        (["1.23.5"], ["1.24.4"], ["1.23.5", "1.24.4"], 2, False, ">=1.23,<1.24"),
    ],
)
def test_bounds_stop_at_the_evidence(
    good: list[str],
    bad: list[str],
    planned: list[str],
    width: int | None,
    complete: bool,
    expected: str,
) -> None:
    assert specifier_for(good, bad, width, planned, complete) == expected


def test_upgrade_gap_says_where_the_boundary_lies() -> None:
    assert upgrade_gap(["1.5.3"], ["2.0.3"], ["1.5.3", "2.0.3"], False) == ["1.5.3", "2.0.3"]
    assert upgrade_gap(["1.5.3"], ["2.0.3"], ["1.5.3", "2.0.3"], True) is None
    assert upgrade_gap(["1.5.3"], ["2.0.3"], ["1.5.3", "2.0.0", "2.0.3"], True) == [
        "1.5.3",
        "2.0.3",
    ]
    assert upgrade_gap([], ["2.0.3"], ["2.0.3"], False) is None


versions = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 6)).map(
        lambda t: ".".join(map(str, t))
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=400, deadline=None)
@given(versions, st.data(), st.sampled_from([None, 1, 2]), st.booleans())
def test_range_admits_every_pass_and_no_failure(
    all_versions: list[str], data: st.DataObject, width: int | None, complete: bool
) -> None:
    # Each planned version passed, failed, or was never tested.
    verdicts = data.draw(
        st.lists(
            st.sampled_from([True, False, None]),
            min_size=len(all_versions),
            max_size=len(all_versions),
        )
    )
    good = [v for v, ok in zip(all_versions, verdicts) if ok is True]
    bad = [v for v, ok in zip(all_versions, verdicts) if ok is False]
    untested = [v for v, ok in zip(all_versions, verdicts) if ok is None]
    spec = specifier_for(good, bad, width, all_versions, complete)
    if not good:
        assert spec is None
        return
    assert spec is not None
    parsed = SpecifierSet(spec)
    assert all(parsed.contains(v) for v in good), spec
    assert not any(parsed.contains(v) for v in bad), spec
    # Nothing untested above the newest pass is ever admitted.
    newest = max(good, key=Version)
    assert not any(parsed.contains(v) for v in untested if Version(v) > Version(newest)), spec


def test_boundaries_around_baseline() -> None:
    assert boundaries(["1.19.5", "1.23.5"], ["1.24.4"], None) == ("1.24.4", None)
    assert boundaries(["1.1", "1.2"], ["1.0", "2.0", "2.1"], None) == ("2.0", "1.0")
    assert boundaries(["1.1", "1.2"], ["1.0", "2.0"], "1.1") == ("2.0", "1.0")
    assert boundaries([], ["1.0"], None) == (None, None)


def obs(values: dict[str, str], status: str, **tests: str) -> Observation:
    return Observation(values=values, status=status, tests=tests)


def test_project_passed_ignores_stale_tests_and_unbuilt_cells() -> None:
    assert project_passed(obs({}, "failed", a="passed", stale="failed"), {"stale"})
    assert not project_passed(obs({}, "failed", a="error"), set())
    assert project_passed(obs({}, "unavailable"), set()) is None
    # Tests ran, none passed (all skipped): untested, never compatible.
    assert project_passed(obs({}, "passed", a="skipped"), set()) is None


def test_other_axes_restrict_to_viable_values() -> None:
    """Python 3.9 never works: numpy's range is read from the 3.12 cells only."""
    cells = [
        obs({"python": "3.9", "numpy": "1.26.4"}, "failed", t="error"),
        obs({"python": "3.9", "numpy": "2.0.2"}, "failed", t="error"),
        obs({"python": "3.12", "numpy": "1.26.4"}, "passed", t="passed"),
        obs({"python": "3.12", "numpy": "2.0.2"}, "failed", t="failed"),
    ]
    considered = considered_cells("numpy", cells, set())
    numpy = axis_range(
        "numpy", ["1.26.4", "2.0.2"], considered, lambda o: project_passed(o, set()), width=2
    )
    assert numpy.compatible == ["1.26.4"]
    assert numpy.specifier == ">=1.26,<2.0"
    python = axis_range(
        "python",
        ["3.9", "3.12"],
        considered_cells("python", cells, set()),
        lambda o: project_passed(o, set()),
        width=2,
    )
    assert python.specifier == "==3.12"  # nothing above 3.12 was planned
    assert python.incompatible == ["3.9"]
    # Python 3.10 and 3.11 were never tried: a pass on 3.9 and 3.12 says nothing of them.


def test_untested_values_stay_untested() -> None:
    cells = [obs({"v": "1.0"}, "passed", t="passed")]
    result = axis_range("v", ["1.0", "2.0"], cells, lambda o: project_passed(o, set()), width=None)
    assert result.untested == ["2.0"]
    assert result.specifier == "==1.0"
