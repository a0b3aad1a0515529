"""The code shapes of the WGSL printer: one function per `web.kernel` template, and its grid.

Each template finds its anchor (`kernel_anchor`: the one op of the body that is not injective),
reads every size from the kernel's schedule and types, and prints through the `WgslPrinter` it is
given; values come from `KernelIndexer` trees with the anchor's result bound as a leaf (an
accumulator, a normalised element). `matmul` lives in `wgsl_matmul.py`. See `wgsl.py` for which
schedule fields each template reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xdsl.ir import Operation

from nnjit.backends.indexing import (
    INDEX,
    Apply,
    Expr,
    KernelIndexer,
    Var,
    add,
    anchors,
    broadcast_coords,
    const,
    div,
    is_float,
    kernel_anchor,
    linear,
    mul,
    unflatten,
    value_kind,
)
from nnjit.backends.reductions import ROW_ANCHORS, reduce_axes, row_axis
from nnjit.backends.wgsl import fma_text, grid_2d, literal, wgsl_type
from nnjit.backends.wgsl_matmul import matmul, matmul_grid
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

if TYPE_CHECKING:
    from nnjit.backends.wgsl import WgslPrinter

# --- Anchors -------------------------------------------------------------------------------------


# --- Reductions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reduction:
    """How a reduction starts and combines: `combine` formats `(acc, x)`."""

    start: str
    combine: str


def _lowest(kind: str) -> str:
    return literal(float("-inf"), kind) if is_float(kind) else literal(-(2**31), kind)


def _highest(kind: str) -> str:
    return literal(float("inf"), kind) if is_float(kind) else literal(2**31 - 1, kind)


REDUCTIONS: dict[type[Operation], Callable[[str], Reduction]] = {
    nn.ReduceSumOp: lambda k: Reduction(literal(0, k), "({0} + {1})"),
    nn.ReduceMeanOp: lambda k: Reduction(literal(0, k), "({0} + {1})"),
    nn.ReduceProdOp: lambda k: Reduction(literal(1, k), "({0} * {1})"),
    nn.ReduceMaxOp: lambda k: Reduction(_lowest(k), "max({0}, {1})"),
    nn.ReduceMinOp: lambda k: Reduction(_highest(k), "min({0}, {1})"),
}
"""Start value and combining text of each reduction op (mean divides the sum afterwards)."""


def _finish(p: WgslPrinter, op: nn.ReduceOp, acc: str, count: int) -> Var:
    kind = value_kind(op.result)
    text = f"{acc} / {literal(count, kind)}" if isinstance(op, nn.ReduceMeanOp) else acc
    return p.let("r", text, kind)


# --- Per-thread templates ------------------------------------------------------------------------


def _thread_grid(kernel: KernelOp, count: int) -> tuple[int, int, int]:
    schedule = kernel.schedule.values
    threads = -(-count // schedule.unroll)
    x, y = grid_2d(-(-threads // schedule.invocations))
    return x, y, 1


def elementwise(p: WgslPrinter) -> None:
    """Every output element from the body's expression tree, `unroll` per thread."""
    if anchors(p.kernel.body.block):
        raise NnjitError(f"web.kernel @{p.kernel.sym_name.data}: an elementwise kernel holds a non-injective op")
    indexer, shape = KernelIndexer(p.kernel), nn.tensor_shape(p.kernel.root)
    p.per_thread(shapes.numel(shape), lambda i: p.store(i, indexer.value_at(p.kernel.root, unflatten(i, shape))))


def reduce(p: WgslPrinter) -> None:
    """A reduction over any axes: one thread per output element, a serial loop over the reduced ones."""
    op: nn.ReduceOp = kernel_anchor(p.kernel, tuple(REDUCTIONS))
    in_shape, out_shape = nn.tensor_shape(op.input), nn.tensor_shape(op.result)
    axes, kind = reduce_axes(op), value_kind(op.result)
    sizes = [in_shape[a] for a in axes]
    reduction, indexer = REDUCTIONS[type(op)](kind), KernelIndexer(p.kernel)

    def body(index: Var) -> None:
        out = unflatten(index, out_shape)
        kept = [c for d, c in enumerate(out) if d not in axes] if op.keepdims else list(out)
        acc = p.var("a", wgsl_type(kind), reduction.start)
        step = p.code.fresh("r")
        p.code.open(f"for (var {step} = 0i; {step} < {shapes.numel(sizes)}i; {step} = {step} + 1i)")
        reduced = list(unflatten(Var(INDEX, step, shapes.numel(sizes)), sizes))
        coords = [reduced.pop(0) if d in axes else kept.pop(0) for d in range(len(in_shape))]
        p.code.line(f"{acc} = {reduction.combine.format(acc, p.value(indexer.value_at(op.input, coords)))};")
        p.code.close()
        total = _finish(p, op, acc, shapes.numel(sizes))
        p.store_output(op.result, lambda c: total, index)

    p.per_thread(shapes.numel(out_shape), body)


