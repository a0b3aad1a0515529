"""Multi-threaded Wasm programs: how a kernel's work is shared among threads, and which steps are worth it.

With `build_program(..., threads=True)` every kernel function takes `(param $tid i32) (param $nt i32)`
and does thread `tid`'s share of its work out of `nt`; workers of a browser (or Node) call it
concurrently on one shared memory, with a barrier between steps (`nnjit/runtime/web/wasm_worker.js`).

**Sharing.** Only the outermost loop of a kernel's iteration space is split, into contiguous chunks
that are whole multiples of the loop's step (so vector loops keep their lane alignment):
thread `tid` runs `[lo + tid * chunk, min(hi, lo + (tid + 1) * chunk))` with `chunk = ceil(iterations
/ nt) * step`. Work outside the split loop (static tail iterations, a ragged vector end) is done by
thread 0 alone (a matmul's ragged edge tile: by the thread whose range ends at the edge). No thread
reads what another writes in the same step: a kernel reads its inputs and writes only its own
share of its output (a matmul's partial sums between K blocks are in its own share), and each
thread packs matmul B panels into its own scratch region. A kernel with nothing to split runs on
thread 0 only, the others return at once, so every kernel is safe to call on every thread.

**Which steps are parallel** (`parallel_steps`). Workers meet at a barrier between two steps unless
thread 0 ran both; a barrier costs under a microsecond while workers poll on free cores, tens of
microseconds once they sleep. So a step with less than `PARALLEL_MIN_WORK`
multiply-add equivalents (`parallel_work`) stays on thread 0 (`parallel: false` in the plan),
unless its neighbours are parallel anyway: then the barriers around it are there either way, and
sharing it costs nothing. A step whose split loop has fewer than 2 iterations is never parallel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nnjit.backends.indexing import INDEX, Var, kernel_anchor
from nnjit.backends.matmul_geometry import MatmulGeometry
from nnjit.backends.reductions import ROW_ANCHORS
from nnjit.backends.wasm_code import Renderer, literal
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp

PARALLEL_MIN_WORK = 4096
"""Steps with less work than this (multiply-add equivalents, `parallel_work`) run on thread 0 only.

A barrier of polling workers costs well under a microsecond on an idle machine; 4K multiply-adds
take about half a microsecond vectorised. Measured on a 16-core Xeon in Node 20, GPT-2 (M = 16,
kernels of 1K-130K multiply-adds) ran fastest with every step split, slower with a 16K threshold
(more serial steps, hardly fewer barriers); below 4K (the elementwise and layer-norm steps of a
few hundred rows) there is nothing left to gain.
"""
MAX_THREADS = 8
"""Default for `build_program(max_threads=...)`: scratch copies reserved, so the most threads a program runs on."""
TID, NT = "$tid", "$nt"
"""The parameters of every kernel function of a threaded program (fresh locals always end in a digit)."""
PACK_COST = 2.0
"""Packing one B element (a load and a store) against one multiply-add, for `matmul_split`."""


@dataclass(frozen=True)
class Threads:
    """How one dispatch is printed in a threaded program: split or not, and each thread's scratch stride."""

    split: bool
    max_threads: int = MAX_THREADS
    scratch_stride: int = 0
    """Bytes between consecutive threads' scratch regions."""


def parallel_work(kernel: KernelOp) -> int:
    """Multiply-add equivalents of a kernel: output elements times the elements each one reduces.

    matmul batch * M * N * K; conv2d outputs * C/group * kh * kw; pool outputs * kh * kw; reduce and
    scan the input's elements; row_reduce 3 passes over the input; elementwise outputs times the
    body's ops (a GELU is dozens of instructions per element, an add one).
    """
    template = kernel.template.data
    out = shapes.numel(nn.tensor_shape(kernel.root))
    if template == "matmul":
        g = MatmulGeometry.of(kernel)
        return shapes.numel(g.batch) * g.m * g.n * max(g.k, 1)
    if template == "conv2d":
        conv: nn.Conv2dOp = kernel_anchor(kernel, (nn.Conv2dOp,))
        _, per_group, kh, kw = nn.tensor_shape(conv.weight)
        return out * per_group * kh * kw
    if template == "pool":
        pool: nn.Pool2dOp = kernel_anchor(kernel, (nn.MaxPool2dOp, nn.AvgPool2dOp))
        return out * math.prod(pool.kernel.get_values())
    if template == "row_reduce":
        return 3 * shapes.numel(nn.tensor_shape(kernel_anchor(kernel, ROW_ANCHORS).operands[0]))
    if template in ("reduce", "scan"):
        return max(out, *(shapes.numel(nn.tensor_shape(a)) for a in kernel.body.block.args))
    ops = sum(1 for op in kernel.body.block.ops if not isinstance(op, nn.ConstantOp)) - 1  # less the yield
    return out * max(ops, 1)


