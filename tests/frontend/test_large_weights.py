"""ONNX shape inference, the importer's cross-check, sees large float weights by type alone.

A model over protobuf's 2 GiB (llama2-2layer's weights live in an external file) cannot be serialized
for `onnx.shape_inference`; the cross-check therefore never hands it float weight data.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import nnjit
from nnjit.frontend.onnx import _SHAPE_ONLY_ELEMENTS, _without_large_weights, onnx_inferred_shapes


def big_weight_model() -> tuple[onnx.ModelProto, np.ndarray]:
    """x[batch, 8] @ w[8, 1024] reshaped by an int64 initializer (data propagation needs its values)."""
    w = np.random.default_rng(0).standard_normal((8, 1024)).astype(np.float32)
    assert w.size > _SHAPE_ONLY_ELEMENTS
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Reshape", ["h", "shape"], ["y"], name="reshape"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 32, 32], np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w


def test_large_float_weights_are_typed_inputs_without_data():
    model, w = big_weight_model()
    light = _without_large_weights(model)
    assert [t.name for t in light.graph.initializer] == ["shape"]
    assert [v.name for v in light.graph.input] == ["x", "w"]
    assert light.ByteSize() < w.nbytes // 10
    assert len(model.graph.initializer) == 2  # the model itself is left as it was


def test_inferred_shapes_and_compile_are_unchanged():
    model, w = big_weight_model()
    shapes = onnx_inferred_shapes(model, {"x": (3, 8)})
    assert shapes["h"] == (3, 1024)
    assert shapes["y"] == (3, 32, 32)
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    got = nnjit.compile(model, {"x": (3, 8)}).run({"x": x})["y"]
    np.testing.assert_allclose(got, (x @ w).reshape(3, 32, 32), rtol=1e-5, atol=1e-5)