def scan(p: WgslPrinter) -> None:
    """`nn.cumsum`: one thread per line along the axis, a serial running sum."""
    op: nn.CumsumOp = kernel_anchor(p.kernel, (nn.CumsumOp,))
    shape, kind = nn.tensor_shape(op.input), value_kind(op.result)
    axis = shapes.normalize_axis(op.axis.value.data, len(shape))
    length, lines = shape[axis], [*shape[:axis], *shape[axis + 1 :]]
    indexer = KernelIndexer(p.kernel)

    def body(index: Var) -> None:
        line = unflatten(index, lines)
        acc = p.var("a", wgsl_type(kind), literal(0, kind))
        step = p.code.fresh("s")
        p.code.open(f"for (var {step} = 0i; {step} < {length}i; {step} = {step} + 1i)")
        pos = p.let("p", f"{length - 1}i - {step}" if op.reverse is not None else step, bound=length)
        coords = (*line[:axis], pos, *line[axis:])
        x = p.value(indexer.value_at(op.input, coords))
        if op.exclusive is None:
            p.code.line(f"{acc} = {acc} + {x};")
        current = p.let("c", acc, kind)
        p.store_output(op.result, lambda c: current, linear(coords, shape))
        if op.exclusive is not None:
            p.code.line(f"{acc} = {acc} + {x};")
        p.code.close()

    p.per_thread(shapes.numel(lines), body)


def _window(
    p: WgslPrinter, oy: Expr, ox: Expr, geometry: tuple[Sequence[int], ...], visit: Callable[[Var, Var, int, int], None]
) -> None:
    """Straight-line loop over a 2-D window, guarding reads that can fall into padding."""
    (height, width), (kh, kw), strides, pads, dilations, (out_h, out_w) = geometry
    for ky in range(kh):
        for kx in range(kw):
            guards: list[str] = []
            coords: list[Var] = []
            for o, k, size, stride, pad, dilation, out in ((oy, ky, height, strides[0], pads[0], dilations[0], out_h),
                                                            (ox, kx, width, strides[1], pads[1], dilations[1], out_w)):  # fmt: skip
                offset = k * dilation - pad
                coord = p.let("y", p.value(add(mul(o, const(stride)), const(offset))), bound=size)
                guards += [f"{coord.name} >= 0i"] if offset < 0 else []
                guards += [f"{coord.name} < {size}i"] if (out - 1) * stride + offset >= size else []
                coords.append(coord)
            if guards:
                p.code.open(f"if ({' && '.join(guards)})")
            visit(coords[0], coords[1], ky, kx)
            if guards:
                p.code.close()


def conv2d(p: WgslPrinter) -> None:
    """Direct NCHW convolution: one thread per output element, channels in a loop, window straight-line."""
    op: nn.Conv2dOp = kernel_anchor(p.kernel, (nn.Conv2dOp,))
    (_, _, height, width), (out_c, per_group, kh, kw) = nn.tensor_shape(op.input), nn.tensor_shape(op.weight)
    out_shape, kind = nn.tensor_shape(op.result), value_kind(op.result)
    out_per_group = out_c // op.group.value.data
    geometry = (
        (height, width),
        (kh, kw),
        op.strides.get_values(),
        op.pads.get_values(),
        op.dilations.get_values(),
        out_shape[2:],
    )
    indexer = KernelIndexer(p.kernel)

    def body(index: Var) -> None:
        n, o, oy, ox = unflatten(index, out_shape)
        acc = p.var("a", wgsl_type(kind), literal(0, kind))
        channel: Expr = const(0)
        if per_group > 1:
            name = p.code.fresh("ci")
            p.code.open(f"for (var {name} = 0i; {name} < {per_group}i; {name} = {name} + 1i)")
            channel = Var(INDEX, name, per_group)
        first = mul(div(o, out_per_group), const(per_group))

        def visit(iy: Var, ix: Var, ky: int, kx: int) -> None:
            x = p.value(indexer.value_at(op.input, (n, add(first, channel), iy, ix)))
            w = p.value(indexer.value_at(op.weight, (o, channel, const(ky), const(kx))))
            p.code.line(f"{acc} = {fma_text(kind, x, w, acc)};")

        _window(p, oy, ox, geometry, visit)
        if per_group > 1:
            p.code.close()
        if op.bias is not None:
            p.code.line(f"{acc} = {acc} + {p.value(indexer.value_at(op.bias, (o,)))};")
        p.store_output(op.result, lambda c: Var(kind, acc), index)

    p.per_thread(shapes.numel(out_shape), body)