def parallel_steps(work: Sequence[int], splittable: Sequence[bool], min_work: int = PARALLEL_MIN_WORK) -> list[bool]:
    """Which steps all threads run: the splittable ones with `min_work` or more, and the small ones
    between two of those (or before the first), where sharing adds no barrier.
    """
    big = [can and w >= min_work for w, can in zip(work, splittable, strict=True)]
    last = len(big) - 1
    return [big[i] or (splittable[i] and (i == 0 or big[i - 1]) and i < last and big[i + 1]) for i in range(len(big))]


def matmul_split(kernel: KernelOp, max_threads: int) -> str | None:
    """Which dim of a matmul the threads share: "m" (mr-row blocks), "n" (nr-wide strips), "z" (batch).

    Per-thread cost at t threads, summed over t = 2 .. max_threads: the multiply-adds of the largest
    share (imbalance counts) plus packing, where splitting rows makes every thread pack all of B
    (each into its own scratch) and splitting strips or batch packs only the thread's part. Rows win
    ties within 2 %: a thread's output rows are contiguous, so no cache line of C is written by two
    threads. None when no dim has 2 blocks.
    """
    g = MatmulGeometry.of(kernel)
    s = kernel.schedule.values
    (mr, nr), shared = s.thread, s.shared
    batch = shapes.numel(g.batch)
    units = {"m": -(-g.m // mr), "n": -(-g.n // nr), "z": batch}
    total = batch * g.m * g.n * max(g.k, 1)

    def cost(dim: str) -> float:
        spent = 0.0
        for t in range(2, max(max_threads, 2) + 1):
            share = -(-units[dim] // t) / units[dim]
            pack = batch * g.k * g.n * (1.0 if dim == "m" else share) if shared else 0.0
            spent += total * share + PACK_COST * pack
        return spent

    costs = {dim: cost(dim) for dim in ("m", "n", "z") if units[dim] >= 2}
    if not costs:
        return None
    best = min(costs.values())
    return next(dim for dim in costs if costs[dim] <= (1.02 if dim == "m" else 1.0) * best)


def share(r: Renderer, start: int, end: int, step: int, prefix: str) -> tuple[str, str]:
    """Locals `(lo, hi)` bounding this thread's chunk of `[start, end)`: whole steps, clamped to `end`.

    Returned as WAT i32 expressions; `lo >= hi` when the thread has nothing to do.
    """
    units = -(-(end - start) // step)
    chunk = f"(i32.div_u (i32.add (local.get {NT}) {literal(units - 1, INDEX)}) (local.get {NT}))"
    if step != 1:
        chunk = f"(i32.mul {chunk} {literal(step, INDEX)})"
    chunk = f"(local.get {r.bind(chunk, 'i32', f'{prefix}chunk')})"
    lo = f"(i32.mul (local.get {TID}) {chunk})"
    if start:
        lo = f"(i32.add {literal(start, INDEX)} {lo})"
    lo = f"(local.get {r.bind(lo, 'i32', f'{prefix}lo')})"
    hi = r.bind(f"(i32.add {lo} {chunk})", "i32", f"{prefix}hi")
    r.body.line(f"(local.set {hi} (select (local.get {hi}) {literal(end, INDEX)} "
                f"(i32.lt_s (local.get {hi}) {literal(end, INDEX)})))")  # fmt: skip
    return lo, f"(local.get {hi})"


def first_thread(r: Renderer, body: Callable[[], object]) -> None:
    """`body` on thread 0 only (tails outside a split loop)."""

    def then() -> None:
        body()

    r.branch(f"(i32.eqz (local.get {TID}))", then)


def tid_var() -> Var:
    """The thread index as an index expression."""
    return Var(INDEX, TID)


__all__ = [
    "MAX_THREADS",
    "PARALLEL_MIN_WORK",
    "Threads",
    "first_thread",
    "matmul_split",
    "parallel_steps",
    "parallel_work",
    "share",
    "tid_var",
]
