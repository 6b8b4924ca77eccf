"""Strategies as pure functions over synthetic pass/fail histories."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from pytest_dfvc.plan.strategy import Line, bisect_probes, build_lines, next_cells, walk_probes
from pytest_dfvc.verdicts.ranges import boundaries, specifier_for
from pytest_dfvc.vocabulary import Strategy


def simulate(
    strategy: Strategy, history: Sequence[bool | None], baseline: int | None = None
) -> dict[int, bool | None]:
    """Run a strategy on one line with one test; None in the history is a cell that cannot
    be installed (done, no verdict). Returns what was run."""
    cells = [f"c{i}" for i in range(len(history))]
    line = Line(axis="x", cells=tuple(cells), baseline=baseline)
    outcomes: dict[str, dict[str, bool | None]] = {}
    for _ in range(10 * len(history) + 10):
        wanted = next_cells(strategy, [line], outcomes, cells)
        if not wanted:
            break
        for cell in wanted:
            verdict = history[int(cell[1:])]
            outcomes[cell] = {} if verdict is None else {"t": verdict}
    else:  # pragma: no cover
        raise AssertionError("the strategy never settled")
    return {int(c[1:]): history[int(c[1:])] for c in outcomes}


def simulate_parallel(history: list[bool], jobs: int) -> tuple[dict[int, bool], int]:
    """Bisect with ``jobs`` slots, every cell taking the same time: each round fills the
    free slots with what the strategy asks for, then those cells finish. Returns what ran
    and how many rounds it took (the wall-clock time, in cells)."""
    cells = [f"c{i}" for i in range(len(history))]
    line = Line(axis="x", cells=tuple(cells))
    outcomes: dict[str, dict[str, bool | None]] = {}
    rounds = 0
    while True:
        wanted = next_cells("bisect", [line], outcomes, cells, (), ways=jobs)
        if not wanted:
            break
        rounds += 1
        for cell in sorted(wanted, key=lambda c: int(c[1:]))[:jobs]:
            outcomes[cell] = {"t": history[int(cell[1:])]}
    return {int(c[1:]): history[int(c[1:])] for c in outcomes}, rounds


def found_boundaries(ran: Mapping[int, bool | None]) -> tuple[str | None, str | None]:
    good = [f"1.{i}" for i, v in ran.items() if v]
    bad = [f"1.{i}" for i, v in ran.items() if v is False]
    return boundaries(good, bad, None)


@pytest.mark.parametrize(
    ("history", "most"),
    [
        ([True] * 20, 2),  # all pass: the two ends
        ([True] * 12 + [False] * 8, 2 + math.ceil(math.log2(20))),  # one upgrade boundary
        ([False] * 5 + [True] * 15, 2 + math.ceil(math.log2(20))),  # one downgrade boundary
        ([True], 1),
        ([False] * 6, 6),  # all fail: every version, or nothing could be set apart
    ],
)
def test_bisect_cost_and_boundary(history: list[bool], most: int) -> None:
    ran = simulate("bisect", list(history))
    assert len(ran) <= most
    grid = {i: v for i, v in enumerate(history)}
    assert found_boundaries(ran) == found_boundaries(grid)


@pytest.mark.parametrize("jobs", [2, 3, 4])
@pytest.mark.parametrize("n", [24, 151])
def test_bisect_probes_as_many_points_as_there_are_free_slots(n: int, jobs: int) -> None:
    """k-ary search: the grid's boundary, within the cell budget of a binary search, in
    fewer rounds than one cell at a time (and far fewer than a grid on ``jobs`` slots)."""
    for cut in (1, n // 3, n - 5, n):
        history = [i < cut for i in range(n)]
        ran, rounds = simulate_parallel(history, jobs)
        one_at_a_time = simulate("bisect", list(history))
        assert found_boundaries(ran) == found_boundaries(dict(enumerate(history)))
        assert len(ran) <= 2 * math.ceil(math.log2(n)) + 2
        serial_rounds = len(one_at_a_time) - 1  # the two ends run together already
        assert rounds <= serial_rounds
        if 0 < cut < n:
            assert rounds < serial_rounds
        assert rounds <= math.ceil(n / jobs)


def test_bisect_refines_a_hole() -> None:
    history = [True] * 6 + [False] + [True] * 6 + [False] * 3
    ran = simulate("bisect", history)
    # The hole is found only if a probe lands on it; when one does, both its sides are run.
    if 6 in ran:
        assert ran.get(5) is True and ran.get(7) is True
    assert found_boundaries(ran)[0] == "1.13"


def test_bisect_steps_over_cells_that_cannot_be_installed() -> None:
    history: list[bool | None] = [True] * 8 + [None, None] + [False] * 6
    ran = simulate("bisect", history)
    assert found_boundaries(ran) == ("1.10", None)
    assert ran[7] is True


def test_walk_goes_up_and_down_from_the_baseline_to_the_first_failures() -> None:
    history = [False, False, True, True, True, True, False, False]
    ran = simulate("walk", history, baseline=3)
    assert sorted(ran) == [1, 2, 3, 4, 5, 6]
    assert found_boundaries(ran) == ("1.6", "1.1")


def test_walk_default_baseline_is_the_newest() -> None:
    ran = simulate("walk", [False, True, True, True])
    assert sorted(ran) == [0, 1, 2, 3]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.data())
def test_bisect_finds_the_grid_boundary_on_monotone_histories(n: int, data: st.DataObject) -> None:
    """One upgrade boundary anywhere (or none): bisect finds the grid's, within its bound."""
    cut = data.draw(st.integers(1, n))
    history = [i < cut for i in range(n)]
    ran = simulate("bisect", history)
    assert len(ran) <= 2 * math.ceil(math.log2(max(n, 2))) + 2
    assert found_boundaries(ran) == found_boundaries(dict(enumerate(history)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=30))
