"""Softmax, normalisations, reductions and CumSum."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import normalize_axis, numel
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op


def _softmax_coerced(node: NodeContext, axis: int, op_class: type[nn.SoftmaxOp | nn.LogSoftmaxOp]) -> Outputs:
    """Opsets before 13 flatten the input to 2-D at `axis` and normalise each row."""
    x = node.input(0)
    shape = node.shape(0)
    axis = normalize_axis(axis, len(shape))
    if axis == len(shape) - 1:
        return node.emit(op_class(x, -1))
    rows = node.emit(nn.ReshapeOp(x, (numel(shape[:axis]), numel(shape[axis:]))))
    return node.emit(nn.ReshapeOp(node.emit(op_class(rows, -1)), shape))


@onnx_op("Softmax", since=1, until=12)
def Softmax_1(node: NodeContext, axis: int = 1) -> Outputs:
    """Softmax over the flattened trailing dims from `axis`."""
    return _softmax_coerced(node, axis, nn.SoftmaxOp)


@onnx_op("Softmax", since=13)
def Softmax(node: NodeContext, axis: int = -1) -> Outputs:
    """Softmax along `axis`."""
    return node.emit(nn.SoftmaxOp(node.input(0), axis))


@onnx_op("LogSoftmax", since=1, until=12)
def LogSoftmax_1(node: NodeContext, axis: int = 1) -> Outputs:
    """Log-softmax over the flattened trailing dims from `axis`."""
    return _softmax_coerced(node, axis, nn.LogSoftmaxOp)


@onnx_op("LogSoftmax", since=13)
def LogSoftmax(node: NodeContext, axis: int = -1) -> Outputs:
    """Log-softmax along `axis`."""
    return node.emit(nn.LogSoftmaxOp(node.input(0), axis))


@onnx_op("LayerNormalization", since=17)
def LayerNormalization(node: NodeContext, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1) -> Outputs:
    """Layer norm over dims `axis..`; the Mean and InvStdDev outputs are not supported."""
    if any(node.node.output[1:]):
        raise node.error("the Mean/InvStdDev outputs of LayerNormalization are not supported")
    return node.emit(nn.LayerNormOp(node.input(0), node.input(1), node.optional_input(2), axis, epsilon))


@onnx_op("RMSNormalization", since=23)
def RMSNormalization(node: NodeContext, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1) -> Outputs:
    """RMS norm over dims `axis..`."""
    return node.emit(nn.RmsNormOp(node.input(0), node.input(1), axis, epsilon))


REDUCTIONS: dict[str, type[nn.ReduceOp]] = {
    "ReduceSum": nn.ReduceSumOp,
    "ReduceMean": nn.ReduceMeanOp,
    "ReduceMax": nn.ReduceMaxOp,
    "ReduceMin": nn.ReduceMinOp,
    "ReduceProd": nn.ReduceProdOp,
}
AXES_BECAME_INPUT = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18}


def _reduce(node: NodeContext, op_class: type[nn.ReduceOp], axes: list[int] | None, keepdims: int, noop: int) -> SSAValue:
    x = node.input(0)
    shape = node.shape(0)
    if not axes:
        if noop:
            return x
        axes = list(range(len(shape)))
    if not shape:
        return x
    return node.emit(op_class(x, [normalize_axis(a, len(shape)) for a in axes], bool(keepdims)))


def _reduce_with_attribute(op_class: type[nn.ReduceOp]) -> Callable[..., Outputs]:
    def convert(node: NodeContext, axes: list[int] | None = None, keepdims: int = 1) -> Outputs:
        return _reduce(node, op_class, axes, keepdims, 0)

    return convert


def _reduce_with_input(op_class: type[nn.ReduceOp]) -> Callable[..., Outputs]:
    def convert(node: NodeContext, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Outputs:
        axes = node.optional_const(1)
        return _reduce(node, op_class, None if axes is None else [int(a) for a in axes.reshape(-1)], keepdims, noop_with_empty_axes)

    return convert


for _op_type, _op_class in REDUCTIONS.items():
    onnx_op(_op_type, since=1, until=AXES_BECAME_INPUT[_op_type] - 1)(_reduce_with_attribute(_op_class))
    onnx_op(_op_type, since=AXES_BECAME_INPUT[_op_type])(_reduce_with_input(_op_class))


@onnx_op("CumSum", since=11)
def CumSum(node: NodeContext, exclusive: int = 0, reverse: int = 0) -> Outputs:
    """Running sum along a constant axis."""
    axis = int(np.asarray(node.const(1)).reshape(-1)[0])
    extra = {name: nn.UnitAttr() for name, flag in (("exclusive", exclusive), ("reverse", reverse)) if flag}
    return node.emit(nn.CumsumOp(node.input(0), axis, extra))
