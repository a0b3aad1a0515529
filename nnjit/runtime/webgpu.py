"""The native WebGPU executor: run a `web` module's `@main` with wgpu-py (wgpu-native, naga).

    executor = WebGPUExecutor()                     # first adapter; raises NnjitError if none
    module.attributes["web.limits"] = executor.limits()
    outputs = executor.run(module, {"x": x}, weights)   # like reference.run_module
    seconds = executor.time(module, {"x": x}, weights, repeats=20)

Each kernel's WGSL (`nnjit.backends.wgsl`) becomes a shader module and pipeline, cached per shader
text; weights are uploaded once per executor. The buffers, bind groups and read-back buffers of a
module are made on its first run and kept (per module object and weight store) until the module is
freed or its `@main` changes: a later run only writes the inputs (`queue.write_buffer`), submits and
reads back. A kernel whose template or schedule was replaced (the tuner, an online session) gets its
new pipeline and bind group at the next run; a kernel body edited in place is not noticed. `@main` may hold block arguments, `nn.constant`,
`web.dispatch` (results with the same `slot` share one buffer), `nn.reshape` (an alias of its
operand's buffer) and `func.return`; all dispatches run in one command submission. GPU storage is
f32, i32 (i64 tensors are converted on upload and download, and must fit) and u32 for i1.
"""

from __future__ import annotations

import os
import tempfile
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from nnjit.backends.indexing import value_kind
from nnjit.backends.webgpu_plan import GpuBuffer, plan_webgpu, storage_bytes
from nnjit.backends.wgsl import Shader, print_kernel
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp, LimitsAttr
from nnjit.errors import NnjitError
from nnjit.runtime.reference import constant_value, main_function, to_numpy_dtype

_RAISED_LIMITS = (
    "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x", "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z", "max-compute-workgroup-storage-size", "max-storage-buffer-binding-size",
    "max-buffer-size", "max-storage-buffers-per-shader-stage", "max-compute-workgroups-per-dimension",
)  # fmt: skip
"""Device limits requested at the adapter's maximum instead of WebGPU's defaults."""


def _wgpu() -> Any:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="nnjit-xdg-")  # silences a Vulkan loader warning
    import wgpu

    return wgpu


def request_adapter() -> Any:
    """The system's preferred WebGPU adapter; `NnjitError` when there is none."""
    try:
        adapter = _wgpu().gpu.request_adapter_sync(power_preference="high-performance")
    except RuntimeError as error:  # wgpu-native reports "no suitable adapter" as an error
        adapter, reason = None, str(error).strip().splitlines()[-1]
    else:
        reason = "none offered"
    if adapter is None:
        raise NnjitError(f"no WebGPU adapter found (is a Vulkan/Metal/D3D12 driver installed?): {reason}")
    return adapter


def limits_of(device_or_adapter: Any) -> LimitsAttr:
    """The `#web.limits` of an adapter or device, for the module attribute `web.limits`."""
    limits = device_or_adapter.limits
    return LimitsAttr(
        limits["max-compute-invocations-per-workgroup"],
        [limits[f"max-compute-workgroup-size-{axis}"] for axis in "xyz"],
        limits["max-compute-workgroup-storage-size"],
        limits["max-storage-buffer-binding-size"],
    )


# --- Host <-> device element conversion ------------------------------------------------------------

_I32 = np.iinfo(np.int32)


def to_device(array: np.ndarray, kind: str, what: str) -> np.ndarray:
    """`array` in its GPU storage type (f32, i32, or u32 for booleans)."""
    if kind == "f32":
        return np.ascontiguousarray(array, np.float32)
    if kind in ("i32", "i64"):
        if array.size and (array.min() < _I32.min or array.max() > _I32.max):
            raise NnjitError(f"{what}: a value of this {kind} tensor does not fit the webgpu target's i32")
        return np.ascontiguousarray(array, np.int32)
    if kind == "bool":
        return np.ascontiguousarray(array, np.uint32)
    raise NnjitError(f"{what}: element type {kind} is not supported by the webgpu target")