def test_bisect_never_reports_a_boundary_grid_would_not(history: list[bool | None]) -> None:
    """Whatever the history (holes, uninstallable cells), a boundary bisect reports is a
    real failing version next to passing ones in the grid, never an invention."""
    ran = simulate("bisect", history)
    up, down = found_boundaries(ran)
    for boundary in (up, down):
        if boundary is not None:
            assert history[int(boundary.split(".")[1])] is False


def test_lines_group_cells_by_the_other_axes() -> None:
    cells = [
        ("a", {"python": "3.9", "numpy": "1.2"}),
        ("b", {"python": "3.9", "numpy": "1.10"}),
        ("c", {"python": "3.10", "numpy": "1.2"}),
    ]
    lines = build_lines(cells, ["numpy"], {"numpy": "1.5"})
    assert [line.cells for line in lines] == [("a", "b"), ("c",)]
    # The baseline 1.5 is not in the matrix: the newest version below it.
    assert lines[0].baseline == 0


def test_grid_asks_for_everything_not_yet_run() -> None:
    assert next_cells("grid", [], {"a": {}}, ["a", "b", "c"]) == {"b", "c"}


def test_probe_functions_with_nothing() -> None:
    assert bisect_probes(0, {}, set()) == set()
    assert walk_probes(0, {}, set()) == set()


def test_bisect_goes_on_while_a_test_has_passed_nowhere() -> None:
    """A test passing only on 1.2 and 1.3 of 16: the ends and the middle fail alike, which
    is no evidence that the test is not version-related; the search goes on and finds the
    grid's boundaries (issue 34, item 1)."""
    history = [i in (2, 3) for i in range(16)]
    ran = simulate("bisect", history)
    assert found_boundaries(ran) == found_boundaries(dict(enumerate(history))) == ("1.4", "1.1")


def test_bisect_runs_every_version_before_a_test_that_always_fails_can_be_set_apart() -> None:
    ran = simulate("bisect", [False] * 6)
    assert sorted(ran) == list(range(6))


