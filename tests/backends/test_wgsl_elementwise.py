"""The `elementwise` template on WebGPU against the numpy oracle: every table row, views as index math.

Shapes (rank 0-4, size-1 dims, broadcasting), values and schedules (from `elementwise_schedules`)
are drawn; fp32 within rtol 1e-3 / atol 1e-4 (sin/cos: Vulkan allows 2^-11 absolute, so 5e-4),
integers and booleans exact. Every printed shader is validated by naga when the executor builds it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from web_cases import check, floats, splat
from xdsl.dialects.builtin import f32, i1, i64

from nnjit.dialects import nn
from nnjit.dialects.web import Schedule
from nnjit.runtime.webgpu import WebGPUExecutor
from nnjit.tuner.spaces import elementwise_schedules

CASES = settings(max_examples=8, deadline=None)
SCHEDULES = st.sampled_from(elementwise_schedules())
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=6)
SEEDS = st.integers(0, 2**32 - 1)

UNARY = [
    (nn.ExpOp, -5, 5), (nn.LogOp, 0.05, 5), (nn.SqrtOp, 0, 5), (nn.RsqrtOp, 0.05, 5), (nn.TanhOp, -100, 100),
    (nn.ErfOp, -4.5, 4.5), (nn.SigmoidOp, -100, 100), (nn.SiluOp, -20, 20), (nn.ReluOp, -3, 3), (nn.NegOp, -3, 3),
    (nn.AbsOp, -3, 3), (nn.SinOp, -math.pi, math.pi), (nn.CosOp, -math.pi, math.pi), (nn.FloorOp, -3, 3),
    (nn.CeilOp, -3, 3), (nn.SignOp, -3, 3),
]  # fmt: skip


@pytest.mark.parametrize(("op", "low", "high"), UNARY, ids=[u[0].name for u in UNARY])
@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS)
def test_float_unary(executor: WebGPUExecutor, op: type[nn.ElementwiseUnaryOp], low: float, high: float,
                     shape: tuple[int, ...], schedule: Schedule, seed: int) -> None:  # fmt: skip
    x = floats(np.random.default_rng(seed), shape, low, high)
    atol = 5e-4 if op in (nn.SinOp, nn.CosOp) else 1e-4
    check(executor, "elementwise", schedule, [x], lambda a: op(a), atol=atol)


@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS)
def test_reciprocal_and_round_half_to_even(executor: WebGPUExecutor, shape: tuple[int, ...], schedule: Schedule, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    x = (rng.integers(-8, 8, size=shape) * 0.5 + 0.25 * (rng.integers(0, 2, size=shape) - 0.5)).astype(np.float32)
    halves = (rng.integers(-8, 8, size=shape) * 0.5).astype(np.float32)
    check(executor, "elementwise", schedule, [x, halves], lambda a, h: nn.AddOp(nn.ReciprocalOp(a), nn.RoundOp(h)))


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = draw(SHAPES)
    other = tuple(1 if draw(st.booleans()) else d for d in shape[draw(st.integers(0, len(shape))) :])
    return (shape, other) if draw(st.booleans()) else (other, shape)


FLOAT_BINARY = [nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp, nn.MaxOp, nn.MinOp, nn.ModOp, nn.PowOp]


@pytest.mark.parametrize("op", FLOAT_BINARY, ids=[o.name for o in FLOAT_BINARY])
@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS)
def test_float_binary_broadcasting(executor: WebGPUExecutor, op: type[nn.ElementwiseBinaryOp],
                                   shapes: tuple[tuple[int, ...], tuple[int, ...]], schedule: Schedule, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    a, b = (
        floats(rng, shapes[0]),
        floats(rng, shapes[1], 0.5, 3) * rng.choice([-1, 1], size=shapes[1]).astype(np.float32),
    )
    if op is nn.PowOp and rng.integers(0, 2):  # any base (0 and negatives too) to integral powers
        a, b = np.round(a), np.round(b)
    elif op is nn.PowOp:  # positive bases to any power
        a = np.abs(a) + np.float32(0.1)
    check(executor, "elementwise", schedule, [a, b], lambda x, y: op(x, y))


INT_BINARY = [nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp, nn.MaxOp, nn.MinOp, nn.ModOp, nn.PowOp]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op", INT_BINARY, ids=[o.name for o in INT_BINARY])
@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS)
def test_integer_binary_is_exact(executor: WebGPUExecutor, op: type[nn.ElementwiseBinaryOp], dtype: type,
                                 shapes: tuple[tuple[int, ...], tuple[int, ...]], schedule: Schedule, seed: int) -> None:  # fmt: skip
    """Div truncates toward zero and Mod takes the divisor's sign (ONNX); i64 computes in i32."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-50, 50, size=shapes[0]).astype(dtype)
    b = (rng.integers(1, 9, size=shapes[1]) * rng.choice([-1, 1], size=shapes[1])).astype(dtype)
    if op is nn.PowOp:
        # 0 to a negative power is undefined (the float power truncated to an integer overflows)
        a = rng.choice([-3, -2, -1, 1, 2, 3], size=shapes[0]).astype(dtype)
        b = rng.integers(-2, 6, size=shapes[1]).astype(dtype)
    check(executor, "elementwise", schedule, [a, b], lambda x, y: op(x, y))


