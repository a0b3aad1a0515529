"""The valid schedules of each kernel template on a device: the lite space before pruning.

Every schedule listed passes `web.kernel`'s verifier under `limits` (workgroup sizes and
invocations, workgroup storage, matmul tile = workgroup x thread tile) and is printable by every
backend (vector 2 or 4 only with thread n divisible by it, unroll dividing tile k, workgroup z = 1 for
matmul). Nothing here is pruned by cost yet: that is the tuner's next step.

    for schedule in matmul_schedules(executor.limits()): ...
    SPACES["row_reduce"](limits)
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

from nnjit.dialects.web import DEFAULT_LIMITS, LimitsAttr, Schedule, workgroup_storage_bytes

WORKGROUP_SIZES = (32, 64, 128, 256)
"""1-D workgroup sizes of the thread-per-element and row templates."""
UNROLLS = (1, 2, 4, 8)
"""Output elements per thread of the thread-per-element templates."""
MATMUL_WORKGROUP_SIDES = (2, 4, 8, 16, 32)
MATMUL_THREAD_SIDES = (1, 2, 4, 8)
MATMUL_TILE_K = (4, 8, 16, 32)
MAX_ACCUMULATORS = 64
"""At most this many f32 accumulators per thread (registers)."""


def _fits(schedule: Schedule, template: str, limits: LimitsAttr) -> bool:
    sizes = [v.data for v in limits.workgroup.data]
    return (
        schedule.invocations <= limits.invocations.data
        and all(s <= m for s, m in zip(schedule.workgroup, sizes, strict=True))
        and workgroup_storage_bytes(template, schedule) <= limits.storage.data
    )


def _one_dimensional(template: str, limits: LimitsAttr, unrolls: tuple[int, ...]) -> list[Schedule]:
    candidates = (Schedule((x, 1, 1), (0, 0, 0), (1, 1), 1, u, False) for x, u in product(WORKGROUP_SIZES, unrolls))
    return [s for s in candidates if _fits(s, template, limits)]


def elementwise_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x outputs per thread."""
    return _one_dimensional("elementwise", limits, UNROLLS)


def reduce_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x outputs per thread, for reductions over non-trailing axes."""
    return _one_dimensional("reduce", limits, UNROLLS)


def scan_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x lines per thread."""
    return _one_dimensional("scan", limits, UNROLLS)


def conv2d_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x outputs per thread."""
    return _one_dimensional("conv2d", limits, UNROLLS)


def pool_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup size x outputs per thread."""
    return _one_dimensional("pool", limits, UNROLLS)


def row_reduce_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Threads per row (one workgroup a row); `unroll` is not read."""
    return _one_dimensional("row_reduce", limits, (1,))


def matmul_schedules(limits: LimitsAttr = DEFAULT_LIMITS) -> list[Schedule]:
    """Workgroup [x, y], thread tile [m, n], tile k, vector, k-steps per straight-line group, shared."""
    found: list[Schedule] = []
    for x, y, tm, tn, k in product(
        MATMUL_WORKGROUP_SIDES, MATMUL_WORKGROUP_SIDES, MATMUL_THREAD_SIDES, MATMUL_THREAD_SIDES, MATMUL_TILE_K
    ):
        if tm * tn > MAX_ACCUMULATORS:
            continue
        for vector, shared in product((1, 2, 4), (True, False)):
            if tn % vector:
                continue
            for unroll in sorted({k, max(1, k // 4)}):
                schedule = Schedule((x, y, 1), (y * tm, x * tn, k), (tm, tn), vector, unroll, shared)
                if _fits(schedule, "matmul", limits):
                    found.append(schedule)
    return found


SPACES: dict[str, Callable[[LimitsAttr], list[Schedule]]] = {
    "elementwise": elementwise_schedules,
    "matmul": matmul_schedules,
    "row_reduce": row_reduce_schedules,
    "reduce": reduce_schedules,
    "scan": scan_schedules,
    "conv2d": conv2d_schedules,
    "pool": pool_schedules,
}
"""The valid-schedule enumerator of each `web.kernel` template."""
