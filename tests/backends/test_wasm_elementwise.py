"""The `elementwise` template on the Wasm target (wasmtime and V8) against the numpy oracle.

Every op-table row (f32x4, i32x4, masks; the per-lane fallbacks), views as index arithmetic
(transpose, slice with negative steps, expand, gather with negative indices, concat at ragged and at
vector-aligned boundaries), chains with broadcasting, and shapes of rank 0-4 with size-1 and ragged
dims; schedules from the Wasm space (vector 1 / 4, unroll). fp32 within rtol 1e-3 / atol 1e-4;
integers and booleans exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from wasm_cases import check, floats, splat, wasm_schedule
from xdsl.dialects.builtin import f32, i1, i64

from nnjit.dialects import nn
from nnjit.dialects.web import Schedule
from nnjit.tuner.wasm_spaces import wasm_elementwise_schedules

CASES = settings(max_examples=15, deadline=None)
SCHEDULES = st.sampled_from(wasm_elementwise_schedules())
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=9)
SEEDS = st.integers(0, 2**32 - 1)

UNARY = [
    (nn.ExpOp, -80, 80), (nn.LogOp, 1e-6, 1e6), (nn.SqrtOp, 0, 5), (nn.RsqrtOp, 0.05, 5), (nn.TanhOp, -100, 100),
    (nn.ErfOp, -4.5, 4.5), (nn.SigmoidOp, -100, 100), (nn.SiluOp, -20, 20), (nn.ReluOp, -3, 3), (nn.NegOp, -3, 3),
    (nn.AbsOp, -3, 3), (nn.SinOp, -20, 20), (nn.CosOp, -20, 20), (nn.FloorOp, -3, 3), (nn.CeilOp, -3, 3),
    (nn.SignOp, -3, 3), (nn.ReciprocalOp, 0.1, 3),
]  # fmt: skip


@pytest.mark.parametrize(("op", "low", "high"), UNARY, ids=[u[0].name for u in UNARY])
@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS)
def test_float_unary(op: type[nn.ElementwiseUnaryOp], low: float, high: float, shape: tuple[int, ...],
                     schedule: Schedule, seed: int) -> None:  # fmt: skip
    check("elementwise", schedule, [floats(np.random.default_rng(seed), shape, low, high)], lambda a: op(a))


@CASES
@given(shape=SHAPES, schedule=SCHEDULES, seed=SEEDS, approximate=st.sampled_from(["none", "tanh"]))
def test_gelu_leaky_relu_clip(shape: tuple[int, ...], schedule: Schedule, seed: int, approximate: str) -> None:
    x = floats(np.random.default_rng(seed), shape, -6, 6)
    check("elementwise", schedule, [x], lambda a: nn.ClipOp(nn.LeakyReluOp(nn.GeluOp(a, approximate), 0.1), -0.5, 4.0))


def test_special_values() -> None:
    """inf, -inf, NaN, 0, -0 and extremes through the polynomial helpers and the rounding ops."""
    specials = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88.0, -88.0, 100.0, -100.0,
                         3.4e38, -3.4e38, 0.5, 1.5, 2.5, -2.5], np.float32)  # fmt: skip
    for op in (nn.ExpOp, nn.TanhOp, nn.SigmoidOp, nn.ErfOp, nn.AbsOp, nn.FloorOp, nn.RoundOp, nn.SignOp, nn.ReluOp):
        for vector in (1, 4):
            check("elementwise", wasm_schedule(vector), [specials], lambda a, op=op: op(a))
    logs = np.array([0.0, -0.0, -1.0, np.inf, np.nan, 1e-40, 1e-30, 1.0, 2.0, 1e30], np.float32)
    check("elementwise", wasm_schedule(4), [logs], nn.LogOp)


BINARY = [nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp, nn.MaxOp, nn.MinOp, nn.PowOp, nn.ModOp]
COMPARISONS = [nn.EqualOp, nn.LessOp, nn.LessEqualOp, nn.GreaterOp, nn.GreaterEqualOp]


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = draw(SHAPES)
    other = tuple(1 if draw(st.booleans()) else d for d in shape[draw(st.integers(0, len(shape))) :])
    return (shape, other) if draw(st.booleans()) else (other, shape)


@pytest.mark.parametrize("op", BINARY + COMPARISONS, ids=[op.name for op in BINARY + COMPARISONS])
@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS)
def test_float_binary(op: type[nn.ElementwiseBinaryOp], shapes: tuple[tuple[int, ...], tuple[int, ...]],
                      schedule: Schedule, seed: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    a, b = floats(rng, shapes[0]), floats(rng, shapes[1])
    if op is nn.PowOp:
        a, b = np.round(a * 2).astype(np.float32), np.round(b).astype(np.float32)  # negative bases, integer powers
    if op in (nn.DivOp, nn.ModOp):
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    check("elementwise", schedule, [a, b], lambda x, y: op(x, y))


@pytest.mark.parametrize("op", [*BINARY, *COMPARISONS, nn.NegOp, nn.AbsOp, nn.SignOp, nn.ReluOp],
                         ids=[op.name for op in [*BINARY, *COMPARISONS, nn.NegOp, nn.AbsOp, nn.SignOp, nn.ReluOp]])  # fmt: skip
@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS)
def test_integer_ops(op: type, shapes: tuple[tuple[int, ...], tuple[int, ...]], schedule: Schedule, seed: int) -> None:
    """i64 tensors compute in i32: division truncates, Mod takes the divisor's sign, Pow squares."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-50, 50, shapes[0]).astype(np.int64)
    b = rng.integers(-6, 7, shapes[1]).astype(np.int64)
    if op in (nn.DivOp, nn.ModOp):
        b = np.where(b == 0, 3, b)
    if op is nn.PowOp:
        a, b = rng.integers(1, 5, shapes[0]).astype(np.int64), rng.integers(-2, 6, shapes[1]).astype(np.int64)
        a = a * rng.choice([-1, 1], shapes[0])  # 0 to a negative power is undefined (inf as an integer)
    if issubclass(op, nn.ElementwiseUnaryOp):
        check("elementwise", schedule, [a], lambda x: op(x))
    else:
        check("elementwise", schedule, [a, b], lambda x, y: op(x, y))


