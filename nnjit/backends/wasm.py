"""Wasm SIMD for `web` modules: one WAT module per model, assembled to a binary, with its host plan.

    program = build_program(module, weights, relaxed=True)   # WasmProgram: text, binary, plan
    nnjit-opt m.mlir -t nnjit-wat                            # the WAT text (`nnjit-wat{relaxed=true}`)

Memory layout (a JIT: every address is a constant in the code). One linear memory, exported as
`memory`; from byte `FIRST` on, 16-byte aligned regions for each `@main` input, each weight (every
`nn.constant` of `@main`, dense_resource or inline), each buffer slot of the plan (`slot` on
`web.dispatch`, sized by the values that share it; a dispatch without `slot` gets its own region),
and one scratch region that matmuls pack B into. `nn.reshape` in `@main` aliases its operand's
region. With `guard > 0` every region is followed (and the first preceded) by that many unused
bytes, which the guard-region test fills with a sentinel. Storage is 4 bytes an element (f32,
i32 for i32 / i64 tensors, i32 0/1 for i1); f16, f64 and narrow integers raise `NnjitError`.

Each `web.dispatch` becomes one exported function `k<n>_<kernel>` with no parameters, printed by
`KernelPrinter` for its buffers' addresses (a kernel dispatched twice is printed twice, for two
sets of addresses); `run(n)` calls them all in order `n` times. The host plan (`HostPlan`, JSON for
the Node runner) lists the inputs' regions and element types, the weight bytes to copy once, the
export names to call in order, and where and after which step to read each output.

Threads (`threads=True`, `wasm_threads.py`): the memory is imported, `(import "env" "memory" (memory
P P shared))`, which the runtime creates as `new WebAssembly.Memory({initial: P, maximum: P, shared:
true})`; every kernel function takes `(param $tid i32) (param $nt i32)` and does thread `tid`'s
share of its work out of `nt` (a step whose plan entry `parallel` is false is called by thread 0
alone, with (0, 1)); the scratch region holds `max_threads` copies, one per thread; `run(n)` calls
every step with (0, 1), so a single-threaded runner runs the same binary. Workers:
`nnjit/runtime/web/wasm_worker.js`.

Assembler: `wasmtime.wat2wasm` (the wasm-tools text parser). Printers emit text (`-t nnjit-wat`
shows exactly what runs), the parser covers the whole SIMD and relaxed-SIMD instruction set, and
it assembles a model in milliseconds. xDSL's `wasm` dialect has no v128 instructions, and an
encoder of our own would duplicate the parser for no gain. The binary is validated when an engine
compiles it (wasmtime or V8), which turns a bad module into `NnjitError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import SSAValue
from xdsl.utils.target import Target

from nnjit.backends.indexing import value_kind
from nnjit.backends.wasm_math import helper_texts
from nnjit.backends.wasm_matmul import scratch_bytes
from nnjit.backends.wasm_templates import KernelPrinter
from nnjit.backends.wasm_threads import MAX_THREADS, PARALLEL_MIN_WORK, Threads, parallel_steps, parallel_work
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DispatchOp, KernelOp, Schedule
from nnjit.errors import NnjitError

PAGE = 65536
"""Bytes of a Wasm memory page."""
MAX_PAGES = 65536
"""Wasm32 memories hold at most 4 GiB."""
FIRST = 64
"""Address of the first region; low addresses stay unused so offsets never go negative."""
ALIGN = 16
STORAGE = {"f32": "f32", "i32": "i32", "i64": "i32", "bool": "i32"}
"""Storage element of each tensor dtype (4 bytes each)."""
_I32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class Region:
    """Bytes `[offset, offset + nbytes)` of linear memory holding one buffer."""

    name: str
    kind: str
    offset: int
    nbytes: int


@dataclass(frozen=True)
class TensorIO:
    """An input or output of `@main`: its region, shape, numpy dtype and 32-bit storage kind."""

    name: str
    offset: int
    shape: tuple[int, ...]
    dtype: str
    storage: str
    after: int = -1
    """For outputs: the step after which to read it (-1: before any step)."""

    @property
    def count(self) -> int:
        """Elements."""
        return shapes.numel(self.shape)


@dataclass
class StepVariants:
    """The tuning variants of one step: other exports computing the same output region."""

    kernel: KernelOp
    output: int
    nbytes: int
    exports: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The entry the page's tuner reads (schedules as canonical JSON text)."""
        from nnjit.runtime.bundle import schedule_key
        from nnjit.tuner.signature import kernel_signature

        return {"signature": kernel_signature(self.kernel).digest, "kernel": self.kernel.sym_name.data,
                "template": self.kernel.template.data, "storage": STORAGE[value_kind(self.kernel.root)],
                "output": [self.output, self.nbytes],
                "exports": [{"name": e["name"], "schedule": schedule_key(e["schedule"])} for e in self.exports]}  # fmt: skip


