"""Web bundles: a compiled model as static files that the JS runtime (`nnjit/runtime/web/nnjit.js`) runs.

    write_bundle("dist/model", webgpu=compiled_gpu, wasm=compiled_wasm, sample=sample)

writes

    manifest.json        what to create and run (below); all model-provided strings are JSON data
    weights.bin          every weight once (deduplicated by content), in 4-byte storage
    kernels/<hash>.wgsl  one file per distinct WGSL text (every tuning variant of every kernel)
    model.*.wasm         the Wasm program: relaxed SIMD and plain (the page picks what validates), and
                         threaded builds (`threads`: shared imported memory, kernels take tid / nt)
    sample.bin           example inputs and the oracle's outputs for them (the page's self-check)

Manifest (`format` "nnjit-bundle", `version` 1):

    title, nnjit (version), inputs / outputs [{name, shape, dtype, storage}]
    content              SHA-256 over every file below: the page caches them under it (cache.js)
    weights {file, bytes}
    sample {file, inputs {name: [offset, length]}, expected {name: [offset, length]}}
    webgpu {buffers [{role, bytes, weight: [offset, length] | null}],
            kernels [{name, template, signature, inputs, variants [{schedule, file, grid, default}]}],
            steps [{kernel, args, output}], inputs / outputs [{name, shape, dtype, storage, buffer, after}],
            needs {limits {maxStorageBufferBindingSize, maxBufferSize, maxStorageBuffersPerShaderStage},
                   features [], bindingLimit, split [{bytes, pieces}]}}
    wasm   {threaded, builds [{file, relaxed, plan (HostPlan JSON), weights [[memory offset, file offset, length]]}]}

`webgpu.needs` is what the build asks of the device, which the page checks against the adapter
before it requests a device: the least value of each WebGPU limit (every buffer is bound whole, so
the largest buffer is both the binding and the buffer size), the features (none: the kernels are
fp32, `shader-f16` is never used), the binding limit the weights were split for (`nnjit export
--max-binding-bytes`; null when unknown) and, per weight split across bindings, its bytes and
pieces (sizes only: no model-provided name).

Tuning variants: each kernel lists its compiled schedule (`default`) and up to `candidates - 1`
more from its lite space under WebGPU's default limits (portable to any adapter), printed here
because the page cannot run the compiler; the page measures them on its device and keeps the
fastest that computes the same outputs (`tuner.js`). Schedules are keyed by their canonical JSON
text, the same text the kernel database stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import StringAttr

from nnjit.backends.indexing import value_kind
from nnjit.backends.wasm import TensorIO
from nnjit.backends.webgpu_plan import STORAGE, plan_webgpu
from nnjit.backends.wgsl import print_kernel
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DEFAULT_LIMITS, KernelOp, Schedule
from nnjit.errors import NnjitError

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel

FORMAT = "nnjit-bundle"
FORMAT_VERSION = 1
WEB_ROOT = Path(__file__).with_name("web")
"""The JS runtime and the page, shipped as package data."""
SITE_FILES = ("index.html", "app.js", "style.css", "nnjit.js", "tensors.js", "cache.js", "online.js", "wasm.js", "tuner.js",
              "wasm_worker.js")  # fmt: skip
"""What `export_site` copies next to the bundle."""


def schedule_key(schedule: Schedule) -> str:
    """The canonical JSON text of a schedule (how the page, the database and the service name it)."""
    from nnjit.tuner.database import schedule_to_json

    return json.dumps(schedule_to_json(schedule), separators=(",", ":"), sort_keys=True)


@dataclass
class _Blob:
    """Bytes appended to one file, each distinct content once."""

    chunks: list[bytes] = field(default_factory=list[bytes])
    size: int = 0
    seen: dict[str, tuple[int, int]] = field(default_factory=dict[str, tuple[int, int]])

    def add(self, data: bytes) -> tuple[int, int]:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self.seen:
            pad = -self.size % 16
            self.chunks.append(b"\0" * pad + data)
            self.seen[digest] = (self.size + pad, len(data))
            self.size += pad + len(data)
        return self.seen[digest]

    def write(self, path: Path) -> None:
        path.write_bytes(b"".join(self.chunks))


def _io(compiled: CompiledModel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from nnjit.runtime.reference import main_function, to_numpy_dtype

    main = main_function(compiled.module)

    def spec(name: str, value: Any) -> dict[str, Any]:
        return {"name": name, "shape": list(nn.tensor_shape(value)), "dtype": str(to_numpy_dtype(nn.element_type(value))),
                "storage": STORAGE.get(value_kind(value), "f32")}  # fmt: skip

    results = main.body.block.last_op
    assert results is not None
    inputs = [spec(n, a) for n, a in zip(compiled.input_names, main.body.block.args, strict=True)]
    outputs = [spec(n, v) for n, v in zip(compiled.output_names, results.operands, strict=True)]
    return inputs, outputs


def _variants(kernel: KernelOp, candidates: int) -> list[tuple[Schedule, KernelOp]]:
    """The kernel as compiled first, then lite-space candidates valid under WebGPU's default limits,
    each with the (verified) kernel clone that carries it."""
    from xdsl.utils.exceptions import VerifyException

    from nnjit.tuner.harness import kernel_module
    from nnjit.tuner.lite import webgpu_lite_space

    chosen = [(kernel.schedule.values, kernel)]
    attributes = {"web.target": StringAttr("webgpu"), "web.limits": DEFAULT_LIMITS}
    for schedule in webgpu_lite_space(kernel, DEFAULT_LIMITS).candidates:
        if len(chosen) >= candidates:
            break
        if any(schedule == known for known, _ in chosen):
            continue
        try:
            chosen.append((schedule, kernel_module(kernel, schedule, attributes)[1]))
        except VerifyException:
            continue
    return chosen


def _webgpu_section(compiled: CompiledModel, weights: _Blob, directory: Path, candidates: int) -> dict[str, Any]:
    from nnjit.runtime.reference import constant_value
    from nnjit.runtime.webgpu import to_device
    from nnjit.tuner.signature import kernel_signature

    plan = plan_webgpu(compiled.module)
    (directory / "kernels").mkdir(exist_ok=True)
    kernel_index: dict[KernelOp, int] = {}
    kernels: list[dict[str, Any]] = []
    for step in plan.steps:
        if step.kernel in kernel_index:
            continue
        kernel_index[step.kernel] = len(kernels)
        variants = []
        for number, (schedule, clone) in enumerate(_variants(step.kernel, candidates)):
            shader = print_kernel(clone)
            name = f"kernels/{hashlib.sha256(shader.text.encode()).hexdigest()[:20]}.wgsl"
            (directory / name).write_text(shader.text)
            variants.append({"schedule": schedule_key(schedule), "file": name, "grid": list(shader.grid),
                             "default": number == 0})  # fmt: skip
        kernels.append({"name": step.kernel.sym_name.data, "template": step.kernel.template.data,
                        "signature": kernel_signature(step.kernel).digest, "inputs": len(step.args),
                        "storage": STORAGE[value_kind(step.kernel.root)],
                        "elements": shapes.numel(nn.tensor_shape(step.kernel.root)), "variants": variants})  # fmt: skip
    buffers = []
    for buffer in plan.buffers:
        weight = None
        if buffer.constant is not None:
            array = constant_value(buffer.constant, compiled.weights)
            start, _ = weights.add(to_device(array, value_kind(buffer.constant.result), "constant").tobytes())
            weight = [start + buffer.offset, buffer.nbytes]
        buffers.append({"role": buffer.role, "bytes": buffer.nbytes, "weight": weight})
    return {
        "buffers": buffers,
        "kernels": kernels,
        "steps": [{"kernel": kernel_index[s.kernel], "args": list(s.args), "output": s.output} for s in plan.steps],
        "inputs": [t.to_json() for t in plan.inputs],
        "outputs": [t.to_json() for t in plan.outputs],
        "needs": _device_needs(compiled, buffers, kernels),
    }


def _device_needs(
    compiled: CompiledModel, buffers: list[dict[str, Any]], kernels: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the WebGPU build needs of the device (`webgpu.needs`, see the module docstring)."""
    from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, IntegerAttr

    from nnjit.passes.web_split_bindings import SPLIT_ATTRIBUTE

    largest = max((max(4, b["bytes"]) for b in buffers), default=4)  # buffers are created at least 4 bytes
    needs: dict[str, Any] = {
        "limits": {"maxStorageBufferBindingSize": largest, "maxBufferSize": largest,
                   "maxStorageBuffersPerShaderStage": max((k["inputs"] + 1 for k in kernels), default=1)},
        "features": [], "bindingLimit": None, "split": [],
    }  # fmt: skip
    split = compiled.module.attributes.get(SPLIT_ATTRIBUTE)
    if isinstance(split, DictionaryAttr):
        limit, sizes, pieces = (split.data.get(key) for key in ("max_bytes", "weights", "pieces"))
        if isinstance(limit, IntegerAttr) and isinstance(sizes, DenseArrayBase) and isinstance(pieces, DenseArrayBase):
            needs["bindingLimit"] = int(limit.value.data)
            needs["split"] = [{"bytes": int(b), "pieces": int(n)}
                              for b, n in zip(sizes.get_values(), pieces.get_values(), strict=True)]  # fmt: skip
    return needs


