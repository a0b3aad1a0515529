"""Softmax, normalisations (layer, RMS, batch), reductions and CumSum."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import normalize_axis, numel
from nnjit.frontend.onnx import element_type_of
from nnjit.frontend.ops.elementwise import cast_to
from nnjit.frontend.ops.movement import reshape
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op
from nnjit.runtime.reference import to_numpy_dtype


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


def _moments(node: NodeContext, x: SSAValue, axes: list[int]) -> tuple[SSAValue, SSAValue]:
    """Mean and biased variance of `x` over `axes`, both with the reduced dims kept."""
    mean = node.emit(nn.ReduceMeanOp(x, axes, keepdims=True))
    centered = node.emit(nn.SubOp(x, mean))
    return mean, node.emit(nn.ReduceMeanOp(node.emit(nn.MulOp(centered, centered)), axes, keepdims=True))


def _scalar(node: NodeContext, value: float, like: SSAValue) -> SSAValue:
    return node.constant(np.array(value, dtype=to_numpy_dtype(nn.element_type(like))))


@onnx_op("LayerNormalization", since=17)
def LayerNormalization(node: NodeContext, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1) -> Outputs:
    """Layer norm over dims `axis..`; the optional Mean and InvStdDev outputs are computed in `stash_type`."""
    x = node.input(0)
    y = node.emit(nn.LayerNormOp(x, node.input(1), node.optional_input(2), axis, epsilon))
    if not any(node.node.output[1:]):
        return y
    rank = len(node.shape(0))
    stashed = cast_to(node, x, element_type_of(stash_type))
    mean, variance = _moments(node, stashed, list(range(normalize_axis(axis, rank), rank)))
    inverse = node.emit(nn.RsqrtOp(node.emit(nn.AddOp(variance, _scalar(node, epsilon, variance)))))
    return [y, mean, inverse]


@onnx_op("RMSNormalization", since=23)
def RMSNormalization(node: NodeContext, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1) -> Outputs:
    """RMS norm over dims `axis..`."""
    return node.emit(nn.RmsNormOp(node.input(0), node.input(1), axis, epsilon))


@onnx_op("BatchNormalization", since=9)
def BatchNormalization(
    node: NodeContext, epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0
) -> Outputs:
    """Batch norm over dim 1: with the given statistics (folded into one scale and shift when they are
    constants), or with `training_mode` (opset 14) with the batch's and the updated running statistics."""
    if any(node.node.output[1:]) and node.opset < 14:
        raise node.error("the training outputs of BatchNormalization before opset 14 are not supported")
    x = node.input(0)
    shape = node.shape(0)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    scale, bias = (reshape(node, cast_to(node, node.input(i), nn.element_type(x)), per_channel) for i in (1, 2))
    if training_mode:
        mean, variance = _moments(node, x, [0, *range(2, len(shape))])
        outputs = [_normalise(node, x, mean, variance, scale, bias, epsilon)]
        for index, batch in ((3, mean), (4, variance)):
            running = node.input(index)
            batch = reshape(node, cast_to(node, batch, nn.element_type(running)), (shape[1],))
            kept = node.emit(nn.MulOp(running, _scalar(node, momentum, running)))
            outputs.append(node.emit(nn.AddOp(kept, node.emit(nn.MulOp(batch, _scalar(node, 1 - momentum, batch))))))
        return outputs
    statistics = [node.known(node.input(i)) for i in range(1, 5)]
    if any(s is None for s in statistics):
        mean, variance = (reshape(node, cast_to(node, node.input(i), nn.element_type(x)), per_channel) for i in (3, 4))
        return _normalise(node, x, mean, variance, scale, bias, epsilon)
    factor_of, shift_of, mean_of, variance_of = (np.asarray(s, dtype=np.float64) for s in statistics)
    dtype = to_numpy_dtype(nn.element_type(x))
    factor = factor_of / np.sqrt(variance_of + epsilon)
    shift = shift_of - mean_of * factor
    scaled = node.emit(nn.MulOp(x, node.constant(factor.reshape(per_channel).astype(dtype), "bn_scale")))
    return node.emit(nn.AddOp(scaled, node.constant(shift.reshape(per_channel).astype(dtype), "bn_shift")))


def _normalise(
    node: NodeContext, x: SSAValue, mean: SSAValue, variance: SSAValue, scale: SSAValue, bias: SSAValue, epsilon: float
) -> SSAValue:
    """`(x - mean) / sqrt(variance + epsilon) * scale + bias`."""
    inverse = node.emit(nn.RsqrtOp(node.emit(nn.AddOp(variance, _scalar(node, epsilon, variance)))))
    normalised = node.emit(nn.MulOp(node.emit(nn.SubOp(x, mean)), inverse))
    return node.emit(nn.AddOp(node.emit(nn.MulOp(normalised, scale)), bias))


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
    axes = [normalize_axis(a, len(shape)) for a in axes]
    if numel([shape[a] for a in axes]) == 0:
        # A reduction over no elements is the reduction's identity.
        out = [1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes]
        return node.constant(np.full(out, _empty_reduction(op_class, to_numpy_dtype(nn.element_type(x)))), "empty_reduction")
    return node.emit(op_class(x, axes, bool(keepdims)))


def _empty_reduction(op_class: type[nn.ReduceOp], dtype: np.dtype) -> np.ndarray:
    """What `op_class` gives for an empty set: 0, 1, NaN for the mean, and the extreme values for max and min."""
    if op_class in (nn.ReduceMaxOp, nn.ReduceMinOp):
        largest = op_class is nn.ReduceMinOp
        if dtype == np.bool_:
            value = largest
        elif dtype.kind in "iu":
            value = np.iinfo(dtype).max if largest else np.iinfo(dtype).min
        else:
            value = np.inf if largest else -np.inf
    else:
        value = {nn.ReduceSumOp: 0, nn.ReduceProdOp: 1}.get(op_class, np.nan if dtype.kind == "f" else 0)
    return np.array(value, dtype=dtype)


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
