"""Just-in-time tuning per zoo model and backend: space sizes, tuning time, default vs tuned latency.

    python benchmarks/tuning.py [--models gpt2,bart,t5,roberta,llama] [--backends webgpu,wasm]
                                [--budget 30] [--matmuls 384x768x3072,...] [--markdown docs/benchmarks/tuning.md]
    python benchmarks/tuning.py --scale paper --models t5-encoder,gpt2 --budget 120

For each model (at the paper's sequence length where the zoo allows it: GPT-2 at 10 tokens, the
others at the zoo's longest, 64, and RoBERTa's 62) and backend: compile with default schedules,
tune within the budget into a fresh kernel database (every candidate checked against the oracle),
then time the default and the tuned model in turn, three rounds (each a median of 20 runs after 3
warm-up runs: GPU timestamps around the one compute pass on WebGPU, wall clock around `run` on
Wasm; the table has the median round), and check the tuned outputs against the reference executor. `--matmuls` adds one-MatMul models (MxKxN) as extra rows.
`--scale paper` tunes `nnjit.models.paper`'s models at their paper shapes instead (exported on first use).
Driver shader caches are switched off (Mesa, NVIDIA), so each candidate's compile is as cold as on a
first page load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import nnjit
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path
from nnjit.tuner.backend import get_backend
from nnjit.tuner.measure import Timing

SEQUENCE = {"gpt2": 10, "roberta": 62, "bart": 64, "t5": 64, "llama": 64}
"""The paper's lengths (GPT-2 10, RoBERTa / BART 384, T5 256) capped at the zoo's position tables."""


@dataclass
class Row:
    model: str
    backend: str
    kernels: int
    unique: int
    lite_mean: float
    lite_max: int
    full_mean: float
    measured: int
    tuning_seconds: float
    default_ms: float
    tuned_ms: float
    exhausted: bool
    max_error: float

    @property
    def speedup(self) -> float:
        return self.default_ms / self.tuned_ms


def matmul_model(m: int, k: int, n: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], initializer=[w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {"x": rng.standard_normal((m, k)).astype(np.float32)}


def model_seconds(backend: str, module: Any, weights: Any, inputs: dict[str, np.ndarray]) -> float:
    """Median seconds of one whole-model run on the backend's executor."""
    if backend == "webgpu":
        from nnjit.runtime.webgpu import shared_executor

        samples = shared_executor().time(module, inputs, weights, repeats=20, warmup=3)
    else:
        from nnjit.runtime.wasm import shared_wasmtime

        samples = shared_wasmtime().time(module, inputs, weights, repeats=20, inner=3, warmup=2)
    return statistics.median(samples)


def bench(name: str, model: Any, inputs: dict[str, np.ndarray], backend: str, budget: float,
          reports: Path | None) -> Row:  # fmt: skip
    shapes = {k: v.shape for k, v in inputs.items()}
    compiled = nnjit.compile(model, shapes, target=backend, kernel_db=False)
    reference = nnjit.compile(model, shapes).run(inputs)
    default_module = compiled.module.clone()
    with tempfile.TemporaryDirectory() as folder:
        report = compiled.tune(budget, database=Path(folder) / "kernels.sqlite", progress=False, name=name,
                               timing=Timing(), strict=True)  # fmt: skip
    # Default and tuned modules timed in turn, three rounds: clock and thermal drift hit both alike.
    rounds = [(model_seconds(backend, default_module, compiled.weights, inputs),
               model_seconds(backend, compiled.module, compiled.weights, inputs)) for _ in range(3)]  # fmt: skip
    default, tuned = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    outputs = compiled.run(inputs)
    error = max(float(np.max(np.abs(outputs[k].astype(np.float64) - reference[k]))) for k in reference)
    if reports is not None:
        reports.mkdir(parents=True, exist_ok=True)
        stem = "-".join(part.strip("(),") for part in name.split()) + f"-{backend}"
        report.write_html(reports / f"{stem}.html")
        (reports / f"{stem}.txt").write_text(report.table() + "\n")
    entries = report.kernels
    return Row(
        name, backend, len(compiled.kernels), len(entries), statistics.mean(k.lite_size for k in entries),
        max(k.lite_size for k in entries), statistics.mean(k.full_size for k in entries), report.candidates_measured,
        report.wall_seconds, default * 1e3, tuned * 1e3, report.out_of_budget, error,
    )  # fmt: skip