def _wasm_variants(compiled: CompiledModel, candidates: int) -> dict[str, list[Schedule]]:
    """Per kernel, up to `candidates - 1` other schedules of its Wasm lite space (pruned for the exporting
    machine's CPU; every candidate is valid anywhere, only its speed is the page's to measure)."""
    from nnjit.tuner.lite_wasm import wasm_lite_space

    variants: dict[str, list[Schedule]] = {}
    for kernel in compiled.kernels:
        current = kernel.schedule.values
        others = [s for s in wasm_lite_space(kernel).candidates if s != current]
        if others and candidates > 1:
            variants[kernel.sym_name.data] = others[: candidates - 1]
    return variants


def _wasm_section(
    compiled: CompiledModel, weights: _Blob, directory: Path, threads: bool, candidates: int
) -> dict[str, Any]:
    """Relaxed and plain builds, single-threaded and (with `threads`) threaded, each with its weight layout."""
    from nnjit.backends.wasm import build_program

    variants = _wasm_variants(compiled, candidates)
    builds: list[dict[str, Any]] = []
    for threaded in (False, True) if threads else (False,):
        for relaxed in (True, False):
            program = build_program(compiled.module, compiled.weights, relaxed, threads=threaded, variants=variants)
            name = f"model.{'threads.' if threaded else ''}{'relaxed' if relaxed else 'plain'}.wasm"
            (directory / name).write_bytes(program.binary)
            placed = [[offset, *weights.add(data)] for offset, data in program.plan.weights]
            builds.append({"file": name, "relaxed": relaxed, "plan": program.plan.to_json(), "weights": placed})
    return {"threaded": threads, "builds": builds}


