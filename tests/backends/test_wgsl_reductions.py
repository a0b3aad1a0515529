"""Row reductions, reductions, scans, convolutions and pools on WebGPU against the numpy oracle.

Each anchor is drawn with a prologue (an injective expression on its input) and an epilogue
(elementwise ops, a reshape) and a schedule from its template's space. fp32 within rtol 1e-3 /
atol 1e-4, scaled with the reduced length where sums grow; integers exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from web_cases import check, floats, splat
from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import SSAValue

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import Schedule
from nnjit.runtime.webgpu import WebGPUExecutor
from nnjit.tuner.spaces import (
    conv2d_schedules,
    pool_schedules,
    reduce_schedules,
    row_reduce_schedules,
    scan_schedules,
)

CASES = settings(max_examples=10, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=9)


def _prologue(x: SSAValue, kind: str) -> Any:
    """An injective expression on the anchor's input."""
    if kind == "scale":
        return nn.MulOp(x, splat(1.5, np.float32))
    if kind == "transpose" and len(nn.tensor_shape(x)) >= 2:
        rank = len(nn.tensor_shape(x))
        return nn.TransposeOp(
            nn.TransposeOp(x, [*range(rank - 2), rank - 1, rank - 2]), [*range(rank - 2), rank - 1, rank - 2]
        )
    return x


def _epilogue(y: Any, kind: str) -> Any:
    """Elementwise ops (and a reshape) after the anchor."""
    if kind == "gelu":
        return nn.GeluOp(nn.AddOp(y, splat(0.25, np.float32)), "none")
    if kind == "reshape":
        return nn.NegOp(nn.ReshapeOp(y, [shapes.numel(nn.tensor_shape(y))]))
    return y


ROW_ANCHORS = [
    "softmax",
    "log_softmax",
    "layer_norm",
    "layer_norm_no_bias",
    "rms_norm",
    "sum",
    "mean",
    "max",
    "min",
    "prod",
]


@pytest.mark.parametrize("anchor", ROW_ANCHORS)
@CASES
@given(shape=SHAPES, data=st.data(), schedule=st.sampled_from(row_reduce_schedules()), seed=SEEDS,
       prologue=st.sampled_from(["none", "scale", "transpose"]), epilogue=st.sampled_from(["none", "gelu", "reshape"]))  # fmt: skip
def test_row_reduce(executor: WebGPUExecutor, anchor: str, shape: tuple[int, ...], data: st.DataObject,
                    schedule: Schedule, seed: int, prologue: str, epilogue: str) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    rank = len(shape)
    axis = data.draw(st.integers(0, rank - 1)) if anchor not in ("softmax", "log_softmax") else rank - 1
    keepdims = data.draw(st.booleans())
    x = floats(rng, shape, 0.5, 1.5) if anchor == "prod" else floats(rng, shape)
    params = [floats(rng, shape[axis:]), floats(rng, shape[data.draw(st.integers(axis, rank - 1)) :])]

    def body(a: SSAValue, scale: SSAValue, bias: SSAValue) -> Any:
        source = _prologue(a, prologue)
        y: Any = {
            "softmax": lambda: nn.SoftmaxOp(source, -1),
            "log_softmax": lambda: nn.LogSoftmaxOp(source, -1),
            "layer_norm": lambda: nn.LayerNormOp(source, scale, bias, axis, 1e-5),
            "layer_norm_no_bias": lambda: nn.LayerNormOp(source, scale, None, axis, 1e-5),
            "rms_norm": lambda: nn.RmsNormOp(source, scale, axis, 1e-6),
        }.get(anchor, lambda: _reduction(anchor)(source, list(range(axis, rank)), keepdims))()
        return _epilogue(y, epilogue)

    length = shapes.numel(shape[axis:])
    check(executor, "row_reduce", schedule, [x, *params], body, atol=1e-4 * max(1, length / 64))


def _reduction(name: str) -> type[nn.ReduceOp]:
    table: dict[str, type[nn.ReduceOp]] = {"sum": nn.ReduceSumOp, "mean": nn.ReduceMeanOp, "max": nn.ReduceMaxOp,
                                           "min": nn.ReduceMinOp, "prod": nn.ReduceProdOp}  # fmt: skip
    return table[name]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod"])