def test_walk_goes_on_while_a_test_has_passed_nowhere() -> None:
    history = [i in (2, 3) for i in range(8)]
    ran = simulate("walk", history)
    assert {2, 3} <= set(ran)


def test_bisect_steps_over_newest_releases_found_not_installable_when_installed() -> None:
    """The newest releases need a dependency the matrix forbids: their cells turn out
    unavailable only at install time; bisect searches below them (issue 34, item 7)."""
    history: list[bool | None] = [True] * 8 + [False] * 4 + [None] * 4
    ran = simulate("bisect", history)
    assert found_boundaries(ran) == ("1.8", None)
    assert len(ran) <= 2 * math.ceil(math.log2(16)) + 2
    oldest_gone: list[bool | None] = [None] * 5 + [True] * 6 + [False] * 5
    assert found_boundaries(simulate("bisect", oldest_gone)) == ("1.11", None)


def test_walk_searches_on_beyond_its_boundaries_for_a_test_that_passed_nowhere() -> None:
    """``a`` breaks at 6, ``b`` fails wherever the walk from 3 went: 7 is still untried,
    and ``b`` may pass there; the walk runs it before anything could be set apart."""
    cells = [f"c{i}" for i in range(8)]
    line = Line(axis="x", cells=tuple(cells), baseline=3)
    outcomes: dict[str, dict[str, bool | None]] = {}
    while wanted := next_cells("walk", [line], outcomes, cells):
        for cell in wanted:
            i = int(cell[1:])
            outcomes[cell] = {"a": i < 6, "b": i == 7}
    assert "c7" in outcomes


# --- claims no larger than the runs, over random histories (issue 34) ------------------------

RELEASES = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 9), st.sampled_from(["", "rc1", ".dev1"])),
    min_size=1,
    max_size=24,
    unique=True,
).map(lambda parts: sorted({f"{a}.{b}{pre}" for a, b, pre in parts}, key=Version))


def _claims(
    history: Sequence[bool | None], versions: Sequence[str], ran: Mapping[int, bool | None]
) -> str | None:
    good = [versions[i] for i, ok in ran.items() if ok]
    bad = [versions[i] for i, ok in ran.items() if ok is False]
    return specifier_for(good, bad, None, versions, False, (), versions[-1])


@settings(max_examples=300, deadline=None)
@given(RELEASES, st.data())
def test_no_strategy_claims_a_version_above_its_newest_pass(
    versions: list[str], data: st.DataObject
) -> None:
    """Any history (holes, pre-releases, releases that cannot be installed): whatever grid,
    walk or bisect ran, the specifier admits nothing above the newest pass that failed or
    was never run, and admits no version that failed."""
    history = data.draw(
        st.lists(
            st.sampled_from([True, False, None]), min_size=len(versions), max_size=len(versions)
        )
    )
    for strategy in ("grid", "walk", "bisect"):
        ran = simulate(strategy, history)
        spec = _claims(history, versions, ran)
        passes = [i for i, ok in ran.items() if ok]
        if spec is None:
            assert not passes
            continue
        admitted = SpecifierSet(spec)
        top = max(passes)
        for i, version in enumerate(versions):
            if ran.get(i) is False or i > top:
                assert not admitted.contains(version, prereleases=True), (strategy, spec, version)


@settings(max_examples=300, deadline=None)
@given(RELEASES, st.data())
def test_bisect_finds_grids_boundaries_with_releases_that_cannot_install(
    versions: list[str], data: st.DataObject
) -> None:
    """One upgrade boundary (or none), some releases not installable anywhere: bisect's
    boundary is the grid's."""
    n = len(versions)
    cut = data.draw(st.integers(0, n))
    gone = data.draw(st.sets(st.integers(0, n - 1)))
    history = [None if i in gone else i < cut for i in range(n)]
    grid = simulate("grid", history)
    bisect = simulate("bisect", history)
    assert found_boundaries(bisect) == found_boundaries(grid)
