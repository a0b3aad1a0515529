"""Lowering to `web` never changes results: the web oracle on the lowered module equals the nn oracle."""

from __future__ import annotations

import numpy as np
import pytest

import nnjit
from nnjit.dialects.web import DispatchOp, KernelOp
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path


@pytest.mark.parametrize("name", sorted(ZOO_MODELS))
def test_lowered_zoo_model_computes_what_nn_computes(name: str):
    inputs = example_inputs(name, 2, 9, seed=3)
    shapes = {k: v.shape for k, v in inputs.items()}
    high = nnjit.compile(zoo_path(name), shapes, target="reference")
    low = nnjit.compile(zoo_path(name), shapes, target="webgpu")
    kernels = [op for op in low.module.body.block.ops if isinstance(op, KernelOp)]
    assert kernels, "nothing was lowered"
    expected = high.run(inputs)
    got = low.run(inputs, executor="reference")
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)


def test_fusion_reduces_dispatches_and_planning_reduces_storage():
    low = nnjit.compile(zoo_path("gpt2"), {"input_ids": (1, 16)}, target="webgpu")
    main = next(op for op in low.module.body.block.ops if not isinstance(op, KernelOp))
    dispatches = [op for op in main.walk() if isinstance(op, DispatchOp)]
    nn_ops = [line for line in low.ir_at("canonicalize#2").splitlines() if " = nn." in line and "nn.constant" not in line]
    assert len(dispatches) < len(nn_ops) / 2
    assert all(op.slot is not None for op in dispatches)
    peak = main.attributes["web.peak_bytes"].value.data  # pyright: ignore[reportAttributeAccessIssue]
    naive = main.attributes["web.naive_bytes"].value.data  # pyright: ignore[reportAttributeAccessIssue]
    assert peak < naive / 2
