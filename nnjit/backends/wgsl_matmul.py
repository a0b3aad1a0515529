"""The `matmul` template of the WGSL printer: tiled, straight-line, with a fused epilogue.

A workgroup computes a `tile` m x n block of one batch entry (batch on workgroup z); each thread
keeps `thread` m x n accumulators as named variables (vecN along n when `vector = N` > 1) and runs K
in steps of tile k, each step's k-steps printed straight-line `unroll` at a time (naga and drivers
do not unroll). `shared = true` stages zero-padded A and B tiles in workgroup memory between
barriers; otherwise operands are read from global memory with rows and columns clamped in range
and a remainder loop for K. Operands are any injective expression of the block arguments (a
transposed or cast prologue is index arithmetic); the epilogue runs at the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from xdsl.ir import SSAValue

from nnjit.backends.indexing import (
    INDEX,
    Expr,
    KernelIndexer,
    Var,
    add,
    const,
    div,
    linear,
    mod,
    mul,
    unflatten,
    value_kind,
)
from nnjit.backends.matmul_geometry import MatmulGeometry
from nnjit.backends.wgsl import GRID_LIMIT, fma_text, literal, wgsl_type
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

if TYPE_CHECKING:
    from nnjit.backends.wgsl import WgslPrinter


def matmul_grid(kernel: KernelOp) -> tuple[int, int, int]:
    g, (tile_m, tile_n, _) = MatmulGeometry.of(kernel), kernel.schedule.values.tile
    grid = (-(-g.n // tile_n), -(-g.m // tile_m), shapes.numel(g.batch))
    if max(grid) > GRID_LIMIT:
        raise NnjitError(
            f"web.kernel @{kernel.sym_name.data}: matmul grid {grid} exceeds {GRID_LIMIT} workgroups a dimension"
        )
    return grid


def matmul(p: WgslPrinter) -> None:
    """Tiled matmul with straight-line per-thread accumulators and an elementwise epilogue at the store."""
    g, s = MatmulGeometry.of(p.kernel), p.schedule
    (thread_m, thread_n), (tile_m, tile_n, tile_k), vector = s.thread, s.tile, s.vector
    kind, name = value_kind(g.op.result), f"web.kernel @{p.kernel.sym_name.data}"
    if s.workgroup[2] != 1 or thread_n % vector or (vector > 1 and kind != "f32"):
        raise NnjitError(f"{name}: matmul needs workgroup z = 1 and a vector width (f32 only) dividing thread n: {s}")
    if tile_k % min(s.unroll, tile_k):
        raise NnjitError(f"{name}: unroll {s.unroll} does not divide tile k {tile_k}")
    unroll, scalar = min(s.unroll, tile_k), wgsl_type(kind)
    vtype = f"vec{vector}<{scalar}>" if vector > 1 else scalar
    tx, ty = p.let("tx", "i32(lid3.x)", bound=s.workgroup[0]), p.let("ty", "i32(lid3.y)", bound=s.workgroup[1])
    n0, m0 = p.let("n", f"i32(wid.x) * {tile_n}i"), p.let("m", f"i32(wid.y) * {tile_m}i")
    batch = unflatten(p.let("z", "i32(wid.z)", bound=shapes.numel(g.batch)), g.batch)
    indexer = KernelIndexer(p.kernel)
    acc = [[p.var("c", vtype, f"{vtype}()") for _ in range(thread_n // vector)] for _ in range(thread_m)]

    def update(a: Sequence[str], b: Sequence[str]) -> None:
        for i, a_i in enumerate(a):
            for j, b_j in enumerate(b):
                a_text = f"{vtype}({a_i})" if vector > 1 else a_i
                p.code.line(f"{acc[i][j]} = {fma_text(kind, a_text, b_j, acc[i][j])};")

    if s.shared:
        _matmul_shared(p, g, indexer, batch, (tx, ty, n0, m0), update, (vtype, unroll))
    else:
        _matmul_direct(p, g, indexer, batch, (tx, ty, n0, m0), update, unroll)
    for i in range(thread_m):
        row = p.let("om", f"{m0.name} + {ty.name} * {thread_m}i + {i}i", bound=g.m)
        p.code.open(f"if ({row.name} < {g.m}i)")
        for j in range(thread_n):
            col = p.let("on", f"{n0.name} + {tx.name} * {thread_n}i + {j}i", bound=g.n)
            p.code.open(f"if ({col.name} < {g.n}i)")
            value = Var(kind, acc[i][j // vector] + (f"[{j % vector}]" if vector > 1 else ""))
            flat = linear(g.result(batch, row, col), nn.tensor_shape(g.op.result))
            p.store_output(g.op.result, _constant_leaf(value), flat)
            p.code.close()
        p.code.close()


def _constant_leaf(value: Expr) -> Callable[[tuple[Expr, ...]], Expr]:
    return lambda _: value


Update = Callable[[Sequence[str], Sequence[str]], None]


def _k_steps(p: WgslPrinter, tile_k: int, unroll: int, step: Callable[[str], None]) -> None:
    """`tile_k` k-steps from `k = 0`, `unroll` of them straight-line per loop iteration."""
    base = ""
    if unroll < tile_k:
        base = p.code.fresh("kk")
        p.code.open(f"for (var {base} = 0i; {base} < {tile_k}i; {base} = {base} + {unroll}i)")
    for u in range(unroll):
        p.code.open()
        step(f"{base} + {u}i" if base else f"{u}i")
        p.code.close()
    if base:
        p.code.close()


def _matmul_direct(p: WgslPrinter, g: MatmulGeometry, indexer: KernelIndexer, batch: Sequence[Expr],
                   frame: tuple[Var, Var, Var, Var], update: Update, unroll: int) -> None:  # fmt: skip
    """Operands read straight from global memory, rows and columns clamped in range."""
    (tx, ty, n0, m0), (thread_m, thread_n), (_, _, tile_k) = frame, p.schedule.thread, p.schedule.tile
    rows = [
        p.let("gm", f"min({m0.name} + {ty.name} * {thread_m}i + {i}i, {g.m - 1}i)", bound=g.m) for i in range(thread_m)
    ]
    cols = [
        p.let("gn", f"min({n0.name} + {tx.name} * {thread_n}i + {j}i, {g.n - 1}i)", bound=g.n) for j in range(thread_n)
    ]
    vector = p.schedule.vector

    def step(k: Var) -> None:
        a = [p.value(indexer.value_at(g.op.lhs, g.lhs(batch, row, k))) for row in rows]
        b = [p.value(indexer.value_at(g.op.rhs, g.rhs(batch, k, col))) for col in cols]
        if vector > 1:
            b = [f"vec{vector}<f32>({', '.join(b[j : j + vector])})" for j in range(0, thread_n, vector)]
        update(a, b)

    full = g.k // tile_k * tile_k
    if full:
        k0 = p.code.fresh("k")
        p.code.open(f"for (var {k0} = 0i; {k0} < {full}i; {k0} = {k0} + {tile_k}i)")
        _k_steps(p, tile_k, unroll, lambda kk: step(p.let("k", f"{k0} + {kk}", bound=g.k)))
        p.code.close()
    if full < g.k:
        k1 = p.code.fresh("k")
        p.code.open(f"for (var {k1} = {full}i; {k1} < {g.k}i; {k1} = {k1} + 1i)")
        step(Var(INDEX, k1, g.k))
        p.code.close()


def _matmul_shared(p: WgslPrinter, g: MatmulGeometry, indexer: KernelIndexer, batch: Sequence[Expr],
                   frame: tuple[Var, Var, Var, Var], update: Update, types: tuple[str, int]) -> None:  # fmt: skip
    """A and B tiles staged in workgroup memory (zero outside the matrices), then read per k-step."""
    (tx, ty, n0, m0), (thread_m, thread_n), (tile_m, tile_n, tile_k) = frame, p.schedule.thread, p.schedule.tile
    (vtype, unroll), vector, kind = types, p.schedule.vector, value_kind(g.op.result)
    invocations, scalar = p.schedule.invocations, wgsl_type(kind)
    p.shared += [f"var<workgroup> ta: array<{scalar}, {tile_m * tile_k}>;",
                 f"var<workgroup> tb: array<{vtype}, {tile_k * tile_n // vector}>;"]  # fmt: skip
    lane = p.let("l", "i32(lidx)", bound=invocations)
    k0 = p.code.fresh("k")
    p.code.open(f"for (var {k0} = 0i; {k0} < {g.k}i; {k0} = {k0} + {tile_k}i)")

    def stage(tile: str, units: int, load: Callable[[Expr], list[str]], slot: Callable[[Expr], Expr]) -> None:
        for first in range(0, units, invocations):
            unit = add(lane, const(first))
            guarded = first + invocations > units
            if guarded:
                p.code.open(f"if ({p.value(unit)} < {units}i)")
            parts = load(unit)
            packed = f"{vtype}({', '.join(parts)})" if len(parts) > 1 else parts[0]
            p.code.line(f"{tile}[{p.value(slot(unit))}] = {packed};")
            if guarded:
                p.code.close()

    def element(
        operand: SSAValue,
        coords: Callable[[Var, Var], tuple[Expr, ...]],
        at: tuple[Expr, Expr],
        limits: tuple[int, int],
    ) -> str:
        first, second = (p.let("g", p.value(e), bound=limit) for e, limit in zip(at, limits, strict=True))
        value = p.var("e", scalar, literal(0, kind))
        p.code.open(f"if ({first.name} < {limits[0]}i && {second.name} < {limits[1]}i)")
        p.code.line(f"{value} = {p.value(indexer.value_at(operand, coords(first, second)))};")
        p.code.close()
        return value

    # A is read from global memory along k (coalesced) and stored k-major, so that a thread's rows
    # at one k are adjacent in workgroup memory; B is stored as it is read, in vectors along n.
    k0_var = Var(INDEX, k0)
    stage("ta", tile_m * tile_k, lambda e: [element(
        g.op.lhs, lambda r, k: g.lhs(batch, r, k), (add(m0, div(e, tile_k)), add(k0_var, mod(e, tile_k))), (g.m, g.k))],
        lambda e: add(mul(mod(e, tile_k), const(tile_m)), div(e, tile_k)))  # fmt: skip
    per_row = tile_n // vector
    stage("tb", tile_k * per_row, lambda e: [element(
        g.op.rhs, lambda k, c: g.rhs(batch, k, c), (add(k0_var, div(e, per_row)), add(n0, add(mul(mod(e, per_row), const(vector)), const(q)))),
        (g.k, g.n)) for q in range(vector)], lambda e: e)  # fmt: skip
    p.code.line("workgroupBarrier();")
    a_base = p.let("ar", f"{ty.name} * {thread_m}i")
    b_base = p.let("bc", f"{tx.name} * {thread_n // vector}i")

    def step(k: str) -> None:
        a = [f"ta[({k}) * {tile_m}i + {a_base.name} + {i}i]" for i in range(thread_m)]
        b = [f"tb[({k}) * {per_row}i + {b_base.name} + {j}i]" for j in range(thread_n // vector)]
        names_a = [p.let("a", text, kind).name for text in a]
        names_b = [p.let("b", text, kind).name for text in b]
        update(names_a, names_b)

    _k_steps(p, tile_k, unroll, step)
    p.code.line("workgroupBarrier();")
    p.code.close()
