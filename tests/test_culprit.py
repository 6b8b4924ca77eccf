"""Counterfactual cells over hand-made cells: which boundaries ask for one, how the culprit is
narrowed, and what the failing cell is judged to be (culprit.py)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from pytest_dfvc.model import CauseJSON, CellJSON
from pytest_dfvc.verdicts.culprit import Boundary, apply, boundaries, explain

AXES = {"numpy": ["1.22.4", "1.23.5", "1.25.2", "1.26.4"]}
CHANGED = (
    ("attrs", "21.4.0", "22.1.0"),
    ("pandas", "1.4.2", "1.5.1"),
    ("pytz", "2022.1", "2022.6"),
    ("scipy", "1.8.1", "1.9.3"),
)
PINV2: CauseJSON = {
    "category": "third-party",
    "api": "scipy.linalg.pinv2",
    "exception": "AttributeError",
    "message": "module 'scipy.linalg' has no attribute 'pinv2'",
    "distribution": "scipy",
    "version": "1.9.3",
}


def cell(
    cell_id: str, numpy: str, outcome: str, resolved: Mapping[str, str], **extra: Any
) -> CellJSON:
    test: dict[str, Any] = {"nodeid": "t::fit", "outcome": outcome}
    if outcome == "failed":
        test["cause"] = dict(PINV2)
    data = {
        "id": cell_id,
        "python": "3.10.13",
        "packages": {"numpy": numpy},
        "cuda": None,
        "status": "failed" if outcome == "failed" else "passed",
        "cause": None,
        "resolved": {"numpy": numpy, **resolved},
        "tests": [test, {"nodeid": "t::ok", "outcome": "passed"}],
        "duration": 1.0,
        **extra,
    }
    return cast(CellJSON, data)


def probe_runner(passes: Any, ran: list[dict[str, str]], **extra: Any) -> Any:
    """A counterfactual cell that passes when ``passes(held)`` says so."""

    def run(held: Mapping[str, str]) -> CellJSON:
        ran.append(dict(held))
        outcome = "passed" if passes(held) else "failed"
        data = cell(f"probe{len(ran)}", "1.23.5", outcome, {}, held=dict(held), **extra)
        data["tests"] = data["tests"][:1]
        return data

    return run


BOUNDARY = Boundary("b", "a", ("t::fit",), CHANGED)


def test_the_package_the_failure_names_is_tried_first_so_the_culprit_is_verified() -> None:
    """PeakUtils on numpy 1.23.5: six packages moved, sorted by name the halving left scipy
    by elimination ("narrowed by elimination"). The failure names scipy: it leads the
    order, every step passes, and the culprit is verified in ⌈log2 4⌉ + 1 = 3 cells."""
    ran: list[dict[str, str]] = []
    found = explain(
        Boundary("b", "a", ("t::fit",), CHANGED, named=("scipy",)),
        probe_runner(lambda held: "scipy" in held, ran),
    )
    assert found is not None and found.finding == "culprit"
    assert found.culprit == ("scipy",) and found.verified
    assert len(ran) == 3 and ran[-1] == {"scipy": "1.8.1"}


def test_without_a_name_the_culprit_is_narrowed_within_the_bound() -> None:
    ran: list[dict[str, str]] = []
    found = explain(BOUNDARY, probe_runner(lambda held: "pytz" in held, ran))
    assert found is not None and found.culprit == ("pytz",)
    assert len(ran) <= 3


def test_a_set_back_the_axis_pin_overrode_is_incompatible_through_that_package() -> None:
    """scipy 1.8.1 installed beside numpy 1.25.2 only because the axis pin overrides its
    ``numpy<1.25``: the run says nothing about scipy 1.8.1 there. Incompatible through scipy,
    the package whose requirement conflicts, not every package set back."""
    conflict = {
        "package": "scipy",
        "version": "1.8.1",
        "requires": "numpy<1.25.0,>=1.17.3",
        "installed": "numpy 1.25.2",
    }
    ran: list[dict[str, str]] = []
    found = explain(BOUNDARY, probe_runner(lambda held: True, ran, conflicts=[conflict]))
    assert found is not None and found.finding == "through"
    assert found.culprit == ("scipy",)
    failing = cell("b", "1.25.2", "failed", {"scipy": "1.11.4"})
    judged = apply(failing, found)
    through = judged["tests"][0]["cause"]["through"]
    assert through["packages"] == ["scipy"]
    assert through["reason"] == "scipy 1.8.1 requires numpy<1.25.0,>=1.17.3, not numpy 1.25.2"
    assert judged["status"] == "failed"


def test_a_previous_culprit_that_cannot_be_set_back_decides_at_once() -> None:
    """The version before was broken by scipy; set back beside this one, scipy conflicts:
    incompatible through scipy after one cell."""
    conflict = {"package": "scipy", "version": "1.8.1", "requires": "x", "installed": "y"}
    ran: list[dict[str, str]] = []
    found = explain(
        Boundary("b", "a", ("t::fit",), CHANGED, hint=("scipy",)),
        probe_runner(lambda held: True, ran, conflicts=[conflict]),
    )
    assert found is not None and found.finding == "through" and len(ran) == 1


def test_a_set_back_that_fails_because_of_itself_is_incompatible_through_it() -> None:
    """pandas 1.5.3 beside numpy 2 installs (its metadata has no cap) and fails to import
    (binary incompatibility): the failure names the package set back, so the version is
    incompatible through it, not confirmed as the axis's own break."""

    def run(held: Mapping[str, str]) -> CellJSON:
        data = cell("probe", "2.0.2", "failed", {}, held=dict(held))
        data["tests"][0]["cause"] = {
            "category": "third-party",
            "message": "numpy.dtype size changed, may indicate binary incompatibility",
            "distribution": "pandas",
        }
        return data

    found = explain(BOUNDARY, run)
    assert found is not None and found.finding == "through"
    assert found.culprit == ("pandas",)