COMPARISONS = [nn.EqualOp, nn.LessOp, nn.LessEqualOp, nn.GreaterOp, nn.GreaterEqualOp]


@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS, op=st.sampled_from(COMPARISONS),
       logic=st.sampled_from([nn.AndOp, nn.OrOp, nn.XorOp, nn.MaxOp, nn.MinOp]))  # fmt: skip
def test_comparisons_logic_and_where(executor: WebGPUExecutor, shapes: tuple[tuple[int, ...], tuple[int, ...]],
                                     schedule: Schedule, seed: int, op: type[nn.ComparisonOp], logic: type[nn.ElementwiseBinaryOp]) -> None:  # fmt: skip
    """i1 inputs and outputs travel as u32 0/1; `where` selects with broadcasting."""
    rng = np.random.default_rng(seed)
    a, b = (
        rng.integers(-2, 3, size=shapes[0]).astype(np.float32),
        rng.integers(-2, 3, size=shapes[1]).astype(np.float32),
    )
    mask = rng.integers(0, 2, size=shapes[1]).astype(bool)
    check(executor, "elementwise", schedule, [a, b, mask], lambda x, y, m: logic(op(x, y), m))
    check(executor, "elementwise", schedule, [a, b, mask], lambda x, y, m: nn.WhereOp(nn.NotOp(m), x, y))


@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS)
def test_casts(executor: WebGPUExecutor, shape: tuple[int, ...], schedule: Schedule, seed: int) -> None:
    """float -> int truncates toward zero; anything -> i1 is `!= 0`; i1 -> float is 0/1."""
    rng = np.random.default_rng(seed)
    x = (floats(rng, shape, -20, 20) * rng.integers(0, 2, size=shape)).astype(np.float32)
    check(executor, "elementwise", schedule, [x], lambda a: nn.CastOp(a, i64))
    check(executor, "elementwise", schedule, [x], lambda a: nn.CastOp(nn.CastOp(a, i1), f32))
    ints = rng.integers(-3, 3, size=shape).astype(np.int64)
    check(
        executor,
        "elementwise",
        schedule,
        [ints],
        lambda a: nn.MulOp(nn.CastOp(a, f32), nn.CastOp(nn.CastOp(a, i1), f32)),
    )


@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS, alpha=st.floats(-2, 2, width=32), bounds=st.tuples(
    st.none() | st.floats(-2, 0, width=32), st.none() | st.floats(0, 2, width=32)))  # fmt: skip
def test_parameterised_activations(executor: WebGPUExecutor, shape: tuple[int, ...], schedule: Schedule, seed: int,
                                   alpha: float, bounds: tuple[float | None, float | None]) -> None:  # fmt: skip
    x = floats(np.random.default_rng(seed), shape, -6, 6)
    check(executor, "elementwise", schedule, [x], lambda a: nn.GeluOp(a, "none"))
    check(executor, "elementwise", schedule, [x], lambda a: nn.GeluOp(a, "tanh"))
    check(executor, "elementwise", schedule, [x], lambda a: nn.LeakyReluOp(nn.ClipOp(a, *bounds), alpha))


