"""The `matmul` template of the Wasm printer: a register-blocked f32x4 micro-kernel with a fused epilogue.

Schedule (`web.target = "wasm"`): `thread` = register block [mr, nr] (nr / 4 vectors per row with
`vector = 4`, nr scalars with `vector = 1`), `tile` = cache block [mb, nb, kb], `unroll` = K
steps printed straight-line per loop iteration, `shared = true` packs B.

    for z in batch:  for n_c in N by nb:  for k_c in K by kb:
        [pack B[z, k_c : k_c + kb, n_c : n_c + nb] into scratch, nr-wide strips, zero past N]
        for m_c in M by mb:  for n_r in strip starts:  for m_r in M by mr:  micro-kernel

The micro-kernel keeps an mr x (nr / 4) tile of accumulators in v128 locals: per k step it loads
the nr / 4 B vectors once, `v128.load32_splat`s each A element (the load is the broadcast) and
multiply-adds (`f32x4.relaxed_madd` where the module allows relaxed SIMD). Addresses are fixed:
the buffer base and each unrolled step's constant land in offset immediates. Ragged M and N get one
static edge tile each (fewer rows; partial vectors read and written lane by lane), so no read falls
outside a buffer. With K > kb, partial sums live in the output buffer between K blocks; the
epilogue (bias, activation, residual, reshape) runs at the last block's store. Operands are any
injective expression of the block arguments: a transposed operand is strided index arithmetic, and
packing (`shared`) turns it into contiguous reads once per panel.

Threads (`wasm_threads.py`) share one dim, chosen by `matmul_split`: rows in whole register blocks
(mr), columns in whole nr-wide strips, or batch entries. Each thread runs the loop nest above over
its own range (cache blocks start at its first row / column) and owns the ragged edge tile when its
range ends at the edge. Each thread packs into its own scratch copy (`scratch_base + tid *
scratch_stride`) rather than sharing one packed panel: sharing would need a barrier inside the
kernel after every pack, while repacking costs one B element per mr x nr/threads multiply-adds of
compute when rows are split (under 1 % for M >= 384) and nothing extra when strips or batch are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nnjit.backends.indexing import (
    INDEX,
    Apply,
    Const,
    Expr,
    KernelIndexer,
    Load,
    Select,
    Var,
    add,
    const,
    mul,
    sub,
    unflatten,
    value_kind,
)
from nnjit.backends.matmul_geometry import MatmulGeometry
from nnjit.backends.wasm_code import WASM_TYPE, family, literal
from nnjit.backends.wasm_lanes import LANES, LaneAnalysis, at_lane
from nnjit.backends.wasm_templates import KernelPrinter
from nnjit.backends.wasm_threads import TID, matmul_split, share
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError


def scratch_bytes(kernel: KernelOp) -> int:
    """Bytes of scratch memory a matmul kernel packs B into (0 without `shared`)."""
    schedule = kernel.schedule.values
    if not schedule.shared:
        return 0
    g = MatmulGeometry.of(kernel)
    nr = schedule.thread[1]
    columns = min(schedule.tile[1], -(-g.n // nr) * nr)
    return 4 * min(schedule.tile[2], g.k) * columns


Flag = bool | str
"""A condition known statically (bool) or computed at run time (WAT i32 text)."""


class _Matmul:
    def __init__(self, p: KernelPrinter):
        self.p, self.r, self.g = p, p.r, MatmulGeometry.of(p.kernel)
        s = p.schedule
        (self.mr, self.nr), (self.mb, self.nb, self.kb), self.unroll = s.thread, s.tile, max(s.unroll, 1)
        self.width = s.vector
        self.kind = value_kind(self.g.op.result)
        if self.nr % self.width or self.mb % self.mr or self.nb % self.nr or self.kb < 1:
            raise NnjitError(f"{p.name}: matmul tile {list(s.tile)} must be a multiple of the register block "
                             f"{list(s.thread)} whose n is a multiple of vector {s.vector}")  # fmt: skip
        if self.kind not in ("f32", "i32", "i64"):
            raise NnjitError(f"{p.name}: matmul on {self.kind} is not supported by the wasm target")
        self.vector = self.width == LANES
        self.indexer = KernelIndexer(p.kernel)
        args = len(p.kernel.body.block.args)
        self.r.bases += [p.out_base, p.scratch_base]
        self.out_buffer, self.scratch_buffer = args, args + 1
        self.m_full = self.g.m - self.g.m % self.mr
        self.n_full = self.g.n - self.g.n % self.nr
        threads = p.threads
        self.split = matmul_split(p.kernel, threads.max_threads) if threads is not None and threads.split else None
        self.hi = ""
        """The end of this thread's range of the split dim (WAT), clamped to the dim's size."""
        self.full_hi = ""
        """The end of its full register blocks (split m or n): `min(hi, m_full or n_full)`."""
        self.lo = ""
        self.scratch_offset: Var | None = None
        """This thread's scratch copy, in elements past `scratch_base` (split and packing only)."""

    # --- loops ---

    def blocks(self, size: int, step: int, prefix: str, body: Callable[[Expr], None], dim: str = "") -> None:
        """`body(start)` for each block of `step` in `[0, size)`; one static block when it fits.

        For the dim split among threads (`dim`): the blocks of this thread's range.
        """
        if dim and dim == self.split:
            self.r.loop(self.lo, self.hi, step, body, size, prefix)
        elif size <= step:
            body(const(0))
        else:
            self.r.loop(0, size, step, body, size, prefix)

    def run(self) -> None:
        g = self.g
        if shapes.numel(g.batch) == 0 or g.m == 0 or g.n == 0:
            return
        if g.k == 0:
            self.zero_k()
            return

        def nest() -> None:
            self.blocks(shapes.numel(g.batch), 1, "z", lambda z: self.blocks(g.n, self.nb, "nc", lambda n_c: self.blocks(
                g.k, self.kb, "kc", lambda k_c: self.k_block(unflatten(z, g.batch), n_c, k_c)), "n"), "z")  # fmt: skip

        if self.split is None:
            nest()
            return
        self.share_range()
        self.r.branch(f"(i32.lt_s {self.lo} {self.hi})", nest)

    def share_range(self) -> None:
        """Locals for this thread's range of the split dim, its full blocks' end and its scratch copy."""
        g, r, p = self.g, self.r, self.p
        size, unit, full = {"m": (g.m, self.mr, self.m_full), "n": (g.n, self.nr, self.n_full),
                            "z": (shapes.numel(g.batch), 1, 0)}[self.split or "z"]  # fmt: skip
        p.split_units = -(-size // unit)
        self.lo, self.hi = share(r, 0, size, unit, self.split or "z")
        if self.split != "z":
            limit = literal(full, INDEX)
            name = r.bind(f"(select {self.hi} {limit} (i32.lt_s {self.hi} {limit}))", "i32", "fullhi")
            self.full_hi = f"(local.get {name})"
        if p.schedule.shared and p.threads is not None:
            words = p.threads.scratch_stride // 4
            self.scratch_offset = Var(
                INDEX, r.bind(f"(i32.mul (local.get {TID}) {literal(words, INDEX)})", "i32", "soff")
            )

    def k_block(self, batch: tuple[Expr, ...], n_c: Expr, k_c: Expr) -> None:
        g, r = self.g, self.r
        if g.k <= self.kb:
            k_len: int | Var = g.k
            first: Flag = True
            last: Flag = True
        else:
            end = f"(i32.add {r.scalar(k_c)} {literal(self.kb, INDEX)})"
            k_len = Var(INDEX, r.bind(f"(i32.sub (select {end} {literal(g.k, INDEX)} (i32.lt_s {end} {literal(g.k, INDEX)})) "
                                      f"{r.scalar(k_c)})", "i32", "klen"), self.kb + 1)  # fmt: skip
            first = f"(i32.eqz {r.scalar(k_c)})"
            last = f"(i32.ge_s {end} {literal(g.k, INDEX)})"
        if self.p.schedule.shared:
            self.pack(batch, n_c, k_c, k_len)
        self.blocks(g.m, self.mb, "mc", lambda m_c: self.tiles(batch, n_c, k_c, k_len, m_c, first, last), "m")

    def span(self, start: Expr, block: int, limit: int | str, size: int) -> str | int:
        """`min(start + block, limit)` (static when the whole dim is one block; `limit` WAT when split)."""
        if isinstance(limit, int) and size <= block:
            return limit
        end = f"(i32.add {self.r.scalar(start)} {literal(block, INDEX)})"
        bound = literal(limit, INDEX) if isinstance(limit, int) else limit
        return f"(select {end} {bound} (i32.lt_s {end} {bound}))"

    def last_block(self, start: Expr, block: int, size: int, dim: str = "") -> Flag:
        """Whether the block at `start` holds the dim's ragged edge (for a split dim: and this thread owns it)."""
        if dim and dim == self.split:
            end = f"(i32.add {self.r.scalar(start)} {literal(block, INDEX)})"
            return f"(i32.and (i32.ge_s {end} {literal(size, INDEX)}) (i32.eq {self.hi} {literal(size, INDEX)}))"
        return (
            True
            if size <= block
            else f"(i32.ge_s (i32.add {self.r.scalar(start)} {literal(block, INDEX)}) {literal(size, INDEX)})"
        )

    def limit(self, dim: str, full: int) -> int | str:
        """Where a dim's full register blocks end: statically, or for this thread when it is split."""
        return self.full_hi if dim == self.split else full

    def when(self, flag: Flag, body: Callable[[], None]) -> None:
        if flag is True:
            body()
        elif flag is not False:
            self.r.branch(flag, body)

    def tiles(
        self, batch: tuple[Expr, ...], n_c: Expr, k_c: Expr, k_len: int | Var, m_c: Expr, first: Flag, last: Flag
    ) -> None:
        g, r = self.g, self.r
        mr, nr, w = self.mr, self.nr, self.width
        full = [w] * (nr // w)
        edge = [min(w, max(0, g.n - self.n_full - w * j)) for j in range(nr // w)]
        edge = [lanes for lanes in edge if lanes]
        rows_end = self.span(m_c, self.mb, self.limit("m", self.m_full), g.m)
        cols_end = self.span(n_c, self.nb, self.limit("n", self.n_full), g.n)

        def column(col: Var, widths: list[int]) -> None:
            def micro(rows: int, row: Expr) -> None:
                self.micro(batch, rows, row, col, n_c, widths, k_c, k_len, first, last)

            r.loop(self.start(m_c), rows_end, mr, lambda row: micro(mr, row), self.m_full - mr + 1, "mr")
            if g.m % mr:
                self.when(self.last_block(m_c, self.mb, g.m, "m"),
                          lambda: micro(g.m % mr, self.fixed(self.m_full, "me")))  # fmt: skip

        # Column variables are lane variables: their bounds cover the lanes of their vectors.
        r.loop(self.start(n_c), cols_end, nr, lambda col: column(col, full), self.n_full - nr + LANES, "nr")
        if edge:
            self.when(self.last_block(n_c, self.nb, g.n, "n"),
                      lambda: column(self.fixed(self.n_full, "ne", LANES), edge))  # fmt: skip

    def fixed(self, value: int, prefix: str, lanes: int = 1) -> Var:
        """A local holding a known start (the edge tiles' row or column), so lanes have a variable."""
        return Var(INDEX, self.r.bind(literal(value, INDEX), "i32", prefix), value + lanes)

    # --- operands ---

    def a_value(self, batch: Sequence[Expr], row: Expr, k: Expr) -> Expr:
        return self.indexer.value_at(self.g.op.lhs, self.g.lhs(batch, row, k))

    def b_value(self, batch: Sequence[Expr], k: Expr, col: Expr) -> Expr:
        return self.indexer.value_at(self.g.op.rhs, self.g.rhs(batch, k, col))

    def pack(self, batch: tuple[Expr, ...], n_c: Expr, k_c: Expr, k_len: int | Var) -> None:
        """B[z, k_c + kk, n_c + c] -> scratch[(c / nr) * kb + kk) * nr + c % nr], zero past N."""
        g, r, w, nr = self.g, self.r, self.width, self.nr
        kb = min(self.kb, g.k)
        end = self.span(n_c, self.nb, self.hi if self.split == "n" else g.n, g.n)

        def strip(sc: Var) -> None:
            def row(kk: Expr) -> None:
                for j in range(nr // w):
                    col = add(sc, const(w * j))
                    value = self.b_value(batch, add(k_c, kk), col)
                    if g.n % nr:
                        value = Select(
                            value.dtype, Apply("bool", nn.LessOp, (col, const(g.n))), value, const(0, value.dtype)
                        )
                    index = add(add(mul(sub(sc, n_c), const(kb)), mul(kk, const(nr))), const(w * j))
                    if self.scratch_offset is not None:
                        index = add(index, self.scratch_offset)
                    if self.vector:
                        text = r.vector(value)
                        dynamic, offset = self.address(self.scratch_buffer, index)
                        r.body.line(f"(v128.store offset={offset} {dynamic} {text})")
                    else:
                        r.store(self.p.scratch_base, index, value)

            previous = r.lanes
            r.lanes = LaneAnalysis(sc, LANES) if self.vector else None
            self.k_loop(k_len, 1, lambda kk, _: row(kk))
            r.lanes = previous

        r.loop(self.start(n_c), end, nr, strip, g.n + nr, "sc")

    def start(self, expr: Expr) -> int | str:
        """A loop start: static when known."""
        value = expr.value if isinstance(expr, Const) else None
        return int(value) if value is not None else self.r.scalar(expr)

    def address(self, buffer: int, index: Expr) -> tuple[str, int]:
        return self.r.address(self.r.bases[buffer], index)

    def k_loop(self, k_len: int | Var, unroll: int, step: Callable[[Expr, int], None]) -> None:
        """`step(kk, u)` for kk in `[0, k_len)`: `unroll` straight-line steps per iteration, then single steps."""
        r = self.r
        if isinstance(k_len, int):
            main = k_len - k_len % unroll
            r.loop(
                0, main, unroll, lambda kk: [step(add(kk, const(u)), u) for u in range(unroll)], main - unroll + 1, "k"
            )
            for kk in range(main, k_len):
                step(const(kk), kk % unroll)
            return
        if unroll == 1:
            r.loop(0, r.scalar(k_len), 1, lambda kk: step(kk, 0), k_len.bound, "k")
            return
        var = r.loop(0, f"(i32.sub {r.scalar(k_len)} {literal(unroll - 1, INDEX)})", unroll,
                     lambda kk: [step(add(kk, const(u)), u) for u in range(unroll)], k_len.bound, "k")  # fmt: skip
        assert var is not None
        r.loop(f"(local.get {var})", r.scalar(k_len), 1, lambda kk: step(kk, 0), k_len.bound, "k")

    # --- the micro-kernel ---

    def micro(self, batch: tuple[Expr, ...], rows: int, row0: Expr, col: Var, n_c: Expr, widths: list[int],
              k_c: Expr, k_len: int | Var, first: Flag, last: Flag) -> None:  # fmt: skip
        r, p, w, kind = self.r, self.p, self.width, self.kind
        previous = r.lanes
        r.lanes = LaneAnalysis(col, LANES) if self.vector else None
        row_at = [add(row0, const(i)) for i in range(rows)]
        cols = [add(col, const(w * j)) for j in range(len(widths))]
        acc = [[p.accumulator(kind, 0, self.vector) for _ in widths] for _ in range(rows)]
        if first is not True:
            self.when_else(first, None, lambda: self.load_partial(batch, row_at, cols, widths, acc))
        strip = None
        if p.schedule.shared:
            kb = min(self.kb, self.g.k)
            start = mul(sub(col, n_c), const(kb))
            if self.scratch_offset is not None:
                start = add(start, self.scratch_offset)
            strip = r.bind(r.scalar(start), "i32", "strip")

        def step(kk: Expr, _: int) -> None:
            if strip is not None:
                b = [self.packed(Var(INDEX, strip), kk, j) for j in range(len(widths))]
            else:
                b = [self.direct(batch, add(k_c, kk), c, lanes) for c, lanes in zip(cols, widths, strict=True)]
            for i, row in enumerate(row_at):
                a_expr = self.a_value(batch, row, add(k_c, kk))
                a = r.vector(a_expr) if self.vector else r.scalar(a_expr)
                for j, b_j in enumerate(b):
                    self.fma(acc[i][j], a, b_j)

        self.k_loop(k_len, self.unroll, step)
        self.when_else(last, lambda: self.store(batch, row_at, cols, widths, acc, True),
                       lambda: self.store(batch, row_at, cols, widths, acc, False))  # fmt: skip
        r.lanes = previous

    def when_else(self, flag: Flag, then: Callable[[], None] | None, otherwise: Callable[[], None]) -> None:
        if flag is True:
            if then is not None:
                then()
        elif flag is False:
            otherwise()
        elif then is None:
            self.r.branch(f"(i32.eqz {flag})", otherwise)
        else:
            self.r.branch(flag, then, otherwise)

    def fma(self, acc: Var, a: str, b: str) -> None:
        r = self.r
        current = f"(local.get {acc.name})"
        if not self.vector:
            op = "f32" if family(self.kind) == "f" else "i32"
            text = f"({op}.add {current} ({op}.mul {a} {b}))"
        elif family(self.kind) == "f":
            text = r.fma(a, b, current)
        else:
            text = f"(i32x4.add {current} (i32x4.mul {a} {b}))"
        r.assign(acc.name, text)

    def packed(self, strip: Var, kk: Expr, j: int) -> str:
        index = add(add(strip, mul(kk, const(self.nr))), const(self.width * j))
        dynamic, offset = self.address(self.scratch_buffer, index)
        load = "v128.load" if self.vector else ("f32.load" if family(self.kind) == "f" else "i32.load")
        key = ("packed", index)
        name = self.r.body.known(key)
        if name is None:
            name = self.r.bind(
                f"({load} offset={offset} {dynamic})", "v128" if self.vector else WASM_TYPE[self.kind], "b"
            )
            self.r.body.remember(key, name)
        return f"(local.get {name})"

    def direct(self, batch: Sequence[Expr], k: Expr, col: Expr, lanes: int) -> str:
        value = self.b_value(batch, k, col)
        if not self.vector:
            return self.r.scalar(value)
        if lanes == LANES:
            return self.r.vector(value)
        assert self.r.lanes is not None
        var = self.r.lanes.var
        parts = [
            self.r.scalar(at_lane(value, var, lane)) if lane < lanes else literal(0, self.kind) for lane in range(LANES)
        ]
        return self.r.combine(parts, self.kind)

    # --- partial sums and the epilogue ---

    def load_partial(self, batch: tuple[Expr, ...], rows: list[Expr], cols: list[Expr], widths: list[int],
                     acc: list[list[Var]]) -> None:  # fmt: skip
        r = self.r
        for i, row in enumerate(rows):
            for j, (col, lanes) in enumerate(zip(cols, widths, strict=True)):
                partial = Load(self.kind, self.out_buffer, self.g.flat(batch, row, col))
                if not self.vector:
                    text = r.scalar(partial)
                elif lanes == LANES:
                    text = r.vector(partial)
                else:
                    assert r.lanes is not None
                    var = r.lanes.var
                    text = r.combine([r.scalar(at_lane(partial, var, lane)) if lane < lanes else literal(0, self.kind)
                                      for lane in range(LANES)], self.kind)  # fmt: skip
                r.assign(acc[i][j].name, text)

    def store(self, batch: tuple[Expr, ...], rows: list[Expr], cols: list[Expr], widths: list[int],
              acc: list[list[Var]], epilogue: bool) -> None:  # fmt: skip
        p, r = self.p, self.r
        for i, row in enumerate(rows):
            for j, (col, lanes) in enumerate(zip(cols, widths, strict=True)):
                value = acc[i][j]
                if not self.vector or lanes == LANES:
                    flat = self.g.flat(batch, row, col)
                    if epilogue:
                        p.store_output(self.g.op.result, lambda _, v=value: v, flat, self.vector)
                    else:
                        r.store(p.out_base, flat, value, self.vector)
                    continue
                assert r.lanes is not None
                var = r.lanes.var
                for lane in range(lanes):
                    flat = self.g.flat(batch, row, at_lane(col, var, lane))
                    if epilogue:
                        root = p.kernel.root
                        tree = KernelIndexer(p.kernel, {self.g.op.result: lambda _, v=value: v}).value_at(
                            root, unflatten(flat, nn.tensor_shape(root)))  # fmt: skip
                        r.store(p.out_base, flat, tree, False, lane)
                    else:
                        r.store(p.out_base, flat, value, False, lane)

    def zero_k(self) -> None:
        """K = 0: every product is an empty sum, so the epilogue runs on zeros."""
        zero = Var(self.kind, self.r.bind(literal(0, self.kind), WASM_TYPE[self.kind], "z"))
        count = shapes.numel(nn.tensor_shape(self.g.op.result))
        self.p.split_loop(0, count, 1, lambda f: self.p.store_output(self.g.op.result, lambda _: zero, f, False),
                          count, "f")  # fmt: skip


def matmul(p: KernelPrinter) -> None:
    """Register-blocked, cache-blocked matmul with the epilogue at the store (see module docstring)."""
    _Matmul(p).run()


__all__ = ["matmul", "scratch_bytes"]
