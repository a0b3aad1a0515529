"""The Wasm tuning backend: candidates printed to WAT, assembled, compiled by wasmtime and timed there.

Build cost is printing the WAT (`build_program(..., assemble=False)`), then assembling it to a
binary and compiling and instantiating it in wasmtime (Cranelift). Timing calls the module's `run`
export `inner` times per sample (as many as fill about a millisecond, so microsecond kernels are
not lost in call overhead) with `performance.now()`-like wall clock, as the paper measures Wasm.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute

from nnjit.backends.wasm import WasmProgram, assemble_wat, build_program
from nnjit.dialects.web import KernelOp, Schedule
from nnjit.runtime.wasm import WasmtimeExecutor, shared_wasmtime
from nnjit.tuner.backend import Array, Build, Device
from nnjit.tuner.harness import OUTPUT_NAME, kernel_module, named
from nnjit.tuner.lite import LiteSpace
from nnjit.tuner.lite_wasm import WasmCpu, wasm_lite_space

SAMPLE_SECONDS = 1e-3
"""Each timing sample runs the kernel this long at least (up to `MAX_INNER` calls)."""
MAX_INNER = 1000


class WasmBackend:
    """Tunes kernels in wasmtime on this CPU (the process's shared executor unless one is given)."""

    name = "wasm"

    def __init__(self, executor: WasmtimeExecutor | None = None, cpu: WasmCpu | None = None):
        self.executor = executor if executor is not None else shared_wasmtime()
        self.cpu = cpu or WasmCpu.detect()

    def device(self) -> Device:
        from importlib.metadata import version

        engine = f"wasmtime {version('wasmtime')}"
        description = {"engine": engine, "cpu": self.cpu.model, "arch": self.cpu.arch,
                       "simd": "relaxed-simd" if self.executor.relaxed else "simd128"}  # fmt: skip
        return Device(self.name, description, {"v128_registers": self.cpu.registers, "l1_bytes": self.cpu.l1_bytes})

    def module_attributes(self) -> dict[str, Attribute]:
        return {"web.target": StringAttr(self.name)}

    def lite_space(self, kernel: KernelOp) -> LiteSpace:
        return wasm_lite_space(kernel, self.cpu)

    def build(self, kernel: KernelOp, schedule: Schedule) -> Build:
        module, clone = kernel_module(kernel, schedule, self.module_attributes())
        started = time.perf_counter()
        printed = build_program(module, None, self.executor.relaxed, assemble=False)
        text_done = time.perf_counter()
        program = WasmProgram(printed.text, assemble_wat(printed.text), printed.plan)
        self.executor.programs.remember(module, None, self.executor.instantiate(program))
        return Build(module, clone, text_done - started, time.perf_counter() - started)

    def run(self, build: Build, arguments: Sequence[Array]) -> Array:
        return self.executor.run(build.module, named(arguments))[OUTPUT_NAME]

    def time(self, build: Build, arguments: Sequence[Array], repeats: int, warmup: int) -> list[float]:
        inputs = named(arguments)
        (once,) = self.executor.time(build.module, inputs, repeats=1, inner=1, warmup=0)
        inner = max(1, min(MAX_INNER, int(SAMPLE_SECONDS / max(once, 1e-9))))
        return self.executor.time(build.module, inputs, repeats=repeats, inner=inner, warmup=warmup)
