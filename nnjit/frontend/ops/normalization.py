"""Softmax, normalisations (layer, RMS, batch), reductions and CumSum."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Attribute, SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import normalize_axis, numel
from nnjit.frontend.onnx import element_type_of
from nnjit.frontend.ops.elementwise import cast_to, scalar_like
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


def _arg_extreme(node: NodeContext, x: SSAValue, axis: int, keepdims: bool, largest: bool, last: bool) -> SSAValue:
    """The first (or `last`) position of the max (or min) along `axis`, as int64."""
    shape = nn.tensor_shape(x)
    axis = normalize_axis(axis, len(shape))
    extreme = node.emit((nn.ReduceMaxOp if largest else nn.ReduceMinOp)(x, [axis], keepdims=True))
    hit = node.emit(nn.EqualOp(x, extreme))
    positions = np.arange(shape[axis], dtype=np.int64).reshape([-1 if i == axis else 1 for i in range(len(shape))])
    miss = np.array(-1 if last else shape[axis], dtype=np.int64)
    candidates = node.emit(nn.WhereOp(hit, node.constant(positions, "arg_positions"), node.constant(miss)))
    return node.emit((nn.ReduceMaxOp if last else nn.ReduceMinOp)(candidates, [axis], keepdims))


@onnx_op("ArgMax", since=1)
def ArgMax(node: NodeContext, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Outputs:
    """Index of the first (or last) maximum along `axis`."""
    return _arg_extreme(node, node.input(0), axis, bool(keepdims), True, bool(select_last_index))


@onnx_op("ArgMin", since=1)
def ArgMin(node: NodeContext, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Outputs:
    """Index of the first (or last) minimum along `axis`."""
    return _arg_extreme(node, node.input(0), axis, bool(keepdims), False, bool(select_last_index))


def _hardmax(node: NodeContext, x: SSAValue, axis: int) -> SSAValue:
    """1 at the first maximum along `axis`, 0 elsewhere."""
    shape = nn.tensor_shape(x)
    axis = normalize_axis(axis, len(shape))
    first = _arg_extreme(node, x, axis, True, True, False)
    positions = np.arange(shape[axis], dtype=np.int64).reshape([-1 if i == axis else 1 for i in range(len(shape))])
    hit = node.emit(nn.EqualOp(first, node.constant(positions, "hardmax_positions")))
    return node.emit(nn.CastOp(hit, nn.element_type(x)))


@onnx_op("Hardmax", since=1, until=12)
def Hardmax_1(node: NodeContext, axis: int = 1) -> Outputs:
    """Hardmax over the flattened trailing dims from `axis`."""
    shape = node.shape(0)
    axis = normalize_axis(axis, len(shape))
    rows = reshape(node, node.input(0), (numel(shape[:axis]), numel(shape[axis:])))
    return reshape(node, _hardmax(node, rows, 1), shape)


@onnx_op("Hardmax", since=13)
def Hardmax(node: NodeContext, axis: int = -1) -> Outputs:
    """Hardmax along `axis`."""
    return _hardmax(node, node.input(0), axis)


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
    inverse = node.emit(nn.RsqrtOp(node.emit(nn.AddOp(variance, scalar_like(node, epsilon, variance)))))
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
            kept = node.emit(nn.MulOp(running, scalar_like(node, momentum, running)))
            outputs.append(node.emit(nn.AddOp(kept, node.emit(nn.MulOp(batch, scalar_like(node, 1 - momentum, batch))))))
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


@onnx_op("InstanceNormalization", since=6)
def InstanceNormalization(node: NodeContext, epsilon: float = 1e-5) -> Outputs:
    """Normalise each (sample, channel) over its spatial dims, then scale and shift per channel."""
    x = node.input(0)
    shape = node.shape(0)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    scale, bias = (reshape(node, node.input(i), per_channel) for i in (1, 2))
    mean, variance = _moments(node, x, list(range(2, len(shape))))
    return _normalise(node, x, mean, variance, scale, bias, epsilon)


def _group_norm(node: NodeContext, num_groups: int, epsilon: float, stash_type: int, per_group: bool) -> SSAValue:
    x = node.input(0)
    shape = node.shape(0)
    grouped_shape = (shape[0], num_groups, numel(shape[1:]) // num_groups)
    grouped = cast_to(node, reshape(node, x, grouped_shape), element_type_of(stash_type))
    mean, variance = _moments(node, grouped, [2])
    inverse = node.emit(nn.RsqrtOp(node.emit(nn.AddOp(variance, scalar_like(node, epsilon, variance)))))
    normalised = cast_to(node, node.emit(nn.MulOp(node.emit(nn.SubOp(grouped, mean)), inverse)), nn.element_type(x))
    if per_group:  # opset 18: one scale and bias per group
        scale, bias = (reshape(node, node.input(i), (1, num_groups, 1)) for i in (1, 2))
        return reshape(node, node.emit(nn.AddOp(node.emit(nn.MulOp(normalised, scale)), bias)), shape)
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    scale, bias = (reshape(node, node.input(i), per_channel) for i in (1, 2))
    return node.emit(nn.AddOp(node.emit(nn.MulOp(reshape(node, normalised, shape), scale)), bias))


@onnx_op("GroupNormalization", since=18, until=20)
def GroupNormalization_18(node: NodeContext, num_groups: int, epsilon: float = 1e-5) -> Outputs:
    """Normalise each group of channels of each sample; scale and bias are per group."""
    return _group_norm(node, num_groups, epsilon, 1, per_group=True)


@onnx_op("GroupNormalization", since=21)
def GroupNormalization(node: NodeContext, num_groups: int, epsilon: float = 1e-5, stash_type: int = 1) -> Outputs:
    """Normalise each group of channels of each sample (statistics in `stash_type`); scale and bias per channel."""
    return _group_norm(node, num_groups, epsilon, stash_type, per_group=False)


@onnx_op("MeanVarianceNormalization", since=9)
def MeanVarianceNormalization(node: NodeContext, axes: list[int] | None = None) -> Outputs:
    """`(x - mean) / (sqrt(variance) + 1e-9)` over `axes` (N, H, W by default)."""
    x = node.input(0)
    rank = len(node.shape(0))
    mean, variance = _moments(node, x, [normalize_axis(a, rank) for a in (axes if axes is not None else [0, 2, 3])])
    deviation = node.emit(nn.AddOp(node.emit(nn.SqrtOp(variance)), scalar_like(node, 1e-9, x)))
    return node.emit(nn.DivOp(node.emit(nn.SubOp(x, mean)), deviation))


@onnx_op("LpNormalization", since=1)
def LpNormalization(node: NodeContext, axis: int = -1, p: int = 2) -> Outputs:
    """`x / norm_p(x)` along `axis`, p being 1 or 2; 0 where the norm is 0."""
    x = node.input(0)
    axis = normalize_axis(axis, len(node.shape(0)))
    if p not in (1, 2):
        raise node.error(f"p={p} is not an LpNormalization norm (1 or 2)")
    magnitude = node.emit(nn.AbsOp(x)) if p == 1 else node.emit(nn.MulOp(x, x))
    norm = node.emit(nn.ReduceSumOp(magnitude, [axis], keepdims=True))
    norm = norm if p == 1 else node.emit(nn.SqrtOp(norm))
    zero = scalar_like(node, 0.0, x)
    return node.emit(nn.WhereOp(node.emit(nn.EqualOp(norm, zero)), zero, node.emit(nn.DivOp(x, norm))))


@onnx_op("LRN", since=1)
def LRN(node: NodeContext, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0) -> Outputs:
    """`x / (bias + alpha / size * sum of x² over the `size` nearest channels) ** beta`."""
    x = node.input(0)
    shape = node.shape(0)
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = node.emit(nn.MulOp(x, x))
    pieces = [squares]
    dtype = to_numpy_dtype(nn.element_type(x))
    for amount, at in ((before, 0), (after, 1)):
        if amount:
            zeros = node.constant(np.zeros((shape[0], amount, *shape[2:]), dtype=dtype), "lrn_pad")
            pieces.insert(at * len(pieces), zeros)
    padded = node.emit(nn.ConcatOp(pieces, 1)) if len(pieces) > 1 else squares
    rank = len(shape)
    total: SSAValue | None = None
    for offset in range(size):
        window = node.emit(nn.SliceOp(padded, [0, offset, *[0] * (rank - 2)], [shape[0], offset + shape[1], *shape[2:]], [1] * rank))
        total = window if total is None else node.emit(nn.AddOp(total, window))
    assert total is not None
    scaled = node.emit(nn.AddOp(node.emit(nn.MulOp(total, scalar_like(node, alpha / size, x))), scalar_like(node, bias, x)))
    return node.emit(nn.DivOp(x, node.emit(nn.PowOp(scaled, scalar_like(node, beta, x)))))


def _normalise(
    node: NodeContext, x: SSAValue, mean: SSAValue, variance: SSAValue, scale: SSAValue, bias: SSAValue, epsilon: float
) -> SSAValue:
    """`(x - mean) / sqrt(variance + epsilon) * scale + bias`."""
    inverse = node.emit(nn.RsqrtOp(node.emit(nn.AddOp(variance, scalar_like(node, epsilon, variance)))))
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
    return reduce_value(node, op_class, node.input(0), axes, keepdims, noop)


def reduce_value(
    node: NodeContext, op_class: type[nn.ReduceOp], x: SSAValue, axes: Sequence[int] | None, keepdims: int, noop: int
) -> SSAValue:
    """`x` reduced over `axes` (all when None or empty, unless `noop`), empty sets giving the identity."""
    shape = nn.tensor_shape(x)
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
        identities: dict[type[nn.ReduceOp], float] = {nn.ReduceSumOp: 0, nn.ReduceProdOp: 1}
        value = identities.get(op_class, np.nan if dtype.kind == "f" else 0)
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


Composite = Callable[[NodeContext, SSAValue, "list[int] | None", int, int], SSAValue]


def _sum_of(pre: Callable[[NodeContext, SSAValue], SSAValue], post: Callable[[NodeContext, SSAValue], SSAValue] | None = None) -> Composite:
    def reduce(node: NodeContext, x: SSAValue, axes: list[int] | None, keepdims: int, noop: int) -> SSAValue:
        total = reduce_value(node, nn.ReduceSumOp, pre(node, x), axes, keepdims, noop)
        return post(node, total) if post else total

    return reduce


def _log_sum_exp(node: NodeContext, x: SSAValue, axes: list[int] | None, keepdims: int, noop: int) -> SSAValue:
    """`log(sum(exp(x - max))) + max`, which cannot overflow."""
    peak = reduce_value(node, nn.ReduceMaxOp, x, axes, 1, noop)
    shifted = node.emit(nn.ExpOp(node.emit(nn.SubOp(x, peak))))
    total = node.emit(nn.LogOp(reduce_value(node, nn.ReduceSumOp, shifted, axes, keepdims, noop)))
    return node.emit(nn.AddOp(total, reshape(node, peak, nn.tensor_shape(total))))


def _square(node: NodeContext, x: SSAValue) -> SSAValue:
    return node.emit(nn.MulOp(x, x))


COMPOSITE_REDUCTIONS: dict[str, Composite] = {
    "ReduceL1": _sum_of(lambda node, x: node.emit(nn.AbsOp(x))),
    "ReduceL2": _sum_of(_square, lambda node, x: node.emit(nn.SqrtOp(x))),
    "ReduceSumSquare": _sum_of(_square),
    "ReduceLogSum": _sum_of(lambda node, x: x, lambda node, x: node.emit(nn.LogOp(x))),
    "ReduceLogSumExp": _log_sum_exp,
}
"""Reductions built from `nn.reduce_sum` / `nn.reduce_max` and elementwise ops; axes became an input in opset 18."""


def _composite_with_attribute(reduce: Composite) -> Callable[..., Outputs]:
    def convert(node: NodeContext, axes: list[int] | None = None, keepdims: int = 1) -> Outputs:
        return reduce(node, node.input(0), axes, keepdims, 0)

    return convert


def _composite_with_input(reduce: Composite) -> Callable[..., Outputs]:
    def convert(node: NodeContext, keepdims: int = 1, noop_with_empty_axes: int = 0) -> Outputs:
        axes = node.optional_const(1)
        listed = None if axes is None else [int(a) for a in axes.reshape(-1)]
        return reduce(node, node.input(0), listed, keepdims, noop_with_empty_axes)

    return convert


for _op_type, _reduce_fn in COMPOSITE_REDUCTIONS.items():
    onnx_op(_op_type, since=1, until=17)(_composite_with_attribute(_reduce_fn))
    onnx_op(_op_type, since=18)(_composite_with_input(_reduce_fn))


@onnx_op("CumSum", since=11)
def CumSum(node: NodeContext, exclusive: int = 0, reverse: int = 0) -> Outputs:
    """Running sum along a constant axis."""
    axis = int(np.asarray(node.const(1)).reshape(-1)[0])
    extra: dict[str, Attribute] = {
        name: nn.UnitAttr() for name, flag in (("exclusive", exclusive), ("reverse", reverse)) if flag
    }
    return node.emit(nn.CumsumOp(node.input(0), axis, extra))
