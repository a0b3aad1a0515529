"""Whether a schedule belongs to its template's full valid space on a device, from the limits it states.

    problem = space_problem("webgpu", "matmul", schedule, {"max-compute-invocations-per-workgroup": 256, ...})
    problem is None        # a member: it passes `web.kernel`'s verifier and every printer can print it

WebGPU: `nnjit.tuner.spaces.SPACES[template](limits)`, the limits being the device's
`max-compute-*` entries (wgpu-native's names, as `Device.limits` holds them). Every enumerator there is a fixed
product of knobs filtered by the same fit test (invocations, workgroup sizes, workgroup storage), so
membership is "in the space under unbounded limits, and fits these limits": one cached set per
template, whatever limits a request states (tests/kerneldb check this equals the enumeration).
Wasm: `nnjit.tuner.wasm_spaces` (matmul at the tuner's bound for the device's `v128_registers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from nnjit.dialects.web import LimitsAttr, Schedule, workgroup_storage_bytes
from nnjit.tuner.spaces import SPACES
from nnjit.tuner.wasm_spaces import WASM_SPACES, wasm_matmul_schedules

UNBOUNDED = LimitsAttr(2**31 - 1, (2**31 - 1,) * 3, 2**31 - 1, 2**31 - 1)
"""Limits no schedule of `spaces` reaches."""


@cache
def _webgpu_space(template: str) -> frozenset[Schedule]:
    return frozenset(SPACES[template](UNBOUNDED))


@cache
def _wasm_space(template: str, registers: int) -> frozenset[Schedule]:
    schedules = wasm_matmul_schedules(registers) if template == "matmul" else WASM_SPACES[template]()
    return frozenset(schedules)


def _webgpu_problem(template: str, schedule: Schedule, limits: Mapping[str, int]) -> str | None:
    if schedule not in _webgpu_space(template):
        return f"is not in the webgpu {template} space (nnjit.tuner.spaces)"
    invocations = limits["max-compute-invocations-per-workgroup"]
    if schedule.invocations > invocations:
        return (f"has {schedule.invocations} invocations a workgroup; the device states "
                f"max-compute-invocations-per-workgroup {invocations}")  # fmt: skip
    for axis, size in zip("xyz", schedule.workgroup, strict=True):
        most = limits[f"max-compute-workgroup-size-{axis}"]
        if size > most:
            return f"has workgroup {axis} {size}; the device states max-compute-workgroup-size-{axis} {most}"
    storage, most = workgroup_storage_bytes(template, schedule), limits["max-compute-workgroup-storage-size"]
    if storage > most:
        return (
            f"needs {storage} bytes of workgroup storage; the device states max-compute-workgroup-storage-size {most}"
        )
    return None


def space_problem(backend: str, template: str, schedule: Schedule, limits: Mapping[str, int]) -> str | None:
    """Why `schedule` is not in `template`'s full space for a `backend` device stating `limits` (None: it is).

    `limits` must hold what `schema.parse_device` requires of the backend.
    """
    if template not in SPACES:
        return f"has unknown template {template!r}"
    if backend == "webgpu":
        return _webgpu_problem(template, schedule, limits)
    if backend == "wasm":
        registers = limits["v128_registers"]
        if schedule not in _wasm_space(template, registers):
            return f"is not in the wasm {template} space (nnjit.tuner.wasm_spaces) for {registers} v128 registers"
        return None
    return f"has unknown backend {backend!r}"


def in_space(backend: str, template: str, schedule: Schedule, limits: Mapping[str, int]) -> bool:
    """Whether `schedule` is in `template`'s full space for a `backend` device stating `limits`."""
    return space_problem(backend, template, schedule, limits) is None
