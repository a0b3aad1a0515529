"""The WebGPU host plan of a `web` module: which buffers exist, which kernel runs on which, what to read back.

    plan = plan_webgpu(module)
    plan.buffers      # inputs, weights (one per `nn.constant`) and output slots, with their sizes
    plan.steps        # one per `web.dispatch`, in order: kernel, argument buffers, output buffer
    plan.outputs      # each result's buffer and the step after which to read it

The plan depends on the module's `@main` only, not on a device: the native executor
(`nnjit.runtime.webgpu`) turns it into wgpu buffers and bind groups, and the web bundle
(`nnjit.runtime.bundle`) writes it as JSON for the JS runtime, which does the same in the page.
Results with the same `slot` share one buffer (the buffer planner's liveness decision);
`nn.reshape` aliases its operand's buffer. A result whose buffer a later dispatch overwrites is read
back right after its producer. Storage is 4 bytes an element: f32, i32 (i64 tensors, which must fit)
and u32 0/1 for i1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import ReturnOp
from xdsl.ir import SSAValue

from nnjit.backends.indexing import value_kind
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DispatchOp, KernelOp
from nnjit.errors import NnjitError
from nnjit.runtime.reference import argument_names, main_function, result_names, to_numpy_dtype

STORAGE = {"f32": "f32", "i32": "i32", "i64": "i32", "bool": "u32"}
"""GPU storage element of each tensor kind."""


def storage_bytes(value: SSAValue) -> int:
    """Bytes of a tensor's GPU storage (at least 4: WebGPU has no empty buffers)."""
    return max(4, 4 * shapes.numel(nn.tensor_shape(value)))


@dataclass(frozen=True)
class GpuBuffer:
    """One storage buffer: an input, a weight (`constant` set) or a dispatch output slot.

    A weight buffer holds bytes `[offset, offset + nbytes)` of its constant's storage: all of it,
    or one piece of a weight that `web-split-bindings` cut to fit a binding.
    """

    index: int
    role: str
    nbytes: int
    constant: nn.ConstantOp | None = None
    offset: int = 0


@dataclass(frozen=True)
class GpuStep:
    """One dispatch: `kernel` reads buffers `args` and writes buffer `output`."""

    kernel: KernelOp
    args: tuple[int, ...]
    output: int


@dataclass(frozen=True)
class GpuTensor:
    """An input or output of `@main` and the buffer holding it; outputs are read after step `after`."""

    name: str
    value: SSAValue
    buffer: int
    after: int = -1

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape."""
        return nn.tensor_shape(self.value)

    @property
    def dtype(self) -> str:
        """The numpy dtype of the tensor (its storage may be narrower: see `storage`)."""
        return str(to_numpy_dtype(nn.element_type(self.value)))

    @property
    def kind(self) -> str:
        """The element kind (`f32`, `i32`, `i64`, `bool`)."""
        return value_kind(self.value)

    def to_json(self) -> dict[str, Any]:
        """The tensor as the JS runtime reads it."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "storage": STORAGE[self.kind],
                "buffer": self.buffer, "after": self.after}  # fmt: skip


@dataclass
class GpuPlan:
    """Buffers, steps, inputs and outputs of one module on WebGPU (see the module docstring)."""

    buffers: list[GpuBuffer] = field(default_factory=list[GpuBuffer])
    steps: list[GpuStep] = field(default_factory=list[GpuStep])
    inputs: list[GpuTensor] = field(default_factory=list[GpuTensor])
    outputs: list[GpuTensor] = field(default_factory=list[GpuTensor])

    def add_buffer(self, role: str, nbytes: int, constant: nn.ConstantOp | None = None, offset: int = 0) -> int:
        """A new buffer's index."""
        self.buffers.append(GpuBuffer(len(self.buffers), role, nbytes, constant, offset))
        return len(self.buffers) - 1

    def weight_buffer(self, weight: WeightRange) -> int:
        """The buffer holding a byte range of a weight, made on first use (the same range is one buffer)."""
        for buffer in self.buffers:
            if buffer.constant is weight.constant and (buffer.offset, buffer.nbytes) == (weight.offset, weight.nbytes):
                return buffer.index
        return self.add_buffer("weight", weight.nbytes, weight.constant, weight.offset)


@dataclass(frozen=True)
class WeightRange:
    """Bytes `[offset, offset + nbytes)` of a constant's storage: what a host view of a weight reads."""

    constant: nn.ConstantOp
    offset: int
    nbytes: int


