"""Data movement: Reshape family, Transpose, Concat, Slice, Split, Gathers, Expand, Tile, Pad, scatters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import broadcast, normalize_axis, numel
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op


def _ints(array: np.ndarray | None) -> list[int] | None:
    return None if array is None else [int(v) for v in np.asarray(array).reshape(-1)]


def reshape(node: NodeContext, value: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`value` viewed with `shape` (no op when the shape is already that)."""
    if nn.tensor_shape(value) == tuple(shape):
        return value
    return node.emit(nn.ReshapeOp(value, shape))


@onnx_op("Reshape", since=5)
def Reshape(node: NodeContext, allowzero: int = 0) -> Outputs:
    """Reshape to a constant shape where 0 copies the input dim (unless `allowzero`) and -1 is inferred."""
    source = node.shape(0)
    target = _ints(node.const(1)) or []
    resolved = [source[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
    if resolved.count(-1) > 1:
        raise node.error(f"shape {target} has more than one -1")
    if -1 in resolved:
        known = numel([d for d in resolved if d != -1])
        if known == 0 or numel(source) % known:
            raise node.error(f"cannot reshape {source} to {target}")
        resolved[resolved.index(-1)] = numel(source) // known
    if numel(resolved) != numel(source):
        raise node.error(f"cannot reshape {source} ({numel(source)} elements) to {target}")
    return reshape(node, node.input(0), resolved)


@onnx_op("Flatten", since=1)
def Flatten(node: NodeContext, axis: int = 1) -> Outputs:
    """Reshape to 2-D: dims before `axis` and from `axis` on."""
    shape = node.shape(0)
    axis = axis + len(shape) if axis < 0 else axis
    return reshape(node, node.input(0), (numel(shape[:axis]), numel(shape[axis:])))


def _unsqueeze(node: NodeContext, axes: Sequence[int]) -> SSAValue:
    shape = list(node.shape(0))
    rank = len(shape) + len(axes)
    for axis in sorted(normalize_axis(a, rank) for a in axes):
        shape.insert(axis, 1)
    return reshape(node, node.input(0), shape)


def _squeeze(node: NodeContext, axes: Sequence[int] | None) -> SSAValue:
    shape = node.shape(0)
    dropped = {normalize_axis(a, len(shape)) for a in axes} if axes else {i for i, d in enumerate(shape) if d == 1}
    if any(shape[a] != 1 for a in dropped):
        raise node.error(f"cannot squeeze axes {sorted(dropped)} of shape {shape}: they are not all 1")
    return reshape(node, node.input(0), [d for i, d in enumerate(shape) if i not in dropped])


@onnx_op("Unsqueeze", since=1, until=12)
def Unsqueeze_1(node: NodeContext, axes: list[int]) -> Outputs:
    """Insert size-1 dims at `axes` (attribute form)."""
    return _unsqueeze(node, axes)


@onnx_op("Unsqueeze", since=13)
def Unsqueeze(node: NodeContext) -> Outputs:
    """Insert size-1 dims at constant `axes`."""
    return _unsqueeze(node, _ints(node.const(1)) or [])


@onnx_op("Squeeze", since=1, until=12)
def Squeeze_1(node: NodeContext, axes: list[int] | None = None) -> Outputs:
    """Drop size-1 dims (attribute form)."""
    return _squeeze(node, axes)


@onnx_op("Squeeze", since=13)
def Squeeze(node: NodeContext) -> Outputs:
    """Drop size-1 dims at optional constant `axes` (all size-1 dims when absent)."""
    return _squeeze(node, _ints(node.optional_const(1)))


@onnx_op("Transpose", since=1)
def Transpose(node: NodeContext, perm: list[int] | None = None) -> Outputs:
    """Permute dims; the default reverses them."""
    rank = len(node.shape(0))
    return node.emit(nn.TransposeOp(node.input(0), perm if perm is not None else list(reversed(range(rank)))))


@onnx_op("Concat", since=4)
def Concat(node: NodeContext, axis: int) -> Outputs:
    """Join along `axis`; empty inputs contribute nothing."""
    inputs = [v for v in node.inputs() if numel(nn.tensor_shape(v)) > 0] or node.inputs()[:1]
    if len(inputs) == 1:
        return inputs[0]
    return node.emit(nn.ConcatOp(inputs, axis))


def slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice's clamping of one axis, expressed as Python slice bounds."""
    if step == 0:
        raise ValueError("slice step must not be 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    # A clamped end of -1 means "through index 0"; in Python slices -1 would mean the last element.
    return start, -(dim + 1) if end == -1 else end


def _slice(node: NodeContext, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> SSAValue:
    shape = node.shape(0)
    full_starts = [0] * len(shape)
    full_ends = list(shape)
    full_steps = [1] * len(shape)
    axes = axes if axes is not None else list(range(len(starts)))
    for start, end, axis, step in zip(starts, ends, axes, steps or [1] * len(starts), strict=True):
        axis = normalize_axis(axis, len(shape))
        full_starts[axis], full_ends[axis] = slice_bounds(shape[axis], start, end, step)
        full_steps[axis] = step
    return node.emit(nn.SliceOp(node.input(0), full_starts, full_ends, full_steps))


@onnx_op("Slice", since=1, until=9)
def Slice_1(node: NodeContext, starts: list[int], ends: list[int], axes: list[int] | None = None) -> Outputs:
    """Slice with bounds as attributes."""
    return _slice(node, starts, ends, axes, None)


@onnx_op("Slice", since=10)
def Slice(node: NodeContext) -> Outputs:
    """Slice with constant starts, ends, axes and steps."""
    return _slice(
        node, _ints(node.const(1)) or [], _ints(node.const(2)) or [], _ints(node.optional_const(3)), _ints(node.optional_const(4))
    )


def _split(node: NodeContext, axis: int, sizes: list[int] | None, num_outputs: int | None) -> list[SSAValue]:
    shape = node.shape(0)
    axis = normalize_axis(axis, len(shape))
    count = num_outputs or len(node.node.output)
    if sizes is None:
        chunk = -(-shape[axis] // count)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(count)]
    if sum(sizes) != shape[axis]:
        raise node.error(f"split sizes {sizes} do not add up to dim {shape[axis]}")
    outputs: list[SSAValue] = []
    offset = 0
    for size in sizes:
        starts = [0] * len(shape)
        ends = list(shape)
        starts[axis], ends[axis] = offset, offset + size
        outputs.append(node.emit(nn.SliceOp(node.input(0), starts, ends, [1] * len(shape))))
        offset += size
    return outputs


@onnx_op("Split", since=2, until=12)
def Split_2(node: NodeContext, axis: int = 0, split: list[int] | None = None) -> Outputs:
    """Split with sizes as an attribute."""
    return _split(node, axis, split, None)


@onnx_op("Split", since=13)
def Split(node: NodeContext, axis: int = 0, num_outputs: int | None = None) -> Outputs:
    """Split with constant sizes, or into `num_outputs` (opset 18) or as many parts as outputs."""
    return _split(node, axis, _ints(node.optional_const(1)), num_outputs)


@onnx_op("Gather", since=1)
def Gather(node: NodeContext, axis: int = 0) -> Outputs:
    """`take(data, indices, axis)`."""
    return node.emit(nn.GatherOp(node.input(0), node.input(1), axis))


@onnx_op("GatherElements", since=11)
def GatherElements(node: NodeContext, axis: int = 0) -> Outputs:
    """A 1-D gather from the flattened data at `index * stride(axis) + offset of the other coordinates`."""
    shape, index_shape = node.shape(0), node.shape(1)
    axis = normalize_axis(axis, len(shape))
    indices = node.emit(nn.CastOp(node.input(1), nn.i64)) if nn.element_type(node.input(1)) != nn.i64 else node.input(1)
    dim = node.constant(np.array(shape[axis], dtype=np.int64))
    negative = node.emit(nn.LessOp(indices, node.constant(np.array(0, dtype=np.int64))))
    indices = node.emit(nn.WhereOp(negative, node.emit(nn.AddOp(indices, dim)), indices))
    coordinates = list(np.indices(index_shape))
    coordinates[axis] = np.zeros(index_shape, dtype=np.int64)
    offsets = np.asarray(np.ravel_multi_index(tuple(coordinates), shape), dtype=np.int64)
    stride = node.constant(np.array(numel(shape[axis + 1 :]), dtype=np.int64))
    flat = node.emit(nn.AddOp(node.emit(nn.MulOp(indices, stride)), node.constant(offsets, "gather_elements_offset")))
    data = reshape(node, node.input(0), (numel(shape),))
    return node.emit(nn.GatherOp(data, flat, 0))


SCATTER_REDUCTIONS: dict[str, type[nn.ElementwiseBinaryOp]] = {
    "add": nn.AddOp,
    "mul": nn.MulOp,
    "max": nn.MaxOp,
    "min": nn.MinOp,
}


def _scatter(node: NodeContext, targets: np.ndarray, reduction: str) -> SSAValue:
    """Input 0 with the elements of input 2 written (or combined) at flat positions `targets`.

    `targets[i]` is where the i-th update element (row-major) goes. Round r writes the r-th update
    aimed at each position, so repeated positions apply in order (the last one wins with
    `reduction="none"`); each round is one gather and one select with precomputed maps.
    """
    if reduction != "none" and reduction not in SCATTER_REDUCTIONS:
        raise node.error(f"reduction={reduction} is not a {node.node.op_type} reduction")
    shape = node.shape(0)
    updates = reshape(node, node.input(2), (numel(node.shape(2)),))
    rounds: list[tuple[np.ndarray, np.ndarray]] = []
    seen: dict[int, int] = {}
    for source, target in enumerate(targets.reshape(-1).tolist()):
        number = seen[target] = seen.get(target, -1) + 1
        if number == len(rounds):
            rounds.append((np.zeros(numel(shape), dtype=np.int64), np.zeros(numel(shape), dtype=bool)))
        rounds[number][0][target] = source
        rounds[number][1][target] = True
    result = node.input(0)
    for source, written in rounds:
        gathered = node.emit(nn.GatherOp(updates, node.constant(source.reshape(shape), "scatter_source"), 0))
        if reduction != "none":
            gathered = node.emit(SCATTER_REDUCTIONS[reduction](result, gathered))
        result = node.emit(nn.WhereOp(node.constant(written.reshape(shape), "scatter_mask"), gathered, result))
    return result


@onnx_op("ScatterND", since=11)
def ScatterND(node: NodeContext, reduction: str = "none") -> Outputs:
    """Write (or combine) update slices at constant index tuples."""
    shape = node.shape(0)
    indices = node.const(1).astype(np.int64)
    depth = indices.shape[-1]
    block = numel(shape[depth:])
    tuples = indices.reshape(-1, depth)
    tuples = np.where(tuples < 0, tuples + np.array(shape[:depth]), tuples)
    starts = np.ravel_multi_index(tuple(tuples.T), shape[:depth]) * block if depth else np.zeros(len(tuples), np.int64)
    return _scatter(node, (np.asarray(starts)[:, None] + np.arange(block)[None, :]).reshape(-1), reduction)


@onnx_op("ScatterElements", since=11)
def ScatterElements(node: NodeContext, axis: int = 0, reduction: str = "none") -> Outputs:
    """Write (or combine) each update at its own position, its `axis` coordinate taken from constant indices."""
    shape = node.shape(0)
    axis = normalize_axis(axis, len(shape))
    indices = node.const(1).astype(np.int64)
    coordinates = [np.asarray(c) for c in np.indices(indices.shape)]
    coordinates[axis] = np.where(indices < 0, indices + shape[axis], indices)
    return _scatter(node, np.asarray(np.ravel_multi_index(tuple(coordinates), shape)), reduction)


@onnx_op("Scatter", since=9, until=10)
def Scatter(node: NodeContext, axis: int = 0) -> Outputs:
    """The deprecated name of ScatterElements without reductions."""
    return ScatterElements(node, axis)


@onnx_op("Compress", since=9)
def Compress(node: NodeContext, axis: int | None = None) -> Outputs:
    """The slices (or elements, without `axis`) where the constant condition is true."""
    keep = np.flatnonzero(node.const(1).reshape(-1)).astype(np.int64)
    x = node.input(0)
    if axis is None:
        x, axis = reshape(node, x, (numel(node.shape(0)),)), 0
    return node.emit(nn.GatherOp(x, node.constant(keep, "compress_index"), normalize_axis(axis, len(nn.tensor_shape(x)))))


@onnx_op("Expand", since=8)
def Expand(node: NodeContext) -> Outputs:
    """Broadcast to `broadcast(input shape, shape)`."""
    shape = broadcast(node.shape(0), _ints(node.const(1)) or [])
    x = node.input(0)
    return x if nn.tensor_shape(x) == shape else node.emit(nn.ExpandOp(x, shape))


@onnx_op("Tile", since=6)
def Tile(node: NodeContext) -> Outputs:
    """Repeat each dim: reshape to interleave size-1 dims, expand them to the repeats, merge."""
    shape = node.shape(0)
    repeats = _ints(node.const(1)) or []
    interleaved = [d for dim in shape for d in (1, dim)]
    expanded = [d for pair in zip(repeats, shape, strict=True) for d in pair]
    spread = node.emit(nn.ExpandOp(reshape(node, node.input(0), interleaved), expanded))
    return reshape(node, spread, [r * d for r, d in zip(repeats, shape, strict=True)])


@onnx_op("Trilu", since=14)
def Trilu(node: NodeContext, upper: int = 1) -> Outputs:
    """Keep the upper or lower triangle (offset by `k`, a constant or a run-time scalar) of the last two dims."""
    from nnjit.runtime.reference import to_numpy_dtype

    shape = node.shape(0)
    rows, cols = np.indices(shape[-2:])
    offsets = (cols - rows).astype(np.int64)
    k = node.optional_input(1)
    known = node.known(k) if k is not None else np.zeros((), dtype=np.int64)
    if known is not None:
        diagonal = int(np.asarray(known).reshape(-1)[0])
        keep = node.constant(offsets >= diagonal if upper else offsets <= diagonal, "trilu_mask")
    else:
        assert k is not None
        compare = nn.GreaterEqualOp if upper else nn.LessEqualOp
        keep = node.emit(compare(node.constant(offsets, "trilu_offsets"), reshape(node, k, [])))
    x = node.input(0)
    zero = node.constant(np.zeros((), dtype=to_numpy_dtype(nn.element_type(x))))
    return node.emit(nn.WhereOp(keep, x, zero))


def _space_depth(node: NodeContext, blocksize: int, to_depth: bool, column_row_depth: bool) -> SSAValue:
    """A reshape, a transpose and a reshape between `(N, C, H, W)` and `(N, C·b², H/b, W/b)`."""
    n, c, h, w = node.shape(0)
    b = blocksize
    if to_depth:
        split = reshape(node, node.input(0), (n, c, h // b, b, w // b, b))
        moved = node.emit(nn.TransposeOp(split, (0, 1, 3, 5, 2, 4) if column_row_depth else (0, 3, 5, 1, 2, 4)))
        return reshape(node, moved, (n, c * b * b, h // b, w // b))
    if column_row_depth:
        split = reshape(node, node.input(0), (n, c // (b * b), b, b, h, w))
        moved = node.emit(nn.TransposeOp(split, (0, 1, 4, 2, 5, 3)))
    else:
        split = reshape(node, node.input(0), (n, b, b, c // (b * b), h, w))
        moved = node.emit(nn.TransposeOp(split, (0, 3, 4, 1, 5, 2)))
    return reshape(node, moved, (n, c // (b * b), h * b, w * b))


def _block_mode(node: NodeContext, mode: str) -> bool:
    if mode not in ("DCR", "CRD"):
        raise node.error(f"mode={mode} is not a {node.node.op_type} mode")
    return mode == "CRD"


@onnx_op("SpaceToDepth", since=1)
def SpaceToDepth(node: NodeContext, blocksize: int, mode: str = "DCR") -> Outputs:
    """Move `blocksize`² spatial blocks into channels (block-major DCR, or channel-major CRD from opset 28)."""
    return _space_depth(node, blocksize, True, _block_mode(node, mode))


@onnx_op("DepthToSpace", since=1)
def DepthToSpace(node: NodeContext, blocksize: int, mode: str = "DCR") -> Outputs:
    """Move channels into `blocksize`² spatial blocks, depth-column-row (DCR) or column-row-depth (CRD)."""
    return _space_depth(node, blocksize, False, _block_mode(node, mode))


PAD_MODES = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}
"""ONNX Pad modes that gather along each axis, with numpy's name for the same index pattern."""


def _pad(node: NodeContext, pads: Sequence[int], mode: str, value: SSAValue | None) -> SSAValue:
    x = node.input(0)
    shape = nn.tensor_shape(x)
    rank = len(shape)
    if len(pads) != 2 * rank:
        raise node.error(f"pads {list(pads)} do not give a begin and an end for each of {rank} dims")
    if mode != "constant" and mode not in PAD_MODES:
        raise node.error(f"mode={mode} is not a Pad mode")
    # Negative pads crop first.
    starts = [max(0, -p) for p in pads[:rank]]
    ends = [d - max(0, -p) for d, p in zip(shape, pads[rank:], strict=True)]
    if starts != [0] * rank or ends != list(shape):
        x = node.emit(nn.SliceOp(x, starts, ends, [1] * rank))
    from nnjit.runtime.reference import to_numpy_dtype

    dtype = to_numpy_dtype(nn.element_type(x))
    known = None if value is None else node.known(value)
    for axis, (before, after) in enumerate(zip(pads[:rank], pads[rank:], strict=True)):
        before, after = max(0, before), max(0, after)
        if not before and not after:
            continue
        size = nn.tensor_shape(x)[axis]
        if mode != "constant":
            if size == 0:
                raise node.error(f"mode={mode} cannot pad an empty axis {axis}")
            indices = np.pad(np.arange(size, dtype=np.int64), (before, after), mode=PAD_MODES[mode])  # type: ignore[call-overload]
            x = node.emit(nn.GatherOp(x, node.constant(indices, "pad_index"), axis))
            continue
        parts: list[SSAValue] = []
        for amount, is_after in ((before, False), (after, True)):
            if not is_after:
                parts.append(x)
            if not amount:
                continue
            block = list(nn.tensor_shape(x))
            block[axis] = amount
            if value is None or known is not None:
                fill = 0 if known is None else np.asarray(known).reshape(-1)[0]
                part = node.constant(np.full(block, fill, dtype=dtype), "pad_fill")
            else:
                part = node.emit(nn.ExpandOp(reshape(node, value, [1] * rank), block))
            parts.insert(len(parts) if is_after else 0, part)
        x = node.emit(nn.ConcatOp(parts, axis))
    return x


@onnx_op("Pad", since=2, until=10)
def Pad_2(node: NodeContext, pads: list[int], mode: str = "constant", value: float = 0.0) -> Outputs:
    """Pad with attribute pads and fill value."""
    from nnjit.frontend.ops.elementwise import scalar_like

    return _pad(node, pads, mode, scalar_like(node, value, node.input(0)))


@onnx_op("Pad", since=11)
def Pad(node: NodeContext, mode: str = "constant") -> Outputs:
    """Pad with constant pads (over constant `axes`, opset 18), a fill value input, or reflect/edge/wrap."""
    pads = _ints(node.const(1)) or []
    rank = len(node.shape(0))
    axes = _ints(node.optional_const(3))
    if axes is not None:
        full = [0] * (2 * rank)
        for i, axis in enumerate(normalize_axis(a, rank) for a in axes):
            full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
        pads = full
    return _pad(node, pads, mode, node.optional_input(2))


@onnx_op("OneHot", since=9)
def OneHot(node: NodeContext, axis: int = -1) -> Outputs:
    """`values[1]` where the position along `axis` equals the index (negative counts from `depth`), else `values[0]`."""
    depth = int(np.asarray(node.const(1)).reshape(-1)[0])
    indices = node.input(0)
    if nn.element_type(indices) != nn.i64:
        indices = node.emit(nn.CastOp(indices, nn.i64))
    rank = len(nn.tensor_shape(indices)) + 1
    axis = normalize_axis(axis, rank)
    size = node.constant(np.array(depth, dtype=np.int64))
    negative = node.emit(nn.LessOp(indices, node.constant(np.array(0, dtype=np.int64))))
    indices = node.emit(nn.WhereOp(negative, node.emit(nn.AddOp(indices, size)), indices))
    shape = list(nn.tensor_shape(indices))
    expanded = reshape(node, indices, [*shape[:axis], 1, *shape[axis:]])
    positions = np.arange(depth, dtype=np.int64).reshape([depth if i == axis else 1 for i in range(rank)])
    hit = node.emit(nn.EqualOp(expanded, node.constant(positions, "one_hot_positions")))
    values = node.input(2)
    off, on = (reshape(node, node.emit(nn.SliceOp(values, [i], [i + 1], [1])), []) for i in (0, 1))
    return node.emit(nn.WhereOp(hit, on, off))


@onnx_op("GatherND", since=11)
def GatherND(node: NodeContext, batch_dims: int = 0) -> Outputs:
    """A gather from the data flattened over its indexed dims, at `sum(index_j * stride_j)` plus the batch offset."""
    data_shape, index_shape = node.shape(0), node.shape(1)
    b, depth = batch_dims, index_shape[-1]
    indexed = data_shape[b : b + depth]
    indices = node.input(1)
    if nn.element_type(indices) != nn.i64:
        indices = node.emit(nn.CastOp(indices, nn.i64))
    strides = [numel(indexed[j + 1 :]) for j in range(depth)]
    rank = len(index_shape)
    flat: SSAValue | None = None
    for j, (dim, stride) in enumerate(zip(indexed, strides, strict=True)):
        column = node.emit(nn.SliceOp(indices, [0] * (rank - 1) + [j], [*index_shape[:-1], j + 1], [1] * rank))
        column = reshape(node, column, index_shape[:-1])
        negative = node.emit(nn.LessOp(column, node.constant(np.array(0, dtype=np.int64))))
        column = node.emit(nn.WhereOp(negative, node.emit(nn.AddOp(column, node.constant(np.array(dim, dtype=np.int64)))), column))
        term = node.emit(nn.MulOp(column, node.constant(np.array(stride, dtype=np.int64))))
        flat = term if flat is None else node.emit(nn.AddOp(flat, term))
    batches = numel(data_shape[:b])
    offsets = (np.arange(batches, dtype=np.int64) * numel(indexed)).reshape([*data_shape[:b], *[1] * (rank - 1 - b)])
    if flat is None:
        flat = node.constant(np.zeros(index_shape[:-1], dtype=np.int64), "gather_nd_index")
    if b:
        flat = node.emit(nn.AddOp(flat, node.constant(offsets, "gather_nd_batch")))
    data = reshape(node, node.input(0), (batches * numel(indexed), *data_shape[b + depth :]))
    return node.emit(nn.GatherOp(data, flat, 0))
