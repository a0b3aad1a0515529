"""`web-apply-schedules`: give each `web.kernel` the schedule the kernel database holds for it.

    nnjit-opt m.mlir -p 'web-apply-schedules{db="/path/kernels.sqlite" device="webgpu-3f0c..."}'

Each kernel's signature (`nnjit.tuner.signature`) is looked up for the device, the module's
`web.target` and this nnjit version; a found schedule replaces the kernel's. `db` defaults to the
user cache file (`$NNJIT_CACHE_DIR` or `$XDG_CACHE_HOME/nnjit/kernels.sqlite`); a missing file is
no error and changes nothing. `device` defaults to the device of that target seen most recently in
the database. On WebGPU the device's stored limits become the module's `web.limits` when it has
none, so that schedules beyond WebGPU's default limits verify. A stored schedule the kernel's
verifier rejects is skipped with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.web import KernelOp, LimitsAttr, module_target

WEBGPU_LIMIT_NAMES = (
    "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x", "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z", "max-compute-workgroup-storage-size", "max-storage-buffer-binding-size",
)  # fmt: skip
"""The WebGPU adapter limits `#web.limits` is made of, in its parameter order."""


def webgpu_limits(limits: Mapping[str, int]) -> LimitsAttr | None:
    """`#web.limits` from WebGPU limit names, or None when one is missing."""
    if any(name not in limits for name in WEBGPU_LIMIT_NAMES):
        return None
    invocations, x, y, z, storage, binding = (limits[name] for name in WEBGPU_LIMIT_NAMES)
    return LimitsAttr(invocations, (x, y, z), storage, binding)


def _target(module: ModuleOp) -> str:
    kernels = [op for op in module.body.block.ops if isinstance(op, KernelOp)]
    return module_target(kernels[0]) if kernels else "webgpu"


@dataclass(frozen=True)
class ApplySchedulesPass(ModulePass):
    """Replace kernel schedules by the kernel database's for one device (see the module docstring)."""

    name = "web-apply-schedules"

    db: str = ""
    device: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from nnjit.tuner.database import KernelDatabase, default_path
        from nnjit.tuner.signature import kernel_signature

        path = Path(self.db) if self.db else default_path()
        if not path.is_file():
            return
        target = _target(op)
        with KernelDatabase(path) as db:
            device = self.device or db.latest_device(target)
            if device is None:
                return
            limits = webgpu_limits(db.device_limits(device)) if target == "webgpu" else None
            found = {
                kernel: record.schedule
                for kernel in op.body.block.ops
                if isinstance(kernel, KernelOp)
                and (record := db.lookup(device, target, kernel_signature(kernel).digest)) is not None
            }
        if found and limits is not None and "web.limits" not in op.attributes:
            op.attributes["web.limits"] = limits
        for kernel, schedule in found.items():
            previous = kernel.schedule
            kernel.schedule = schedule.to_attr()
            try:
                kernel.verify()
            except VerifyException as error:
                kernel.schedule = previous
                warnings.warn(f"web-apply-schedules: kept @{kernel.sym_name.data}'s schedule: {error}", stacklevel=2)