def machine(backends: list[str]) -> str:
    parts = []
    if "webgpu" in backends:
        from nnjit.runtime.webgpu import shared_executor

        info = dict(shared_executor().adapter.info)
        parts.append(
            f"WebGPU: {info.get('device', '?')} ({info.get('backend_type', '?')}, {info.get('description', '')})"
        )
    if "wasm" in backends:
        parts.append(f"Wasm: {get_backend('wasm').device().name} on {get_backend('wasm').device().description['cpu']}")
    parts.append(f"{platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs")
    return "; ".join(parts)


def table(rows: list[Row]) -> str:
    lines = [
        "| model | backend | kernels (unique) | candidates / kernel, lite (max) / full | measured | tuning s | "
        "default ms | tuned ms | speedup | max err vs oracle |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.backend} | {r.kernels} ({r.unique}) | {r.lite_mean:.1f} ({r.lite_max}) / {r.full_mean:.0f} | "
            f"{r.measured} | {r.tuning_seconds:.1f}{' (budget)' if r.exhausted else ''} | {r.default_ms:.3f} | "
            f"{r.tuned_ms:.3f} | {r.speedup:.2f}x | {r.max_error:.1e} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("zoo", "paper"), default="zoo")
    parser.add_argument("--models", default=None, help="comma list (default: every model of the scale)")
    parser.add_argument("--backends", default="webgpu,wasm")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--matmuls", default="", help="extra one-MatMul models, e.g. 384x768x3072,1024x1024x1024")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--reports", type=Path, help="write each search's HTML report and table here")
    args = parser.parse_args()
    os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # before the first adapter: cold compiles
    os.environ.setdefault("__GL_SHADER_DISK_CACHE", "0")
    backends = [b for b in args.backends.split(",") if b]
    cases: list[tuple[str, Any, dict[str, np.ndarray]]] = []
    if args.scale == "paper":
        from nnjit.models.paper import export_paper_model, paper_models

        for paper in paper_models(only=[m for m in (args.models or "").split(",") if m] or None):
            shape = f"(1, {paper.spec.seq})"
            cases.append((f"{paper.name} {shape}", export_paper_model(paper), paper.example_inputs()))
    for name in [m for m in (args.models or ",".join(ZOO_MODELS)).split(",") if m and args.scale == "zoo"]:
        cases.append((f"{name} (1, {SEQUENCE[name]})", zoo_path(name), example_inputs(name, 1, SEQUENCE[name])))
    for spec in [s for s in args.matmuls.split(",") if s]:
        m, k, n = (int(v) for v in spec.split("x"))
        cases.append((f"matmul {spec}", *matmul_model(m, k, n)))
    rows: list[Row] = []
    for name, model, inputs in cases:
        for backend in backends:
            rows.append(bench(name, model, inputs, backend, args.budget, args.reports))
            r = rows[-1]
            print(f"{name} {backend}: {r.default_ms:.3f} -> {r.tuned_ms:.3f} ms ({r.speedup:.2f}x), "
                  f"{r.measured} candidates in {r.tuning_seconds:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    text = table(rows)
    where = machine(backends)
    print(text)
    print(f"\n{where}; budget {args.budget:g} s per model and backend")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python benchmarks/tuning.py", *sys.argv[1:]])
        with args.markdown.open("a") as out:
            out.write(f"\n## {date.today().isoformat()} — {where}\n\n`{command}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
