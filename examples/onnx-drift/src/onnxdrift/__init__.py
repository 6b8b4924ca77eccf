"""One small ONNX model per operator whose numbers depend on the runtime's kernels.

Each model is built with the ``onnx`` package's helpers (opset 17, IR version 8, which every
onnxruntime since 1.14 loads) and run on fixed inputs, so the only thing that differs between
two runs is the runtime.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


def _model(
    nodes: list,
    shape: list[int],
    output: list[int] | None = None,
    initializers: tuple = (),
) -> bytes:
    """A one-input (``X``), one-output (``Y``) float model, checked by onnx."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, output or shape)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


def image(shape: tuple[int, ...] = (1, 3, 16, 16)) -> np.ndarray:
    """Fixed, smooth-with-edges input: the same on every machine."""
    rng = np.random.default_rng(1234)
    return rng.standard_normal(shape).astype(np.float32)


def resize_cubic(scale: float = 2.3) -> bytes:
    """Bicubic upsampling by a non-integer factor (half-pixel coordinates)."""
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], dtype=np.float32), "scales")
    node = helper.make_node(
        "Resize",
        ["X", "", "scales"],
        ["Y"],
        mode="cubic",
        coordinate_transformation_mode="half_pixel",
        cubic_coeff_a=-0.75,
    )
    return _model([node], [1, 3, 16, 16], [1, 3, 36, 36], (scales,))


def matmul(n: int = 256) -> bytes:
    """A float32 matrix product: the runtime's GEMM kernels decide the rounding."""
    rng = np.random.default_rng(99)
    w = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "W")
    return _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [n, n], None, (w,))


def layer_norm() -> bytes:
    """LayerNormalization over the last axis."""
    scale = numpy_helper.from_array(np.linspace(0.5, 1.5, 16, dtype=np.float32), "scale")
    bias = numpy_helper.from_array(np.linspace(-0.1, 0.1, 16, dtype=np.float32), "bias")
    node = helper.make_node("LayerNormalization", ["X", "scale", "bias"], ["Y"], epsilon=1e-5)
    return _model([node], [1, 3, 16, 16], None, (scale, bias))


def erf_gelu() -> bytes:
    """GELU written out with Erf, as exporters emit it before opset 20."""
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    rsqrt2 = numpy_helper.from_array(np.array(1 / np.sqrt(2), dtype=np.float32), "rsqrt2")
    nodes = [
        helper.make_node("Mul", ["X", "rsqrt2"], ["a"]),
        helper.make_node("Erf", ["a"], ["b"]),
        helper.make_node("Add", ["b", "one"], ["c"]),
        helper.make_node("Mul", ["X", "c"], ["d"]),
        helper.make_node("Mul", ["d", "half"], ["Y"]),
    ]
    return _model(nodes, [1, 3, 16, 16], None, (half, one, rsqrt2))


def softmax() -> bytes:
    return _model([helper.make_node("Softmax", ["X"], ["Y"], axis=-1)], [1, 3, 16, 16])


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the same reduction order on every machine
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": x})
    return np.asarray(y)
