"""Reductions, scans, convolutions and pooling on the Wasm target (wasmtime and V8) against the oracle.

Templates `row_reduce` (softmax, log_softmax, layer_norm over one or more trailing dims, rms_norm,
trailing reduce_*), `reduce` (any axes, kept or dropped), `scan` (cumsum, exclusive / reverse,
any axis), `conv2d` (strides, pads, dilations, groups, bias) and `pool` (max / average, with and
without counting padding). Shapes (ragged rows, size-1 dims, rows shorter than a vector), prologues,
epilogues and schedules from the Wasm space are drawn. fp32 within rtol 1e-3 / atol 1e-4 scaled by
the reduced extent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from wasm_cases import check, floats, splat
from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import SSAValue

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import Schedule
from nnjit.tuner.wasm_spaces import wasm_row_reduce_schedules, wasm_simple_schedules

SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=13)
ROW_SCHEDULES = st.sampled_from(wasm_row_reduce_schedules())
SIMPLE_SCHEDULES = st.sampled_from(wasm_simple_schedules())
ROW_OPS = ["softmax", "log_softmax", "layer_norm", "layer_norm_2d", "rms_norm", "sum", "mean", "max", "min", "prod"]
REDUCTIONS = {"sum": nn.ReduceSumOp, "mean": nn.ReduceMeanOp, "max": nn.ReduceMaxOp, "min": nn.ReduceMinOp,
              "prod": nn.ReduceProdOp}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(shape=SHAPES, op=st.sampled_from(ROW_OPS), schedule=ROW_SCHEDULES, seed=SEEDS,
       prologue=st.booleans(), epilogue=st.booleans(), keep=st.booleans())  # fmt: skip
def test_row_reduce(shape: tuple[int, ...], op: str, schedule: Schedule, seed: int, prologue: bool, epilogue: bool,
                    keep: bool) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    axis = len(shape) - (2 if op == "layer_norm_2d" and len(shape) > 1 else 1)
    row = shape[axis:]
    x = floats(rng, shape, 0.5, 1.5) if op == "prod" else floats(rng, shape)
    scale, bias = floats(rng, row), floats(rng, row[-1:])

    def body(a: SSAValue, g: SSAValue, b: SSAValue) -> Any:
        source: Any = nn.ExpOp(a) if prologue else a
        if op in ("softmax", "log_softmax"):
            y: Any = (nn.SoftmaxOp if op == "softmax" else nn.LogSoftmaxOp)(source, -1)
        elif op.startswith("layer_norm"):
            y = nn.LayerNormOp(source, g, b, axis, 1e-5)
        elif op == "rms_norm":
            y = nn.RmsNormOp(source, g, axis, 1e-6)
        else:
            y = REDUCTIONS[op](source, list(range(axis, len(shape))), keep)
        return nn.MulOp(y, splat(2.0, np.float32)) if epilogue else y

    atol = 1e-4 * max(1, shapes.numel(row)) ** 0.5 * (3 if prologue else 1)
    check("row_reduce", schedule, [x, scale, bias], body, atol=atol)


@settings(max_examples=100, deadline=None)
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=9), op=st.sampled_from(sorted(REDUCTIONS)),
       schedule=SIMPLE_SCHEDULES, seed=SEEDS, keep=st.booleans(), data=st.data())  # fmt: skip
def test_reduce_over_any_axes(shape: tuple[int, ...], op: str, schedule: Schedule, seed: int, keep: bool,
                              data: st.DataObject) -> None:  # fmt: skip
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    rng = np.random.default_rng(seed)
    x = floats(rng, shape, 0.5, 1.5) if op == "prod" else floats(rng, shape)
    check("reduce", schedule, [x], lambda a: REDUCTIONS[op](a, axes, keep), atol=1e-4 * max(1, x.size) ** 0.5)


def test_integer_reductions() -> None:
    x = np.random.default_rng(3).integers(-20, 20, (3, 5, 7)).astype(np.int64)
    for schedule in wasm_simple_schedules():
        for op in (nn.ReduceSumOp, nn.ReduceMaxOp, nn.ReduceMinOp, nn.ReduceMeanOp):
            check("reduce", schedule, [x], lambda a, op=op: op(a, [0, 2], True))
            check("row_reduce", Schedule((1, 1, 1), (0, 0, 0), (1, 1), schedule.vector, 2, False), [x],
                  lambda a, op=op: op(a, [2], False))  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    shape=SHAPES, schedule=SIMPLE_SCHEDULES, seed=SEEDS, data=st.data(), exclusive=st.booleans(), reverse=st.booleans()
)
def test_cumsum(shape: tuple[int, ...], schedule: Schedule, seed: int, data: st.DataObject, exclusive: bool,
                reverse: bool) -> None:  # fmt: skip
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    extra = {**({"exclusive": UnitAttr()} if exclusive else {}), **({"reverse": UnitAttr()} if reverse else {})}
    x = floats(np.random.default_rng(seed), shape)
    check("scan", schedule, [x], lambda a: nn.AddOp(nn.CumsumOp(a, axis, extra), a), atol=1e-4 * max(shape))


@st.composite
def convolutions(draw: st.DrawFn) -> dict[str, Any]:
    group = draw(st.sampled_from([1, 1, 2, 3]))
    channels, outputs = group * draw(st.integers(1, 3)), group * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return {
        "input": (draw(st.integers(1, 2)), channels, draw(st.integers(kh, 10)), draw(st.integers(kw, 13))),
        "weight": (outputs, channels // group, kh, kw),
        "strides": [draw(st.integers(1, 2)), draw(st.integers(1, 3))],
        "pads": [
            draw(st.integers(0, kh - 1)),
            draw(st.integers(0, kw - 1)),
            draw(st.integers(0, kh - 1)),
            draw(st.integers(0, kw - 1)),
        ],
        "dilations": [draw(st.integers(1, 2)), 1],
        "group": group,
        "bias": draw(st.booleans()),
    }


@settings(max_examples=100, deadline=None)
@given(conv=convolutions(), schedule=SIMPLE_SCHEDULES, seed=SEEDS, relu=st.booleans())
def test_conv2d(conv: dict[str, Any], schedule: Schedule, seed: int, relu: bool) -> None:
    rng = np.random.default_rng(seed)
    kh, kw = conv["weight"][2:]
    dilated = ((kh - 1) * conv["dilations"][0] + 1, (kw - 1) * conv["dilations"][1] + 1)
    height, width = conv["input"][2:]
    if (
        height + conv["pads"][0] + conv["pads"][2] < dilated[0]
        or width + conv["pads"][1] + conv["pads"][3] < dilated[1]
    ):
        return
    x, w, b = floats(rng, conv["input"]), floats(rng, conv["weight"]), floats(rng, conv["weight"][:1])

    def body(x_: SSAValue, w_: SSAValue, b_: SSAValue) -> Any:
        y = nn.Conv2dOp(
            x_, w_, b_ if conv["bias"] else None, conv["strides"], conv["pads"], conv["dilations"], conv["group"]
        )
        return nn.ReluOp(y) if relu else y

    check("conv2d", schedule, [x, w, b], body, atol=1e-4 * np.prod(conv["weight"][1:]) ** 0.5)


@settings(max_examples=100, deadline=None)
@given(shape=hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=11), schedule=SIMPLE_SCHEDULES, seed=SEEDS,
       data=st.data(), kind=st.sampled_from(["max", "avg", "avg_pad"]))  # fmt: skip
def test_pool(shape: tuple[int, ...], schedule: Schedule, seed: int, data: st.DataObject, kind: str) -> None:
    kh, kw = data.draw(st.integers(1, min(3, shape[2]))), data.draw(st.integers(1, min(3, shape[3])))
    strides = [data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))]
    pads = [data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1)), data.draw(st.integers(0, kh - 1)),
            data.draw(st.integers(0, kw - 1))]  # fmt: skip
    x = floats(np.random.default_rng(seed), shape)
    extra = {"count_include_pad": UnitAttr()} if kind == "avg_pad" else None
    if kind == "max":
        check("pool", schedule, [x], lambda a: nn.MaxPool2dOp(a, [kh, kw], strides, pads))
    else:
        check("pool", schedule, [x], lambda a: nn.AvgPool2dOp(a, [kh, kw], strides, pads, extra))
