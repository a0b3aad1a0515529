"""Static shape rules of the `nn` ops.

One function per rule, shared by the op verifiers (which check a printed result type) and the op
builders (which infer it), so that the two can never disagree. Every function raises `ShapeError`
with a message naming the shapes involved; verifiers turn it into a `VerifyException`.
"""

from __future__ import annotations

from collections.abc import Sequence

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """Shapes that no `nn` op accepts together."""


def normalize_axis(axis: int, rank: int) -> int:
    """Map a possibly negative axis into `[0, rank)`."""
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def broadcast(*shapes: Sequence[int]) -> Shape:
    """Numpy/ONNX multidirectional broadcasting."""
    rank = max((len(s) for s in shapes), default=0)
    result: list[int] = []
    for position in range(rank):
        dims = {s[len(s) - rank + position] for s in shapes if len(s) - rank + position >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def matmul(lhs: Sequence[int], rhs: Sequence[int]) -> Shape:
    """`numpy.matmul`: batched, broadcasting, with 1-D operands promoted and then dropped."""
    if not lhs or not rhs:
        raise ShapeError("matmul operands must have rank >= 1")
    a = (1, *lhs) if len(lhs) == 1 else tuple(lhs)
    b = (*rhs, 1) if len(rhs) == 1 else tuple(rhs)
    if a[-1] != b[-2]:
        raise ShapeError(f"matmul contraction mismatch: {tuple(lhs)} @ {tuple(rhs)}")
    batch = broadcast(a[:-2], b[:-2])
    result = (*batch, a[-2], b[-1])
    if len(lhs) == 1:
        result = result[:-2] + result[-1:]
    if len(rhs) == 1:
        result = result[:-1]
    return result


def gemm(a: Sequence[int], b: Sequence[int], trans_a: bool, trans_b: bool) -> Shape:
    """ONNX Gemm: 2-D `op(A) @ op(B)`."""
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"gemm operands must be 2-D, got {tuple(a)} and {tuple(b)}")
    m, k = (a[1], a[0]) if trans_a else (a[0], a[1])
    k2, n = (b[1], b[0]) if trans_b else (b[0], b[1])
    if k != k2:
        raise ShapeError(f"gemm contraction mismatch: {tuple(a)} and {tuple(b)}")
    return (m, n)


def reduce(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> Shape:
    """Shape after reducing `axes` (all axes when empty is not allowed: callers pass them)."""
    normalized = {normalize_axis(a, len(shape)) for a in axes}
    if keepdims:
        return tuple(1 if i in normalized else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in normalized)


def transpose(shape: Sequence[int], perm: Sequence[int]) -> Shape:
    """Shape after permuting dimensions."""
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"{tuple(perm)} is not a permutation of the {len(shape)} dims of {tuple(shape)}")
    return tuple(shape[p] for p in perm)


def concat(shapes: Sequence[Sequence[int]], axis: int) -> Shape:
    """Shape after concatenating along `axis`."""
    first = shapes[0]
    axis = normalize_axis(axis, len(first))
    for other in shapes[1:]:
        if len(other) != len(first) or any(
            x != y for i, (x, y) in enumerate(zip(first, other, strict=True)) if i != axis
        ):
            raise ShapeError(f"cannot concatenate {tuple(first)} and {tuple(other)} along axis {axis}")
    return tuple(
        sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(first)
    )


def slice_(shape: Sequence[int], starts: Sequence[int], ends: Sequence[int], steps: Sequence[int]) -> Shape:
    """Shape of a static strided slice with one normalised (start, end, step) per dimension."""
    if not len(starts) == len(ends) == len(steps) == len(shape):
        raise ShapeError(f"slice needs one start/end/step per dimension of {tuple(shape)}")
    result: list[int] = []
    for dim, start, end, step in zip(shape, starts, ends, steps, strict=True):
        if step == 0:
            raise ShapeError("slice step must not be 0")
        result.append(len(range(dim)[start:end:step]))
    return tuple(result)


def gather(data: Sequence[int], indices: Sequence[int], axis: int) -> Shape:
    """ONNX Gather: `data[:axis] + indices + data[axis+1:]`."""
    axis = normalize_axis(axis, len(data))
    return (*data[:axis], *indices, *data[axis + 1 :])


def pool_window(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int = 1) -> int:
    """Output length of one spatial axis of a convolution or pooling window."""
    span = dilation * (kernel - 1) + 1
    out = (size + pad_begin + pad_end - span) // stride + 1
    if out <= 0:
        raise ShapeError(f"window {kernel} (dilation {dilation}) does not fit input {size} with pads")
    return out


def conv2d(
    x: Sequence[int],
    w: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    group: int,
) -> Shape:
    """NCHW convolution with OIHW weights and pads `(top, left, bottom, right)`."""
    if len(x) != 4 or len(w) != 4:
        raise ShapeError(f"conv2d takes NCHW input and OIHW weight, got {tuple(x)} and {tuple(w)}")
    if x[1] != w[1] * group or w[0] % group:
        raise ShapeError(f"conv2d channels: input {tuple(x)}, weight {tuple(w)}, group {group}")
    h = pool_window(x[2], w[2], strides[0], pads[0], pads[2], dilations[0])
    width = pool_window(x[3], w[3], strides[1], pads[1], pads[3], dilations[1])
    return (x[0], w[0], h, width)


def pool2d(x: Sequence[int], kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]) -> Shape:
    """NCHW pooling with pads `(top, left, bottom, right)`."""
    if len(x) != 4:
        raise ShapeError(f"pool2d takes NCHW input, got {tuple(x)}")
    h = pool_window(x[2], kernel[0], strides[0], pads[0], pads[2])
    w = pool_window(x[3], kernel[1], strides[1], pads[1], pads[3])
    return (x[0], x[1], h, w)


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a shape."""
    count = 1
    for d in shape:
        count *= d
    return count