@CASES
@given(shapes=broadcast_pair(), schedule=SCHEDULES, seed=SEEDS)
def test_booleans_where_and_casts(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], schedule: Schedule, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.random(shapes[0]) < 0.5, rng.random(shapes[1]) < 0.5
    x, y = floats(rng, shapes[0]), floats(rng, shapes[1])

    def body(p_: object, q_: object, x_: object, y_: object) -> object:
        logic = nn.XorOp(nn.OrOp(nn.AndOp(p_, q_), nn.NotOp(q_)), nn.EqualOp(p_, q_))  # type: ignore[arg-type]
        chosen = nn.WhereOp(logic, nn.CastOp(x_, i64), nn.CastOp(nn.GreaterOp(y_, x_), i64))  # type: ignore[arg-type]
        return nn.AddOp(nn.CastOp(chosen, f32), nn.CastOp(nn.CastOp(chosen, i1), f32))

    check("elementwise", schedule, [p, q, x, y], body)


@st.composite
def views(draw: st.DrawFn) -> dict[str, object]:
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=9))
    rank = len(shape)
    steps = [draw(st.sampled_from([1, 1, 2, -1])) for _ in shape]
    return {"shape": shape, "perm": draw(st.permutations(range(rank))), "steps": steps,
            "axis": draw(st.integers(0, rank - 1)), "split": draw(st.integers(0, 8))}  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(view=views(), schedule=SCHEDULES, seed=SEEDS)
def test_views_are_index_arithmetic(view: dict[str, object], schedule: Schedule, seed: int) -> None:
    """transpose, strided / reversed slice, concat (ragged and vector-aligned cuts) and expand, fused."""
    rng = np.random.default_rng(seed)
    shape: tuple[int, ...] = view["shape"]  # type: ignore[assignment]
    axis: int = view["axis"]  # type: ignore[assignment]
    x = floats(rng, shape)
    steps: list[int] = view["steps"]  # type: ignore[assignment]
    sliced_shape = x[tuple(slice(None, None, step) for step in steps)].shape
    other = list(sliced_shape)
    other[axis] = max(view["split"], 1)  # type: ignore[call-overload]
    y = floats(rng, other)

    def body(a: object, b: object) -> object:
        sliced = nn.SliceOp(a, [0 if s > 0 else d - 1 for d, s in zip(shape, steps, strict=True)],  # type: ignore[arg-type]
                            [d if s > 0 else -d - 1 for d, s in zip(shape, steps, strict=True)], steps)  # fmt: skip
        joined = nn.ConcatOp([sliced, nn.NegOp(b)], axis)  # type: ignore[arg-type]
        return nn.ExpOp(nn.TransposeOp(joined, list(view["perm"])))  # type: ignore[arg-type]

    check("elementwise", schedule, [x, y], body)


@CASES
@given(schedule=SCHEDULES, seed=SEEDS, rows=st.integers(1, 9), width=st.integers(1, 13))
def test_gather_with_negative_indices_and_expand(schedule: Schedule, seed: int, rows: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    table = floats(rng, (rows, width))
    ids = rng.integers(-rows, rows, (2, 3)).astype(np.int64)
    check("elementwise", schedule, [table, ids], lambda t, i: nn.GatherOp(t, i, 0))
    columns = rng.integers(-width, width, (4,)).astype(np.int64)
    check(
        "elementwise", schedule, [table, columns], lambda t, i: nn.AddOp(nn.GatherOp(t, i, 1), splat(1.0, np.float32))
    )
    check("elementwise", schedule, [table[:1]], lambda t: nn.ExpandOp(t, [3, rows, width]))


def test_rope_concat_at_a_vector_boundary_branches_once() -> None:
    """Llama's rotate-half: a concat cut at a multiple of 4 is one branch per vector, never per lane."""
    x = floats(np.random.default_rng(0), (2, 3, 16))

    def body(a: object) -> object:
        first = nn.SliceOp(a, [0, 0, 0], [2, 3, 8], [1, 1, 1])  # type: ignore[arg-type]
        second = nn.SliceOp(a, [0, 0, 8], [2, 3, 16], [1, 1, 1])  # type: ignore[arg-type]
        return nn.AddOp(nn.MulOp(a, a), nn.ConcatOp([nn.NegOp(second), first], 2))  # type: ignore[arg-type]

    module = check("elementwise", wasm_schedule(4), [x], body)
    from nnjit.runtime.wasm import WasmtimeExecutor

    text = WasmtimeExecutor().program(module).text
    assert "v128.any_true" not in text and "load32_lane" not in text
    assert math.isfinite(len(text))
