"""Ranges: specifiers, boundaries and the per-axis view, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from pytest_dfvc.ranges import (
    Observation,
    axis_range,
    boundaries,
    considered_cells,
    not_version_related,
    project_passed,
    specifier_for,
)


@pytest.mark.parametrize(
    ("good", "bad", "width", "expected"),
    [
        (["1.19.5", "1.23.5"], ["1.24.4"], 2, ">=1.19,<1.24"),
        (["1.19.5", "1.20.3", "1.22.4"], ["1.21.6", "1.24.4"], 2, ">=1.19,!=1.21.*,<1.24"),
        (["1.0", "1.2"], ["1.1", "2.0"], None, ">=1.0,!=1.1,<2.0"),
        (["3.10", "3.11"], ["3.9"], 2, ">=3.10"),
        (["2.0.0"], [], None, ">=2.0.0"),
        ([], ["1.0"], None, None),
        # Rounding would admit the failing 1.24.0: fall back to exact bounds.
        (["1.24.1"], ["1.24.0"], 2, ">=1.24.1"),
        (["1.24.0"], ["1.24.1"], 2, ">=1.24.0,<1.24.1"),
    ],
)
def test_specifier_for(
    good: list[str], bad: list[str], width: int | None, expected: str | None
) -> None:
    assert specifier_for(good, bad, width) == expected


versions = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 6)).map(
        lambda t: ".".join(map(str, t))
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=400, deadline=None)
@given(versions, st.data(), st.sampled_from([None, 1, 2]))
def test_range_admits_every_pass_and_no_failure(
    all_versions: list[str], data: st.DataObject, width: int | None
) -> None:
    passed = data.draw(
        st.lists(st.booleans(), min_size=len(all_versions), max_size=len(all_versions))
    )
    good = [v for v, ok in zip(all_versions, passed) if ok]
    bad = [v for v, ok in zip(all_versions, passed) if not ok]
    spec = specifier_for(good, bad, width)
    if not good:
        assert spec is None
        return
    assert spec is not None
    parsed = SpecifierSet(spec)
    assert all(parsed.contains(v) for v in good), spec
    assert not any(parsed.contains(v) for v in bad), spec


def test_boundaries_around_baseline() -> None:
    assert boundaries(["1.19.5", "1.23.5"], ["1.24.4"], None) == ("1.24.4", None)
    assert boundaries(["1.1", "1.2"], ["1.0", "2.0", "2.1"], None) == ("2.0", "1.0")
    assert boundaries(["1.1", "1.2"], ["1.0", "2.0"], "1.1") == ("2.0", "1.0")
    assert boundaries([], ["1.0"], None) == (None, None)


def obs(values: dict[str, str], status: str, **tests: str) -> Observation:
    return Observation(values=values, status=status, tests=tests)


def test_not_version_related_needs_two_failures_and_some_pass() -> None:
    cells = [
        obs({"x": "1"}, "failed", a="passed", stale="failed"),
        obs({"x": "2"}, "failed", a="failed", stale="failed"),
    ]
    assert not_version_related(cells) == ["stale"]
    assert not_version_related(cells[:1]) == []
    # If everything always fails, nothing is singled out.
    assert (
        not_version_related(
            [obs({"x": "1"}, "failed", a="failed"), obs({"x": "2"}, "failed", a="failed")]
        )
        == []
    )


def test_project_passed_ignores_stale_tests_and_unbuilt_cells() -> None:
    assert project_passed(obs({}, "failed", a="passed", stale="failed"), {"stale"})
    assert not project_passed(obs({}, "failed", a="error"), set())
    assert not project_passed(obs({}, "unavailable"), set())


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
    assert python.specifier == ">=3.12"
    assert python.incompatible == ["3.9"]


def test_untested_values_stay_untested() -> None:
    cells = [obs({"v": "1.0"}, "passed", t="passed")]
    result = axis_range("v", ["1.0", "2.0"], cells, lambda o: project_passed(o, set()), width=None)
    assert result.untested == ["2.0"]
    assert result.specifier == ">=1.0"