@dataclass
class HostPlan:
    """What a runner does with a program: regions, inputs, weights, calls in order, outputs."""

    pages: int
    relaxed: bool
    inputs: list[TensorIO] = field(default_factory=list[TensorIO])
    outputs: list[TensorIO] = field(default_factory=list[TensorIO])
    steps: list[str] = field(default_factory=list[str])
    regions: list[Region] = field(default_factory=list[Region])
    weights: list[tuple[int, bytes]] = field(default_factory=list[tuple[int, bytes]])
    threads: bool = False
    """Whether the memory is imported and shared and kernels take `(tid, nt)`."""
    max_threads: int = 1
    """The most threads a run may use (scratch copies reserved)."""
    variants: dict[int, StepVariants] = field(default_factory=dict[int, StepVariants])
    """Per step with tuning variants: its kernel, output region and the exports of each schedule."""
    parallel: list[bool] = field(default_factory=list[bool])
    """Per step: whether all threads call it (with `(tid, nt)`); otherwise thread 0 alone, with (0, 1)."""

    @property
    def memory_bytes(self) -> int:
        """Linear memory size."""
        return self.pages * PAGE

    def to_json(self) -> dict[str, Any]:
        """The plan for the Node runner; weight bytes travel separately, in this order."""

        def io(t: TensorIO) -> dict[str, Any]:
            return {
                "name": t.name,
                "offset": t.offset,
                "count": t.count,
                "shape": list(t.shape),
                "dtype": t.dtype,
                "storage": t.storage,
                "after": t.after,
            }

        return {
            "pages": self.pages,
            "relaxed": self.relaxed,
            "inputs": [io(t) for t in self.inputs],
            "outputs": [io(t) for t in self.outputs],
            "steps": self.steps,
            "weights": [[offset, len(data)] for offset, data in self.weights],
            "threads": self.threads,
            "max_threads": self.max_threads,
            "parallel": self.parallel,
            "variants": {str(step): v.to_json() for step, v in self.variants.items()},
        }


@dataclass
class WasmProgram:
    """A printed and assembled model: WAT text, Wasm binary and host plan."""

    text: str
    binary: bytes
    plan: HostPlan

    def plan_json(self) -> str:
        """The host plan as JSON."""
        return json.dumps(self.plan.to_json())


# --- Element conversion ----------------------------------------------------------------------------


def to_storage(array: np.ndarray, kind: str, what: str) -> np.ndarray:
    """`array` as its 4-byte storage (f32, i32 with a range check for i64, i32 0/1 for booleans)."""
    if kind == "f32":
        return np.ascontiguousarray(array, np.float32)
    if kind in ("i32", "i64"):
        if array.size and (array.min() < _I32.min or array.max() > _I32.max):
            bad = array.max() if array.max() > _I32.max else array.min()
            raise NnjitError(f"{what}: value {int(bad)} does not fit the wasm target's 32-bit integers")
        return np.ascontiguousarray(array, np.int32)
    if kind == "bool":
        return np.ascontiguousarray(array, np.int32)
    raise NnjitError(f"{what}: element type {kind} is not supported by the wasm target")


def from_storage(raw: np.ndarray, dtype: str) -> np.ndarray:
    """4-byte storage words (`uint8` bytes) back as an array of numpy `dtype`."""
    if dtype == "float32":
        return raw.view(np.float32).copy()
    words = raw.view(np.int32)
    return words != 0 if dtype == "bool" else words.astype(dtype)


# --- Layout and printing ---------------------------------------------------------------------------