# --- Views: index arithmetic, never copies ---------------------------------------------------------


@st.composite
def view_chain(draw: st.DrawFn) -> tuple[tuple[int, ...], list[tuple[str, object]]]:
    """A shape and a chain of views valid on it (transpose, slice, reshape, expand)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    steps: list[tuple[str, object]] = []
    current = shape
    for kind in draw(st.lists(st.sampled_from(["transpose", "slice", "reshape", "expand"]), min_size=1, max_size=4)):
        if kind == "transpose":
            perm = draw(st.permutations(range(len(current))))
            steps.append((kind, perm))
            current = tuple(current[p] for p in perm)
        elif kind == "slice":
            bounds = []
            for d in current:
                step = draw(st.sampled_from([1, 1, 2, -1, -2]))
                start, end = draw(st.integers(-d, d)), draw(st.integers(-d - 1, d))
                if not len(range(d)[start:end:step]):
                    start, end, step = 0, d, 1
                bounds.append((start, end, step))
            steps.append((kind, bounds))
            current = tuple(len(range(d)[s:e:t]) for d, (s, e, t) in zip(current, bounds, strict=True))
        elif kind == "reshape":
            flat = int(np.prod(current))
            divisors = [k for k in range(1, flat + 1) if flat % k == 0]
            first = draw(st.sampled_from(divisors))
            current = (first, flat // first) if draw(st.booleans()) else (flat // first, 1, first)
            steps.append((kind, current))
        else:
            current = (draw(st.integers(1, 3)), *current)
            steps.append((kind, current))
    return shape, steps


def _apply_views(value: object, steps: list[tuple[str, object]]) -> object:
    for kind, arg in steps:
        if kind == "transpose":
            value = nn.TransposeOp(value, arg)  # type: ignore[arg-type]
        elif kind == "slice":
            starts, ends, steps_ = zip(*arg, strict=True)  # type: ignore[misc]
            value = nn.SliceOp(value, starts, ends, steps_)  # type: ignore[arg-type]
        elif kind == "reshape":
            value = nn.ReshapeOp(value, arg)  # type: ignore[arg-type]
        else:
            value = nn.ExpandOp(value, arg)  # type: ignore[arg-type]
    return value


@settings(max_examples=25, deadline=None)
@given(chain=view_chain(), schedule=SCHEDULES, seed=SEEDS)
def test_view_chains(executor: WebGPUExecutor, chain: tuple[tuple[int, ...], list[tuple[str, object]]], schedule: Schedule, seed: int) -> None:  # fmt: skip
    shape, steps = chain
    x = floats(np.random.default_rng(seed), shape)
    check(executor, "elementwise", schedule, [x], lambda a: nn.ExpOp(_apply_views(a, steps)))  # type: ignore[arg-type]


@CASES
@given(data=st.data(), schedule=SCHEDULES, seed=SEEDS)
def test_gather_wraps_negative_indices(
    executor: WebGPUExecutor, data: st.DataObject, schedule: Schedule, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = shape[axis]
    indices = rng.integers(-size, size, size=data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4))).astype(
        np.int64
    )
    x = floats(rng, shape)
    check(executor, "elementwise", schedule, [x, indices], lambda a, i: nn.GatherOp(a, i, axis))


@CASES
@given(data=st.data(), schedule=SCHEDULES, seed=SEEDS)
def test_concat_selects_by_range(executor: WebGPUExecutor, data: st.DataObject, schedule: Schedule, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4).filter(any))
    pieces = [floats(rng, (*shape[:axis], n, *shape[axis + 1 :])) for n in sizes]
    check(executor, "elementwise", schedule, pieces, lambda *xs: nn.ConcatOp([nn.NegOp(x) for x in xs], axis))


def test_splat_constants_are_literals(executor: WebGPUExecutor) -> None:
    x = floats(np.random.default_rng(0), (3, 5))
    schedule = Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False)
    check(
        executor,
        "elementwise",
        schedule,
        [x],
        lambda a: nn.MaxOp(nn.MulOp(a, splat(-2.5, np.float32, (5,))), splat(float("-inf"), np.float32)),
    )
