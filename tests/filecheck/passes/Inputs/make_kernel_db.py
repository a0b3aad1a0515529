"""Write a kernel database fixture for web-apply-schedules.mlir: `make_kernel_db.py OUT.sqlite IN.mlir`.

Every kernel of IN.mlir with a `test.tuned` schedule attribute gets a record with that schedule for
device `webgpu-test` (limits of 1024 invocations); device `webgpu-old`, seen earlier, gets the
template's default for the same kernels, so `device=""` (the latest) must pick `webgpu-test`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nnjit.context import parse_module
from nnjit.dialects.web import KernelOp, ScheduleAttr
from nnjit.passes.convert_nn_to_web import DEFAULT_SCHEDULES
from nnjit.tuner.database import KernelDatabase, Record
from nnjit.tuner.signature import kernel_signature

LIMITS = {
    "max-compute-invocations-per-workgroup": 1024, "max-compute-workgroup-size-x": 1024,
    "max-compute-workgroup-size-y": 1024, "max-compute-workgroup-size-z": 64,
    "max-compute-workgroup-storage-size": 32768, "max-storage-buffer-binding-size": 134217728,
}  # fmt: skip


def main(out: str, source: str) -> None:
    module = parse_module(Path(source).read_text())
    with KernelDatabase(out) as db:
        db.add_device("webgpu-old", "webgpu", {"device": "old"}, LIMITS)
        db.add_device("webgpu-test", "webgpu", {"device": "test"}, LIMITS)
        for kernel in module.walk():
            tuned = kernel.attributes.get("test.tuned")
            if not isinstance(kernel, KernelOp) or not isinstance(tuned, ScheduleAttr):
                continue
            template, digest = kernel.template.data, kernel_signature(kernel).digest
            for device, schedule in (("webgpu-test", tuned.values), ("webgpu-old", DEFAULT_SCHEDULES[template])):
                db.store(Record(device, "webgpu", digest, template, schedule, 1e-5, 2e-5, 10, 100))


if __name__ == "__main__":
    main(*sys.argv[1:])
