"""The Wasm lite space: per kernel, the schedules of `wasm_spaces` that fit its sizes and the CPU.

    cpu = WasmCpu.detect()                 # v128 registers (16 x86-64, 32 AArch64), L1 data cache
    space = wasm_lite_space(kernel, cpu)   # default first, at most LITE_CAP

Every candidate is in the template's Wasm space (`nnjit.tuner.wasm_spaces`, so it verifies under
`web.target = "wasm"`) or is the template's Wasm default. Rules (docs/tuning.md) are named at the
code that applies them (`M1` ...). The paper keeps register blocks that use 80-100 % of the v128
registers and cache blocks filling 90-100 % of L1; measured here, an 8 x 8 block (19 live vectors
on a 16-register CPU) is the fastest, so the bounds are looser and the measurement decides.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.passes.convert_nn_to_web import WASM_DEFAULT_SCHEDULES
from nnjit.tuner.lite import LITE_CAP, LiteSpace, with_default
from nnjit.tuner.problem import Problem, pad, problem_of
from nnjit.tuner.wasm_spaces import V128_REGISTERS, WASM_SPACES, register_pressure, wasm_matmul_schedules

DEFAULT_L1 = 32 * 1024
"""L1 data cache assumed when the OS does not say (the common size of laptop and phone cores)."""
MIN_PRESSURE, MAX_PRESSURE = 0.75, 1.25
"""M1: live v128 values of the register block between 0.75x and 1.25x the register count (fewer only
when the problem caps the block in M or N)."""
MIN_L1_FILL = 0.125
"""M3: a cache block's A and B panels fill at least 1/8 of L1 (unless the problem itself is smaller)."""
SMALLEST_KB = 64
"""The smaller of `wasm_spaces`' K blocks."""
MATMUL_UNROLLS = (1, 4)
"""M4: K steps per loop iteration: none, or 4 (the measured default)."""


@dataclass(frozen=True)
class WasmCpu:
    """What the Wasm lite space reads about the CPU."""

    arch: str
    registers: int
    l1_bytes: int
    model: str

    @staticmethod
    @cache
    def detect() -> WasmCpu:
        """This machine: `platform.machine()`, /proc/cpuinfo's model name, sysfs' L1 data cache size."""
        machine = platform.machine().lower()
        arch = "aarch64" if machine in ("aarch64", "arm64") else "x86-64"
        return WasmCpu(arch, V128_REGISTERS[arch], _l1_data_bytes() or DEFAULT_L1, _cpu_model() or machine)


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() in ("model name", "Hardware", "CPU part"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _l1_data_bytes() -> int | None:
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "1" and kind in ("Data", "Unified"):
            scale = {"K": 1024, "M": 1024 * 1024}.get(size[-1:], 1)
            return int(size.rstrip("KM")) * scale
    return None


def wasm_matmul(problem: Problem, cpu: WasmCpu) -> list[Schedule]:
    """Register block x cache block x K unroll x packing, pruned by the registers, L1 and the problem.

    M2 (within the padded problem): mr <= pad(M, 1), nr <= pad(N), mb <= pad(M), nb <= pad(N), kb <=
    pad(K) (the smallest kb stays). M5: packing B (`shared`) only when more than one row block
    reuses the packed panel (M > mb). Survivors are ranked by how close the register block's pressure
    is to the register count, then by L1 fill (the paper's preferences), and cut at LITE_CAP.
    """
    kept: list[tuple[float, float, Schedule]] = []
    for s in wasm_matmul_schedules(cpu.registers, MAX_PRESSURE):
        (mb, nb, kb), (mr, nr) = s.tile, s.thread
        pressure = register_pressure(mr, nr)
        if pressure < MIN_PRESSURE * cpu.registers and mr < pad(problem.m, 1) and nr < pad(problem.n):  # M1
            continue
        if mr > pad(problem.m, 1) or nr > pad(problem.n) or mb > pad(problem.m) or nb > pad(problem.n):  # M2
            continue
        if kb > max(pad(problem.k), SMALLEST_KB):  # M2 (the smallest kb always stays)
            continue
        panels = (min(mb, problem.m) * min(kb, problem.k) + min(kb, problem.k) * min(nb, problem.n)) * 4
        if panels > cpu.l1_bytes:  # M3: the A and B panels of a block fit L1
            continue
        if panels < MIN_L1_FILL * cpu.l1_bytes and (mb < problem.m or nb < problem.n or kb < problem.k):  # M3
            continue
        if s.unroll not in MATMUL_UNROLLS:  # M4
            continue
        if s.shared and problem.m <= mb:  # M5
            continue
        kept.append((abs(pressure - cpu.registers), -panels, s))
    return [s for _, _, s in sorted(kept, key=lambda t: (t[0], t[1]))]


def wasm_one_thread(template: str) -> Callable[[Problem, WasmCpu], list[Schedule]]:
    """E1: f32x4 only when a row has at least 4 elements; E2: unrolled work within the padded problem."""

    def space(problem: Problem, cpu: WasmCpu) -> list[Schedule]:
        row = problem.k if template == "row_reduce" else problem.elements
        found: list[Schedule] = []
        for s in WASM_SPACES[template]():
            if s.vector == 4 and row < 4:  # E1
                continue
            if s.vector * s.unroll > pad(row):  # E2
                continue
            found.append(s)
        return found

    return space


WASM_LITE: dict[str, Callable[[Problem, WasmCpu], list[Schedule]]] = {
    "matmul": wasm_matmul,
    **{t: wasm_one_thread(t) for t in ("elementwise", "row_reduce", "reduce", "scan", "conv2d", "pool")},
}
"""The lite-space rule set of each template on Wasm."""


@cache
def wasm_full_size(template: str, registers: int) -> int:
    """Size of the template's Wasm space (`wasm_spaces`, matmul at its own 1.25x register bound)."""
    return len(wasm_matmul_schedules(registers)) if template == "matmul" else len(WASM_SPACES[template]())


def wasm_lite_space(kernel: KernelOp, cpu: WasmCpu | None = None) -> LiteSpace:
    """The Wasm lite space of `kernel` on `cpu` (this machine's by default); its current schedule too."""
    cpu = cpu or WasmCpu.detect()
    template = kernel.template.data
    problem = problem_of(kernel)
    survivors = WASM_LITE[template](problem, cpu)
    current, default = kernel.schedule.values, WASM_DEFAULT_SCHEDULES[template]
    if current != default and current not in survivors:
        survivors = [current, *survivors]
    return LiteSpace(problem, with_default(default, survivors, LITE_CAP), wasm_full_size(template, cpu.registers))