def _weight_view(op: nn.ReshapeOp | nn.SliceOp, source: WeightRange) -> WeightRange:
    """The range a reshape or a contiguous leading-axis slice of a weight range reads."""
    if isinstance(op, nn.ReshapeOp):
        return source
    shape = nn.tensor_shape(op.input)
    starts, ends, steps = op.starts.get_values(), op.ends.get_values(), op.steps.get_values()
    kept = shapes.slice_(shape, starts, ends, steps)
    if kept[1:] != shape[1:] or (kept and steps[0] != 1):
        raise NnjitError(
            f"the webgpu target can only slice weights in @main along their leading axis, not {op.result.type}"
        )
    row_bytes = 4 * shapes.numel(shape[1:])
    start = range(shape[0])[starts[0] : ends[0]].start if shape else 0
    return WeightRange(source.constant, source.offset + start * row_bytes, storage_bytes(op.result))


def plan_webgpu(module: ModuleOp) -> GpuPlan:
    """The module's WebGPU host plan; `NnjitError` for an `@main` the WebGPU runtimes cannot run."""
    main = main_function(module)
    kernels = {op.sym_name.data: op for op in module.walk() if isinstance(op, KernelOp)}
    plan = GpuPlan()
    buffers: dict[SSAValue, int] = {}
    for name, arg in zip(argument_names(main), main.body.block.args, strict=True):
        if value_kind(arg) not in STORAGE:
            raise NnjitError(
                f"input '{name}': element type {nn.element_type(arg)} is not supported by the webgpu target"
            )
        buffers[arg] = plan.add_buffer("input", storage_bytes(arg))
        plan.inputs.append(GpuTensor(name, arg, buffers[arg]))
    slot_bytes: dict[int, int] = {}
    for op in main.body.block.ops:
        if isinstance(op, DispatchOp) and op.slot is not None:
            slot = op.slot.value.data
            slot_bytes[slot] = max(slot_bytes.get(slot, 4), storage_bytes(op.outputs[0]))
    slots: dict[int, int] = {}
    produced: dict[SSAValue, int] = {}
    weights: dict[SSAValue, WeightRange] = {}

    def buffer_of(value: SSAValue) -> int:
        if value not in buffers:
            buffers[value] = plan.weight_buffer(weights[value])
        return buffers[value]

    for op in main.body.block.ops:
        if isinstance(op, nn.ConstantOp):
            weights[op.result] = WeightRange(op, 0, storage_bytes(op.result))
        elif isinstance(op, nn.ReshapeOp | nn.SliceOp) and op.input in weights:
            weights[op.result] = _weight_view(op, weights[op.input])
        elif isinstance(op, nn.ReshapeOp):
            buffers[op.result] = buffers[op.input]
        elif isinstance(op, DispatchOp):
            kernel = kernels.get(op.kernel.root_reference.data)
            if kernel is None or len(op.outputs) != 1:
                raise NnjitError(f"web.dispatch {op.kernel}: no such single-result web.kernel")
            if op.slot is None:
                output = plan.add_buffer("slot", storage_bytes(op.outputs[0]))
            else:
                slot = op.slot.value.data
                if slot not in slots:
                    slots[slot] = plan.add_buffer("slot", slot_bytes[slot])
                output = slots[slot]
            args = tuple(buffer_of(a) for a in op.args)
            if output in args:
                raise NnjitError(f"web.dispatch @{kernel.sym_name.data}: its output buffer is also one of its inputs")
            plan.steps.append(GpuStep(kernel, args, output))
            buffers[op.outputs[0]] = output
            produced[op.outputs[0]] = len(plan.steps) - 1
        elif isinstance(op, ReturnOp):
            for name, value in zip(result_names(main), op.arguments, strict=True):
                after = _read_point(plan, value, buffer_of(value), produced)
                plan.outputs.append(GpuTensor(name, value, buffer_of(value), after))
            return plan
        else:
            raise NnjitError(f"the webgpu target cannot run '{op.name}' in @main")
    raise NnjitError("@main has no func.return")


def _read_point(plan: GpuPlan, value: SSAValue, buffer: int, produced: dict[SSAValue, int]) -> int:
    """After which step to read `value` back: at the end, unless a later dispatch reuses its buffer."""
    source = value
    while isinstance(source.owner, nn.ReshapeOp):
        source = source.owner.input
    first = produced.get(source, -1)
    rewritten = any(step.output == buffer for step in plan.steps[first + 1 :])
    return first if rewritten else len(plan.steps) - 1
