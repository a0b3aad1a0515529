"""The WebGPU tuning backend: candidates printed to WGSL, built into pipelines and timed on the adapter.

Build cost is `executor.shader` (printing the WGSL) plus `executor.pipeline` (shader module, layout
and compute pipeline: naga validation and the driver's compile). Timing is `WebGPUExecutor.time` of
the one-kernel module: GPU timestamps around the compute pass when the adapter has
`timestamp-query`, else wall clock around submit and wait.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.runtime.webgpu import WebGPUExecutor, shared_executor
from nnjit.tuner.backend import Array, Build, Device
from nnjit.tuner.harness import OUTPUT_NAME, kernel_module, named
from nnjit.tuner.lite import LiteSpace, webgpu_lite_space

DESCRIBED = ("vendor", "device", "description", "architecture", "backend_type", "adapter_type")
"""Adapter info entries that identify a device and its driver."""


class WebGPUBackend:
    """Tunes kernels on one WebGPU adapter (the process's shared executor unless one is given)."""

    name = "webgpu"

    def __init__(self, executor: WebGPUExecutor | None = None):
        self.executor = executor if executor is not None else shared_executor()
        self.limits = self.executor.limits()

    def device(self) -> Device:
        info: dict[str, Any] = dict(self.executor.adapter.info)
        limits = self.executor.device.limits
        return Device(
            self.name,
            {key: str(info.get(key, "")) for key in DESCRIBED},
            {name: int(limits[name]) for name in sorted(limits) if isinstance(limits[name], int)},
        )

    def module_attributes(self) -> dict[str, Attribute]:
        return {"web.target": StringAttr(self.name), "web.limits": self.limits}

    def lite_space(self, kernel: KernelOp) -> LiteSpace:
        return webgpu_lite_space(kernel, self.limits)

    def build(self, kernel: KernelOp, schedule: Schedule) -> Build:
        module, clone = kernel_module(kernel, schedule, self.module_attributes())
        started = time.perf_counter()
        self.executor.shader(clone)
        printed = time.perf_counter()
        self.executor.pipeline(clone)
        return Build(module, clone, printed - started, time.perf_counter() - started)

    def run(self, build: Build, arguments: Sequence[Array]) -> Array:
        return self.executor.run(build.module, named(arguments))[OUTPUT_NAME]

    def time(self, build: Build, arguments: Sequence[Array], repeats: int, warmup: int) -> list[float]:
        return self.executor.time(build.module, named(arguments), repeats=repeats, warmup=warmup)
