"""Which queued cell a free slot starts."""

from __future__ import annotations

from typing import Any, cast

from pytest_dfvc.plan import Cell
from pytest_dfvc.scheduler import _next_start, _Task


def _task(cell_id: str, interpreter: str) -> _Task:
    cell = Cell("m", cell_id, interpreter[-4:], (("numpy", "2.1.3"),), interpreter=interpreter)
    return _Task(cast(Any, None), cell)


def test_slots_share_out_the_pythons() -> None:
    queue = [_task(f"a{i}", "/py/3.10") for i in range(3)] + [_task("b0", "/py/3.11")]
    # Nothing running: the first in order.
    assert _next_start(queue, []) == 0
    # A 3.10 cell running (building 3.10's editable wheel): the first 3.11 cell goes next.
    assert _next_start(queue, [queue[0]]) == 3
    # Every queued Python busy: order decides.
    assert _next_start(queue[:3], [queue[0]]) == 0
