"""The lite schedule spaces of the Wasm target: every schedule here verifies under `web.target = "wasm"`.

Wasm kernels run one thread per call (workgroup [1, 1, 1]). Knobs per template:

* thread-per-element templates (`elementwise`, `reduce`, `scan`, `conv2d`, `pool`): `vector` 1 or
  4 (f32x4) and `unroll` (vectors or scalars per loop iteration); `row_reduce`: `unroll` is the
  number of independent accumulators.
* `matmul`: register block `thread` [mr, nr] (nr a multiple of 4), cache block `tile` [mb, nb, kb]
  (mb, nb multiples of mr, nr), K `unroll`, `shared` = pack B. The register count bounds the
  block: `mr * nr / 4` accumulators + `nr / 4` B vectors + 1 A splat, at most `pressure` times the
  v128 registers of the CPU (16 on x86-64, 32 on AArch64). The paper prunes to 80-100 % of the
  registers by its own count (`mr nr / 4 + mr + nr / 4`); here an 8 x 8 block (19 live values)
  measured fastest on x86-64 in both engines (docs/benchmarks/matmul-wasm.md), so the default bound
  is loose and the tuner measures.

    for schedule in wasm_matmul_schedules(): ...
    WASM_SPACES["row_reduce"]()
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

from nnjit.dialects.web import Schedule

V128_REGISTERS = {"x86-64": 16, "aarch64": 32}
"""SIMD registers by CPU family."""
VECTORS = (1, 4)
UNROLLS = (1, 2, 4, 8)
MATMUL_MR = (1, 2, 4, 6, 8)
MATMUL_NR = (4, 8, 12, 16)
MATMUL_BLOCK_FACTORS = (2, 8)
"""Cache blocks mb, nb as these multiples of the register block."""
MATMUL_KB = (64, 256)
MATMUL_UNROLLS = (1, 2, 4, 8)


def _one_thread(vector: int, unroll: int) -> Schedule:
    return Schedule((1, 1, 1), (0, 0, 0), (1, 1), vector, unroll, False)


def wasm_elementwise_schedules() -> list[Schedule]:
    """Vector width x vectors (or scalars) per loop iteration."""
    return [_one_thread(v, u) for v, u in product(VECTORS, UNROLLS)]


def wasm_row_reduce_schedules() -> list[Schedule]:
    """Vector width x independent accumulators."""
    return [_one_thread(v, u) for v, u in product(VECTORS, (1, 2, 4))]


def wasm_simple_schedules() -> list[Schedule]:
    """`reduce`, `scan`, `conv2d`, `pool`: vector width x outputs per iteration."""
    return [_one_thread(v, u) for v, u in product(VECTORS, (1, 2))]


def register_pressure(mr: int, nr: int) -> int:
    """Live v128 values of an mr x nr register block: accumulators, B vectors, one A splat."""
    return mr * nr // 4 + nr // 4 + 1


def wasm_matmul_schedules(registers: int = V128_REGISTERS["x86-64"], pressure: float = 1.25) -> list[Schedule]:
    """Register block x cache block x K unroll x packing, within `pressure` x `registers` live vectors."""
    found: list[Schedule] = []
    for mr, nr in product(MATMUL_MR, MATMUL_NR):
        if register_pressure(mr, nr) > pressure * registers:
            continue
        for fm, fn, kb, unroll, shared in product(MATMUL_BLOCK_FACTORS, MATMUL_BLOCK_FACTORS, MATMUL_KB,
                                                  MATMUL_UNROLLS, (False, True)):  # fmt: skip
            found.append(Schedule((1, 1, 1), (mr * fm, nr * fn, kb), (mr, nr), 4, unroll, shared))
    return found


def wasm_scalar_matmul_schedules() -> list[Schedule]:
    """Scalar (`vector = 1`) register blocks, for engines or types without f32x4."""
    return [Schedule((1, 1, 1), (mr * 4, nr * 4, 64), (mr, nr), 1, unroll, shared)
            for mr, nr, unroll, shared in product((1, 2, 4), (1, 2, 4), (1, 4), (False, True))]  # fmt: skip


WASM_SPACES: dict[str, Callable[[], list[Schedule]]] = {
    "elementwise": wasm_elementwise_schedules,
    "matmul": wasm_matmul_schedules,
    "row_reduce": wasm_row_reduce_schedules,
    "reduce": wasm_simple_schedules,
    "scan": wasm_simple_schedules,
    "conv2d": wasm_simple_schedules,
    "pool": wasm_simple_schedules,
}
"""The valid-schedule enumerator of each `web.kernel` template on the Wasm target."""
