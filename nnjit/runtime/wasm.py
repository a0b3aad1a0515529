"""Native Wasm executor: run a `web` module's Wasm program in wasmtime, from Python.

    executor = WasmtimeExecutor()                        # relaxed SIMD on (wasmtime has it)
    outputs = executor.run(module, {"x": x}, weights)     # like reference.run_module
    seconds = executor.time(module, {"x": x}, weights, repeats=20, inner=10)

A program (`nnjit.backends.wasm.build_program`) is printed, assembled, compiled and instantiated
once per module, schedules and weight store (remembered until a kernel's template or schedule is
replaced, as the tuner does); weights are copied into linear memory once, at instantiation. Each
run writes the inputs (i64 checked to fit i32; NnjitError otherwise), calls the exported kernels in
plan order and reads the outputs, copying out early any output whose region a later kernel
reuses. A module wasmtime rejects, a memory the engine will not allocate (`memory_limit`, or past
4 GiB) and a trap all raise `NnjitError`. `guard` / `poison` lay out guard bytes between buffers and
fill all of memory with a 32-bit sentinel before weights and inputs go in (the guard-region test).
`NodeExecutor` (`wasm_node.py`) runs the same binary and plan in V8.
"""

from __future__ import annotations

import atexit
import time as clock
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from nnjit.backends.wasm import HostPlan, TensorIO, WasmProgram, build_program, from_storage, to_storage
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

Weights = Mapping[str, np.ndarray] | None


def fingerprint(module: ModuleOp, weights: Weights, relaxed: bool) -> tuple[Any, ...]:
    """What a program depends on besides the module object: kernel templates and schedules, weights, SIMD mode."""
    kernels = tuple((op.sym_name.data, op.template, op.schedule) for op in module.walk() if isinstance(op, KernelOp))
    return (kernels, id(weights), relaxed)


def input_bytes(plan: HostPlan, inputs: Mapping[str, np.ndarray]) -> list[bytes]:
    """The storage bytes of each input in plan order, after checking names, shapes and dtypes."""
    return tensor_bytes(plan.inputs, inputs)


def tensor_bytes(tensors: Sequence[TensorIO], inputs: Mapping[str, np.ndarray]) -> list[bytes]:
    """The storage bytes of each of `tensors` taken from `inputs`, after checking names, shapes and dtypes."""
    names = [t.name for t in tensors]
    if set(inputs) != set(names):
        raise NnjitError(f"@main takes inputs {names}; got {sorted(inputs)}")
    data: list[bytes] = []
    for t in tensors:
        array = np.asarray(inputs[t.name])
        if array.shape != t.shape or str(array.dtype) != t.dtype:
            raise NnjitError(
                f"input '{t.name}': expected shape {t.shape} dtype {t.dtype}, got {array.shape} {array.dtype}"
            )
        data.append(to_storage(array, t.storage, f"input '{t.name}'").tobytes())
    return data


def output_arrays(plan: HostPlan, raw: list[bytes]) -> dict[str, np.ndarray]:
    """Outputs from their storage bytes, in plan order."""
    return {
        t.name: from_storage(np.frombuffer(data, np.uint8), t.dtype).reshape(t.shape)
        for t, data in zip(plan.outputs, raw, strict=True)
    }


class ProgramCache:
    """Programs built per module object, rebuilt when schedules, weights or the SIMD mode change."""

    def __init__(self, relaxed: bool, guard: int):
        self.relaxed = relaxed
        self.guard = guard
        self._built: WeakKeyDictionary[ModuleOp, tuple[tuple[Any, ...], Any]] = WeakKeyDictionary()

    def lookup(self, module: ModuleOp, weights: Weights) -> Any | None:
        """The loaded entry for this module, if still current."""
        known = self._built.get(module)
        return known[1] if known is not None and known[0] == fingerprint(module, weights, self.relaxed) else None

    def remember(self, module: ModuleOp, weights: Weights, entry: Any) -> None:
        """Keep `entry` for this module and fingerprint."""
        self._built[module] = (fingerprint(module, weights, self.relaxed), entry)

    def build(self, module: ModuleOp, weights: Weights) -> WasmProgram:
        """Print and assemble the module's program."""
        return build_program(module, weights, self.relaxed, self.guard)


@dataclass
class _Instance:
    program: WasmProgram
    store: Any
    memory: Any
    functions: dict[str, Any]
    compiled: Any = None
    """The `wasmtime.Module` (what `Module.serialize` writes to the compile cache)."""


