"""Every zoo model imports, and the oracle matches onnxruntime on it at two input shapes."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

import nnjit
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path

# fp32 end to end; the oracle computes in float64, onnxruntime in float32.
RTOL, ATOL = 1e-4, 1e-5
SHAPES = [(1, 7), (2, 16)]


@pytest.fixture(scope="module", params=sorted(ZOO_MODELS))
def zoo_model(request: pytest.FixtureRequest) -> tuple[str, onnxruntime.InferenceSession]:
    name = request.param
    session = onnxruntime.InferenceSession(str(zoo_path(name)), providers=["CPUExecutionProvider"])
    return name, session


@pytest.mark.parametrize("batch, seq", SHAPES)
def test_oracle_matches_onnxruntime(zoo_model: tuple[str, onnxruntime.InferenceSession], batch: int, seq: int):
    name, session = zoo_model
    inputs = example_inputs(name, batch, seq, seed=batch * 100 + seq)
    compiled = nnjit.compile(zoo_path(name), {k: v.shape for k, v in inputs.items()})
    outputs = compiled.run(inputs)
    expected = session.run(None, inputs)
    assert list(outputs) == [o.name for o in session.get_outputs()]
    for (key, got), want in zip(outputs.items(), expected, strict=True):
        assert got.shape == want.shape, key
        assert got.dtype == want.dtype, key
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} {key}")


def test_patterns_are_recognised_in_the_zoo():
    """The exporters' composites become single ops (what later kernels fuse on)."""
    expected = {"bart": "nn.gelu", "roberta": "nn.gelu", "gpt2": "nn.gelu", "t5": "nn.rms_norm", "llama": "nn.rms_norm"}
    for name, op in expected.items():
        inputs = example_inputs(name, 1, 8)
        ir = nnjit.compile(zoo_path(name), {k: v.shape for k, v in inputs.items()}).ir
        assert op in ir, f"{op} not recognised in {name}"
    llama = nnjit.compile(zoo_path("llama"), {"input_ids": (1, 8)}).ir
    assert "nn.silu" in llama and "nn.softmax" in llama
    assert "nn.erf" not in nnjit.compile(zoo_path("bart"), {"input_ids": (1, 8)}).ir


def test_shape_arithmetic_is_folded():
    """After specialisation no Shape/Range/mask arithmetic is left on integer tensors except real dataflow."""
    ir = nnjit.compile(zoo_path("gpt2"), {"input_ids": (1, 8)}).ir
    integer_ops = [
        line for line in ir.splitlines() if " = nn." in line and "nn.constant" not in line and "xi64>" in line.split("->")[-1]
    ]
    assert integer_ops == [], integer_ops