def _names(attrs: Any, count: int, fallback: str) -> list[str]:
    names: list[str] = []
    for index in range(count):
        entry = attrs[index] if attrs is not None and index < len(attrs) else None
        name = entry.data.get("nn.name") if isinstance(entry, DictionaryAttr) else None
        names.append(name.data if isinstance(name, StringAttr) else f"{fallback}{index}")
    return names


def main_function(module: ModuleOp) -> FuncOp:
    """The `func.func @main` of a module."""
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == "main":
            return op
    raise NnjitError("the module has no func.func @main to run")


def _nbytes(value: SSAValue) -> int:
    kind = value_kind(value)
    if kind not in STORAGE:
        raise NnjitError(f"element type {kind} of {value.type} is not supported by the wasm target")
    return 4 * shapes.numel(nn.tensor_shape(value))


class _Layout:
    def __init__(self, guard: int):
        self.guard = guard
        self.cursor = FIRST + guard
        self.regions: list[Region] = []

    def allocate(self, name: str, kind: str, nbytes: int) -> int:
        offset = -(-self.cursor // ALIGN) * ALIGN
        self.regions.append(Region(name, kind, offset, nbytes))
        self.cursor = offset + max(nbytes, 4) + self.guard
        return offset


def build_program(module: ModuleOp, weights: Mapping[str, np.ndarray] | None = None, relaxed: bool = False,
                  guard: int = 0, assemble: bool = True, threads: bool = False, max_threads: int = MAX_THREADS,
                  parallel_min_work: int = PARALLEL_MIN_WORK,
                  variants: Mapping[str, Sequence[Schedule]] | None = None) -> WasmProgram:  # fmt: skip
    """Lay out memory, print every dispatch, assemble; see the module docstring.

    With `threads`, every kernel is printed split for up to `max_threads` threads, and which steps
    run on all threads follows `wasm_threads.parallel_steps` with `parallel_min_work`.
    """
    from nnjit.runtime.reference import constant_value, to_numpy_dtype

    if threads and max_threads < 1:
        raise NnjitError(f"max_threads must be at least 1, not {max_threads}")
    main = main_function(module)
    kernels = {op.sym_name.data: op for op in module.walk() if isinstance(op, KernelOp)}
    layout = _Layout(guard)
    offsets: dict[SSAValue, int] = {}
    plan = HostPlan(0, relaxed, threads=threads, max_threads=max_threads if threads else 1)
    names = _names(main.arg_attrs.data if main.arg_attrs else None, len(main.body.block.args), "arg")
    for name, arg in zip(names, main.body.block.args, strict=True):
        offsets[arg] = layout.allocate(f"input {name}", "input", _nbytes(arg))
        dtype = str(to_numpy_dtype(nn.element_type(arg)))
        plan.inputs.append(TensorIO(name, offsets[arg], nn.tensor_shape(arg), dtype, value_kind(arg)))
    slot_bytes: dict[int, int] = {}
    for op in main.body.block.ops:
        if isinstance(op, DispatchOp) and op.slot is not None:
            slot = op.slot.value.data
            slot_bytes[slot] = max(slot_bytes.get(slot, 0), _nbytes(op.outputs[0]))
    slots: dict[int, int] = {}
    dispatches: list[tuple[DispatchOp, KernelOp]] = []
    written: dict[int, list[int]] = {}
    for op in main.body.block.ops:
        if isinstance(op, nn.ConstantOp):
            what = f"constant {op.result.type}"
            offsets[op.result] = layout.allocate(what, "weight", _nbytes(op.result))
            if weights is not None or not isinstance(op.value, nn.DenseResourceAttr):  # sizes suffice to print
                data = to_storage(constant_value(op, weights), value_kind(op.result), what)
                plan.weights.append((offsets[op.result], data.tobytes()))
        elif isinstance(op, nn.ReshapeOp):
            offsets[op.result] = offsets[op.input]
        elif isinstance(op, DispatchOp):
            kernel = kernels.get(op.kernel.root_reference.data)
            if kernel is None or len(op.outputs) != 1:
                raise NnjitError(f"web.dispatch {op.kernel}: no such single-result web.kernel")
            if op.slot is None:
                offset = layout.allocate(f"result of @{kernel.sym_name.data}", "slot", _nbytes(op.outputs[0]))
            else:
                slot = op.slot.value.data
                if slot not in slots:
                    slots[slot] = layout.allocate(f"slot {slot}", "slot", slot_bytes[slot])
                offset = slots[slot]
            if offset in [offsets[a] for a in op.args]:
                raise NnjitError(f"web.dispatch @{kernel.sym_name.data}: its output buffer is also one of its inputs")
            offsets[op.outputs[0]] = offset
            written.setdefault(offset, []).append(len(dispatches))
            dispatches.append((op, kernel))
        elif isinstance(op, ReturnOp):
            result_names = _names(main.res_attrs.data if main.res_attrs else None, len(op.arguments), "result")
            for name, value in zip(result_names, op.arguments, strict=True):
                plan.outputs.append(TensorIO(name, offsets[value], nn.tensor_shape(value),
                                             str(to_numpy_dtype(nn.element_type(value))), value_kind(value),
                                             _read_point(value, offsets[value], dispatches, written)))  # fmt: skip
        else:
            raise NnjitError(f"the wasm target cannot run '{op.name}' in @main")
    alternatives = {name: [_with_schedule(kernels[name], s) for s in schedules]
                    for name, schedules in (variants or {}).items() if name in kernels}  # fmt: skip
    every = [k for _, k in dispatches] + [k for clones in alternatives.values() for k in clones]
    scratch = max((scratch_bytes(k) for k in every if k.template.data == "matmul"), default=0)
    stride = -(-scratch // ALIGN) * ALIGN  # each thread's copy starts 16-byte aligned
    scratch_base = layout.allocate("scratch", "scratch", stride * (max_threads - 1) + scratch if threads else scratch)
    functions: list[str] = []
    helpers: set[str] = set()
    splittable: list[bool] = []
    for index, (op, kernel) in enumerate(dispatches):
        export = f"k{index}_{kernel.sym_name.data}"
        share = Threads(True, max_threads, stride) if threads else None
        printer = KernelPrinter(kernel, [offsets[a] for a in op.args], offsets[op.outputs[0]], scratch_base, relaxed,
                                share)  # fmt: skip
        functions.append(printer.emit(export))
        helpers |= printer.r.helpers
        plan.steps.append(export)
        splittable.append(threads and printer.split_units >= 2)
        clones = alternatives.get(kernel.sym_name.data, [])
        if clones:
            exports = [{"name": export, "schedule": kernel.schedule.values}]
            for number, clone in enumerate(clones, 1):
                other = KernelPrinter(clone, [offsets[a] for a in op.args], offsets[op.outputs[0]], scratch_base, relaxed,
                                      share)  # fmt: skip
                functions.append(other.emit(f"{export}_v{number}"))
                helpers |= other.r.helpers
                exports.append({"name": f"{export}_v{number}", "schedule": clone.schedule.values})
            plan.variants[index] = StepVariants(kernel, offsets[op.outputs[0]], _nbytes(op.outputs[0]), exports)
    work = [parallel_work(kernel) for _, kernel in dispatches]
    plan.parallel = parallel_steps(work, splittable, parallel_min_work) if threads else [False] * len(dispatches)
    plan.pages = max(1, -(-layout.cursor // PAGE))
    if plan.pages > MAX_PAGES:
        raise NnjitError(f"the model needs {layout.cursor} bytes of linear memory; wasm32 memories hold at most 4 GiB")
    plan.regions = layout.regions
    text = module_text(plan, helpers, functions)
    return WasmProgram(text, assemble_wat(text) if assemble else b"", plan)


def _with_schedule(kernel: KernelOp, schedule: Schedule) -> KernelOp:
    return KernelOp(kernel.sym_name.data, kernel.function_type, kernel.body.clone(), kernel.template.data,
                    schedule.to_attr())  # fmt: skip


def _read_point(value: SSAValue, offset: int, dispatches: list[tuple[DispatchOp, KernelOp]],
                written: Mapping[int, list[int]]) -> int:  # fmt: skip
    """After which step to read an output: its producer's, if a later dispatch reuses the region, else the last."""
    source = value
    while isinstance(source.owner, nn.ReshapeOp):
        source = source.owner.input
    producer = next((i for i, (op, _) in enumerate(dispatches) if op.outputs[0] is source), -1)
    later = [step for step in written.get(offset, []) if step > producer]
    return producer if later else len(dispatches) - 1


def module_text(plan: HostPlan, helpers: set[str], functions: list[str]) -> str:
    """The WAT module: memory, helpers, one function per dispatch, and `run(n)`."""
    relaxed = "on: f32x4.relaxed_madd in matmul / conv" if plan.relaxed else "off: f32x4.mul + f32x4.add"
    one_thread = " (i32.const 0) (i32.const 1)" if plan.threads else ""
    calls = "\n".join(f"      (call ${name}{one_thread})" for name in plan.steps)
    run = (
        '(func (export "run") (param $n i32)\n'
        "  (block $done (loop $again\n"
        "      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))\n"
        f"{calls}\n"
        "      (local.set $n (i32.sub (local.get $n) (i32.const 1)))\n"
        "      (br $again))))"
    )
    memory = (
        f'(import "env" "memory" (memory {plan.pages} {plan.pages} shared))'
        if plan.threads
        else f'(memory (export "memory") {plan.pages})'
    )
    threads = (
        f"\n;; threads: up to {plan.max_threads}, {sum(plan.parallel)} of {len(plan.steps)} steps parallel"
        if plan.threads
        else ""
    )
    parts = [
        f";; nnjit wasm module: {len(plan.steps)} kernel calls, {plan.pages} pages of memory\n"
        f";; relaxed-simd {relaxed}{threads}",
        memory,
        *helper_texts(helpers),
        *functions,
        run,
    ]
    return "(module\n" + "\n".join(parts) + ")\n"


def assemble_wat(text: str) -> bytes:
    """The binary of a WAT module (`NnjitError` with the parser's message on bad text)."""
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as error:
        raise NnjitError(f"the printed WAT does not assemble: {str(error).strip()}") from None


def kernel_text(kernel: KernelOp, relaxed: bool = False, threads: bool = False) -> str:
    """One kernel alone as a WAT module, its arguments and output laid out one after another.

    With `threads`, printed split for `MAX_THREADS` threads whatever its size.
    """
    layout = _Layout(0)
    bases = [layout.allocate(f"arg {i}", "input", _nbytes(a)) for i, a in enumerate(kernel.body.block.args)]
    out = layout.allocate("out", "slot", _nbytes(kernel.root))
    scratch = scratch_bytes(kernel) if kernel.template.data == "matmul" else 0
    stride = -(-scratch // ALIGN) * ALIGN
    base = layout.allocate("scratch", "scratch", stride * (MAX_THREADS - 1) + scratch if threads else scratch)
    printer = KernelPrinter(kernel, bases, out, base, relaxed, Threads(True, MAX_THREADS, stride) if threads else None)
    function = printer.emit(kernel.sym_name.data)
    plan = HostPlan(max(1, -(-layout.cursor // PAGE)), relaxed, steps=[kernel.sym_name.data], threads=threads,
                    max_threads=MAX_THREADS if threads else 1, parallel=[printer.split_units >= 2])  # fmt: skip
    layout_text = ", ".join(f"{r.name} @{r.offset}" for r in layout.regions)
    return f";; kernel @{kernel.sym_name.data}: {layout_text}\n" + module_text(plan, printer.r.helpers, [function])


@dataclass(frozen=True)
class WatTarget(Target):
    """`-t nnjit-wat`: the module as WAT (every dispatch of `@main`; without `@main`, each kernel alone).

    `nnjit-wat{threads=true}` prints the multi-threaded variant.
    """

    name = "nnjit-wat"

    relaxed: bool = False
    threads: bool = False

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        has_main = any(isinstance(op, FuncOp) and op.sym_name.data == "main" for op in module.ops)
        if has_main:
            output.write(build_program(module, None, self.relaxed, assemble=False, threads=self.threads).text)
            return
        for op in module.walk():
            if isinstance(op, KernelOp):
                output.write(kernel_text(op, self.relaxed, self.threads))


__all__ = [
    "HostPlan",
    "Region",
    "TensorIO",
    "WasmProgram",
    "WatTarget",
    "assemble_wat",
    "build_program",
    "from_storage",
    "to_storage",
]
