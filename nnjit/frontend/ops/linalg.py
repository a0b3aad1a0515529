"""Contractions and windows: MatMul, Gemm, Conv, pooling."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Attribute, SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import numel
from nnjit.frontend.ops.movement import reshape
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op
from nnjit.runtime.reference import to_numpy_dtype


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
    """The explicit pads `[begin..., end...]` of a window op over the `spatial` dims."""
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(spatial, kernel, strides, dilations, auto_pad == "SAME_UPPER")
    if auto_pad == "VALID":
        return [0] * (2 * len(spatial))
    if auto_pad != "NOTSET":
        raise node.error(f"auto_pad={auto_pad} is not an ONNX padding mode")
    return list(pads) if pads else [0] * (2 * len(spatial))


def _spatial_rank(node: NodeContext, what: str) -> int:
    """The number of spatial dims of input 0; 1-D and 2-D windows are supported."""
    rank = len(node.shape(0)) - 2
    if rank not in (1, 2):
        raise node.error(f"{rank}-D {what} is not supported (only 1-D and 2-D windows)")
    return rank


def _as_2d(node: NodeContext, value: SSAValue) -> SSAValue:
    """A 1-D window operand `(N, C, L)` viewed as 2-D `(N, C, 1, L)`."""
    shape = nn.tensor_shape(value)
    return reshape(node, value, (*shape[:2], 1, shape[2]))


def _from_2d(node: NodeContext, value: SSAValue) -> SSAValue:
    """A `(N, C, 1, L)` result viewed as 1-D `(N, C, L)` again."""
    shape = nn.tensor_shape(value)
    return reshape(node, value, (*shape[:2], shape[3]))


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
    """1-D or 2-D convolution, NC(H)W input, OI(H)W weight; 1-D runs as 2-D with height 1."""
    rank = _spatial_rank(node, "convolution")
    x_shape, w_shape = node.shape(0), node.shape(1)
    strides = strides or [1] * rank
    dilations = dilations or [1] * rank
    explicit = window_pads(node, auto_pad, pads, x_shape[2:], w_shape[2:], strides, dilations)
    if rank == 2:
        return node.emit(
            nn.Conv2dOp(node.input(0), node.input(1), node.optional_input(2), strides, explicit, dilations, group)
        )
    x, w = _as_2d(node, node.input(0)), _as_2d(node, node.input(1))
    y = node.emit(
        nn.Conv2dOp(x, w, node.optional_input(2), [1, *strides], [0, explicit[0], 0, explicit[1]], [1, *dilations], group)
    )
    return _from_2d(node, y)


@dataclass(frozen=True)
class _Window:
    """A pooling window over the spatial dims, with ONNX's output sizes (floor or ceil mode)."""

    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    outs: tuple[int, ...]

    @property
    def extra(self) -> tuple[int, ...]:
        """End padding beyond `ends` that ceil mode's last windows reach into."""
        return tuple(
            max(0, (o - 1) * s + d * (k - 1) + 1 - (n + b + e))
            for n, k, s, d, b, e, o in zip(
                self.sizes, self.kernel, self.strides, self.dilations, self.begins, self.ends, self.outs, strict=True
            )
        )

    @property
    def padded_ends(self) -> list[int]:
        """End pads including the ceil-mode extra."""
        return [e + more for e, more in zip(self.ends, self.extra, strict=True)]

    @property
    def padded_sizes(self) -> list[int]:
        """Spatial sizes of the input padded with `begins` and `padded_ends`."""
        return [n + b + e for n, b, e in zip(self.sizes, self.begins, self.padded_ends, strict=True)]

    def offsets(self) -> list[tuple[int, ...]]:
        """Every kernel position, row-major."""
        return list(itertools.product(*(range(k) for k in self.kernel)))

    def slices(self, offset: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
        """Spatial `starts, ends, steps` into the padded input of the elements at kernel position `offset`."""
        starts = [o * d for o, d in zip(offset, self.dilations, strict=True)]
        ends = [b + (n - 1) * s + 1 for b, n, s in zip(starts, self.outs, self.strides, strict=True)]
        return starts, ends, list(self.strides)


def _pool_window(
    node: NodeContext,
    kernel_shape: Sequence[int],
    auto_pad: str,
    ceil_mode: int,
    pads: Sequence[int] | None,
    strides: Sequence[int] | None,
    dilations: Sequence[int] | None,
) -> _Window:
    sizes = node.shape(0)[2:]
    rank = len(sizes)
    if len(kernel_shape) != rank:
        raise node.error(f"kernel_shape {list(kernel_shape)} does not match {rank} spatial dims")
    steps = list(strides or [1] * rank)
    spread = list(dilations or [1] * rank)
    explicit = window_pads(node, auto_pad, pads, sizes, kernel_shape, steps, spread)
    begins, ends = explicit[:rank], explicit[rank:]
    outs: list[int] = []
    for n, k, s, d, b, e in zip(sizes, kernel_shape, steps, spread, begins, ends, strict=True):
        room = n + b + e - (d * (k - 1) + 1)
        if room < 0:
            raise node.error(f"window {list(kernel_shape)} does not fit input {list(sizes)} with pads {explicit}")
        out = (-(-room // s) if ceil_mode else room // s) + 1
        # ceil mode: the last window must start inside the input or its begin padding
        outs.append(out - 1 if ceil_mode and (out - 1) * s >= n + b else out)
    return _Window(tuple(sizes), tuple(kernel_shape), tuple(steps), tuple(spread), tuple(begins), tuple(ends), tuple(outs))


def _pad(node: NodeContext, x: SSAValue, begins: Sequence[int], ends: Sequence[int], fill: float) -> SSAValue:
    """`x` with `fill` blocks concatenated before and after each spatial dim."""
    dtype = _numpy_dtype(x)
    for axis, (before, after) in enumerate(zip(begins, ends, strict=True), start=2):
        shape = list(nn.tensor_shape(x))
        parts: list[SSAValue] = []
        for amount, is_after in ((before, False), (after, True)):
            if amount:
                shape[axis] = amount
                parts.append(node.constant(np.full(shape, fill, dtype=dtype), "pool_pad"))
            if not is_after:
                parts.append(x)
        x = node.emit(nn.ConcatOp(parts, axis)) if len(parts) > 1 else x
    return x


def _window_values(node: NodeContext, x: SSAValue, window: _Window, fill: float) -> list[SSAValue]:
    """The padded input sampled at each kernel position: one `(N, C, *outs)` value per position."""
    padded = _pad(node, x, window.begins, window.padded_ends, fill)
    values: list[SSAValue] = []
    for offset in window.offsets():
        starts, ends, steps = window.slices(offset)
        values.append(node.emit(nn.SliceOp(padded, [0, 0, *starts], [*nn.tensor_shape(x)[:2], *ends], [1, 1, *steps])))
    return values


def _window_sums(window: _Window, region: np.ndarray) -> np.ndarray:
    """Per output position, the sum of `region` (a padded-extent array) over its window, as `(1, 1, *outs)`."""
    total = np.zeros(window.outs, dtype=np.float64)
    for offset in window.offsets():
        starts, ends, steps = window.slices(offset)
        total += region[tuple(slice(b, e, s) for b, e, s in zip(starts, ends, steps, strict=True))]
    return total.reshape(1, 1, *window.outs)


def _lowest(x: SSAValue) -> float:
    dtype = _numpy_dtype(x)
    return float(np.iinfo(dtype).min) if dtype.kind in "iu" else -np.inf


def _fits_pool2d(window: _Window, include_pad: bool) -> bool:
    """Whether `nn.*_pool2d` computes the window: no dilation, and ceil mode's extra cells never counted."""
    return all(d == 1 for d in window.dilations) and not (include_pad and any(window.extra))


def _pool2d(node: NodeContext, op_class: type[nn.Pool2dOp], window: _Window, extra: dict[str, Attribute] | None) -> SSAValue:
    ends = window.padded_ends
    if len(window.sizes) == 2:
        return node.emit(op_class(node.input(0), window.kernel, window.strides, [*window.begins, *ends], extra))
    pooled = node.emit(
        op_class(_as_2d(node, node.input(0)), [1, *window.kernel], [1, *window.strides], [0, window.begins[0], 0, ends[0]], extra)
    )
    return _from_2d(node, pooled)


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
    """Max pooling over any number of spatial dims, with the optional Indices output.

    Plain 1-D and 2-D windows are one `nn.max_pool2d`; dilated, N-D or indexed ones are the elementwise
    max of one strided slice per kernel position (the indices follow the first maximum, as ONNX).
    """
    window = _pool_window(node, kernel_shape, auto_pad, ceil_mode, pads, strides, dilations)
    x = node.input(0)
    with_indices = len(node.node.output) > 1 and bool(node.node.output[1])
    if len(window.sizes) <= 2 and _fits_pool2d(window, False) and not with_indices:
        return _pool2d(node, nn.MaxPool2dOp, window, None)
    values = _window_values(node, x, window, _lowest(x))
    if with_indices:
        return _max_with_indices(node, window, values, storage_order)
    result = values[0]
    for value in values[1:]:
        result = node.emit(nn.MaxOp(result, value))
    return result


def _max_with_indices(
    node: NodeContext, window: _Window, values: Sequence[SSAValue], storage_order: int
) -> tuple[SSAValue, SSAValue]:
    """The max of `values` and MaxPool's Indices: flat input positions (spatial column-major with `storage_order`)."""
    sizes = window.sizes
    coordinates = np.indices(window.padded_sizes) - np.array(window.begins).reshape(-1, *([1] * len(sizes)))
    inside = np.all((coordinates >= 0) & (coordinates < np.array(sizes).reshape(-1, *([1] * len(sizes)))), axis=0)
    order = sizes if not storage_order else sizes[::-1]
    flat = np.ravel_multi_index(tuple(coordinates if not storage_order else coordinates[::-1]), order, mode="clip")
    flat = np.where(inside, flat, -1).astype(np.int64)
    best, index = values[0], None
    for offset, value in zip(window.offsets(), values, strict=True):
        starts, ends, steps = window.slices(offset)
        position = flat[tuple(slice(b, e, s) for b, e, s in zip(starts, ends, steps, strict=True))]
        here = node.constant(position.reshape(1, 1, *window.outs), "pool_index")
        if index is None:
            index = here
            continue
        better = node.emit(nn.GreaterOp(value, best))
        best = node.emit(nn.MaxOp(best, value))
        index = node.emit(nn.WhereOp(better, here, index))
    n, c = node.shape(0)[:2]
    base = np.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * len(sizes))) * numel(sizes)
    assert index is not None
    return best, node.emit(nn.AddOp(index, node.constant(base, "pool_index_base")))


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
    """Average pooling over any number of spatial dims.

    Plain 1-D and 2-D windows are one `nn.avg_pool2d`; the others sum one strided slice per kernel
    position and divide by the precomputed count of cells each window averages: the input's, plus
    the explicit pads with `count_include_pad` (never the cells ceil mode adds past them).
    """
    window = _pool_window(node, kernel_shape, auto_pad, ceil_mode, pads, strides, dilations)
    if len(window.sizes) <= 2 and _fits_pool2d(window, bool(count_include_pad)):
        extra: dict[str, Attribute] | None = {"count_include_pad": nn.UnitAttr()} if count_include_pad else None
        return _pool2d(node, nn.AvgPool2dOp, window, extra)
    x = node.input(0)
    values = _window_values(node, x, window, 0.0)
    total = values[0]
    for value in values[1:]:
        total = node.emit(nn.AddOp(total, value))
    region = np.zeros(window.padded_sizes)
    counted = window.sizes if not count_include_pad else [n + b + e for n, b, e in zip(window.sizes, window.begins, window.ends, strict=True)]
    first = window.begins if not count_include_pad else [0] * len(window.sizes)
    region[tuple(slice(b, b + n) for b, n in zip(first, counted, strict=True))] = 1
    counts = _window_sums(window, region).astype(_numpy_dtype(x))
    return node.emit(nn.DivOp(total, node.constant(counts, "pool_count")))


@onnx_op("LpPool", since=2)
def LpPool(
    node: NodeContext,
    kernel_shape: list[int],
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    p: int = 2,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Outputs:
    """`(sum over the window of |x|^p)^(1/p)`, the sum of one strided slice per kernel position (pads add 0)."""
    window = _pool_window(node, kernel_shape, auto_pad, ceil_mode, pads, strides, dilations)
    x = node.input(0)
    dtype = _numpy_dtype(x)
    powered = node.emit(nn.PowOp(node.emit(nn.AbsOp(x)), node.constant(np.array(p, dtype=dtype))))
    values = _window_values(node, powered, window, 0.0)
    total = values[0]
    for value in values[1:]:
        total = node.emit(nn.AddOp(total, value))
    return node.emit(nn.PowOp(total, node.constant(np.array(1.0 / p, dtype=dtype))))


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


def _numpy_dtype(value: SSAValue) -> np.dtype:
    return to_numpy_dtype(nn.element_type(value))


def _diagonal(node: NodeContext, x: SSAValue, letters: list[str]) -> tuple[SSAValue, list[str]]:
    """`x` with every repeated letter reduced to its diagonal (the letter kept once, moved last)."""
    while len(set(letters)) < len(letters):
        letter = next(c for c in letters if letters.count(c) > 1)
        first, second = (i for i, c in enumerate(letters) if c == letter)
        others = [i for i in range(len(letters)) if i not in (first, second)]
        moved = node.emit(nn.TransposeOp(x, [*others, first, second]))
        shape = nn.tensor_shape(moved)
        size = shape[-1]
        flat = reshape(node, moved, (*shape[:-2], size * size))
        diagonal = node.constant(np.arange(size, dtype=np.int64) * (size + 1), "einsum_diagonal")
        x = node.emit(nn.GatherOp(flat, diagonal, len(shape) - 2))
        letters = [letters[i] for i in others] + [letter]
    return x, letters


@onnx_op("Einsum", since=12)
def Einsum(node: NodeContext, equation: str) -> Outputs:
    """Any einsum: diagonals taken, operands permuted to one letter order and broadcast, multiplied,
    then summed over the letters the output lacks. Ellipses stand for right-aligned broadcast dims."""
    inputs, _, output = equation.replace(" ", "").partition("->")
    operands = node.inputs()
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise node.error(f"equation '{equation}' has {len(terms)} operands, the node {len(operands)}")
    spare = [chr(0x3B1 + i) for i in range(26)]  # Greek letters stand in for ellipsis dims
    widest = max(len(nn.tensor_shape(v)) - len(t.replace("...", "")) for v, t in zip(operands, terms, strict=True))
    broadcast = spare[: max(widest, 0)]
    letters: list[list[str]] = []
    for value, term in zip(operands, terms, strict=True):
        head, dots, tail = term.partition("...")
        count = len(nn.tensor_shape(value)) - len(head) - len(tail)
        letters.append([*head, *(broadcast[len(broadcast) - count :] if dots else []), *tail])
    if not output and "->" not in equation:
        singles = sorted(c for c in {c for t in letters for c in t} if c not in broadcast and sum(t.count(c) for t in letters) == 1)
        output_letters = broadcast + singles
    else:
        head, dots, tail = output.partition("...")
        output_letters = [*head, *(broadcast if dots else []), *tail]
    contracted = [c for t in letters for c in t if c not in output_letters]
    order = list(dict.fromkeys([*output_letters, *contracted]))
    product: SSAValue | None = None
    for value, term in zip(operands, letters, strict=True):
        value, term = _diagonal(node, value, term)
        present = [c for c in order if c in term]
        if present != term:
            value = node.emit(nn.TransposeOp(value, [term.index(c) for c in present]))
        sizes = dict(zip(present, nn.tensor_shape(value), strict=True))
        value = reshape(node, value, [sizes.get(c, 1) for c in order])
        product = value if product is None else node.emit(nn.MulOp(product, value))
    assert product is not None
    summed = [i for i, c in enumerate(order) if c not in output_letters]
    if summed:
        product = node.emit(nn.ReduceSumOp(product, summed, keepdims=False))
    return product


def _upsample_zeros(node: NodeContext, x: SSAValue, axis: int, stride: int) -> SSAValue:
    """`x` with `stride - 1` zeros between neighbours along `axis`."""
    if stride == 1:
        return x
    shape = list(nn.tensor_shape(x))
    column = reshape(node, x, [*shape[: axis + 1], 1, *shape[axis + 1 :]])
    zeros = node.constant(np.zeros([*shape[: axis + 1], stride - 1, *shape[axis + 1 :]], dtype=_numpy_dtype(x)), "zeros")
    spread = reshape(node, node.emit(nn.ConcatOp([column, zeros], axis + 1)), [*shape[:axis], shape[axis] * stride, *shape[axis + 1 :]])
    ends = [*shape[:axis], (shape[axis] - 1) * stride + 1, *shape[axis + 1 :]]
    return node.emit(nn.SliceOp(spread, [0] * len(shape), ends, [1] * len(shape)))


@onnx_op("ConvTranspose", since=1)
def ConvTranspose(
    node: NodeContext,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None,
    output_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Outputs:
    """1-D or 2-D transposed convolution, as the convolution of the zero-upsampled input with the flipped,
    channel-transposed kernel, padded `dilation * (kernel - 1) - pad` (cropped where that is negative)."""
    rank = _spatial_rank(node, "transposed convolution")
    x_shape, w_shape = node.shape(0), node.shape(1)
    sizes, kernel = x_shape[2:], w_shape[2:]
    strides = strides or [1] * rank
    dilations = dilations or [1] * rank
    extra = output_padding or [0] * rank
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        wanted = output_shape[-rank:] if output_shape is not None else [n * s for n, s in zip(sizes, strides, strict=True)]
        total = [
            s * (n - 1) + e + (k - 1) * d + 1 - o
            for s, n, e, k, d, o in zip(strides, sizes, extra, kernel, dilations, wanted, strict=True)
        ]
        small = [t // 2 for t in total]
        large = [t - t // 2 for t in total]
        begins, ends = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    else:
        explicit = list(pads) if pads else [0] * (2 * rank)
        begins, ends = explicit[:rank], explicit[rank:]
    x = node.input(0)
    for axis, stride in enumerate(strides, start=2):
        x = _upsample_zeros(node, x, axis, stride)
    before = [d * (k - 1) - b for d, k, b in zip(dilations, kernel, begins, strict=True)]
    after = [d * (k - 1) - e + o for d, k, e, o in zip(dilations, kernel, ends, extra, strict=True)]
    shape = nn.tensor_shape(x)
    crop_starts = [0, 0, *(max(0, -b) for b in before)]
    crop_ends = [*shape[:2], *(n - max(0, -a) for n, a in zip(shape[2:], after, strict=True))]
    if crop_starts != [0] * len(shape) or crop_ends != list(shape):
        x = node.emit(nn.SliceOp(x, crop_starts, crop_ends, [1] * len(shape)))
    x = _pad(node, x, [max(0, b) for b in before], [max(0, a) for a in after], 0.0)
    # (C_in, C_out / g, k...) -> (C_out, C_in / g, k...), spatially flipped
    c_in, c_out_group = w_shape[:2]
    w = reshape(node, node.input(1), (group, c_in // group, c_out_group, *kernel))
    w = node.emit(nn.TransposeOp(w, [0, 2, 1, *range(3, 3 + rank)]))
    w = reshape(node, w, (group * c_out_group, c_in // group, *kernel))
    for axis, k in enumerate(kernel, start=2):
        w = node.emit(nn.GatherOp(w, node.constant(np.arange(k - 1, -1, -1, dtype=np.int64), "flip"), axis))
    bias = node.optional_input(2)
    if rank == 2:
        return node.emit(nn.Conv2dOp(x, w, bias, [1, 1], [0, 0, 0, 0], dilations, group))
    y = node.emit(nn.Conv2dOp(_as_2d(node, x), _as_2d(node, w), bias, [1, 1], [0, 0, 0, 0], [1, *dilations], group))
    return _from_2d(node, y)
