"""Whole paper models on native WebGPU (wgpu-native): nnjit, default and tuned, next to torch fp32 on CUDA.

    python benchmarks/paper_native.py                                  # all five paper models
    python benchmarks/paper_native.py --models t5-encoder --repeats 2 --tune-budget 5   # a smoke run
    python benchmarks/paper_native.py --models gpt2 bart --markdown docs/benchmarks/paper-native.md

For each model of `nnjit.models.paper` (random weights, exported on first use into `--cache`), at its
paper shape: onnxruntime on the CPU gives the reference outputs (graph optimisations off, as the
export's own verification); `nnjit.compile(..., target="webgpu")` with the default schedules (no kernel
database; weights split only beyond the device's own storage binding limit, as
`matmul_webgpu.py --scale paper`) is timed, then `compiled.tune(budget)` and timed again. GPU ms is the
median over `--repeats` of all of a run's dispatches, between timestamps around its one compute pass
(wall clock around submit and wait where the adapter has no `timestamp-query`); wall ms is the median
of `compiled.run` (inputs written, dispatches, outputs read back). torch runs the same seeded module
(`paper_torch_model`) in eager fp32 on CUDA with TF32 off, timed with CUDA events after warm-up.
Errors are max |x - onnxruntime| over the model's output, for nnjit (default and tuned) and torch.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

import nnjit
from nnjit.compiler import PIPELINES
from nnjit.models.paper import PAPER_MODELS, PaperModel, Progress, export_paper_model, paper_models, paper_torch_model
from nnjit.runtime.webgpu import shared_executor
from nnjit.tuner.lite_wasm import WasmCpu

COLUMNS = (
    "model",
    "shape",
    "params",
    "nnjit default ms (GPU / wall)",
    "nnjit tuned ms (GPU / wall)",
    "torch fp32 ms",
    "nnjit tuned / torch",
    "max abs err vs ort (default / tuned / torch)",
    "compile s",
    "tuning s",
)


@dataclass
class Row:
    """One model's measurements (None where a step did not run)."""

    name: str
    shape: str
    params: int = 0
    default_gpu: float | None = None
    default_wall: float | None = None
    tuned_gpu: float | None = None
    tuned_wall: float | None = None
    torch_ms: float | None = None
    errors: list[float | None] = field(default_factory=lambda: [None, None, None])
    scale: float = 0.0
    compile_s: float | None = None
    tuning_s: float | None = None
    tuned_kernels: str = ""
    note: str = ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ort_reference(path: Path, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    """The model's output in onnxruntime on the CPU, graph optimisations off."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], inputs)[0])


def max_error(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != reference {want.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))


def torch_cuda(module: Any, inputs: dict[str, np.ndarray], names: tuple[str, ...], repeats: int) -> tuple[float, Any]:
    """Median ms of the module on CUDA in fp32 (TF32 off), and its output as numpy."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    module = module.to("cuda").eval()
    args = [torch.from_numpy(inputs[n]).to("cuda") for n in names]
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples: list[float] = []
    with torch.no_grad():
        output = module(*args)
        for _ in range(2):
            output = module(*args)
        torch.cuda.synchronize()
        for _ in range(repeats):
            start.record()
            output = module(*args)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
    result = output.float().cpu().numpy()
    module.to("cpu")
    torch.cuda.empty_cache()
    return statistics.median(samples), result


def time_nnjit(compiled: nnjit.CompiledModel, inputs: dict[str, np.ndarray], repeats: int) -> tuple[float, float, Any]:
    """Median GPU ms and wall ms of the compiled model on the shared executor, and its outputs."""
    executor = shared_executor()
    outputs = compiled.run(inputs)  # binds the module: pipelines, weight buffers
    gpu = statistics.median(executor.time(compiled.module, inputs, compiled.weights, repeats=repeats, warmup=1)) * 1e3
    walls: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        outputs = compiled.run(inputs)
        walls.append((time.perf_counter() - started) * 1e3)
    return gpu, statistics.median(walls), outputs


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def measure(model: PaperModel, args: argparse.Namespace, pipeline: str, progress: Progress) -> Row:
    spec = model.spec
    row = Row(model.name, f"{spec.batch}x{spec.seq}")
    output = spec.model.outputs[0]
    torch_module: Any = None
    if importlib.util.find_spec("torch") is not None:
        with progress.stage(model.name, "init") as notes:
            torch_module = paper_torch_model(model)
            row.params = sum(p.numel() for p in torch_module.parameters())
            notes.append(f"{row.params / 1e6:.1f}M parameters")
    path = export_paper_model(model, verify=False, progress=progress, label=model.name, torch_model=torch_module)
    inputs = model.example_inputs()
    with progress.stage(model.name, "ort") as notes:
        reference = ort_reference(path, inputs, output)
        row.scale = float(np.max(np.abs(reference)))
        notes.append(f"max |output| {row.scale:.3g}")
    if torch_module is not None and has_cuda():
        with progress.stage(model.name, "torch") as notes:
            row.torch_ms, got = torch_cuda(torch_module, inputs, spec.model.input_names, args.repeats)
            row.errors[2] = max_error(got, reference)
            notes.append(f"{row.torch_ms:.2f} ms, max err {row.errors[2]:.2e}")
    del torch_module
    gc.collect()
    with progress.stage(model.name, "compile") as notes:
        started = time.perf_counter()
        compiled = nnjit.compile(path, model.shapes, target="webgpu", pipeline=pipeline, kernel_db=False, cache=False)
        row.compile_s = time.perf_counter() - started
        notes.append(f"{len(compiled.kernels)} kernels, {len({k.template for k in compiled.kernels})} templates")
    with progress.stage(model.name, "default") as notes:
        first = time.perf_counter()
        compiled.run(inputs)
        notes.append(f"first run {time.perf_counter() - first:.1f} s")
        row.default_gpu, row.default_wall, outputs = time_nnjit(compiled, inputs, args.repeats)
        row.errors[0] = max_error(outputs[output], reference)
        notes.append(f"{row.default_gpu:.2f} ms GPU, {row.default_wall:.2f} ms wall, max err {row.errors[0]:.2e}")
    if args.tune_budget > 0:
        with progress.stage(model.name, "tune") as notes, tempfile.TemporaryDirectory() as scratch:
            report = compiled.tune(args.tune_budget, database=Path(scratch) / "kernels.sqlite", progress=False)
            row.tuning_s = report.wall_seconds
            done = sum(1 for k in report.kernels if k.measured)
            row.tuned_kernels = (
                f"{done}/{len(report.kernels)} kernel signatures, {report.candidates_measured} candidates"
            )
            notes.append(row.tuned_kernels)
        with progress.stage(model.name, "tuned") as notes:
            row.tuned_gpu, row.tuned_wall, outputs = time_nnjit(compiled, inputs, args.repeats)
            row.errors[1] = max_error(outputs[output], reference)
            notes.append(f"{row.tuned_gpu:.2f} ms GPU, {row.tuned_wall:.2f} ms wall, max err {row.errors[1]:.2e}")
    del compiled
    gc.collect()
    return row


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        best = r.tuned_gpu if r.tuned_gpu is not None else r.default_gpu
        ratio = f"{best / r.torch_ms:.2f}x" if best is not None and r.torch_ms else "n/a"
        errors = " / ".join(fmt(e, ".1e") for e in r.errors)
        cells = [
            r.name + (f" ({r.note})" if r.note else ""),
            r.shape,
            f"{r.params / 1e6:.0f}M" if r.params else "n/a",
            f"{fmt(r.default_gpu)} / {fmt(r.default_wall)}",
            f"{fmt(r.tuned_gpu)} / {fmt(r.tuned_wall)}",
            fmt(r.torch_ms),
            ratio,
            f"{errors} (max abs output {r.scale:.3g})" if r.scale else errors,
            fmt(r.compile_s, ".1f"),
            fmt(r.tuning_s, ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> str:
    executor = shared_executor()
    info = dict(executor.adapter.info)
    adapter = f"{info.get('device', '?')} ({info.get('backend_type', '?')}, driver {info.get('description', '?')})"
    timing = "GPU timestamps" if executor.timestamps else "wall clock around submit (no timestamp-query)"
    cpu = f"CPU: {WasmCpu.detect().model} ({os.cpu_count()} CPUs), {platform.node()}, {platform.machine()}"
    parts = [f"adapter: {adapter}; {timing}", cpu]
    if has_cuda():
        import torch

        parts.append(f"torch {torch.__version__} on {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})")
    else:
        parts.append("torch: no CUDA device here")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(PAPER_MODELS), default=list(PAPER_MODELS))
    parser.add_argument("--tune-budget", type=float, default=30.0, help="tuning seconds per model (0: no tuning)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (medians)")
    parser.add_argument("--cache", type=Path, default=None, help="where the exports live (default: the user cache)")
    parser.add_argument("--markdown", type=Path, help="append the table (rewritten after each model) to FILE")
    args = parser.parse_args()
    executor = shared_executor()
    binding = int(executor.device.limits["max-storage-buffer-binding-size"])
    pipeline = PIPELINES["webgpu"].replace("web-split-bindings", f"web-split-bindings{{max-bytes={binding}}}")
    about = environment()
    log(about)
    command = "python benchmarks/paper_native.py --models " + " ".join(args.models)
    command += f" --tune-budget {args.tune_budget:g} --repeats {args.repeats}"
    head = args.markdown.read_text() if args.markdown and args.markdown.exists() else ""
    progress = Progress()
    rows: list[Row] = []
    for model in paper_models(args.cache, args.models):
        try:
            rows.append(measure(model, args, pipeline, progress))
        except Exception as error:  # one failing model leaves the others' rows
            log(f"{model.name}: FAILED: {type(error).__name__}: {error}")
            rows.append(Row(model.name, f"{model.spec.batch}x{model.spec.seq}", note=f"failed: {type(error).__name__}"))
        text = table(rows)
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            section = f"\n## {date.today().isoformat()}\n\n{about}\n\n`{command}`\n\n{text}\n"
            args.markdown.write_text(head + section)
    print(table(rows))
    print(f"\n{about}\n{command}")
    for r in rows:
        if r.tuned_kernels:
            print(f"{r.name}: tuned {r.tuned_kernels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
