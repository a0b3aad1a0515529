"""`web-plan-buffers`: share storage between dispatch results whose lifetimes do not overlap.

A whole-function analysis (so a walk, not patterns) over the host plan of `@main`:

* every `web.dispatch` result needs storage; an `nn.reshape` in `@main` aliases its operand's storage
  and extends its lifetime; results that `@main` returns are never reused;
* walking in program order, a dispatch takes the best-fitting slot that is free, i.e. whose last
  reader came strictly before it (a kernel never writes a buffer it also reads), else a new slot;
* slots grow to the largest value they hold.

It sets `slot` on each dispatch and `web.slot_bytes`, `web.peak_bytes` and `web.naive_bytes` on
`@main`; with `{report=true}` it also prints `peak vs naive` to stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import I64, IntegerAttr, ModuleOp, i64
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from nnjit.dialects import nn
from nnjit.dialects.shapes import numel
from nnjit.dialects.web import DispatchOp

STORAGE_BYTES = {"f16": 2, "f64": 8}
"""Bytes per element in device storage where it is not 4 (integers and booleans are stored as 32 bits)."""


def storage_bytes(value: SSAValue) -> int:
    """Bytes a tensor value occupies in device storage."""
    return numel(nn.tensor_shape(value)) * STORAGE_BYTES.get(str(nn.element_type(value)), 4)


@dataclass
class BufferPlan:
    """The slots of one function: sizes, which dispatch uses which, and the totals."""

    slot_bytes: list[int]
    naive_bytes: int

    @property
    def peak_bytes(self) -> int:
        """Storage for all dispatch results at once under this plan."""
        return sum(self.slot_bytes)


def plan_function(function: FuncOp) -> BufferPlan:
    """Assign a slot to every dispatch of `function` and return the plan."""
    ops = list(function.body.block.ops)
    storage_of: dict[SSAValue, SSAValue] = {}
    last_use: dict[SSAValue, int] = {}
    returned: set[SSAValue] = set()
    for index, op in enumerate(ops):
        if isinstance(op, DispatchOp):
            storage_of[op.outputs[0]] = op.outputs[0]
        elif isinstance(op, nn.ReshapeOp) and op.input in storage_of:
            storage_of[op.result] = storage_of[op.input]
        for operand in op.operands:
            if operand in storage_of:
                root = storage_of[operand]
                last_use[root] = index
                if isinstance(op, ReturnOp):
                    returned.add(root)

    slot_bytes: list[int] = []
    slot_free_after: list[int] = []
    naive = 0
    for index, op in enumerate(ops):
        if not isinstance(op, DispatchOp):
            continue
        result = op.outputs[0]
        size = storage_bytes(result)
        naive += size
        free = [s for s, after in enumerate(slot_free_after) if after < index]
        fitting = [s for s in free if slot_bytes[s] >= size]
        if fitting:
            slot = min(fitting, key=lambda s: slot_bytes[s])
        elif free:
            slot = max(free, key=lambda s: slot_bytes[s])
        else:
            slot = len(slot_bytes)
            slot_bytes.append(0)
            slot_free_after.append(-1)
        slot_bytes[slot] = max(slot_bytes[slot], size)
        slot_free_after[slot] = len(ops) if result in returned else last_use.get(result, index)
        op.slot = IntegerAttr[I64](slot, i64)
    return BufferPlan(slot_bytes, naive)


@dataclass(frozen=True)
class PlanBuffersPass(ModulePass):
    """Liveness-based reuse of storage for dispatch results (see module docstring)."""

    name = "web-plan-buffers"

    report: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.body.block.ops if isinstance(f, FuncOp)]:
            plan = plan_function(function)
            function.attributes["web.slot_bytes"] = nn.i64_array(plan.slot_bytes)
            function.attributes["web.peak_bytes"] = IntegerAttr(plan.peak_bytes, i64)
            function.attributes["web.naive_bytes"] = IntegerAttr(plan.naive_bytes, i64)
            if self.report:
                saved = 1 - plan.peak_bytes / plan.naive_bytes if plan.naive_bytes else 0.0
                print(
                    f"web-plan-buffers: @{function.sym_name.data}: peak {plan.peak_bytes} bytes in "
                    f"{len(plan.slot_bytes)} slots vs naive {plan.naive_bytes} bytes ({saved:.0%} saved)",
                    file=sys.stderr,
                )
