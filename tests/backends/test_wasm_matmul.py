"""The `matmul` template on the Wasm target, in wasmtime and V8, against the numpy oracle.

Drawn: batch dims broadcasting between the operands, ragged M / N / K (size 1, edges of every
register block, K past the cache block so partial sums cross K blocks), 1-D operands, a transposed,
reshaped or cast operand prologue, an elementwise epilogue (bias, activation, residual, reshape,
a cast to i1), and a schedule from the Wasm space (vector and scalar register blocks, packed or
in place, K unroll). fp32 within rtol 1e-3 and atol 1e-4 + 1e-5 K.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from wasm_cases import check, floats, splat, wasm_schedule
from xdsl.dialects.builtin import f32, i1
from xdsl.ir import SSAValue

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import Schedule
from nnjit.tuner.wasm_spaces import register_pressure, wasm_matmul_schedules, wasm_scalar_matmul_schedules

# The valid space less the largest bodies (slow to compile), plus the scalar register blocks.
SCHEDULES = [
    s for s in wasm_matmul_schedules() if s.thread[0] * s.thread[1] * s.unroll <= 256
] + wasm_scalar_matmul_schedules()
SMALL_BLOCKS = [s for s in SCHEDULES if s.tile[2] == 64 and s.tile[0] <= 16 and s.tile[1] <= 32]
EPILOGUES = ["none", "bias", "relu", "gelu", "scale", "residual", "reshape", "positive"]


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    m, n = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    k = draw(st.one_of(st.integers(1, 48), st.integers(60, 300)))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [b if draw(st.booleans()) else 1 for b in batch][draw(st.integers(0, len(batch))) :]
    b_batch = [b if draw(st.booleans()) else 1 for b in batch][draw(st.integers(0, len(batch))) :]
    a_shape, b_shape = [*a_batch, m, k], [*b_batch, k, n]
    if draw(st.integers(0, 7)) == 0:
        a_shape = [k]
    elif draw(st.integers(0, 7)) == 0:
        b_shape = [k]
    return {
        "a": a_shape,
        "b": b_shape,
        "prologue": draw(st.sampled_from(["none", "transpose_a", "transpose_b", "reshape_a", "cast_b"])),
        "epilogue": draw(st.sampled_from(EPILOGUES)),
    }


def _operand(x: SSAValue, shape: list[int], transposed: bool) -> Any:
    if not transposed or len(shape) < 2:
        return x
    return nn.TransposeOp(x, [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2])


def _inputs(problem: dict[str, Any], rng: np.random.Generator) -> list[np.ndarray]:
    a_shape, b_shape = list(problem["a"]), list(problem["b"])
    if problem["prologue"] == "transpose_a" and len(a_shape) >= 2:
        a_shape[-2:] = a_shape[:-3:-1]
    if problem["prologue"] == "transpose_b" and len(b_shape) >= 2:
        b_shape[-2:] = b_shape[:-3:-1]
    if problem["prologue"] == "reshape_a" and len(a_shape) >= 2:
        a_shape = [shapes.numel(a_shape[:-1]), a_shape[-1]]
    result = shapes.matmul(problem["a"], problem["b"])
    extra = {"bias": result[-1:], "residual": result, "reshape": [shapes.numel(result)]}.get(problem["epilogue"], [1])
    b = floats(rng, b_shape, -1, 1)
    if problem["prologue"] == "cast_b":
        b = rng.integers(-3, 4, b_shape).astype(np.int64)
    return [floats(rng, a_shape, -1, 1), b, floats(rng, extra, -1, 1)]


def _body(problem: dict[str, Any]) -> Any:
    def body(a: SSAValue, b: SSAValue, c: SSAValue) -> Any:
        prologue = problem["prologue"]
        lhs = _operand(a, problem["a"], prologue == "transpose_a")
        if prologue == "reshape_a" and len(problem["a"]) >= 2:
            lhs = nn.ReshapeOp(a, problem["a"])
        rhs = nn.CastOp(b, f32) if prologue == "cast_b" else _operand(b, problem["b"], prologue == "transpose_b")
        y: Any = nn.MatmulOp(lhs, rhs)
        epilogue = problem["epilogue"]
        if epilogue in ("bias", "residual"):
            y = nn.AddOp(y, c)
        elif epilogue == "relu":
            y = nn.ReluOp(y)
        elif epilogue == "gelu":
            y = nn.GeluOp(y, "tanh")
        elif epilogue == "scale":
            y = nn.MulOp(y, splat(0.125, np.float32))
        elif epilogue == "reshape":
            y = nn.AddOp(nn.ReshapeOp(y, [shapes.numel(nn.tensor_shape(y))]), c)
        elif epilogue == "positive":
            y = nn.CastOp(nn.ReluOp(y), i1)
        return y

    return body


@settings(max_examples=300, deadline=None)
@given(problem=problems(), schedule=st.sampled_from(SMALL_BLOCKS), seed=st.integers(0, 2**32 - 1))
def test_matmul_matches_oracle(problem: dict[str, Any], schedule: Schedule, seed: int) -> None:
    """Small cache blocks, so that drawn sizes cross M, N and K blocks and hit every edge tile."""
    inputs = _inputs(problem, np.random.default_rng(seed))
    k = problem["a"][-1]
    check("matmul", schedule, inputs, _body(problem), atol=1e-4 + 1e-5 * k)


@settings(max_examples=60, deadline=None)
@given(problem=problems(), schedule=st.sampled_from(SCHEDULES), seed=st.integers(0, 2**32 - 1))
def test_matmul_over_the_whole_space(problem: dict[str, Any], schedule: Schedule, seed: int) -> None:
    inputs = _inputs(problem, np.random.default_rng(seed))
    check("matmul", schedule, inputs, _body(problem), atol=1e-4 + 1e-5 * problem["a"][-1])


def test_zoo_shapes_with_the_default_block() -> None:
    """The zoo's projection shapes (M = 16) with a bias and GELU, under the default Wasm schedule."""
    from nnjit.passes.convert_nn_to_web import WASM_DEFAULT_SCHEDULES

    rng = np.random.default_rng(0)
    for m, k, n in [(16, 32, 96), (16, 32, 32), (16, 64, 256), (16, 172, 64)]:
        a, b, c = floats(rng, (m, k), -1, 1), floats(rng, (k, n), -1, 1), floats(rng, (n,), -1, 1)
        check("matmul", WASM_DEFAULT_SCHEDULES["matmul"], [a, b, c],
              lambda x, w, bias: nn.GeluOp(nn.AddOp(nn.MatmulOp(x, w), bias), "none"), atol=1e-4 + 1e-5 * k)  # fmt: skip


def test_integer_matmul() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(-9, 9, (5, 7)).astype(np.int64), rng.integers(-9, 9, (7, 10)).astype(np.int64)
    for vector, thread in [(4, (2, 8)), (1, (2, 2))]:
        check("matmul", wasm_schedule(vector, 2, (4, 16 if vector == 4 else 4, 4), thread), [a, b], nn.MatmulOp)


def test_space_verifies_and_respects_register_pressure() -> None:
    from nnjit.tuner.wasm_spaces import V128_REGISTERS

    for s in wasm_matmul_schedules():
        assert s.workgroup == (1, 1, 1) and s.vector == 4 and s.thread[1] % 4 == 0
        assert s.tile[0] % s.thread[0] == 0 and s.tile[1] % s.thread[1] == 0
        assert register_pressure(*s.thread) <= 1.25 * V128_REGISTERS["x86-64"]
    wider = wasm_matmul_schedules(V128_REGISTERS["aarch64"])
    assert len(wider) > len(wasm_matmul_schedules())