def tensor_io(spec: Mapping[str, Any]) -> TensorIO:
    """A manifest tensor (`{name, shape, dtype, storage}`) as the Wasm host plan's `TensorIO`: what
    `nnjit.runtime.wasm.tensor_bytes` converts numpy arrays to 4-byte storage with."""
    kind = {"f32": "f32", "u32": "bool"}.get(spec["storage"], "i64" if spec["dtype"] == "int64" else "i32")
    return TensorIO(spec["name"], 0, tuple(spec["shape"]), spec["dtype"], kind)


def _sample(values: Mapping[str, np.ndarray], specs: list[dict[str, Any]], blob: _Blob, what: str) -> dict[str, Any]:
    from nnjit.backends.wasm import to_storage

    index: dict[str, Any] = {}
    for spec in specs:
        if spec["name"] not in values:
            raise NnjitError(f"the {what} have no '{spec['name']}'")
        array = np.asarray(values[spec["name"]])
        index[spec["name"]] = list(
            blob.add(to_storage(array, tensor_io(spec).storage, f"{what} '{spec['name']}'").tobytes())
        )
    return index


def write_bundle(directory: str | os.PathLike[str], webgpu: CompiledModel | None = None, wasm: CompiledModel | None = None,
                 sample: Mapping[str, np.ndarray] | None = None, expected: Mapping[str, np.ndarray] | None = None,
                 title: str = "model", candidates: int = 8, threads: bool = True) -> Path:  # fmt: skip
    """Write the bundle of a model compiled for WebGPU and/or Wasm into `directory` (see the module docstring)."""
    if webgpu is None and wasm is None:
        raise NnjitError("a bundle needs a model compiled for 'webgpu' or 'wasm'")
    for compiled, target in ((webgpu, "webgpu"), (wasm, "wasm")):
        if compiled is not None and compiled.target != target:
            raise NnjitError(f"the {target} build of a bundle must be compiled with target='{target}', "
                             f"not '{compiled.target}'")  # fmt: skip
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    first = webgpu if webgpu is not None else wasm
    assert first is not None
    inputs, outputs = _io(first)
    weights, samples = _Blob(), _Blob()
    manifest: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "title": str(title),
                                "nnjit": _version(), "inputs": inputs, "outputs": outputs}  # fmt: skip
    if webgpu is not None:
        manifest["webgpu"] = _webgpu_section(webgpu, weights, out, max(1, candidates))
    if wasm is not None:
        manifest["wasm"] = _wasm_section(wasm, weights, out, threads, max(1, candidates))
    manifest["weights"] = {"file": "weights.bin", "bytes": weights.size}
    weights.write(out / "weights.bin")
    if sample is not None:
        manifest["sample"] = {"file": "sample.bin", "inputs": _sample(sample, inputs, samples, "sample inputs")}
        if expected is not None:
            manifest["sample"]["expected"] = _sample(expected, outputs, samples, "expected outputs")
        samples.write(out / "sample.bin")
    manifest["content"] = _content_hash(out, manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def _content_hash(directory: Path, manifest: Mapping[str, Any]) -> str:
    """SHA-256 over every file the manifest names: the page keeps them in the Cache API under it."""
    files = {manifest["weights"]["file"]}
    if "sample" in manifest:
        files.add(manifest["sample"]["file"])
    for kernel in manifest.get("webgpu", {}).get("kernels", []):
        files.update(variant["file"] for variant in kernel["variants"])
    files.update(build["file"] for build in manifest.get("wasm", {}).get("builds", []))
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256((directory / name).read_bytes()).digest())
    return digest.hexdigest()


def export_site(directory: str | os.PathLike[str], **bundle: Any) -> Path:
    """A static site: the page and runtime at `directory`, the bundle in `directory/model/`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name in SITE_FILES:
        shutil.copyfile(WEB_ROOT / name, out / name)
    write_bundle(out / "model", **bundle)
    return out


def _version() -> str:
    from nnjit import __version__

    return __version__
