"""PyTorch's CPU wheels on a machine without a GPU, and PyPI's where that index does not
answer (issue 29, item 5): decided once for the run, said in one line, and in each torch
cell's uv arguments."""

from __future__ import annotations

from pathlib import Path

from pytest_dfvc.plan.cell import Cell, MatrixPlan
from pytest_dfvc.plan.torchwheels import with_torch_wheels
from pytest_dfvc.plan.uvargs import source_args

from .helpers import matrix_from_text


def _plan(tmp_path: Path, extra: str = "", cuda: str | None = None) -> MatrixPlan:
    text = 'python = ["3.11"]\n[packages.torch]\nversions = ["2.5.1"]\n' + extra
    matrix = matrix_from_text(tmp_path, text)
    cells = (
        Cell("m", "py3.11-torch2.5.1", "3.11", (("torch", "2.5.1"),), cuda=cuda),
        Cell("m", "py3.11-numpy", "3.11", (("numpy", "2.0.2"),)),
    )
    return MatrixPlan(matrix, cells)


def _backend(plan: MatrixPlan, cell: Cell) -> str | None:
    args = source_args(plan.matrix, cell)
    return args[args.index("--torch-backend") + 1] if "--torch-backend" in args else None


def test_no_gpu_and_the_cpu_index_answers_takes_the_cpu_wheels(tmp_path: Path) -> None:
    plans, said = with_torch_wheels([_plan(tmp_path)], gpu=lambda: False, reachable=lambda: True)
    torch, numpy = plans[0].cells
    assert _backend(plans[0], torch) == "cpu"
    assert _backend(plans[0], numpy) is None
    assert said is not None and "torch cells take PyTorch's CPU wheels" in said


def test_no_gpu_and_no_cpu_index_falls_back_to_pypi_and_says_so(tmp_path: Path) -> None:
    """A ``cuda = ["cpu"]`` cell asks uv for the CPU backend itself: not where it fails."""
    plan = _plan(tmp_path, cuda="cpu")
    assert _backend(plan, plan.cells[0]) == "cpu"
    plans, said = with_torch_wheels([plan], gpu=lambda: False, reachable=lambda: False)
    assert _backend(plans[0], plans[0].cells[0]) is None
    assert said is not None and "do not answer: torch cells take PyPI's wheels" in said


def test_a_gpu_or_a_matrix_that_chose_keeps_its_wheels_and_asks_nothing(tmp_path: Path) -> None:
    def never() -> bool:
        raise AssertionError("the index is not asked")

    plans, said = with_torch_wheels([_plan(tmp_path)], gpu=lambda: True, reachable=never)
    assert said is None and _backend(plans[0], plans[0].cells[0]) is None
    chosen = _plan(tmp_path, '[install]\nindex-url = "https://example.org/simple"\n')
    plans, said = with_torch_wheels([chosen], gpu=lambda: False, reachable=never)
    assert said is None and plans[0].cells == chosen.cells
