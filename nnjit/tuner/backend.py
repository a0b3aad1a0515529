"""The small interface a code target implements to be tuned: its device, lite space, build, run and time.

    backend = get_backend("webgpu")        # a `Backend`; "wasm" once nnjit.tuner.backend_wasm exists
    device = backend.device()              # fingerprint keys the kernel database
    space = backend.lite_space(kernel)     # candidates, default first
    build = backend.build(kernel, schedule)   # a one-kernel module, its code, compile seconds
    output = backend.run(build, arguments)    # checked against the oracle once
    seconds = backend.time(build, arguments, repeats=16, warmup=2)

A new target adds one module with a class satisfying `Backend` and one row in `BACKENDS`; the
measuring loop, the database, the report and `web-apply-schedules` need nothing else.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.tuner.lite import LiteSpace

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Device:
    """What a tuned schedule is valid for: a backend on one device, described and fingerprinted.

    WebGPU: adapter vendor, device, driver description and graphics backend, plus its limits. Wasm:
    the engine and its version, the CPU model and SIMD features.
    """

    backend: str
    description: Mapping[str, str]
    limits: Mapping[str, int] = field(default_factory=dict[str, int])

    @property
    def fingerprint(self) -> str:
        """`<backend>-<16 hex digits>`: a hash of the description and the limits."""
        payload = json.dumps([self.backend, dict(self.description), dict(self.limits)], sort_keys=True)
        return f"{self.backend}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"

    @property
    def name(self) -> str:
        """A human name: the description's `device` (or `engine`) entry."""
        return self.description.get("device") or self.description.get("engine") or self.fingerprint


@dataclass
class Build:
    """One candidate ready to run: its one-kernel module and the seconds it took to produce.

    `compile_seconds` is printing plus pipeline / module creation, what one candidate costs before it
    runs; `handle` is whatever the backend needs to run it.
    """

    module: ModuleOp
    kernel: KernelOp
    print_seconds: float
    compile_seconds: float
    handle: Any = None


class Backend(Protocol):
    """A tunable code target (`web.target` value `name`)."""

    name: str

    def device(self) -> Device:
        """The device candidates run on."""
        ...

    def module_attributes(self) -> dict[str, Attribute]:
        """Module attributes a kernel needs on this device (`web.target`, `web.limits`)."""
        ...

    def lite_space(self, kernel: KernelOp) -> LiteSpace:
        """The candidates of `kernel` on this device, its template's default first."""
        ...

    def build(self, kernel: KernelOp, schedule: Schedule) -> Build:
        """A one-kernel module of `kernel` under `schedule`, compiled; raises when it cannot be built."""
        ...

    def run(self, build: Build, arguments: Sequence[Array]) -> Array:
        """The kernel's output on `arguments`."""
        ...

    def time(self, build: Build, arguments: Sequence[Array], repeats: int, warmup: int) -> list[float]:
        """Seconds of each of `repeats` runs after `warmup` runs (device timestamps where available)."""
        ...


def _load(module: str, attribute: str) -> Callable[[], Backend]:
    def factory() -> Backend:
        try:
            loaded = importlib.import_module(module)
        except ImportError as error:
            raise NnjitError(f"the tuner cannot load {module}: {error}") from None
        return getattr(loaded, attribute)()

    return factory


BACKENDS: dict[str, Callable[[], Backend]] = {
    "webgpu": _load("nnjit.tuner.backend_webgpu", "WebGPUBackend"),
    "wasm": _load("nnjit.tuner.backend_wasm", "WasmBackend"),
}
"""Tunable targets by `web.target` name; each factory imports its backend on first use."""


def get_backend(name: str) -> Backend:
    """The tuning backend of target `name`; `NnjitError` for targets that cannot be tuned."""
    if name not in BACKENDS:
        raise NnjitError(f"target '{name}' cannot be tuned; tunable targets: {', '.join(BACKENDS)}")
    return BACKENDS[name]()
