"""Each operator's output on fixed inputs, recorded: pytest-dfvc compares it across cells."""

import numpy as np
import pytest

import onnxdrift

CASES = {
    "resize_cubic": (onnxdrift.resize_cubic, lambda: onnxdrift.image()),
    "matmul": (onnxdrift.matmul, lambda: onnxdrift.image((256, 256))),
    "layer_norm": (onnxdrift.layer_norm, lambda: onnxdrift.image()),
    "erf_gelu": (onnxdrift.erf_gelu, lambda: onnxdrift.image()),
    "softmax": (onnxdrift.softmax, lambda: onnxdrift.image() * 20),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output(name, dfvc_record):
    build, make_input = CASES[name]
    y = onnxdrift.run(build(), make_input())
    assert np.all(np.isfinite(y))
    # The sum in float64 and the largest value, to the last bit: a kernel that rounds
    # differently moves them.
    dfvc_record("sum", float(np.sum(y, dtype=np.float64)))
    dfvc_record("max", float(y.max()))