def from_device(data: bytes | memoryview, value: SSAValue) -> np.ndarray:
    """A downloaded buffer as the numpy array of `value`'s tensor type."""
    return decode(data, value_kind(value), nn.tensor_shape(value), np.dtype(to_numpy_dtype(nn.element_type(value))))


def decode(data: bytes | memoryview, kind: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """A downloaded buffer of a tensor of element `kind` as an array of `shape` and numpy `dtype`."""
    storage = {"f32": np.float32, "i32": np.int32, "i64": np.int32, "bool": np.uint32}[kind]
    raw = np.frombuffer(data, storage, count=shapes.numel(shape)).reshape(shape)
    return raw != 0 if kind == "bool" else raw.astype(dtype)


# --- Plans ---------------------------------------------------------------------------------------


@dataclass
class _Pipeline:
    pipeline: Any
    layout: Any


@dataclass
class _Step:
    kernel: str
    pipeline: _Pipeline
    bind_group: Any
    grid: tuple[int, int, int]
    buffers: list[Any]
    """The argument buffers, then the output buffer."""


@dataclass(frozen=True)
class _Tensor:
    """An input or output as the host sees it (no IR objects: a bound plan must not keep its module alive)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    kind: str
    buffer: Any
    after: int = -1
    readback: Any = None


@dataclass
class _Plan:
    """A module bound to this device: buffers, bind groups and read-back buffers, kept across runs."""

    key: tuple[Any, ...]
    inputs: list[_Tensor] = field(default_factory=list[_Tensor])
    steps: list[_Step] = field(default_factory=list[_Step])
    results: list[_Tensor] = field(default_factory=list[_Tensor])


def _plan_key(module: ModuleOp, weights: Mapping[str, np.ndarray] | None) -> tuple[Any, ...]:
    """What a bound plan depends on besides kernel schedules: `@main`'s ops and the weight store."""
    main = main_function(module)
    return (id(weights), id(main), *(id(op) for op in main.body.block.ops))


class WebGPUExecutor:
    """Runs `web` modules on one WebGPU device; caches pipelines and weight buffers across runs."""

    def __init__(self, adapter: Any | None = None):
        self.wgpu = _wgpu()
        self.adapter = adapter if adapter is not None else request_adapter()
        self.timestamps = "timestamp-query" in self.adapter.features
        self.device = self.adapter.request_device_sync(
            required_features=["timestamp-query"] if self.timestamps else [],
            required_limits={name: self.adapter.limits[name] for name in _RAISED_LIMITS},
        )
        self._pipelines: dict[str, _Pipeline] = {}
        self._weights: dict[Any, tuple[Any, Any]] = {}
        self._texts: WeakKeyDictionary[KernelOp, tuple[tuple[Any, Any], Shader]] = WeakKeyDictionary()
        self._plans: WeakKeyDictionary[ModuleOp, _Plan] = WeakKeyDictionary()
        self._fence: Any = None

    def limits(self) -> LimitsAttr:
        """The device's limits as `#web.limits`."""
        return limits_of(self.device)

    # --- compiling ---

    def pipeline(self, kernel: KernelOp) -> _Pipeline:
        """The compute pipeline of a kernel (cached by shader text).

        The text is remembered per kernel op until its `template` or `schedule` is replaced (what the
        tuner does); a kernel body edited in place after a run is not noticed.
        """
        text = self.shader(kernel).text
        return self.compile_shader(f"web.kernel @{kernel.sym_name.data}", text, len(kernel.body.block.args))

    def shader(self, kernel: KernelOp) -> Shader:
        """The printed WGSL and grid of a kernel, remembered until its template or schedule is replaced."""
        key = (kernel.template, kernel.schedule)
        known = self._texts.get(kernel)
        if known is None or known[0] != key:
            known = self._texts[kernel] = (key, print_kernel(kernel))
        return known[1]

    def remember_shader(self, kernel: KernelOp, shader: Shader) -> None:
        """Use `shader` as the kernel's printed WGSL and grid (from the compile cache) until its schedule changes."""
        self._texts[kernel] = ((kernel.template, kernel.schedule), shader)

    def compile_shader(self, name: str, text: str, inputs: int) -> _Pipeline:
        """A pipeline for WGSL `text` with `inputs` read-only bindings then one output; cached by text.

        Validation errors (naga's, with the offending line) become `NnjitError` naming `name`.
        """
        if text in self._pipelines:
            return self._pipelines[text]
        wgpu = self.wgpu
        kinds = [wgpu.BufferBindingType.read_only_storage] * inputs + [wgpu.BufferBindingType.storage]
        entries = [
            {"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": kind}}
            for i, kind in enumerate(kinds)
        ]
        try:
            module = self.device.create_shader_module(code=text)
            layout = self.device.create_bind_group_layout(entries=entries)
            pipeline = self.device.create_compute_pipeline(
                layout=self.device.create_pipeline_layout(bind_group_layouts=[layout]),
                compute={"module": module, "entry_point": "main"},
            )
        except wgpu.GPUError as error:
            raise NnjitError(f"{name}: the WebGPU device rejects its WGSL: {error}") from None
        self._pipelines[text] = _Pipeline(pipeline, layout)
        return self._pipelines[text]

    @property
    def cache_sizes(self) -> tuple[int, int]:
        """How many pipelines and weight buffers this executor holds."""
        return len(self._pipelines), len(self._weights)

    # --- buffers ---

    def _upload(self, array: np.ndarray, kind: str, what: str) -> Any:
        return self._upload_storage(to_device(array, kind, what), what)

    def _upload_storage(self, data: np.ndarray, what: str) -> Any:
        self._check_binding(data.nbytes, what)
        usage = self.wgpu.BufferUsage.STORAGE | self.wgpu.BufferUsage.COPY_SRC
        if data.nbytes == 0:
            return self.device.create_buffer(size=4, usage=usage)
        return self.device.create_buffer_with_data(data=data, usage=usage)

    def _constant(self, buffer: GpuBuffer, weights: Mapping[str, np.ndarray] | None) -> Any:
        """The device buffer of a weight (or of the byte range `web-split-bindings` cut from it), uploaded once."""
        op = buffer.constant
        assert op is not None
        value = op.value
        if isinstance(value, nn.DenseResourceAttr):
            array = constant_value(op, weights)
            key: Any = ("resource", value.resource_handle.data, id(array), buffer.offset, buffer.nbytes)
        else:
            array = constant_value(op)
            key = ("dense", str(op.result.type), value.data.data, buffer.offset, buffer.nbytes)
        if key not in self._weights:
            what = f"constant {op.result.type}"
            data = to_device(array, value_kind(op.result), what).reshape(-1).view(np.uint8)
            if (buffer.offset, buffer.nbytes) != (0, data.nbytes):
                what += f" bytes [{buffer.offset}, {buffer.offset + buffer.nbytes})"
                data = data[buffer.offset : buffer.offset + buffer.nbytes]
            self._weights[key] = (self._upload_storage(data, what), array)
        return self._weights[key][0]

    def _check_binding(self, nbytes: int, what: str) -> None:
        """A clear error, before wgpu's validation error, for a tensor larger than one storage binding."""
        limit = int(self.device.limits["max-storage-buffer-binding-size"])
        if nbytes > limit:
            raise NnjitError(f"{what}: {nbytes / 2**20:.1f} MiB exceeds this device's storage binding limit of "
                             f"{limit / 2**20:.0f} MiB (web-split-bindings splits weights only, not inputs or intermediates)")  # fmt: skip

    def _buffer(self, size: int) -> Any:
        self._check_binding(size, "an intermediate buffer")
        usage = self.wgpu.BufferUsage.STORAGE | self.wgpu.BufferUsage.COPY_SRC
        return self.device.create_buffer(size=size, usage=usage)

    # --- planning ---

    def _plan(
        self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray] | None
    ) -> _Plan:
        """The module bound to this device (made on first use), with `inputs` written to its input buffers."""
        key = _plan_key(module, weights)
        known = self._plans.get(module)
        if known is None or known.key != key:
            known = self._plans[module] = self._bind(module, weights, key)
        names = [t.name for t in known.inputs]
        if set(inputs) != set(names):
            raise NnjitError(f"@main takes inputs {names}; got {sorted(inputs)}")
        for tensor in known.inputs:
            array = np.asarray(inputs[tensor.name])
            if (array.shape, array.dtype) != (tensor.shape, tensor.dtype):
                raise NnjitError(f"input '{tensor.name}': expected shape {tensor.shape} dtype {tensor.dtype}, "
                                 f"got {array.shape} {array.dtype}")  # fmt: skip
            data = to_device(array, tensor.kind, f"input '{tensor.name}'")
            if data.nbytes:
                self.device.queue.write_buffer(tensor.buffer, 0, data)
        kernels = {op.sym_name.data: op for op in module.body.block.ops if isinstance(op, KernelOp)}
        for step in known.steps:  # a kernel whose template or schedule was replaced since the last run
            pipeline = self.pipeline(kernels[step.kernel])
            if pipeline is not step.pipeline:
                step.pipeline, step.grid = pipeline, self.shader(kernels[step.kernel]).grid
                step.bind_group = self._bind_group(pipeline, step.buffers)
        return known

    def _bind(self, module: ModuleOp, weights: Mapping[str, np.ndarray] | None, key: tuple[Any, ...]) -> _Plan:
        host = plan_webgpu(module)
        buffers: list[Any] = []
        for buffer in host.buffers:
            if buffer.constant is not None:
                buffers.append(self._constant(buffer, weights))
            elif buffer.role == "slot":
                buffers.append(self._buffer(buffer.nbytes))
            else:
                buffers.append(None)
        plan = _Plan(key)
        usage = self.wgpu.BufferUsage
        for t in host.inputs:
            nbytes = storage_bytes(t.value)
            self._check_binding(nbytes, f"input '{t.name}'")
            usages = usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
            buffers[t.buffer] = self.device.create_buffer(size=nbytes, usage=usages)
            plan.inputs.append(_Tensor(t.name, t.shape, np.dtype(t.dtype), t.kind, buffers[t.buffer]))
        for step in host.steps:
            args, output = [buffers[a] for a in step.args], buffers[step.output]
            if any(a is output for a in args):
                raise NnjitError(
                    f"web.dispatch @{step.kernel.sym_name.data}: its output buffer is also one of its inputs"
                )
            pipeline = self.pipeline(step.kernel)
            plan.steps.append(_Step(step.kernel.sym_name.data, pipeline, self._bind_group(pipeline, [*args, output]),
                                    self.shader(step.kernel).grid, [*args, output]))  # fmt: skip
        for t in host.outputs:
            readback = self.device.create_buffer(size=storage_bytes(t.value), usage=usage.MAP_READ | usage.COPY_DST)
            plan.results.append(
                _Tensor(t.name, t.shape, np.dtype(t.dtype), t.kind, buffers[t.buffer], t.after, readback)
            )
        return plan

    def _bind_group(self, pipeline: _Pipeline, buffers: Sequence[Any]) -> Any:
        entries = [{"binding": i, "resource": {"buffer": b}} for i, b in enumerate(buffers)]
        return self.device.create_bind_group(layout=pipeline.layout, entries=entries)

    # --- running ---

    def _encode(self, encoder: Any, steps: Sequence[_Step], timestamps: Any = None) -> Any:
        compute = (
            encoder.begin_compute_pass(timestamp_writes=timestamps) if timestamps else encoder.begin_compute_pass()
        )
        for step in steps:
            if min(step.grid) > 0:
                compute.set_pipeline(step.pipeline.pipeline)
                compute.set_bind_group(0, step.bind_group)
                compute.dispatch_workgroups(*step.grid)
        compute.end()

    def run(
        self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Run `@main` on `inputs` (keyed by argument `nn.name`); outputs keyed by result `nn.name`."""
        plan = self._plan(module, inputs, weights)
        encoder = self.device.create_command_encoder()
        done = 0
        for point in sorted({r.after for r in plan.results}):
            self._encode(encoder, plan.steps[done : point + 1])
            done = point + 1
            for result in plan.results:
                if result.after == point:
                    encoder.copy_buffer_to_buffer(result.buffer, 0, result.readback, 0, result.readback.size)
        self._encode(encoder, plan.steps[done:])
        self.device.queue.submit([encoder.finish()])
        outputs: dict[str, np.ndarray] = {}
        for result in plan.results:
            result.readback.map_sync(self.wgpu.MapMode.READ)
            try:
                outputs[result.name] = decode(result.readback.read_mapped(), result.kind, result.shape, result.dtype)
            finally:
                result.readback.unmap()
        return outputs

    def time(
        self,
        module: ModuleOp,
        inputs: Mapping[str, np.ndarray],
        weights: Mapping[str, np.ndarray] | None = None,
        repeats: int = 10,
        warmup: int = 1,
    ) -> list[float]:
        """Seconds of each of `repeats` runs of all dispatches of `@main` (after `warmup` runs).

        GPU timestamps around one compute pass when the adapter has `timestamp-query`, else wall
        clock around submit and wait. The tuner times one kernel with a one-dispatch module.
        """
        plan = self._plan(module, inputs, weights)
        wgpu, usage, seconds = self.wgpu, self.wgpu.BufferUsage, []
        query = resolved = readback = None
        if self.timestamps:
            query = self.device.create_query_set(type=wgpu.QueryType.timestamp, count=2)
            resolved = self.device.create_buffer(size=16, usage=usage.QUERY_RESOLVE | usage.COPY_SRC)
            readback = self.device.create_buffer(size=16, usage=usage.MAP_READ | usage.COPY_DST)
        for run in range(warmup + repeats):
            encoder = self.device.create_command_encoder()
            if query is not None and readback is not None:
                writes = {"query_set": query, "beginning_of_pass_write_index": 0, "end_of_pass_write_index": 1}
                self._encode(encoder, plan.steps, writes)
                encoder.resolve_query_set(query, 0, 2, resolved, 0)
                encoder.copy_buffer_to_buffer(resolved, 0, readback, 0, 16)
                self.device.queue.submit([encoder.finish()])
                readback.map_sync(wgpu.MapMode.READ)
                start, end = np.frombuffer(readback.read_mapped(), np.uint64)
                readback.unmap()
                elapsed = float(end - start) * 1e-9  # WebGPU timestamps are nanoseconds
            else:
                self._encode(encoder, plan.steps)
                started = clock.perf_counter()
                self.device.queue.submit([encoder.finish()])
                self.wait()
                elapsed = clock.perf_counter() - started
            if run >= warmup:
                seconds.append(elapsed)
        return seconds

    def wait(self) -> None:
        """Block until all submitted work is done (a 4-byte read-back: `on_submitted_work_done_sync` of
        wgpu-py 0.32 fails on a callback signature mismatch)."""
        if self._fence is None:
            self._fence = self.device.create_buffer(size=4, usage=self.wgpu.BufferUsage.COPY_SRC)
        self.device.queue.read_buffer(self._fence)


_SHARED: list[WebGPUExecutor] = []


def shared_executor() -> WebGPUExecutor:
    """One executor per process (device creation costs ~0.1 s); the compiler's `webgpu` executor uses it."""
    if not _SHARED:
        _SHARED.append(WebGPUExecutor())
    return _SHARED[0]
