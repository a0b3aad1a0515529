"""`web-split-bindings`: weights forced over a lowered binding limit give the oracle's outputs on
wgpu-native and in Chromium, no buffer exceeds the limit, and too many pieces is a clear error.

The default limit is WebGPU's 128 MiB, which the zoo never reaches; the tests lower it with the
pass option, the way a phone's limit would apply to a paper-scale model (see `tests/models/` and
`docs/benchmarks/` for GPT-2's 147 MiB embedding at the real limit).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import nnjit
from nnjit.backends.webgpu_plan import plan_webgpu
from nnjit.compiler import target_pipeline
from nnjit.dialects.web import DispatchOp
from nnjit.errors import NnjitError
from nnjit.models.zoo import example_inputs, zoo_path

RTOL, ATOL = 1e-4, 1e-5


def split_pipeline(max_bytes: int) -> str:
    """The webgpu pipeline with the binding limit lowered to `max_bytes` (fusion and splitting)."""
    return target_pipeline("webgpu", max_bytes)


def embed_and_project(vocab: int, width: int, out: int, seed: int) -> onnx.ModelProto:
    """`MatMul(Gather(table, ids), weight) + bias`: a row-gathered and a matmul-read weight."""
    rng = np.random.default_rng(seed)
    table = numpy_helper.from_array(rng.standard_normal((vocab, width)).astype(np.float32), "table")
    weight = numpy_helper.from_array(rng.standard_normal((width, out)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.standard_normal(out).astype(np.float32), "bias")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["rows"], name="embed"),
        helper.make_node("MatMul", ["rows", "weight"], ["projected"], name="project"),
        helper.make_node("Add", ["projected", "bias"], ["y"], name="bias_add"),
    ]
    graph = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, out])], [table, weight, bias],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@settings(max_examples=6, deadline=None)
@given(
    vocab=st.integers(9, 70),
    width=st.integers(3, 40),
    out=st.integers(5, 48),
    pieces=st.integers(2, 3),
    seed=st.integers(0, 2**16),
)
def test_split_weights_give_the_oracles_outputs_on_wgpu(vocab: int, width: int, out: int, pieces: int, seed: int):
    model = embed_and_project(vocab, width, out, seed)
    largest = 4 * max(vocab * width, width * out)
    max_bytes = max(4 * max(width, out), -(-largest // pieces))
    ids = np.random.default_rng(seed).integers(-vocab, vocab, (1, 5))
    compiled = nnjit.compile(model, {"ids": (1, 5)}, "webgpu", pipeline=split_pipeline(max_bytes), kernel_db=False)
    plan = plan_webgpu(compiled.module)
    assert all(b.nbytes <= max_bytes for b in plan.buffers if b.role == "weight")
    assert sum(b.role == "weight" for b in plan.buffers) > 3, "nothing was split"
    expected = nnjit.compile(model, {"ids": (1, 5)}).run({"ids": ids})["y"]
    np.testing.assert_allclose(compiled.run({"ids": ids}, executor="webgpu")["y"], expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["gpt2", "llama", "roberta"])
def test_zoo_model_under_a_lowered_binding_limit(name: str):
    """Split weights run as the oracle does; fusion keeps every kernel within 8 bindings (RoBERTa's
    embedding sum and LayerNorm would take more once its word embedding is cut)."""
    inputs = example_inputs(name, 1, 7)
    shapes = {k: v.shape for k, v in inputs.items()}
    expected = nnjit.compile(zoo_path(name), shapes).run(inputs)
    compiled = nnjit.compile(zoo_path(name), shapes, "webgpu", pipeline=split_pipeline(20000), kernel_db=False)
    joins = [compiled.ir_at(stage).count("nn.concat") for stage in ("convert-nn-to-web", "web-split-bindings")]
    assert joins[1] > joins[0], "nothing was split"
    assert all(len(d.args) + 1 <= 8 for d in compiled.module.walk() if isinstance(d, DispatchOp))
    executors = ["webgpu", "chromium-webgpu"] if name == "gpt2" else ["webgpu"]
    for executor in executors:
        got = compiled.run(inputs, executor=executor)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-3, atol=1e-4, err_msg=f"{executor} {key}")


def test_too_many_pieces_is_a_clear_error():
    with pytest.raises(
        NnjitError, match=r"web.kernel @\w+: splitting its weights over 64 bytes a binding needs \d+ storage bindings"
    ):
        nnjit.compile(embed_and_project(40, 8, 16, 0), {"ids": (1, 5)}, "webgpu", pipeline=split_pipeline(64))