def pool(p: WgslPrinter) -> None:
    """Max / average pooling: one thread per output element, the window straight-line."""
    op: nn.Pool2dOp = kernel_anchor(p.kernel, (nn.MaxPool2dOp, nn.AvgPool2dOp))
    out_shape, kind = nn.tensor_shape(op.result), value_kind(op.result)
    kh, kw = op.kernel.get_values()
    geometry = (
        nn.tensor_shape(op.input)[2:],
        (kh, kw),
        op.strides.get_values(),
        op.pads.get_values(),
        (1, 1),
        out_shape[2:],
    )
    is_max = isinstance(op, nn.MaxPool2dOp)
    counted = not is_max and op.count_include_pad is None  # pyright: ignore[reportAttributeAccessIssue]
    indexer = KernelIndexer(p.kernel)

    def body(index: Var) -> None:
        n, c, oy, ox = unflatten(index, out_shape)
        acc = p.var("a", wgsl_type(kind), _lowest(kind) if is_max else literal(0, kind))
        count = p.var("n", wgsl_type(kind), literal(0, kind)) if counted else literal(kh * kw, kind)

        def visit(iy: Var, ix: Var, ky: int, kx: int) -> None:
            x = p.value(indexer.value_at(op.input, (n, c, iy, ix)))
            p.code.line(f"{acc} = {f'max({acc}, {x})' if is_max else f'{acc} + {x}'};")
            if counted:
                p.code.line(f"{count} = {count} + {literal(1, kind)};")

        _window(p, oy, ox, geometry, visit)
        total = p.let("r", acc if is_max else f"{acc} / {count}", kind)
        p.store_output(op.result, lambda _: total, index)

    p.per_thread(shapes.numel(out_shape), body)


# --- Row reductions ------------------------------------------------------------------------------

def _row_shape(kernel: KernelOp) -> tuple[tuple[int, ...], tuple[int, ...]]:
    op = kernel_anchor(kernel, ROW_ANCHORS)
    shape = nn.tensor_shape(op.operands[0])
    axis = row_axis(op)
    return shape[:axis], shape[axis:]


