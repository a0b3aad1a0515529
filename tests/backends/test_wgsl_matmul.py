"""The `matmul` template on WebGPU against the numpy oracle.

Drawn: batch dims broadcasting between the operands, ragged M / N / K (size 1 and K up to 600),
1-D operands, a transposed or reshaped operand prologue (index arithmetic in the tile loads),
an elementwise epilogue (bias, activation, residual, a reshape), and a schedule from
`matmul_schedules` (shared or direct, vector 1 or 4, unroll). fp32 within rtol 1e-3 and
atol 1e-4 + 1e-5 K.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from web_cases import check, floats, splat
from xdsl.ir import SSAValue

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import Schedule
from nnjit.runtime.webgpu import WebGPUExecutor
from nnjit.tuner.spaces import matmul_schedules

# The whole valid space, less the largest unrolled bodies (slow to build on a software GPU).
SCHEDULES = [s for s in matmul_schedules() if s.thread[0] * s.thread[1] * s.unroll <= 64 and max(s.tile[:2]) <= 64]
EPILOGUES = ["none", "bias", "relu", "gelu", "scale", "residual", "reshape"]


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    m, n = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    k = draw(st.one_of(st.integers(1, 48), st.integers(100, 600)))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [b if draw(st.booleans()) else 1 for b in batch][draw(st.integers(0, len(batch))) :]
    b_batch = [b if draw(st.booleans()) else 1 for b in batch][draw(st.integers(0, len(batch))) :]
    a_shape, b_shape = [*a_batch, m, k], [*b_batch, k, n]
    if draw(st.integers(0, 5)) == 0:
        a_shape = [k]
    elif draw(st.integers(0, 5)) == 0:
        b_shape = [k]
    return {
        "a": a_shape,
        "b": b_shape,
        "prologue": draw(st.sampled_from(["none", "transpose_a", "transpose_b", "reshape_a"])),
        "epilogue": draw(st.sampled_from(EPILOGUES)),
    }


def _operand(x: SSAValue, shape: list[int], transposed: bool) -> Any:
    if not transposed or len(shape) < 2:
        return x
    perm = [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2]
    return nn.TransposeOp(x, perm)


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
    return [floats(rng, a_shape, -1, 1), floats(rng, b_shape, -1, 1), floats(rng, extra, -1, 1)]


def _body(problem: dict[str, Any]) -> Any:
    def body(a: SSAValue, b: SSAValue, c: SSAValue) -> Any:
        prologue = problem["prologue"]
        lhs = _operand(a, problem["a"], prologue == "transpose_a")
        if prologue == "reshape_a" and len(problem["a"]) >= 2:
            lhs = nn.ReshapeOp(a, problem["a"])
        y: Any = nn.MatmulOp(lhs, _operand(b, problem["b"], prologue == "transpose_b"))
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
        return y

    return body


@settings(max_examples=80, deadline=None)
@given(problem=problems(), schedule=st.sampled_from(SCHEDULES), seed=st.integers(0, 2**32 - 1))
def test_matmul_matches_oracle(
    executor: WebGPUExecutor, problem: dict[str, Any], schedule: Schedule, seed: int
) -> None:
    inputs = _inputs(problem, np.random.default_rng(seed))
    k = problem["a"][-1]
    check(executor, "matmul", schedule, inputs, _body(problem), atol=1e-4 + 1e-5 * k)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), vector=st.sampled_from([1, 4]), shared=st.booleans())
def test_full_unroll_on_a_larger_tile(executor: WebGPUExecutor, seed: int, vector: int, shared: bool) -> None:
    """The schedule shape DESIGN.md measured fast: 16 x 16 threads, 4 x 4 accumulators, k 8 unrolled."""
    rng = np.random.default_rng(seed)
    a, b, bias = floats(rng, (70, 45), -1, 1), floats(rng, (45, 67), -1, 1), floats(rng, (67,), -1, 1)
    schedule = Schedule((16, 16, 1), (64, 64, 8), (4, 4), vector, 8, shared)
    check(executor, "matmul", schedule, [a, b, bias], lambda x, w, c: nn.AddOp(nn.MatmulOp(x, w), c))


def test_schedules_are_valid_and_printable() -> None:
    """Every enumerated schedule satisfies the printer's own rules as well as the verifier's."""
    for s in matmul_schedules():
        assert s.tile[0] == s.workgroup[1] * s.thread[0] and s.tile[1] == s.workgroup[0] * s.thread[1]
        assert s.thread[1] % s.vector == 0 and s.tile[2] % s.unroll == 0 and s.workgroup[2] == 1