class WasmtimeExecutor:
    """Runs `web` modules compiled to Wasm in wasmtime; caches instances (and their weights) per module."""

    def __init__(
        self, relaxed: bool = True, memory_limit: int | None = None, guard: int = 0, poison: int | None = None
    ):
        import wasmtime

        self.wasmtime = wasmtime
        config = wasmtime.Config()
        config.wasm_simd = True
        config.wasm_relaxed_simd = relaxed
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.relaxed = relaxed
        self.memory_limit = memory_limit
        self.poison = poison
        self.programs = ProgramCache(relaxed, guard)
        self._stores: weakref.WeakSet[Any] = weakref.WeakSet()
        atexit.register(_close_at_exit, weakref.ref(self))

    def close(self) -> None:
        """Free the engine and every store (also done at exit, before wasmtime's bindings go away)."""
        for store in list(self._stores):
            store.close()
        self.programs = ProgramCache(self.relaxed, self.programs.guard)
        self.engine.close()

    # --- loading ---

    def program(self, module: ModuleOp, weights: Weights = None) -> WasmProgram:
        """The module's program as this executor runs it."""
        return self.load(module, weights).program

    def load(self, module: ModuleOp, weights: Weights = None) -> _Instance:
        """Instantiate the module's program (cached) with its weights in memory."""
        known = self.programs.lookup(module, weights)
        if known is None:
            known = self.instantiate(self.programs.build(module, weights))
            self.programs.remember(module, weights, known)
        return known

    def compile(self, program: WasmProgram, serialized: bytes | None = None) -> Any:
        """The program's `wasmtime.Module` (`NnjitError` for a bad module); thread-safe, no store involved.

        `serialized`: the module as `wasmtime.Module.serialize` wrote it with this engine's
        configuration (the compile cache checks its bytes first: deserializing trusts them), used
        instead of compiling the binary again.
        """
        wasmtime = self.wasmtime
        try:
            if serialized is not None:
                return wasmtime.Module.deserialize(self.engine, serialized)
            return wasmtime.Module(self.engine, program.binary)
        except wasmtime.WasmtimeError as error:
            raise NnjitError(f"wasmtime rejects the module: {_first_line(error)}") from None

    def instantiate(self, program: WasmProgram, serialized: bytes | None = None, compiled: Any = None) -> _Instance:
        """Compile (unless `compiled` is given) and instantiate a program; `NnjitError` for a bad module or a
        memory the engine refuses. `serialized` as for `compile`."""
        wasmtime = self.wasmtime
        if compiled is None:
            compiled = self.compile(program, serialized)
        store = wasmtime.Store(self.engine)
        self._stores.add(store)
        if self.memory_limit is not None:
            store.set_limits(memory_size=self.memory_limit)
        try:
            instance = wasmtime.Instance(store, compiled, [])
        except (wasmtime.WasmtimeError, wasmtime.Trap) as error:
            raise NnjitError(
                f"wasmtime cannot allocate the module's {program.plan.memory_bytes} bytes of linear memory "
                f"(limit {self.memory_limit if self.memory_limit is not None else 'the engine default'}): {_first_line(error)}"
            ) from None
        exports = instance.exports(store)
        memory = exports["memory"]
        loaded = _Instance(
            program, store, memory, {name: exports[name] for name in [*program.plan.steps, "run"]}, compiled
        )
        view = self.view(loaded)
        if self.poison is not None:
            view.view(np.uint32)[:] = self.poison
        for offset, data in program.plan.weights:
            view[offset : offset + len(data)] = np.frombuffer(data, np.uint8)
        return loaded

    def view(self, loaded: _Instance) -> np.ndarray:
        """Linear memory as a writable uint8 array (valid while memory does not grow; it never does)."""
        size = loaded.memory.data_len(loaded.store)
        return np.ctypeslib.as_array(loaded.memory.data_ptr(loaded.store), shape=(size,))

    def memory(self, module: ModuleOp, weights: Weights = None) -> np.ndarray:
        """A copy of the module instance's linear memory."""
        return self.view(self.load(module, weights)).copy()

    # --- running ---

    def _call(self, loaded: _Instance, name: str, *args: int) -> None:
        try:
            loaded.functions[name](loaded.store, *args)
        except self.wasmtime.Trap as error:
            raise NnjitError(f"wasm kernel {name} trapped in wasmtime: {_first_line(error)}") from None

    def run(self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Weights = None) -> dict[str, np.ndarray]:
        """Run `@main` on `inputs` (keyed by argument `nn.name`); outputs keyed by result `nn.name`."""
        loaded = self.load(module, weights)
        plan, view = loaded.program.plan, self.view(loaded)
        for t, data in zip(plan.inputs, input_bytes(plan, inputs), strict=True):
            view[t.offset : t.offset + len(data)] = np.frombuffer(data, np.uint8)
        raw: list[bytes | None] = [None] * len(plan.outputs)

        def read(step: int) -> None:
            for index, t in enumerate(plan.outputs):
                if t.after == step:
                    raw[index] = view[t.offset : t.offset + 4 * t.count].tobytes()

        read(-1)
        for step, name in enumerate(plan.steps):
            self._call(loaded, name)
            read(step)
        return output_arrays(plan, [r or b"" for r in raw])

    def time(self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Weights = None, repeats: int = 10,
             inner: int = 1, warmup: int = 1) -> list[float]:  # fmt: skip
        """Seconds per run of all kernels (`run(inner)` timed `repeats` times, divided by `inner`)."""
        self.run(module, inputs, weights)
        loaded = self.load(module, weights)
        seconds: list[float] = []
        for index in range(warmup + repeats):
            started = clock.perf_counter()
            self._call(loaded, "run", inner)
            if index >= warmup:
                seconds.append((clock.perf_counter() - started) / inner)
        return seconds


def _close_at_exit(executor: weakref.ref[WasmtimeExecutor]) -> None:
    alive = executor()
    if alive is not None:
        alive.close()


def _first_line(error: BaseException) -> str:
    """The gist of a wasmtime error: its cause (`Caused by:`) if it names one, else its first lines."""
    text = str(error).strip()
    if "Caused by:" in text:
        text = text.split("Caused by:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(error).__name__


_SHARED: dict[str, Any] = {}


def shared_wasmtime() -> WasmtimeExecutor:
    """One wasmtime executor per process (the compiler's `wasm` executor)."""
    if "wasmtime" not in _SHARED:
        _SHARED["wasmtime"] = WasmtimeExecutor()
    return _SHARED["wasmtime"]


def shared_node() -> Any:
    """One Node (V8) executor per process, one `node` process behind it (the compiler's `node` executor)."""
    if "node" not in _SHARED:
        from nnjit.runtime.wasm_node import NodeExecutor

        _SHARED["node"] = NodeExecutor()
    return _SHARED["node"]
