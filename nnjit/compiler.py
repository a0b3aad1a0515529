"""The library entry point: `nnjit.compile(model, target=...)` and the compiled model it returns.

    import nnjit
    compiled = nnjit.compile("gpt2.onnx", shapes={"input_ids": (1, 16)})
    outputs = compiled.run({"input_ids": ids})
    print(compiled.ir_at("import"))          # IR as imported
    print(compiled.ir_at("nn-recognize-patterns"))
    compiled.save("gpt2.mlir")               # gpt2.mlir + gpt2.weights.npz

Each target names a pass pipeline in `PIPELINES`, written in `nnjit-opt -p` syntax, so any stage can
be reproduced on the command line from the saved IR.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline
from xdsl.printer import Printer

from nnjit.context import make_context
from nnjit.dialects.web import DEFAULT_LIMITS, KernelOp
from nnjit.errors import NnjitError
from nnjit.frontend.onnx import import_onnx
from nnjit.weights import WeightStore

if TYPE_CHECKING:
    from nnjit.runtime.artifact_cache import ArtifactCache, CacheEntry
    from nnjit.runtime.online import OnlineSession
    from nnjit.tuner.tune import TuningReport

NN_PIPELINE = "canonicalize,nn-recognize-patterns,canonicalize"
WEB_PIPELINE = f"{NN_PIPELINE},nn-decompose-gemm,convert-nn-to-web,web-split-bindings,web-plan-buffers"
WASM_PIPELINE = f"{NN_PIPELINE},nn-decompose-gemm,convert-nn-to-web{{target=wasm}},web-plan-buffers"

PIPELINES: dict[str, str] = {
    "reference": NN_PIPELINE,
    "webgpu": WEB_PIPELINE,
    "wasm": WASM_PIPELINE,
}
"""The pass pipeline of each target, in `-p` syntax."""

Executor = Callable[[ModuleOp, Mapping[str, np.ndarray], WeightStore], dict[str, np.ndarray]]


def _reference_executor(
    module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: WeightStore
) -> dict[str, np.ndarray]:
    from nnjit.runtime.reference import run_module
    from nnjit.runtime.web_reference import run_web_module

    lowered = any(isinstance(op, KernelOp) for op in module.body.block.ops)
    return (run_web_module if lowered else run_module)(module, inputs, weights)


def _webgpu_executor(module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: WeightStore) -> dict[str, np.ndarray]:
    from nnjit.runtime.webgpu import shared_executor

    return shared_executor().run(module, inputs, weights)


def _wasm_executor(module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: WeightStore) -> dict[str, np.ndarray]:
    from nnjit.runtime.wasm import shared_wasmtime

    return shared_wasmtime().run(module, inputs, weights)


def _node_executor(module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: WeightStore) -> dict[str, np.ndarray]:
    from nnjit.runtime.wasm import shared_node

    return shared_node().run(module, inputs, weights)


def _chromium_executor(target: str) -> Executor:
    def run(module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: WeightStore) -> dict[str, np.ndarray]:
        from nnjit.runtime.chromium import run_in_chromium

        return run_in_chromium(module, inputs, weights, target).outputs

    return run


EXECUTORS: dict[str, Executor] = {
    "reference": _reference_executor,
    "webgpu": _webgpu_executor,
    "wasm": _wasm_executor,
    "node": _node_executor,
    "chromium-webgpu": _chromium_executor("webgpu"),
    "chromium-wasm": _chromium_executor("wasm"),
}
"""Executors by name; each runs a module of its target on numpy inputs."""


def print_module(module: ModuleOp, debuginfo: bool = False) -> str:
    """The textual IR of a module (locations shown with `debuginfo`)."""
    stream = io.StringIO()
    Printer(stream=stream, print_debuginfo=debuginfo).print_op(module)
    return stream.getvalue() + "\n"


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Every pass xDSL and its plugins (nnjit included) register, by name."""
    from xdsl.universe import Universe

    from nnjit.universe import NNJIT_UNIVERSE

    # nnjit's own passes are merged in explicitly so that a source checkout that was never
    # pip-installed (no `xdsl.universe` entry point) still compiles.
    return {**Universe.get_multiverse().all_passes, **NNJIT_UNIVERSE.all_passes}


