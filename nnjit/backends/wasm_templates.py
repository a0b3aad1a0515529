"""The code shapes of the Wasm printer: one function per `web.kernel` template (matmul: `wasm_matmul.py`).

A `KernelPrinter` prints one dispatch of a kernel as one exported function whose buffers sit at
fixed byte addresses. Every template reads its anchor (`kernel_anchor`), sizes from the kernel's
types and knobs from its `#web.schedule`, and renders values from `KernelIndexer` trees:

* `vector` (1 or 4): 4 walks the output's innermost dim 4 lanes at a time (f32x4 / i32x4), the
  ragged end in scalar code; 1 is scalar throughout.
* `unroll`: elementwise-like sweeps handle `unroll` vectors (or scalars) per loop iteration,
  straight-line; `row_reduce` keeps `unroll` independent accumulators per reduction.
* `elementwise`, `reduce`, `scan`, `conv2d`, `pool` sweep their output (lines for a scan); a
  reduction loops over the reduced elements, a convolution over input channels with the window
  straight-line and padding as guarded reads (one branch per vector when all lanes agree).
* `row_reduce`: per row, vectorised passes (max / sum / mean / variance) with horizontal
  reductions at the end, then a vectorised pass writing the row through the epilogue.

In a threaded program (`Threads`, `wasm_threads.py`) the function takes `$tid` and `$nt`; a split
dispatch runs only its chunk of the outermost loop (`split_loop`): output rows, or the columns of
a row when there are fewer rows than threads; tails outside it run on thread 0 (`once`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.ir import Operation, SSAValue

from nnjit.backends.indexing import (
    Apply,
    Expr,
    KernelIndexer,
    Leaf,
    Select,
    Var,
    add,
    anchors,
    const,
    div,
    kernel_anchor,
    linear,
    mul,
    sub,
    unflatten,
    value_kind,
)
from nnjit.backends.reductions import ROW_ANCHORS, reduce_axes, row_axis
from nnjit.backends.wasm_code import SCALAR_OPS, VECTOR_OPS, WASM_TYPE, Body, Renderer, family, literal, vector_literal
from nnjit.backends.wasm_lanes import LANES, LaneAnalysis, linear_terms
from nnjit.backends.wasm_threads import NT, TID, Threads, first_thread, share
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

Visit = Callable[[tuple[Expr, ...], bool], None]


def _lowest(kind: str) -> float | int:
    return float("-inf") if family(kind) == "f" else -(2**31)


def _highest(kind: str) -> float | int:
    return float("inf") if family(kind) == "f" else 2**31 - 1


REDUCTIONS: dict[type[Operation], tuple[type[Operation], Callable[[str], float | int]]] = {
    nn.ReduceSumOp: (nn.AddOp, lambda k: 0),
    nn.ReduceMeanOp: (nn.AddOp, lambda k: 0),
    nn.ReduceProdOp: (nn.MulOp, lambda k: 1),
    nn.ReduceMaxOp: (nn.MaxOp, _lowest),
    nn.ReduceMinOp: (nn.MinOp, _highest),
}
"""Combining op and start value of each reduction (mean divides the sum afterwards)."""


class KernelPrinter:
    """Prints one dispatch of a kernel; make a fresh printer per emit (all state lives here)."""

    def __init__(self, kernel: KernelOp, arg_bases: Sequence[int], out_base: int, scratch_base: int, relaxed: bool,
                 threads: Threads | None = None):  # fmt: skip
        self.kernel = kernel
        self.threads = threads
        self.split_units = 0
        """Iterations of the loop split among threads (0: none); the step is parallel when at least 2."""
        self.schedule = kernel.schedule.values
        self.body = Body()
        self.r = Renderer(self.body, arg_bases, relaxed)
        self.out_base = out_base
        self.scratch_base = scratch_base
        self.name = f"web.kernel @{kernel.sym_name.data}"
        if self.schedule.vector not in (1, LANES):
            raise NnjitError(f"{self.name}: the wasm target computes vector 1 or 4, not {self.schedule.vector}")

    def emit(self, export: str) -> str:
        """The WAT function `$<export>`, exported under that name."""
        from nnjit.backends.wasm_matmul import matmul

        templates: dict[str, Callable[[KernelPrinter], None]] = {**TEMPLATES, "matmul": matmul}
        template = self.kernel.template.data
        if template not in templates:
            raise NnjitError(f"the wasm target has no template '{template}'")
        for value in (*self.kernel.body.block.args, self.kernel.root):
            family(value_kind(value))
        templates[template](self)
        lines = self.body.lines
        if self.threads is not None and self.split_units < 2 and lines:
            # Nothing was split: thread 0 does all of it and the others return, so the function is
            # safe whoever calls it (a tuning variant of a parallel step may be one of these).
            lines = [f"  (if (i32.eqz (local.get {TID}))", "    (then", *("    " + line for line in lines), "    )", "  )"]
        local_text = "".join(f"\n  (local {name} {wasm_type})" for name, wasm_type in self.body.locals.items())
        params = f" (param {TID} i32) (param {NT} i32)" if self.threads is not None else ""
        return f'(func ${export} (export "{export}"){params}{local_text}\n' + "\n".join(lines) + ")"

    @property
    def splitting(self) -> bool:
        """Whether this dispatch shares its work among threads."""
        return self.threads is not None and self.threads.split

    def split_loop(self, start: int, end: int, step: int, body: Callable[[Var], object], bound: int,
                   prefix: str) -> None:  # fmt: skip
        """`for (v = start; v < end; v += step) body(v)`, or this thread's chunk of it when splitting."""
        units = -(-(end - start) // step)
        if not self.splitting or units < 2:
            self.r.loop(start, end, step, body, bound, prefix)
            return
        self.split_units = max(self.split_units, units)
        lo, hi = share(self.r, start, end, step, prefix)
        self.r.loop(lo, hi, step, body, bound, prefix)

    def once(self, body: Callable[[], object]) -> None:
        """Work outside the split loop: by thread 0 alone when splitting."""
        if self.splitting:
            first_thread(self.r, body)
        else:
            body()

    @property
    def vectorised(self) -> bool:
        """Whether the schedule asks for f32x4 / i32x4 code."""
        return self.schedule.vector == LANES

    # --- statements ---

    def store_output(self, anchor: SSAValue | None, leaf: Leaf | None, flat: Expr, vector: bool) -> None:
        """Write output element `flat` (4 lanes with `vector`) through the epilogue; anchor element `flat` is `leaf`."""
        root = self.kernel.root
        leaves = {anchor: leaf} if anchor is not None and leaf is not None else {}
        tree = KernelIndexer(self.kernel, leaves).value_at(root, unflatten(flat, nn.tensor_shape(root)))
        self.r.store(self.out_base, flat, tree, vector)

    def accumulator(self, kind: str, start: float | int, vector: bool) -> Var:
        """A new accumulator local (a v128 with `vector`) holding `start`."""
        if vector:
            name = self.r.bind(vector_literal(start, kind), "v128", "acc")
            self.r.vectors.add(name)
        else:
            name = self.r.bind(literal(start, kind), WASM_TYPE[kind], "acc")
        self.r.mutable(name)
        return Var(kind, name)

    def update(self, acc: Var, op: type[Operation], value: Expr, vector: bool) -> None:
        """`acc = op(acc, value)` (lane-wise with `vector`)."""
        tree = Apply(acc.dtype, op, (acc, value))
        if vector and op in VECTOR_OPS[family(acc.dtype)]:
            text = VECTOR_OPS[family(acc.dtype)][op].format(f"(local.get {acc.name})", self.r.vector(value))
        else:
            text = self.r.vector(tree) if vector else self.r.scalar(tree)
        self.r.assign(acc.name, text)

    def madd(self, acc: Var, a: Expr, b: Expr, vector: bool) -> None:
        """`acc += a * b` (fused multiply-add where relaxed SIMD allows it)."""
        if vector and family(acc.dtype) == "f":
            self.r.assign(acc.name, self.r.fma(self.r.vector(a), self.r.vector(b), f"(local.get {acc.name})"))
        else:
            self.update(acc, nn.AddOp, Apply(acc.dtype, nn.MulOp, (a, b)), vector)

    def with_lanes(self, var: Var, visit: Callable[[], object]) -> None:
        """Run `visit` with `var` as the lane variable of vector code (a multiple of 4 on every iteration)."""
        previous = self.r.lanes
        self.r.lanes = LaneAnalysis(var, LANES)
        visit()
        self.r.lanes = previous

    def sweep(self, shape: Sequence[int], visit: Visit) -> None:
        """Call `visit(coords, vector)` for every element of `shape`: vectors along the last dim, or scalars."""
        count, unroll = shapes.numel(shape), max(self.schedule.unroll, 1)
        if count == 0:
            return
        if self.vectorised and shape and shape[-1] >= LANES:
            outer = tuple(shape[:-1])
            rows = shapes.numel(outer)
            # Threads share rows, or, with fewer rows than threads and long rows, each row's columns.
            by_rows = rows >= min(self.threads.max_threads, shape[-1] // (LANES * unroll)) if self.threads else True
            if rows == 1:
                self._sweep_row(tuple(unflatten(const(0), outer)), shape[-1], unroll, visit, True)
            else:
                (self.split_loop if by_rows else self.r.loop)(
                    0, rows, 1, lambda o: self._sweep_row(unflatten(o, outer), shape[-1], unroll, visit, not by_rows),
                    rows, "o")  # fmt: skip
            return
        full = count - count % unroll

        def scalars(f: Var) -> None:
            for u in range(unroll):
                visit(unflatten(add(f, const(u)), shape), False)

        self.split_loop(0, full, unroll, scalars, full - unroll + 1, "f")
        if full < count:
            self.once(lambda: [visit(unflatten(const(index), shape), False) for index in range(full, count)])

    def _sweep_row(self, lead: tuple[Expr, ...], width: int, unroll: int, visit: Visit, split: bool) -> None:
        self.columns(width, unroll, lambda c, vector: visit((*lead, c), vector), True, split)

    def columns(self, width: int, unroll: int, visit: Callable[[Expr, bool], None], vector: bool,
                split: bool = False) -> None:  # fmt: skip
        """`visit(column, vector)` over `[0, width)`: `unroll` vectors per iteration, then vectors, then scalars.

        Without `vector`, `unroll` scalars per iteration, then scalars. With `split`, threads share
        the first loop and thread 0 does the rest.
        """
        loop = self.split_loop if split else self.r.loop

        def tail(body: Callable[[], object]) -> None:
            if split:
                self.once(body)
            else:
                body()

        if not vector:
            main = width - width % unroll
            loop(0, main, unroll, lambda c: [visit(add(c, const(u)), False) for u in range(unroll)],
                 main - unroll + 1, "c")  # fmt: skip
            if main < width:
                tail(lambda: [visit(const(column), False) for column in range(main, width)])
            return
        full = width - width % LANES
        step = LANES * unroll
        main = full - full % step

        def vectors(c: Var, count: int) -> None:
            self.with_lanes(c, lambda: [visit(add(c, const(LANES * u)), True) for u in range(count)])

        def rest() -> None:
            if main < full:
                self.r.loop(main, full, LANES, lambda c: vectors(c, 1), full, "c")
            for column in range(full, width):
                visit(const(column), False)

        # A lane variable's bound covers its lanes: simplifications then hold for every lane's value.
        loop(0, main, step, lambda c: vectors(c, unroll), main - step + LANES, "c")
        if main < width:
            tail(rest)


# --- Per-element templates -------------------------------------------------------------------------


def elementwise(p: KernelPrinter) -> None:
    """Every output element from the body's expression tree."""
    if anchors(p.kernel.body.block):
        raise NnjitError(f"{p.name}: an elementwise kernel holds a non-injective op")
    indexer, shape = KernelIndexer(p.kernel), nn.tensor_shape(p.kernel.root)

    def visit(coords: tuple[Expr, ...], vector: bool) -> None:
        p.r.store(p.out_base, linear(coords, shape), indexer.value_at(p.kernel.root, coords), vector)

    p.sweep(shape, visit)


def _finish(op: Operation, acc: Expr, count: int) -> Expr:
    """A reduction's result from its accumulator (the mean divides; an empty integer mean is 0)."""
    if not isinstance(op, nn.ReduceMeanOp):
        return acc
    kind = acc.dtype
    if count == 0 and family(kind) != "f":
        return const(0, kind)
    return Apply(kind, nn.DivOp, (acc, const(count, kind)))


def reduce(p: KernelPrinter) -> None:
    """A reduction over any axes: each output element (vector) loops over the reduced elements."""
    op: nn.ReduceOp = kernel_anchor(p.kernel, tuple(REDUCTIONS))
    in_shape, out_shape = nn.tensor_shape(op.input), nn.tensor_shape(op.result)
    axes, kind = reduce_axes(op), value_kind(op.result)
    sizes = [in_shape[a] for a in axes]
    count = shapes.numel(sizes)
    combine, start = REDUCTIONS[type(op)]
    indexer = KernelIndexer(p.kernel)

    def visit(out: tuple[Expr, ...], vector: bool) -> None:
        kept = [c for d, c in enumerate(out) if d not in axes] if op.keepdims else list(out)
        acc = p.accumulator(kind, start(kind), vector)

        def step(t: Var) -> None:
            reduced, rest = list(unflatten(t, sizes)), list(kept)
            coords = [reduced.pop(0) if d in axes else rest.pop(0) for d in range(len(in_shape))]
            p.update(acc, combine, indexer.value_at(op.input, coords), vector)

        p.r.loop(0, count, 1, step, count, "r")
        total = _finish(op, acc, count)
        p.store_output(op.result, lambda _: total, linear(out, out_shape), vector)

    p.sweep(out_shape, visit)


def scan(p: KernelPrinter) -> None:
    """`nn.cumsum`: lines (4 at a time where they are adjacent) run a serial sum along the axis."""
    op: nn.CumsumOp = kernel_anchor(p.kernel, (nn.CumsumOp,))
    shape, kind = nn.tensor_shape(op.input), value_kind(op.result)
    axis = shapes.normalize_axis(op.axis.value.data, len(shape))
    length, lines = shape[axis], (*shape[:axis], *shape[axis + 1 :])
    indexer = KernelIndexer(p.kernel)

    def visit(line: tuple[Expr, ...], vector: bool) -> None:
        acc = p.accumulator(kind, 0, vector)

        def step(t: Var) -> None:
            pos = sub(const(length - 1), t) if op.reverse is not None else t
            coords = (*line[:axis], pos, *line[axis:])
            x = indexer.value_at(op.input, coords)
            if op.exclusive is None:
                p.update(acc, nn.AddOp, x, vector)
            p.store_output(op.result, lambda _: acc, linear(coords, shape), vector)
            if op.exclusive is not None:
                p.update(acc, nn.AddOp, x, vector)

        p.r.loop(0, length, 1, step, length, "s")

    p.sweep(lines, visit)


def _window(
    oy: Expr, ox: Expr, geometry: tuple[Sequence[int], ...], visit: Callable[[Expr, Expr, Expr | None, int, int], None]
) -> None:
    """Each tap of a 2-D window: input coordinates and the condition (or None) that they are inside."""
    (height, width), (kh, kw), strides, pads, dilations, (out_h, out_w) = geometry
    for ky in range(kh):
        for kx in range(kw):
            coords: list[Expr] = []
            guards: list[Expr] = []
            for o, k, size, stride, pad, dilation, out in ((oy, ky, height, strides[0], pads[0], dilations[0], out_h),
                                                            (ox, kx, width, strides[1], pads[1], dilations[1], out_w)):  # fmt: skip
                offset = k * dilation - pad
                coord = add(mul(o, const(stride)), const(offset))
                if offset < 0:
                    guards.append(Apply("bool", nn.GreaterEqualOp, (coord, const(0))))
                if (out - 1) * stride + offset >= size:
                    guards.append(Apply("bool", nn.LessOp, (coord, const(size))))
                coords.append(coord)
            cond: Expr | None = None
            for guard in guards:
                cond = guard if cond is None else Apply("bool", nn.AndOp, (cond, guard))
            visit(coords[0], coords[1], cond, ky, kx)


def _guarded(cond: Expr | None, value: Expr, fill: float | int) -> Expr:
    return value if cond is None else Select(value.dtype, cond, value, const(fill, value.dtype))


def conv2d(p: KernelPrinter) -> None:
    """Direct NCHW convolution: output rows 4 columns at a time, channels in a loop, the window straight-line."""
    op: nn.Conv2dOp = kernel_anchor(p.kernel, (nn.Conv2dOp,))
    (_, _, height, width), (out_c, per_group, kh, kw) = nn.tensor_shape(op.input), nn.tensor_shape(op.weight)
    out_shape, kind = nn.tensor_shape(op.result), value_kind(op.result)
    out_per_group = out_c // op.group.value.data
    geometry = ((height, width), (kh, kw), op.strides.get_values(), op.pads.get_values(), op.dilations.get_values(),
                out_shape[2:])  # fmt: skip
    indexer = KernelIndexer(p.kernel)

    def visit(coords: tuple[Expr, ...], vector: bool) -> None:
        n, o, oy, ox = coords
        acc = p.accumulator(kind, 0, vector)
        first = mul(div(o, out_per_group), const(per_group))

        def channel(ci: Expr) -> None:
            def tap(iy: Expr, ix: Expr, cond: Expr | None, ky: int, kx: int) -> None:
                x = _guarded(cond, indexer.value_at(op.input, (n, add(first, ci), iy, ix)), 0)
                p.madd(acc, x, indexer.value_at(op.weight, (o, ci, const(ky), const(kx))), vector)

            _window(oy, ox, geometry, tap)

        if per_group == 1:
            channel(const(0))
        else:
            p.r.loop(0, per_group, 1, channel, per_group, "ci")
        if op.bias is not None:
            p.update(acc, nn.AddOp, indexer.value_at(op.bias, (o,)), vector)
        p.store_output(op.result, lambda _: acc, linear(coords, out_shape), vector)

    p.sweep(out_shape, visit)


def pool(p: KernelPrinter) -> None:
    """Max / average pooling: output rows 4 columns at a time, the window straight-line."""
    op: nn.Pool2dOp = kernel_anchor(p.kernel, (nn.MaxPool2dOp, nn.AvgPool2dOp))
    out_shape, kind = nn.tensor_shape(op.result), value_kind(op.result)
    kh, kw = op.kernel.get_values()
    geometry = (nn.tensor_shape(op.input)[2:], (kh, kw), op.strides.get_values(), op.pads.get_values(), (1, 1),
                out_shape[2:])  # fmt: skip
    is_max = isinstance(op, nn.MaxPool2dOp)
    counted = not is_max and op.count_include_pad is None  # pyright: ignore[reportAttributeAccessIssue]
    indexer = KernelIndexer(p.kernel)

    def visit(coords: tuple[Expr, ...], vector: bool) -> None:
        n, c, oy, ox = coords
        acc = p.accumulator(kind, _lowest(kind) if is_max else 0, vector)
        count = p.accumulator(kind, 0, vector) if counted else None

        def tap(iy: Expr, ix: Expr, cond: Expr | None, ky: int, kx: int) -> None:
            x = indexer.value_at(op.input, (n, c, iy, ix))
            p.update(acc, nn.MaxOp if is_max else nn.AddOp, _guarded(cond, x, _lowest(kind) if is_max else 0), vector)
            if count is not None:
                p.update(count, nn.AddOp, _guarded(cond, const(1, kind), 0), vector)

        _window(oy, ox, geometry, tap)
        total: Expr = (
            acc if is_max else Apply(kind, nn.DivOp, (acc, count if count is not None else const(kh * kw, kind)))
        )
        p.store_output(op.result, lambda _: total, linear(coords, out_shape), vector)

    p.sweep(out_shape, visit)


# --- Row reductions ------------------------------------------------------------------------------

def row_reduce(p: KernelPrinter) -> None:
    """Per row: vectorised reduction passes with `unroll` accumulators, then the row through the epilogue."""
    op = kernel_anchor(p.kernel, ROW_ANCHORS)
    shape = nn.tensor_shape(op.operands[0])
    axis = row_axis(op)
    lead, row_shape = shape[:axis], shape[axis:]
    length, rows, kind = shapes.numel(row_shape), shapes.numel(lead), value_kind(op.results[0])
    if not isinstance(op, nn.ReduceOp) and family(kind) != "f":
        raise NnjitError(f"{op.name} on {kind} is not supported by the wasm target")
    indexer, source = KernelIndexer(p.kernel), op.operands[0]
    vector = p.vectorised and length >= LANES

    def row(r: Expr) -> None:
        lead_coords = unflatten(r, lead)

        def at(column: Expr) -> tuple[Expr, ...]:
            return (*lead_coords, *unflatten(column, row_shape))

        def f(op_class: type, *args: Expr) -> Expr:
            return Apply(kind, op_class, args)

        def reduce_row(term: Callable[[Expr], Expr], combine: type[Operation], start: float | int) -> Var:
            accs = [p.accumulator(kind, start, vector) for _ in range(max(p.schedule.unroll, 1) if vector else 1)]
            scalar = p.accumulator(kind, start, False) if vector else accs[0]
            p.columns(length, len(accs), lambda c, lanes: p.update(
                accs[_lane_slot(c, len(accs))] if lanes else scalar, combine, term(indexer.value_at(source, at(c))), lanes),
                vector)  # fmt: skip
            if vector:
                for extra in accs[1:]:
                    p.update(accs[0], combine, extra, True)
                _horizontal(p, scalar, accs[0], combine)
            return scalar

        if isinstance(op, nn.ReduceOp):
            combine, start = REDUCTIONS[type(op)]
            total = _finish(op, reduce_row(lambda x: x, combine, start(kind)), length)
            p.store_output(op.result, lambda _: total, r, False)
            return
        if isinstance(op, nn.SoftmaxOp | nn.LogSoftmaxOp):
            top = reduce_row(lambda x: x, nn.MaxOp, float("-inf"))
            norm = reduce_row(lambda x: f(nn.ExpOp, f(nn.SubOp, x, top)), nn.AddOp, 0.0)
            log_norm = (
                Var(kind, p.r.bind(p.r.scalar(f(nn.LogOp, norm)), "f32", "g"))
                if isinstance(op, nn.LogSoftmaxOp)
                else None
            )

            def leaf(c: tuple[Expr, ...]) -> Expr:
                shifted = f(nn.SubOp, indexer.value_at(source, c), top)
                return (
                    f(nn.SubOp, shifted, log_norm) if log_norm is not None else f(nn.DivOp, f(nn.ExpOp, shifted), norm)
                )
        else:
            centre: Expr = const(0.0, kind)
            if isinstance(op, nn.LayerNormOp):
                total = reduce_row(lambda x: x, nn.AddOp, 0.0)
                centre = Var(kind, p.r.bind(p.r.scalar(f(nn.DivOp, total, const(length, kind))), "f32", "m"))
            squares = reduce_row(lambda x: f(nn.MulOp, f(nn.SubOp, x, centre), f(nn.SubOp, x, centre)), nn.AddOp, 0.0)
            epsilon = const(op.epsilon.value.data, kind)
            deviation = Var(
                kind,
                p.r.bind(
                    p.r.scalar(f(nn.SqrtOp, f(nn.AddOp, f(nn.DivOp, squares, const(length, kind)), epsilon))),
                    "f32",
                    "d",
                ),
            )

            def leaf(c: tuple[Expr, ...]) -> Expr:
                tail = c[axis:]
                y = f(nn.MulOp, f(nn.DivOp, f(nn.SubOp, indexer.value_at(source, c), centre), deviation),
                      indexer.value_at(op.operands[1], _broadcast(tail, nn.tensor_shape(op.operands[1]))))  # fmt: skip
                if len(op.operands) == 3:
                    y = f(
                        nn.AddOp, y, indexer.value_at(op.operands[2], _broadcast(tail, nn.tensor_shape(op.operands[2])))
                    )
                return y

        p.columns(length, max(p.schedule.unroll, 1),
                  lambda c, lanes: p.store_output(op.results[0], leaf, add(mul(r, const(length)), c), lanes), vector)  # fmt: skip

    if rows == 1:
        row(const(0))
    elif rows > 1:
        p.split_loop(0, rows, 1, row, rows, "row")


def _broadcast(coords: tuple[Expr, ...], shape: Sequence[int]) -> tuple[Expr, ...]:
    tail = coords[len(coords) - len(shape) :]
    return tuple(const(0) if size == 1 else c for c, size in zip(tail, shape, strict=True))


def _lane_slot(column: Expr, count: int) -> int:
    """Which of `count` accumulators a vector column feeds (by its constant offset within the unrolled step)."""
    return (linear_terms(column)[1] // LANES) % count


def _horizontal(p: KernelPrinter, scalar: Var, vector: Var, combine: type[Operation]) -> None:
    """`scalar = combine(scalar, lane 0, ..., lane 3 of vector)`."""
    kind = scalar.dtype
    for lane in range(LANES):
        lane_value = p.r._extract(f"(local.get {vector.name})", kind, lane)
        text = p.r._op_text(SCALAR_OPS, Apply(kind, combine, (scalar, scalar)))
        p.r.assign(scalar.name, text.format(f"(local.get {scalar.name})", lane_value))


TEMPLATES: dict[str, Callable[[KernelPrinter], None]] = {
    "elementwise": elementwise, "row_reduce": row_reduce, "reduce": reduce, "scan": scan, "conv2d": conv2d,
    "pool": pool,
}  # fmt: skip
"""The printing function of each `web.kernel` template except matmul (`wasm_matmul.matmul`)."""

__all__ = ["REDUCTIONS", "TEMPLATES", "KernelPrinter"]
