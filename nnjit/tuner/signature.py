"""What makes two kernels "the same" for the tuner: a hash of the kernel with its name and schedule erased.

    kernel_signature(kernel).digest   # 'matmul:3f0c…' — equal for every kernel computing the same thing

The signature text is the kernel printed with its symbol name replaced by `@kernel`, its schedule by
the neutral `#web.schedule` and every SSA name hint dropped (so values print as `%0, %1, ...`): what
remains is the template, the argument and result types and the body ops (op names, shapes, dtypes,
attributes, splat constants, the fused prologue and epilogue). Two kernels with equal text compute
the same function on the same shapes, so one tuned schedule serves both, in this model and in any
other model that has them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from xdsl.ir import Block
from xdsl.printer import Printer

from nnjit.dialects.web import KernelOp, ScheduleAttr

NEUTRAL_SCHEDULE = ScheduleAttr()
"""The schedule every kernel is printed with for its signature (any fixed one would do)."""


@dataclass(frozen=True)
class Signature:
    """A kernel's identity for tuning: its template, normalised text and the text's hash."""

    template: str
    text: str

    @property
    def digest(self) -> str:
        """`<template>:<first 24 hex digits of sha256(text)>`, the key of the kernel database."""
        return f"{self.template}:{hashlib.sha256(self.text.encode()).hexdigest()[:24]}"


def _drop_name_hints(block: Block) -> None:
    for argument in block.args:
        argument.name_hint = None
    for op in block.ops:
        for result in op.results:
            result.name_hint = None
        for region in op.regions:
            for inner in region.blocks:
                _drop_name_hints(inner)


def kernel_signature(kernel: KernelOp) -> Signature:
    """The signature of a kernel: equal for kernels that differ only in name, schedule and value names."""
    neutral = KernelOp("kernel", kernel.function_type, kernel.body.clone(), kernel.template.data, NEUTRAL_SCHEDULE)
    _drop_name_hints(neutral.body.block)
    stream = io.StringIO()
    Printer(stream=stream).print_op(neutral)
    return Signature(kernel.template.data, stream.getvalue())