@dataclass
class CompiledModel:
    """A model compiled for one target: its IR at every stage, its weights, and a way to run it."""

    target: str
    module: ModuleOp
    weights: WeightStore
    input_names: list[str]
    output_names: list[str]
    stages: MutableMapping[str, ModuleOp] = field(default_factory=dict[str, ModuleOp])
    stage_seconds: dict[str, float] = field(default_factory=dict[str, float])
    cache: CacheEntry | None = None
    """Where the compile cache holds this model (`nnjit.runtime.artifact_cache`); `cache.hit` when it came from there."""

    def ir_at(self, stage: str, debuginfo: bool = False) -> str:
        """The IR after `stage` ("import" or a pass name of the pipeline), as text."""
        if stage not in self.stages:
            raise NnjitError(f"no stage '{stage}'; stages are {', '.join(self.stages)}")
        return print_module(self.stages[stage], debuginfo)

    @property
    def kernels(self) -> list[KernelOp]:
        """The `web.kernel`s of a lowered module, in order (empty before lowering)."""
        return [op for op in self.module.body.block.ops if isinstance(op, KernelOp)]

    @property
    def wgsl(self) -> dict[str, str]:
        """The WGSL compute shader of each kernel, by kernel name."""
        from nnjit.backends.wgsl import print_kernel

        return {kernel.sym_name.data: print_kernel(kernel).text for kernel in self.kernels}

    @property
    def ir(self) -> str:
        """The final IR as text."""
        return print_module(self.module)

    def run(self, inputs: Mapping[str, np.ndarray], executor: str | None = None) -> dict[str, np.ndarray]:
        """Run on numpy inputs keyed by the model's input names; outputs keyed by output names."""
        name = executor or self.target
        if name not in EXECUTORS:
            raise NnjitError(f"unknown executor '{name}'; available: {', '.join(EXECUTORS)}")
        if self.cache is None:
            return EXECUTORS[name](self.module, inputs, self.weights)
        self.cache.before_run(name, self.module, self.weights)
        outputs = EXECUTORS[name](self.module, inputs, self.weights)
        self.cache.after_run(name, self.module, self.weights)
        return outputs

    def run_timed(
        self, inputs: Mapping[str, np.ndarray], executor: str | None = None, repeats: int = 10
    ) -> tuple[dict[str, np.ndarray], list[float]]:
        """Run `repeats` times; the last outputs and the seconds of each run.

        The chromium executors time in the page (`performance.now()` around the JS runtime's run:
        inputs in, outputs back in JS); the others time the Python call.
        """
        name = executor or self.target
        if name.startswith("chromium-"):
            from nnjit.runtime.chromium import page_for

            result = page_for(self.module, self.weights, name.removeprefix("chromium-")).run(
                name.removeprefix("chromium-"), inputs, repeats
            )
            return result.outputs, [ms / 1e3 for ms in result.ms]
        seconds: list[float] = []
        outputs: dict[str, np.ndarray] = {}
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            outputs = self.run(inputs, name)
            seconds.append(time.perf_counter() - started)
        return outputs, seconds

    def export(self, directory: str | os.PathLike[str], **options: Any) -> Path:
        """Write a static site running this model in the browser (`nnjit.runtime.bundle.export_site`).

        `options`: `sample` / `expected` inputs and outputs for the page's self-check, `title`,
        `candidates` (tuning variants per kernel). Use `nnjit.export` for a site with both backends.
        """
        from nnjit.runtime.bundle import export_site

        if self.target not in ("webgpu", "wasm"):
            raise NnjitError(f"only models compiled for 'webgpu' or 'wasm' can be exported, not '{self.target}'")
        return export_site(directory, **{self.target: self}, **options)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the IR to `path` and the weights beside it (`m.mlir` -> `m.weights.npz`)."""
        target = Path(path)
        target.write_text(self.ir)
        self.weights.save(WeightStore.path_beside(target))
        return target

    def tune(self, budget: float = 30.0, **options: Any) -> TuningReport:
        """Tune this model's kernels on its target's device (`nnjit.tuner.tune.tune`); returns the report."""
        from nnjit.tuner.tune import tune

        return tune(self, budget, **options)

    def online(self, budget: float = 30.0, margin: float = 0.03, **options: Any) -> OnlineSession:
        """A session whose `run` answers at once while its kernels are tuned in the background
        (`nnjit.runtime.online.OnlineSession`, docs/online-jit-native.md); close it, or use `with`."""
        from nnjit.runtime.online import OnlineSession

        return OnlineSession(self, budget, margin, **options)


def compile(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    shapes: Mapping[str, Sequence[int]] | None = None,
    target: str = "reference",
    pipeline: str | None = None,
    kernel_db: str | os.PathLike[str] | bool | None = None,
    cache: str | os.PathLike[str] | ArtifactCache | bool | None = None,
    max_binding_bytes: int | None = None,
) -> CompiledModel:
    """Import an ONNX model specialised to `shapes` and run the target's pass pipeline on it.

    With the target's default pipeline, tuned schedules from the kernel database (`kernel_db`: a
    path, None for the user cache file, False for none) are applied by a last `web-apply-schedules`.
    For `webgpu` and `wasm` with the default pipeline, the lowered module and its code come from the
    compile cache when it has them (`cache`: a folder or `ArtifactCache`, None for the user cache
    folder, False for none; `nnjit.runtime.artifact_cache`). `max_binding_bytes` (webgpu only) plans
    for a device whose storage bindings hold at most that many bytes (WebGPU's
    `maxStorageBufferBindingSize`; default 128 MiB): weights larger than it are split across bindings
    (`web-split-bindings`).
    """
    if target not in PIPELINES:
        raise NnjitError(f"unknown target '{target}'; available: {', '.join(PIPELINES)}")
    default_pipeline = target_pipeline(target, max_binding_bytes)
    if max_binding_bytes is not None and pipeline is not None:
        raise NnjitError("max_binding_bytes sets the webgpu pipeline's binding limit; with a pipeline of your own, "
                         "give it to both passes (as target_pipeline('webgpu', N) does): "
                         "convert-nn-to-web{max-binding-bytes=N} and web-split-bindings{max-bytes=N}")  # fmt: skip

    def build() -> CompiledModel:
        started = time.perf_counter()
        imported = import_onnx(model, shapes)
        built = CompiledModel(target, imported.module, imported.weights, imported.input_names, imported.output_names)
        built.stages["import"] = imported.module.clone()
        built.stage_seconds["import"] = time.perf_counter() - started
        run_pipeline(built, pipeline if pipeline is not None else default_pipeline)
        return built

    from nnjit.runtime.artifact_cache import CACHED_TARGETS, cached_compile

    if pipeline is None and cache is not False and target in CACHED_TARGETS:
        folder = None if cache is None or cache is True else cache
        # The spec is part of the cache key, so a lowered binding limit never gets a default-limit entry.
        compiled = cached_compile(model, shapes, target, default_pipeline, folder, build)
    else:
        compiled = build()
    if pipeline is None and kernel_db is not False:
        from nnjit.tuner.apply import apply_schedules_spec

        run_pipeline(compiled, apply_schedules_spec(target, None if kernel_db is True else kernel_db) or "")
    return compiled


def target_pipeline(target: str, max_binding_bytes: int | None = None) -> str:
    """The target's pipeline (`PIPELINES`), for webgpu with weights split to fit `max_binding_bytes`."""
    if max_binding_bytes is None:
        return PIPELINES[target]
    if target != "webgpu":
        raise NnjitError(f"max_binding_bytes is a WebGPU limit; target '{target}' has no storage bindings")
    if type(max_binding_bytes) is not int or max_binding_bytes < 4:  # bool and float are no byte counts
        raise NnjitError(
            f"the storage binding limit must be a whole number of bytes, at least 4; got {max_binding_bytes!r}"
        )
    if max_binding_bytes == DEFAULT_LIMITS.binding.data:
        return PIPELINES[target]  # the same compile (and cache entry) as no limit at all
    return (
        PIPELINES[target]
        .replace("convert-nn-to-web", f"convert-nn-to-web{{max-binding-bytes={max_binding_bytes}}}")
        .replace("web-split-bindings", f"web-split-bindings{{max-bytes={max_binding_bytes}}}")
    )


