"""fp32 matmul GFLOP/s on native WebGPU: nnjit's default schedule, and the best of a sample of its space.

    python benchmarks/matmul_webgpu.py [--candidates 48] [--shapes zoo,1024] [--markdown FILE]
    python benchmarks/matmul_webgpu.py --scale paper --candidates 24   # every weight matmul of the paper models

Shapes come from the zoo models' matmuls (at sequence 16) plus 1024³ (and paper-scale BERT shapes
with `--shapes paper`; `--scale paper` takes every weight matmul of `nnjit.models.paper`'s models at
their paper shapes, M = batch x sequence). Each matmul is compiled by nnjit (`convert-nn-to-web`), timed with GPU
timestamps when the adapter has them (medians), checked against numpy, and put next to numpy on the
same machine and, where torch sees a CUDA device, torch's fp32 matmul (TF32 off).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import nnjit
from nnjit.compiler import PIPELINES
from nnjit.dialects.web import KernelOp, Schedule
from nnjit.models.paper import paper_gemm_shapes
from nnjit.runtime.webgpu import shared_executor
from nnjit.tuner.spaces import matmul_schedules

ZOO_SHAPES = [(16, 32, 96), (16, 32, 32), (16, 64, 256), (16, 172, 64)]  # (M, K, N) from the zoo at seq 16
SHAPE_SETS = {
    "zoo": ZOO_SHAPES,
    "1024": [(1024, 1024, 1024)],
    "paper": [(384, 768, 768), (384, 768, 3072), (384, 3072, 768), (4096, 4096, 4096)],
}


def matmul_model(m: int, k: int, n: int, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """A one-node ONNX model `x @ w` with `w` a weight, plus an input and the numpy product."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((k, n), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), x, x.astype(np.float64) @ w


def gflops(m: int, k: int, n: int, seconds: float) -> float:
    """GFLOP/s of an mxkxn matmul taking `seconds`."""
    return 2.0 * m * k * n / seconds / 1e9


def kernel_of(compiled: nnjit.CompiledModel) -> KernelOp:
    """The single matmul kernel of a compiled one-matmul model."""
    (kernel,) = [op for op in compiled.module.body.block.ops if isinstance(op, KernelOp)]
    return kernel


def measure(compiled: nnjit.CompiledModel, x: np.ndarray, expected: np.ndarray, repeats: int) -> float:
    """Median seconds of the model on WebGPU; raises if the result is wrong."""
    executor = shared_executor()
    got = executor.run(compiled.module, {"x": x}, compiled.weights)["y"]
    tolerance = 1e-4 * np.sqrt(x.shape[1])
    if not np.allclose(got, expected, rtol=1e-3, atol=tolerance):
        raise AssertionError(f"wrong result, max |diff| {np.max(np.abs(got - expected)):.3g}")
    return statistics.median(executor.time(compiled.module, {"x": x}, compiled.weights, repeats=repeats))


def numpy_seconds(x: np.ndarray, w: np.ndarray, repeats: int) -> float:
    """Median seconds of numpy's float32 matmul (the native roof on this machine)."""
    samples = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        np.matmul(x, w)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples[1:])


def torch_cuda_seconds(m: int, k: int, n: int, repeats: int) -> float | None:
    """Median seconds of torch's fp32 CUDA matmul with TF32 off, or None without a CUDA device."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(m, k, device="cuda")
    b = torch.randn(k, n, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(repeats + 2):
        start.record()
        torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
    return statistics.median(samples[2:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="zoo,1024", help="comma-separated sets: zoo, 1024, paper")
    parser.add_argument(
        "--scale", choices=("paper",), help="paper: the paper models' weight matmuls (replaces --shapes)"
    )
    parser.add_argument("--candidates", type=int, default=48, help="schedules sampled from the space per shape")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    executor = shared_executor()
    space = matmul_schedules(executor.limits())
    rows = []
    labels: dict[tuple[int, int, int], list[str]] = {}
    if args.scale == "paper":
        for label, m, k, n in paper_gemm_shapes():
            labels.setdefault((m, k, n), []).append(label)
    else:
        labels = {s: [] for name in args.shapes.split(",") for s in SHAPE_SETS[name]}
    # One binding may hold what this device allows: weights split only beyond its own limit.
    binding = int(executor.device.limits["max-storage-buffer-binding-size"])
    pipeline = PIPELINES["webgpu"].replace("web-split-bindings", f"web-split-bindings{{max-bytes={binding}}}")
    for m, k, n in labels:
        model, x, expected = matmul_model(m, k, n)
        compiled = nnjit.compile(model, target="webgpu", pipeline=pipeline, kernel_db=False)
        kernel = kernel_of(compiled)
        default = kernel.schedule.values
        default_seconds = measure(compiled, x, expected, args.repeats)
        best: tuple[float, Schedule] = (default_seconds, default)
        sample = random.Random(m * 31 + k * 7 + n).sample(space, min(args.candidates, len(space)))
        for index, schedule in enumerate(sample, 1):
            kernel.schedule = schedule.to_attr()
            try:
                seconds = measure(compiled, x, expected, args.repeats)
            except Exception as error:  # a candidate that fails to build or run scores as infinitely slow
                print(f"  candidate {schedule} failed: {error}", file=sys.stderr)
                continue
            best = min(best, (seconds, schedule), key=lambda pair: pair[0])
            print(f"\r{m}x{k}x{n}: {index}/{len(sample)} candidates", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        w = compiled.weights[next(iter(compiled.weights))]
        roof = numpy_seconds(x, w, args.repeats)
        cuda = torch_cuda_seconds(m, k, n, args.repeats)
        rows.append((m, k, n, default_seconds, best, roof, cuda))
    header = "| layers | MxKxN | default GFLOP/s | best GFLOP/s | best schedule | numpy GFLOP/s | best / numpy | torch fp32 GFLOP/s |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for m, k, n, default_seconds, (best_seconds, schedule), roof, cuda in rows:
        s = schedule
        described = f"wg {s.workgroup[0]}x{s.workgroup[1]}, thread {s.thread[0]}x{s.thread[1]}, k {s.tile[2]}, vec {s.vector}, {'shared' if s.shared else 'direct'}"
        lines.append(
            f"| {', '.join(labels[m, k, n]) or '-'} | {m}x{k}x{n} | {gflops(m, k, n, default_seconds):.1f} | {gflops(m, k, n, best_seconds):.1f} | {described} | "
            f"{gflops(m, k, n, roof):.1f} | {roof / best_seconds:.2f} | {gflops(m, k, n, cuda) if cuda else float('nan'):.1f} |"
        )
    table = "\n".join(lines)
    info = dict(executor.adapter.info)
    machine = f"{info.get('device', '?')} ({info.get('backend_type', '?')}), {platform.node()}, {platform.machine()}"
    print(table)
    print(
        f"\nadapter: {machine}; {len(space)} valid schedules, {args.candidates} sampled per shape; medians of {args.repeats}"
    )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        with args.markdown.open("a") as out:
            out.write(
                f"\n## {date.today().isoformat()} — {machine}\n\n`python benchmarks/matmul_webgpu.py {'--scale paper' if args.scale else '--shapes ' + args.shapes} "
                f"--candidates {args.candidates}`; {len(space)} valid schedules in the space.\n\n{table}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
