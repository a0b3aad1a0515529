"""The WebGPU lite space: per kernel, a few dozen schedules derived from its sizes and the adapter's limits.

    space = webgpu_lite_space(kernel, executor.limits())
    space.candidates      # default schedule first, then the survivors of the pruning rules
    space.full_size       # how many valid schedules `spaces.SPACES` lists for the template

Every candidate is a member of the template's full valid space (`nnjit.tuner.spaces`, so it passes
`web.kernel`'s verifier under `limits` and every printer can print it) or the template's default
schedule, which is always a candidate. Nothing is built or run here: the rules read sizes only.
Each rule is named next to the code that applies it (`R1` ...), and docs/tuning.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from nnjit.dialects.web import DEFAULT_LIMITS, KernelOp, LimitsAttr, Schedule, workgroup_storage_bytes
from nnjit.passes.convert_nn_to_web import DEFAULT_SCHEDULES
from nnjit.tuner.problem import Problem, pad, problem_of
from nnjit.tuner.spaces import SPACES

LITE_CAP = 64
"""No lite space is larger than this (a test checks every zoo kernel and a range of shapes)."""

# --- matmul ---------------------------------------------------------------------------------------

MATMUL_THREAD_TILES = (1, 2, 4, 8)
"""R1: square per-thread tiles t x t (the paper's rule: a thread's A and B loads are shared equally)."""
MATMUL_WORKGROUPS = ((8, 4), (4, 8), (8, 8), (16, 8), (8, 16), (16, 16))
"""R2: workgroups [x, y] with >= 4 threads a dimension, 32..256 threads, and sides within 2x of each
other (a workgroup's A and B tiles are reused evenly). 256 is WebGPU's default invocation limit:
more is not portable and rarely faster. R2b: a side of 4 threads only where the padded problem is
too small for 8 thread tiles on that side (skinny problems: attention at short sequences, decoders)."""
MATMUL_TILE_K = (8, 16)
"""R3: k per staged tile; a whole tile is printed straight-line (`unroll = tile k`, R6)."""
MAX_STRAIGHT_LINE_FMAS = 512
"""R7: thread tile x tile k multiply-adds printed per k tile: bounds shader size and compile cost."""
MAX_ACCUMULATORS = 64
"""R8: f32 accumulators per thread (registers); t x t <= 64."""
SMALL_OUTPUT = 64 * 64
"""R9: one accumulator per thread (t = 1) only for outputs smaller than a 64 x 64 tile, or skinny ones
(M or N below 8: a matrix-vector product)."""


def _vector(thread_n: int) -> int:
    """R5: the widest vector (<= 4) dividing the thread tile n; vec4 exactly when thread n % 4 == 0."""
    return 4 if thread_n % 4 == 0 else 2 if thread_n % 2 == 0 else 1


def _fits(schedule: Schedule, template: str, limits: LimitsAttr) -> bool:
    sizes = [v.data for v in limits.workgroup.data]
    return (
        schedule.invocations <= limits.invocations.data
        and all(s <= m for s, m in zip(schedule.workgroup, sizes, strict=True))
        and workgroup_storage_bytes(template, schedule) <= limits.storage.data
    )


def webgpu_matmul(problem: Problem, limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Square thread tiles x square-ish workgroups x tile k x shared, pruned by the problem and the device.

    R4 (tiles within the padded problem): tile m <= pad(M), tile n <= pad(N), tile k <= pad(K), pad
    rounding up to a power of two; a larger tile only computes padding. R10 (device): invocations,
    workgroup sizes and workgroup storage (A and B tiles when shared) within `limits`.
    """
    found: list[Schedule] = []
    for t in MATMUL_THREAD_TILES:
        if t * t > MAX_ACCUMULATORS:  # R8
            continue
        if t == 1 and problem.m * problem.n >= SMALL_OUTPUT and min(problem.m, problem.n) >= 8:  # R9
            continue
        for x, y in MATMUL_WORKGROUPS:
            tile_m, tile_n = y * t, x * t
            if tile_m > pad(problem.m) or tile_n > pad(problem.n):  # R4
                continue
            if (y == 4 and pad(problem.m) >= 8 * t) or (x == 4 and pad(problem.n) >= 8 * t):  # R2b
                continue
            for k in MATMUL_TILE_K:
                if k > pad(problem.k) and k != MATMUL_TILE_K[0]:  # R4 (the smallest k always stays)
                    continue
                if t * t * k > MAX_STRAIGHT_LINE_FMAS:  # R7
                    continue
                for shared in (True, False):  # R11: staged in workgroup memory or read directly
                    schedule = Schedule((x, y, 1), (tile_m, tile_n, k), (t, t), _vector(t), k, shared)  # R5, R6
                    if _fits(schedule, "matmul", limits):  # R10
                        found.append(schedule)
    return found


# --- one thread per output element (elementwise, reduce, scan, conv2d, pool) ---------------------

THREAD_WORKGROUPS = (32, 64, 128, 256)
"""T1: 1-D workgroup sizes (a subgroup's 32 up to WebGPU's default 256 invocations)."""
THREAD_UNROLLS = (1, 2, 4, 8)
"""T2: outputs per thread, printed straight-line."""


def webgpu_threads(problem: Problem, limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x outputs per thread with T3: one workgroup's outputs (size x unroll) within the
    padded problem (outputs, or lines for a scan), so no candidate is mostly idle threads; T4: device limits."""
    work = problem.m if problem.template == "scan" else problem.elements
    found: list[Schedule] = []
    for size in THREAD_WORKGROUPS:
        for unroll in THREAD_UNROLLS:
            if size * unroll > max(pad(work), THREAD_WORKGROUPS[0]):  # T3
                continue
            schedule = Schedule((size, 1, 1), (0, 0, 0), (1, 1), 1, unroll, False)
            if _fits(schedule, problem.template, limits):  # T4
                found.append(schedule)
    return found


# --- row_reduce ----------------------------------------------------------------------------------

ROW_WORKGROUPS = (32, 64, 128, 256)
"""W1: threads per row (one workgroup a row; the WGSL template does not read `unroll`)."""


def webgpu_row_reduce(problem: Problem, limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Threads per row, W2: no more threads than the padded row length (the rest would idle), W3: limits."""
    found: list[Schedule] = []
    for size in ROW_WORKGROUPS:
        if size > max(pad(problem.k), ROW_WORKGROUPS[0]):  # W2
            continue
        schedule = Schedule((size, 1, 1), (0, 0, 0), (1, 1), 1, 1, False)
        if _fits(schedule, "row_reduce", limits):  # W3
            found.append(schedule)
    return found


WEBGPU_LITE: dict[str, Callable[[Problem, LimitsAttr], list[Schedule]]] = {
    "matmul": webgpu_matmul,
    "row_reduce": webgpu_row_reduce,
    "elementwise": webgpu_threads,
    "reduce": webgpu_threads,
    "scan": webgpu_threads,
    "conv2d": webgpu_threads,
    "pool": webgpu_threads,
}
"""The lite-space rule set of each template on WebGPU."""


@dataclass(frozen=True)
class LiteSpace:
    """The candidates of one kernel on one backend: the default first, and the full space's size."""

    problem: Problem
    candidates: list[Schedule]
    full_size: int

    @property
    def default(self) -> Schedule:
        """The template's default schedule on this backend (always the first candidate)."""
        return self.candidates[0]

    @property
    def size(self) -> int:
        """How many candidates."""
        return len(self.candidates)


def with_default(default: Schedule, survivors: Sequence[Schedule], cap: int = LITE_CAP) -> list[Schedule]:
    """The default first, then the survivors in order without duplicates, at most `cap` in all."""
    ordered = [default, *(s for s in survivors if s != default)]
    return ordered[:cap]


@cache
def full_space_size(template: str, limits: LimitsAttr) -> int:
    """How many valid schedules `spaces.SPACES` lists for `template` under `limits` (remembered)."""
    return len(SPACES[template](limits))


def webgpu_lite_space(kernel: KernelOp, limits: LimitsAttr = DEFAULT_LIMITS) -> LiteSpace:
    """The WebGPU lite space of `kernel` under `limits`; its current schedule is a candidate too."""
    template = kernel.template.data
    problem = problem_of(kernel)
    survivors = WEBGPU_LITE[template](problem, limits)
    current = kernel.schedule.values
    if current != DEFAULT_SCHEDULES[template] and current not in survivors:
        survivors = [current, *survivors]
    return LiteSpace(problem, with_default(DEFAULT_SCHEDULES[template], survivors), full_space_size(template, limits))