@CASES
@given(shape=SHAPES, data=st.data(), schedule=st.sampled_from(reduce_schedules()), seed=SEEDS,
       integer=st.booleans(), epilogue=st.sampled_from(["none", "reshape"]))  # fmt: skip
def test_reduce_any_axes(executor: WebGPUExecutor, name: str, shape: tuple[int, ...], data: st.DataObject,
                         schedule: Schedule, seed: int, integer: bool, epilogue: str) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    axes = data.draw(
        st.lists(
            st.integers(-len(shape), len(shape) - 1),
            min_size=1,
            max_size=len(shape),
            unique_by=lambda a: a % len(shape),
        )
    )
    keepdims = data.draw(st.booleans())
    if integer:
        x = (
            rng.integers(-3, 4, size=shape).astype(np.int64)
            if name != "prod"
            else rng.choice([-1, 1, 2], size=shape).astype(np.int64)
        )
    else:
        x = floats(rng, shape, 0.7, 1.3) if name == "prod" else floats(rng, shape)
    count = shapes.numel([shape[a] for a in axes])
    if integer and name == "prod" and count > 30:
        x = rng.choice([-1, 1], size=shape).astype(np.int64)
    check(executor, "reduce", schedule, [x], lambda a: _epilogue(_reduction(name)(a, axes, keepdims), epilogue),
          atol=1e-4 * max(1, count / 64))  # fmt: skip


@CASES
@given(shape=SHAPES, data=st.data(), schedule=st.sampled_from(scan_schedules()), seed=SEEDS,
       exclusive=st.booleans(), reverse=st.booleans(), integer=st.booleans())  # fmt: skip
def test_cumsum(executor: WebGPUExecutor, shape: tuple[int, ...], data: st.DataObject, schedule: Schedule, seed: int,
                exclusive: bool, reverse: bool, integer: bool) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rng.integers(-5, 6, size=shape).astype(np.int64) if integer else floats(rng, shape)
    flags = {**({"exclusive": UnitAttr()} if exclusive else {}), **({"reverse": UnitAttr()} if reverse else {})}
    check(executor, "scan", schedule, [x], lambda a: nn.MulOp(nn.CumsumOp(nn.NegOp(a), axis, flags), a))


@st.composite
def windows(draw: st.DrawFn, dilated: bool) -> dict[str, Any]:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    pads = [draw(st.integers(0, k - 1)) for k in (*kernel, *kernel)]
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    size = [draw(st.integers(max(1, s - pads[i] - pads[i + 2]), 9)) for i, s in enumerate(span)]
    return {"kernel": kernel, "strides": strides, "dilations": dilations, "pads": pads, "size": size}


@CASES
@given(window=windows(dilated=True), data=st.data(), schedule=st.sampled_from(conv2d_schedules()), seed=SEEDS,
       with_bias=st.booleans())  # fmt: skip
def test_conv2d(executor: WebGPUExecutor, window: dict[str, Any], data: st.DataObject, schedule: Schedule, seed: int,
                with_bias: bool) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    group = data.draw(st.sampled_from([1, 2]))
    channels, out_channels = group * data.draw(st.integers(1, 3)), group * data.draw(st.integers(1, 3))
    x = floats(rng, (data.draw(st.integers(1, 2)), channels, *window["size"]))
    w = floats(rng, (out_channels, channels // group, *window["kernel"]))
    b = floats(rng, (out_channels,))

    def body(a: SSAValue, weight: SSAValue, bias: SSAValue) -> Any:
        conv = nn.Conv2dOp(
            a, weight, bias if with_bias else None, window["strides"], window["pads"], window["dilations"], group
        )
        return nn.ReluOp(conv)

    check(executor, "conv2d", schedule, [x, w, b], body)


@pytest.mark.parametrize("kind", ["max", "avg", "avg_include_pad"])
@CASES
@given(window=windows(dilated=False), data=st.data(), schedule=st.sampled_from(pool_schedules()), seed=SEEDS)
def test_pool(
    executor: WebGPUExecutor, kind: str, window: dict[str, Any], data: st.DataObject, schedule: Schedule, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = floats(rng, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *window["size"]))
    extra = {"count_include_pad": UnitAttr()} if kind == "avg_include_pad" else {}
    op = nn.MaxPool2dOp if kind == "max" else nn.AvgPool2dOp

    def body(a: SSAValue) -> Any:
        return op(a, window["kernel"], window["strides"], window["pads"], extra)

    check(executor, "pool", schedule, [x], body)