def test_a_version_after_one_incompatible_through_a_package_is_asked_with_that_package() -> None:
    """numpy 1.25.2 is incompatible through scipy; 1.26.4 fails the same tests beside a
    newer scipy and was left with "constrain scipy". It asks once, with scipy set back."""
    passing = cell("a", "1.22.4", "passed", {"scipy": "1.8.1"})
    through = cell("c", "1.25.2", "failed", {"scipy": "1.11.4"})
    through["tests"][0]["cause"]["through"] = {
        "packages": ["scipy"],
        "reason": "scipy 1.8.1 requires numpy<1.25.0,>=1.17.3, not numpy 1.25.2",
        "cell": "c-with-scipy1.8.1",
    }
    through["counterfactuals"] = [
        {
            "id": "c-with-scipy1.8.1",
            "against": "a",
            "held": {"scipy": "1.8.1"},
            "status": "passed",
            "tests": {"t::fit": "passed"},
        }
    ]
    later = cell("d", "1.26.4", "failed", {"scipy": "1.12.0"})
    # Two tests of the version before are incompatible through scipy: both are asked.
    through["tests"].append(copy.deepcopy(through["tests"][0]))
    later["tests"].append(copy.deepcopy(later["tests"][0]))
    through["tests"][-1]["nodeid"] = later["tests"][-1]["nodeid"] = "t::fit2"
    found = boundaries([passing, through, later], [("a", "c", "d")], AXES)
    assert [(b.failing, b.passing, b.nodeids, b.held, b.hint) for b in found] == [
        ("d", "c", ("t::fit", "t::fit2"), {"scipy": "1.8.1"}, ("scipy",))
    ]


def test_the_package_the_failures_name_is_tried_alone_first() -> None:
    """PeakUtils on numpy 1.23.5: six packages moved and the failure names scipy. One cell
    with scipy set back passes: the culprit, verified, instead of three halving cells."""
    moved = {n: f for n, _, f in CHANGED}
    found = boundaries(
        [
            cell("a", "1.22.4", "passed", {n: p for n, p, _ in CHANGED}),
            cell("b", "1.23.5", "failed", moved),
        ],
        [("a", "b")],
        AXES,
    )
    assert [(b.hint, b.named) for b in found] == [(("scipy",), ("scipy",))]
    ran: list[dict[str, str]] = []
    explained = explain(found[0], probe_runner(lambda held: "scipy" in held, ran))
    assert explained is not None and explained.culprit == ("scipy",) and explained.verified
    assert ran == [{"scipy": "1.8.1"}]
    # Named wrongly (pytz broke it): one more cell, then the halving as before.
    ran.clear()
    explained = explain(found[0], probe_runner(lambda held: "pytz" in held, ran))
    assert explained is not None and explained.culprit == ("pytz",)
    assert len(ran) <= 4


def test_the_suggestions_and_the_html_report_say_what_the_counterfactuals_showed() -> None:
    from pytest_dfvc.model import MatrixJSON
    from pytest_dfvc.publish.reports import _describe
    from pytest_dfvc.verdicts.suggest import counterfactual_notes

    blamed = cell("b", "1.23.5", "failed", {"scipy": "1.9.3"})
    blamed["tests"][0]["outcome"] = "other-package"
    blamed["tests"][0]["cause"]["culprit"] = {
        "packages": {"scipy": {"failing": "1.9.3", "passing": "1.8.1"}},
        "cell": "b-with-scipy1.8.1",
        "verified": True,
    }
    through = cell("c", "1.25.2", "failed", {"scipy": "1.11.4"})
    through["tests"][0]["cause"]["through"] = {
        "packages": ["scipy"],
        "reason": "scipy 1.8.1 requires numpy<1.25.0,>=1.17.3, not numpy 1.25.2",
        "cell": "c-with-scipy1.8.1",
    }
    matrix = cast(MatrixJSON, {"cells": [blamed, through]})
    notes = counterfactual_notes(matrix, "numpy")
    assert notes[0].startswith("numpy 1.23.5 pass only with scipy set back (scipy 1.9.3")
    assert notes[1].startswith("numpy 1.25.2: incompatible through scipy (scipy 1.8.1 requires")
    assert "passes with scipy 1.8.1 instead of 1.9.3" in _describe(
        blamed, blamed["tests"][0], "t::fit"
    )
    assert "incompatible through scipy" in _describe(through, through["tests"][0], "t::fit")
