"""``--dfvc-audit``: which cells run again from scratch, and what counts as a difference."""

from __future__ import annotations

import datetime
from typing import Any, cast

from pytest_dfvc.model import CellJSON
from pytest_dfvc.plan.audit import choose, default_seed, differences, judged


def cell(cell_id: str, status: str = "passed", dep: str = "1.0", **outcomes: str) -> CellJSON:
    data: dict[str, Any] = {
        "id": cell_id,
        "python": "3.11.7",
        "packages": {"ff": "1.0"},
        "cuda": None,
        "status": status,
        "cause": None,
        "resolved": {"ff": "1.0", "dep": dep},
        "tests": [{"nodeid": f"t::{n}", "outcome": o} for n, o in outcomes.items()],
        "duration": 1.0,
    }
    return cast(CellJSON, data)


def test_the_choice_is_random_from_the_seed_and_a_tenth_by_default() -> None:
    cells = [cell(f"c{i:02}") for i in range(25)] + [cell("u", "unavailable")]
    assert choose(cells, 3, 7) == choose(cells, 3, 7)
    assert len({tuple(choose(cells, 3, seed)) for seed in range(10)}) > 1
    assert len(choose(cells, 0, 1)) == 3  # a tenth of 25, rounded up
    assert "u" not in choose(cells, 30, 1)  # only cells that ran to a verdict
    assert default_seed(datetime.date(2026, 12, 7)) == 20261207


def test_what_a_fresh_run_shows_differently_is_named() -> None:
    kept = cell("c", dep="1.0", a="passed", b="passed")
    fresh = cell("c", "failed", dep="2.0", a="passed", b="failed")
    found = differences(kept, fresh)
    assert found == ["status passed -> failed", "dep 1.0 -> 2.0", "t::b: passed -> failed"]
    error = judged(kept, fresh, found)
    assert error["status"] == "error" and error["cause"] is not None
    assert error["cause"]["category"] == "audit" and "dep 1.0 -> 2.0" in error["cause"]["reason"]
    assert error["resolved"]["dep"] == "2.0"


def test_a_verdict_a_second_run_made_is_no_difference() -> None:
    """A test another package broke failed in the cell (its pass was a counterfactual
    cell's); a flaky one may go either way when run once."""
    kept = cell("c", a="other-package", b="flaky")
    assert differences(kept, cell("c", "failed", a="failed", b="passed")) == []
    assert differences(kept, cell("c", "failed", a="failed", b="failed")) == []
    assert differences(kept, cell("c", "passed", a="passed", b="passed")) == [
        "t::a: failed -> passed"
    ]
