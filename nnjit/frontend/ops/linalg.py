"""Contractions and windows: MatMul, Gemm, Conv, pooling, BatchNormalization."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnjit.dialects import nn
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op


@onnx_op("MatMul", since=1)
def MatMul(node: NodeContext) -> Outputs:
    """`numpy.matmul` semantics."""
    return node.emit(nn.MatmulOp(node.input(0), node.input(1)))


@onnx_op("Gemm", since=7)
def Gemm(node: NodeContext, alpha: float = 1.0, beta: float = 1.0, transA: int = 0, transB: int = 0) -> Outputs:
    """`alpha * op(A) @ op(B) + beta * C`."""
    return node.emit(
        nn.GemmOp(node.input(0), node.input(1), node.optional_input(2), alpha, beta, bool(transA), bool(transB))
    )


def _same_pads(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], upper: bool) -> list[int]:
    """Explicit `[begin..., end...]` pads for ONNX auto_pad SAME_UPPER / SAME_LOWER."""
    begins: list[int] = []
    ends: list[int] = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins + ends


def window_pads(
    node: NodeContext,
    auto_pad: str,
    pads: Sequence[int] | None,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """The 4 explicit pads `[top, left, bottom, right]` of a 2-D window op."""
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(spatial, kernel, strides, dilations, auto_pad == "SAME_UPPER")
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad != "NOTSET":
        raise node.error(f"auto_pad={auto_pad} is not an ONNX padding mode")
    return list(pads) if pads else [0, 0, 0, 0]


def _require_2d(node: NodeContext, rank: int) -> None:
    if rank != 4:
        raise node.error(f"only 2-D (NCHW) windows are supported, got a rank-{rank} input")


@onnx_op("Conv", since=1)
def Conv(
    node: NodeContext,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Outputs:
    """2-D convolution, NCHW input, OIHW weight."""
    x_shape, w_shape = node.shape(0), node.shape(1)
    _require_2d(node, len(x_shape))
    strides = strides or [1, 1]
    dilations = dilations or [1, 1]
    explicit = window_pads(node, auto_pad, pads, x_shape[2:], w_shape[2:], strides, dilations)
    return node.emit(nn.Conv2dOp(node.input(0), node.input(1), node.optional_input(2), strides, explicit, dilations, group))


def _pool(
    node: NodeContext,
    auto_pad: str,
    ceil_mode: int,
    kernel_shape: list[int],
    pads: list[int] | None,
    strides: list[int] | None,
    dilations: list[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    shape = node.shape(0)
    _require_2d(node, len(shape))
    if ceil_mode:
        raise node.error("ceil_mode=1 pooling is not supported")
    if dilations and any(d != 1 for d in dilations):
        raise node.error("dilated pooling is not supported")
    strides = strides or [1, 1]
    return list(kernel_shape), strides, window_pads(node, auto_pad, pads, shape[2:], kernel_shape, strides, [1, 1])


@onnx_op("MaxPool", since=8)
def MaxPool(
    node: NodeContext,
    kernel_shape: list[int],
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    storage_order: int = 0,
    strides: list[int] | None = None,
) -> Outputs:
    """Max pooling; the optional Indices output is not supported."""
    if len(node.node.output) > 1 and node.node.output[1]:
        raise node.error("the Indices output of MaxPool is not supported")
    kernel, step, explicit = _pool(node, auto_pad, ceil_mode, kernel_shape, pads, strides, dilations)
    return node.emit(nn.MaxPool2dOp(node.input(0), kernel, step, explicit))


@onnx_op("AveragePool", since=7)
def AveragePool(
    node: NodeContext,
    kernel_shape: list[int],
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Outputs:
    """Average pooling."""
    kernel, step, explicit = _pool(node, auto_pad, ceil_mode, kernel_shape, pads, strides, dilations)
    extra = {"count_include_pad": nn.UnitAttr()} if count_include_pad else None
    return node.emit(nn.AvgPool2dOp(node.input(0), kernel, step, explicit, extra))


@onnx_op("GlobalAveragePool", since=1)
def GlobalAveragePool(node: NodeContext) -> Outputs:
    """Mean over all spatial dims, kept as size 1."""
    rank = len(node.shape(0))
    return node.emit(nn.ReduceMeanOp(node.input(0), list(range(2, rank)), keepdims=True))


@onnx_op("GlobalMaxPool", since=1)
def GlobalMaxPool(node: NodeContext) -> Outputs:
    """Max over all spatial dims, kept as size 1."""
    rank = len(node.shape(0))
    return node.emit(nn.ReduceMaxOp(node.input(0), list(range(2, rank)), keepdims=True))


@onnx_op("BatchNormalization", since=9)
def BatchNormalization(
    node: NodeContext, epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0
) -> Outputs:
    """Inference batch norm, folded into one per-channel scale and shift (statistics are constants)."""
    if training_mode:
        raise node.error("training_mode=1 batch normalization is not supported for inference")
    scale, bias, mean, var = (node.const(i).astype(np.float64) for i in range(1, 5))
    x = node.input(0)
    rank = len(node.shape(0))
    dtype = np.dtype(np.float32) if nn.element_type(x) == nn.f32 else np.dtype(np.float64)
    per_channel = (1, -1) + (1,) * (rank - 2)
    factor = scale / np.sqrt(var + epsilon)
    shift = bias - mean * factor
    scaled = node.emit(nn.MulOp(x, node.constant(factor.reshape(per_channel).astype(dtype), "bn_scale")))
    return node.emit(nn.AddOp(scaled, node.constant(shift.reshape(per_channel).astype(dtype), "bn_shift")))
