"""Which PyTorch wheels a torch cell takes on a machine without a GPU.

PyPI's Linux torch wheels are CUDA builds: 0.9 GB for torch itself and 2.5 GB of CUDA
libraries per release, of no use without a GPU. PyTorch's own CPU wheels
(``download.pytorch.org/whl/cpu``, uv's ``--torch-backend=cpu``) are about 200 MB and the same
release (``2.5.1+cpu``). So on a machine without a GPU, a torch cell with no CUDA variant or
the ``cpu`` one takes the CPU wheels when that index answers, and PyPI's wheels when it does
not; the run says which. A matrix that says where torch comes from (an index, a folder, a
``torch-backend``) is left as it says, and so is a machine with a GPU.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace

from .cell import Cell, MatrixPlan
from .matrix import Matrix
from .uvargs import TORCH_FAMILY

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def answers(url: str = TORCH_CPU_INDEX, timeout: float = 5.0) -> bool:
    """Whether the index answers at all (its torch page, asked for its head only)."""
    request = urllib.request.Request(f"{url}/torch/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(200 <= response.status < 400)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wants_cpu(matrix: Matrix, cell: Cell) -> bool:
    """A runnable torch cell whose wheels the matrix leaves to us: no CUDA variant or the
    ``cpu`` one, and no index, folder or backend of its own."""
    if cell.status is not None or cell.cuda not in (None, "cpu"):
        return False
    if not any(name in TORCH_FAMILY for name, _ in cell.packages):
        return False
    install, variant = matrix.install, matrix.install.variant(cell.cuda)
    chosen = variant.torch_backend is not None or variant.index_url or variant.find_links
    return not (chosen or install.no_index or install.index_url or install.find_links)


def with_torch_wheels(
    plans: Sequence[MatrixPlan],
    *,
    gpu: Callable[[], bool],
    reachable: Callable[[], bool] = answers,
) -> tuple[list[MatrixPlan], str | None]:
    """The plans with each torch cell's wheels decided, and the line that says which
    (``gpu`` and ``reachable`` are asked only when a cell is concerned)."""
    wanting = [(p, c) for p in plans for c in p.cells if _wants_cpu(p.matrix, c)]
    if not wanting or gpu():
        return list(plans), None
    if reachable():
        backend = "cpu"
        said = (
            f"dfvc: no GPU here: torch cells take PyTorch's CPU wheels ({TORCH_CPU_INDEX}, "
            "uv's --torch-backend=cpu), a few hundred MB a release instead of GBs"
        )
    else:
        backend = ""
        said = (
            f"dfvc: no GPU here, and PyTorch's CPU wheels ({TORCH_CPU_INDEX}) do not answer: "
            "torch cells take PyPI's wheels (CUDA builds, GBs a release; tests run on the CPU)"
        )
    chosen = {(p.matrix.name, c.id) for p, c in wanting}
    decided = [
        replace(
            plan,
            cells=tuple(
                replace(c, torch_backend=backend) if (plan.matrix.name, c.id) in chosen else c
                for c in plan.cells
            ),
        )
        for plan in plans
    ]
    return decided, said