def run_pipeline(compiled: CompiledModel, spec: str) -> None:
    """Apply a `-p` pipeline to the compiled module, snapshotting the IR and time after each pass."""
    if not spec:
        return
    clock = [time.perf_counter()]
    seen: dict[str, int] = {}

    def snapshot(previous: ModulePass | None, module: ModuleOp, _next: ModulePass | None) -> None:
        if previous is None:
            return
        count = seen[previous.name] = seen.get(previous.name, 0) + 1
        key = previous.name if count == 1 else f"{previous.name}#{count}"
        compiled.stages[key] = module.clone()
        now = time.perf_counter()
        compiled.stage_seconds[key] = now - clock[0]
        clock[0] = now

    try:
        pipeline = PassPipeline.parse_spec(available_passes(), spec, snapshot)
    except ValueError as error:
        raise NnjitError(f"bad pipeline '{spec}': {error}") from None
    pipeline.apply(make_context(), compiled.module)
    compiled.module.verify()


def sample_inputs(compiled: CompiledModel, seed: int = 0, int_high: int = 2) -> dict[str, np.ndarray]:
    """Deterministic inputs for a compiled model: floats in [-1, 1), integers in [0, `int_high`), booleans.

    The default keeps integers at 0 and 1 so that any index input (token ids, positions) is in range
    for any model.
    """
    from nnjit.dialects import nn
    from nnjit.runtime.reference import main_function, to_numpy_dtype

    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for name, arg in zip(compiled.input_names, main_function(compiled.module).body.block.args, strict=True):
        shape, dtype = nn.tensor_shape(arg), np.dtype(to_numpy_dtype(nn.element_type(arg)))
        if dtype == np.bool_:
            values[name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            values[name] = rng.integers(0, int_high, shape).astype(dtype)
        else:
            values[name] = rng.uniform(-1, 1, shape).astype(dtype)
    return values


def export(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    directory: str | os.PathLike[str],
    shapes: Mapping[str, Sequence[int]] | None = None,
    backends: Sequence[str] = ("webgpu", "wasm"),
    inputs: Mapping[str, np.ndarray] | None = None,
    title: str | None = None,
    candidates: int = 8,
    kernel_db: str | os.PathLike[str] | bool | None = None,
    max_binding_bytes: int | None = None,
) -> Path:
    """Compile `model` for each backend and write a static site that runs it in the browser.

    The site (`nnjit.runtime.bundle`) holds the page, the JS runtime and the bundle, with `inputs`
    (default: `sample_inputs`) and the oracle's outputs for them, so the page checks itself.
    `max_binding_bytes`: compile the WebGPU build for a device whose storage bindings hold at most
    that many bytes (see `compile`; the manifest records it, the page checks the adapter against it).
    """
    unknown = [b for b in backends if b not in ("webgpu", "wasm")]
    if unknown or not backends:
        raise NnjitError(f"export backends are 'webgpu' and 'wasm'; got {list(backends)}")
    if max_binding_bytes is not None and "webgpu" not in backends:
        raise NnjitError("a storage binding limit applies to the webgpu backend, which this export leaves out")
    from nnjit.runtime.bundle import export_site

    builds = {
        backend: compile(model, shapes, backend, kernel_db=kernel_db,
                         max_binding_bytes=max_binding_bytes if backend == "webgpu" else None)
        for backend in backends
    }  # fmt: skip
    first = next(iter(builds.values()))
    sample = dict(inputs) if inputs is not None else sample_inputs(first)
    expected = compile(model, shapes).run(sample)
    if title is None:
        title = Path(os.fspath(model)).stem if isinstance(model, str | os.PathLike) else "model"
    return export_site(directory, **builds, sample=sample, expected=expected, title=title, candidates=candidates)
