"""Resize and Upsample: separable interpolation, one constant weight matrix per resized axis.

Every ONNX interpolation mode (nearest, linear, cubic, with or without antialiasing) is separable and
linear, so resizing one axis from `n` to `m` elements is `y = W @ x` along that axis for an `m x n`
matrix `W` that depends only on the sizes and attributes. The converter computes `W` with numpy
following the ONNX reference (coordinate transformation, neighbour window, coefficients, edge clamping,
`exclude_outside`) and applies it with `nn` ops: a gather for nearest (each row picks one element), a
matmul for the others; `tf_crop_and_resize` rows outside the input take `extrapolation_value`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import normalize_axis
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op
from nnjit.runtime.reference import to_numpy_dtype

Coefficients = Callable[[float, float], np.ndarray]

NEAREST_MODES: dict[str, Callable[[float], bool]] = {
    "round_prefer_floor": lambda ratio: ratio > 0.5,
    "round_prefer_ceil": lambda ratio: ratio >= 0.5,
    "floor": lambda ratio: False,
    "ceil": lambda ratio: True,
}
"""Whether a fractional source coordinate takes its upper neighbour."""


def _nearest(nearest_mode: str) -> Coefficients:
    upper = NEAREST_MODES[nearest_mode]
    return lambda ratio, scale: np.array([0.0, 1.0]) if ratio == 1.0 or upper(ratio) else np.array([1.0, 0.0])


def _linear(antialias: bool) -> Coefficients:
    def coefficients(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([1 - ratio, ratio])
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        weights = np.clip(1 - np.abs((np.arange(start, 2 - start) - ratio) * scale), 0, 1)
        return weights / weights.sum()

    return coefficients


def _cubic(a: float, antialias: bool) -> Coefficients:
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a if x < 2 else 0.0

    def coefficients(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([kernel(ratio + 1), kernel(ratio), kernel(1 - ratio), kernel(2 - ratio)])
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        weights = np.array([kernel(scale * (i - ratio)) for i in range(start, 2 - start)])
        return weights / weights.sum()

    return coefficients


def source_coordinates(
    mode: str, size_in: int, size_out: int, scale: float, roi: tuple[float, float] | None
) -> np.ndarray:
    """The input coordinate each output position samples, per `coordinate_transformation_mode`."""
    y = np.arange(size_out, dtype=np.float64)
    width = scale * size_in
    if mode == "align_corners":
        return np.zeros(size_out) if width == 1 else y * (size_in - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_crop_and_resize":
        start, end = roi if roi is not None else (0.0, 1.0)
        if width == 1:
            return np.full(size_out, (end - start) * (size_in - 1) / 2 + start * (size_in - 1))
        return y * (end - start) * (size_in - 1) / (width - 1) + start * (size_in - 1)
    if mode == "pytorch_half_pixel":
        return np.full(size_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = size_in / 2 * (1 - size_out / width)
        return offset + (y + 0.5) / scale - 0.5
    raise ValueError(f"coordinate_transformation_mode={mode} is not an ONNX Resize mode")


def axis_weights(
    size_in: int, size_out: int, scale: float, coefficients: Coefficients, coordinate_mode: str,
    roi: tuple[float, float] | None, exclude_outside: bool,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """`W` (size_out x size_in) of one axis and the mask of output positions that extrapolate."""
    x = source_coordinates(coordinate_mode, size_in, size_out, scale, roi)
    ratios = np.where(x == np.floor(x), 1.0, x - np.floor(x))
    rows = np.array([coefficients(float(r), scale) for r in ratios]).reshape(size_out, -1)
    n = rows.shape[1]
    # The n neighbours nearest to x (ties to the smaller index), in edge-padded coordinates.
    pad = -(-n // 2)
    padded = x + pad
    base = np.floor(padded).astype(np.int64)
    fraction = padded - base
    if n % 2 == 0:
        first = base + np.where(fraction == 0, -(n // 2), -(n // 2) + 1)
    else:
        first = base + np.where(fraction <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    neighbours = first[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        rows = np.where((neighbours < 0) | (neighbours >= size_in), 0.0, rows)
        totals = rows.sum(axis=1, keepdims=True)
        rows = rows / np.where(totals == 0, 1.0, totals)
    weights = np.zeros((size_out, size_in))
    for i in range(size_out):
        np.add.at(weights[i], np.clip(neighbours[i], 0, size_in - 1), rows[i])
    outside = (x < 0) | (x > size_in - 1) if coordinate_mode == "tf_crop_and_resize" else np.zeros(size_out, bool)
    weights[outside] = 0.0
    return weights, outside


def _apply(node: NodeContext, x: SSAValue, axis: int, weights: np.ndarray, outside: np.ndarray, nearest: bool, fill: float) -> SSAValue:
    """`weights` applied along `axis` of `x`, with `fill` at the `outside` positions."""
    rank = len(nn.tensor_shape(x))
    dtype = to_numpy_dtype(nn.element_type(x))
    along = [-1 if i == axis else 1 for i in range(rank)]
    if nearest:
        y = node.emit(nn.GatherOp(x, node.constant(weights.argmax(axis=1).astype(np.int64), "resize_index"), axis))
    else:
        if dtype.kind != "f":
            raise node.error(f"linear and cubic Resize of {dtype} tensors is not supported")
        perm = [i for i in range(rank) if i != axis] + [axis]
        moved = node.emit(nn.TransposeOp(x, perm)) if axis != rank - 1 else x
        y = node.emit(nn.MatmulOp(moved, node.constant(weights.T.astype(dtype), "resize_weights")))
        if axis != rank - 1:
            y = node.emit(nn.TransposeOp(y, [int(i) for i in np.argsort(perm)]))
    if outside.any():
        mask = node.constant(outside.reshape(along), "resize_outside")
        y = node.emit(nn.WhereOp(mask, node.constant(np.array(fill, dtype=dtype)), y))
    return y


def resize(
    node: NodeContext, scales: Sequence[float], sizes: Sequence[int], coefficients: Coefficients, nearest: bool,
    coordinate_mode: str, roi: Sequence[float] | None, exclude_outside: bool, fill: float,
) -> SSAValue:  # fmt: skip
    """Resize input 0 to `sizes`, axis by axis in order, skipping axes that stay as they are."""
    x = node.input(0)
    shape = node.shape(0)
    rank = len(shape)
    for axis in range(rank):
        span = None if roi is None else (float(roi[axis]), float(roi[rank + axis]))
        if np.isclose(scales[axis], 1.0) and sizes[axis] == shape[axis] and (span is None or np.allclose(span, (0, 1))):
            continue
        weights, outside = axis_weights(
            shape[axis], sizes[axis], float(scales[axis]), coefficients, coordinate_mode, span, exclude_outside
        )
        x = _apply(node, x, axis, weights, outside, nearest, fill)
    return x


@onnx_op("Resize", since=11)
def Resize(
    node: NodeContext,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> Outputs:
    """Resize to constant `sizes` or by constant `scales` (over `axes`, opset 18), any mode ONNX defines."""
    shape = node.shape(0)
    rank = len(shape)
    chosen = [normalize_axis(a, rank) for a in axes] if axes is not None else list(range(rank))
    given_sizes = node.optional_const(3) if node.num_inputs > 3 else None
    given_scales = node.optional_const(2) if node.num_inputs > 2 else None
    roi_given = node.optional_const(1)
    roi = None
    if roi_given is not None and roi_given.size:
        roi = [0.0] * rank + [1.0] * rank
        for i, axis in enumerate(chosen):
            roi[axis], roi[rank + axis] = float(roi_given[i]), float(roi_given[len(chosen) + i])
    scales = [1.0] * rank
    sizes = list(shape)
    if given_sizes is not None and given_sizes.size:
        for axis, size in zip(chosen, given_sizes.reshape(-1), strict=True):
            sizes[axis] = int(size)
        scales = [sizes[i] / shape[i] for i in range(rank)]
        if keep_aspect_ratio_policy != "stretch":
            if keep_aspect_ratio_policy not in ("not_larger", "not_smaller"):
                raise node.error(f"keep_aspect_ratio_policy={keep_aspect_ratio_policy} is not an ONNX policy")
            picked = [scales[a] for a in chosen]
            scale = min(picked) if keep_aspect_ratio_policy == "not_larger" else max(picked)
            scales = [scale if i in chosen else 1.0 for i in range(rank)]
            sizes = [int(scale * shape[i] + 0.5) if i in chosen else shape[i] for i in range(rank)]
    elif given_scales is not None and given_scales.size:
        for axis, scale in zip(chosen, given_scales.reshape(-1).astype(np.float64), strict=True):
            scales[axis] = float(scale)
        sizes = [int(s * n) for s, n in zip(scales, shape, strict=True)]
    else:
        raise node.error("Resize needs either scales or sizes")
    if mode == "nearest":
        if nearest_mode not in NEAREST_MODES:
            raise node.error(f"nearest_mode={nearest_mode} is not an ONNX nearest mode")
        coefficients = _nearest(nearest_mode)
    elif mode in ("linear", "cubic"):
        coefficients = _linear(bool(antialias)) if mode == "linear" else _cubic(cubic_coeff_a, bool(antialias))
    else:
        raise node.error(f"mode={mode} is not an ONNX Resize mode")
    return resize(
        node, scales, sizes, coefficients, mode == "nearest", coordinate_transformation_mode, roi,
        bool(exclude_outside), extrapolation_value,
    )  # fmt: skip


def _upsample(node: NodeContext, scales: Sequence[float], mode: str) -> SSAValue:
    if mode not in ("nearest", "linear"):
        raise node.error(f"mode={mode} is not an Upsample mode")
    shape = node.shape(0)
    sizes = [int(s * n) for s, n in zip(scales, shape, strict=True)]
    coefficients = _nearest("floor") if mode == "nearest" else _linear(False)
    return resize(node, scales, sizes, coefficients, mode == "nearest", "asymmetric", None, False, 0.0)


@onnx_op("Upsample", since=7, until=8)
def Upsample_7(node: NodeContext, scales: list[float], mode: str = "nearest") -> Outputs:
    """Upsample by attribute scales: asymmetric coordinates, nearest taking the lower neighbour."""
    return _upsample(node, scales, mode)


@onnx_op("Upsample", since=9, until=9)
def Upsample(node: NodeContext, mode: str = "nearest") -> Outputs:
    """Upsample by constant scales: asymmetric coordinates, nearest taking the lower neighbour."""
    return _upsample(node, [float(s) for s in node.const(1).reshape(-1)], mode)