def row_reduce(p: WgslPrinter) -> None:
    """One workgroup per row: strided partials, a tree in workgroup memory, then the row's outputs."""
    op = kernel_anchor(p.kernel, ROW_ANCHORS)
    lead, row_shape = _row_shape(p.kernel)
    length, kind, invocations = shapes.numel(row_shape), value_kind(op.results[0]), p.schedule.invocations
    if not isinstance(op, nn.ReduceOp) and kind != "f32":
        raise NnjitError(f"{op.name} on {kind} is not supported by the webgpu target")
    p.shared.append(f"var<workgroup> red: array<{wgsl_type(kind)}, {invocations}>;")
    row = p.let("row", f"i32(wid.x + wid.y * {_row_grid(p.kernel)[0]}u)", bound=shapes.numel(lead))
    p.code.line(f"if ({row.name} >= {shapes.numel(lead)}i) {{ return; }}")
    lane = p.let("l", "i32(lidx)", bound=invocations)
    indexer, lead_coords, source = KernelIndexer(p.kernel), unflatten(row, lead), op.operands[0]

    def strided(visit: Callable[[Var, tuple[Expr, ...]], None]) -> None:
        step = p.code.fresh("c")
        p.code.open(f"for (var {step} = {lane.name}; {step} < {length}i; {step} = {step} + {invocations}i)")
        column = Var(INDEX, step, length)
        visit(column, (*lead_coords, *unflatten(column, row_shape)))
        p.code.close()

    def reduce_row(term: Callable[[Expr], Expr], reduction: Reduction) -> Var:
        acc = p.var("a", wgsl_type(kind), reduction.start)
        strided(lambda _, coords: p.code.line(
            f"{acc} = {reduction.combine.format(acc, p.value(term(indexer.value_at(source, coords))))};"))  # fmt: skip
        p.code.line(f"red[{lane.name}] = {acc};")
        p.code.line("workgroupBarrier();")
        active = invocations
        while active > 1:
            half = (active + 1) // 2
            pair = reduction.combine.format(f"red[{lane.name}]", f"red[{lane.name} + {half}i]")
            p.code.line(f"if ({lane.name} < {active - half}i) {{ red[{lane.name}] = {pair}; }}")
            p.code.line("workgroupBarrier();")
            active = half
        total = p.let("s", "red[0]", kind)
        p.code.line("workgroupBarrier();")
        return total

    def f(op_class: type, *args: Expr) -> Expr:
        return Apply(kind, op_class, args)

    total_sum = REDUCTIONS[nn.ReduceSumOp](kind)
    if isinstance(op, nn.ReduceOp):
        total = reduce_row(lambda x: x, REDUCTIONS[type(op)](kind))
        result = _finish(p, op, total.name, length)
        p.code.open(f"if ({lane.name} == 0i)")
        p.store_output(op.result, lambda _: result, row)
        p.code.close()
        return
    if isinstance(op, nn.SoftmaxOp | nn.LogSoftmaxOp):
        top = reduce_row(lambda x: x, REDUCTIONS[nn.ReduceMaxOp](kind))
        norm = reduce_row(lambda x: f(nn.ExpOp, f(nn.SubOp, x, top)), total_sum)
        log_norm = p.let("g", f"log({norm.name})", kind) if isinstance(op, nn.LogSoftmaxOp) else None

        def leaf(c: tuple[Expr, ...]) -> Expr:
            shifted = f(nn.SubOp, indexer.value_at(source, c), top)
            return f(nn.SubOp, shifted, log_norm) if log_norm is not None else f(nn.DivOp, f(nn.ExpOp, shifted), norm)
    else:
        epsilon = literal(op.epsilon.value.data, kind)
        count = literal(length, kind)
        centre: Expr = const(0.0, kind)
        if isinstance(op, nn.LayerNormOp):
            centre = p.let("m", f"{reduce_row(lambda x: x, total_sum).name} / {count}", kind)
        squares = reduce_row(lambda x: f(nn.MulOp, f(nn.SubOp, x, centre), f(nn.SubOp, x, centre)), total_sum)
        deviation = p.let("d", f"sqrt({squares.name} / {count} + {epsilon})", kind)
        axis = len(lead)

        def leaf(c: tuple[Expr, ...]) -> Expr:
            y = f(nn.MulOp, f(nn.DivOp, f(nn.SubOp, indexer.value_at(source, c), centre), deviation),
                  indexer.value_at(op.operands[1], broadcast_coords(c[axis:], nn.tensor_shape(op.operands[1]))))  # fmt: skip
            if len(op.operands) == 3:
                y = f(
                    nn.AddOp,
                    y,
                    indexer.value_at(op.operands[2], broadcast_coords(c[axis:], nn.tensor_shape(op.operands[2]))),
                )
            return y

    strided(lambda column, _: p.store_output(op.results[0], leaf, add(mul(row, const(length)), column)))


def _row_grid(kernel: KernelOp) -> tuple[int, int, int]:
    lead, _ = _row_shape(kernel)
    x, y = grid_2d(shapes.numel(lead))
    return x, y, 1


TEMPLATES: dict[str, Callable[[WgslPrinter], None]] = {
    "elementwise": elementwise, "matmul": matmul, "row_reduce": row_reduce, "reduce": reduce, "scan": scan,
    "conv2d": conv2d, "pool": pool,
}  # fmt: skip
"""The printing function of each `web.kernel` template."""

GRIDS: dict[str, Callable[[KernelOp], tuple[int, int, int]]] = {
    "elementwise": lambda k: _thread_grid(k, shapes.numel(nn.tensor_shape(k.root))),
    "reduce": lambda k: _thread_grid(k, shapes.numel(nn.tensor_shape(k.root))),
    "scan": lambda k: _thread_grid(k, shapes.numel(nn.tensor_shape(k.root)) // max(_scan_length(k), 1)),
    "conv2d": lambda k: _thread_grid(k, shapes.numel(nn.tensor_shape(k.root))),
    "pool": lambda k: _thread_grid(k, shapes.numel(nn.tensor_shape(k.root))),
    "matmul": matmul_grid,
    "row_reduce": _row_grid,
}
"""Workgroup counts of each template."""


def _scan_length(kernel: KernelOp) -> int:
    op: nn.CumsumOp = kernel_anchor(kernel, (nn.CumsumOp,))
    shape = nn.tensor_shape(op.input)
    return shape[shapes.normalize_axis(op.axis.value.data, len(shape))]
