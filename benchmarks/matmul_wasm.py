"""Single-thread fp32 matmul GFLOP/s of nnjit's Wasm SIMD kernels in V8 and wasmtime, against numpy and ORT Web.

    python benchmarks/matmul_wasm.py [--shapes zoo,1024] [--markdown docs/benchmarks/matmul-wasm.md]
    python benchmarks/matmul_wasm.py --scale paper --markdown docs/benchmarks/matmul-wasm-paper.md

Each (M, K, N) is a one-node ONNX MatMul (`x @ w`, `w` a weight) compiled by nnjit for the `wasm`
target. nnjit is timed with its default schedule and with a handful of register blocks (and B
packing) from the Wasm space; the best is reported per engine. Timings are kernel time: the module's
`run(n)` export timed around n calls (`performance.now()` in V8, `perf_counter` in wasmtime), min of
several samples. Every schedule's result is checked against numpy first.

Peers, in the same run:
* numpy with one BLAS thread (`OPENBLAS_NUM_THREADS=1` and friends, set before numpy is imported, in a
  subprocess): the native roof.
* onnxruntime-web's Wasm backend in Node (`npm install onnxruntime-web` into `.cache/npm`, git-ignored;
  `env.wasm.numThreads = 1`, SIMD on), timed around `session.run`, which includes ORT's per-call
  overhead (tensor copies in and out of its heap), as a browser app sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from matmul_webgpu import gflops, kernel_of, matmul_model  # noqa: E402
from peers import ORT_ENTRY, ensure_ort_web, ort_web_version  # noqa: E402

import nnjit  # noqa: E402
from nnjit.dialects.web import Schedule  # noqa: E402
from nnjit.models.paper import paper_gemm_shapes  # noqa: E402
from nnjit.passes.convert_nn_to_web import WASM_DEFAULT_SCHEDULES  # noqa: E402
from nnjit.runtime.wasm import WasmtimeExecutor  # noqa: E402
from nnjit.runtime.wasm_node import NodeExecutor  # noqa: E402

SHAPE_SETS = {
    "zoo": [(16, 32, 96), (16, 32, 32), (16, 64, 256), (16, 172, 64)],
    "1024": [(1024, 1024, 1024)],
    # The paper models' weight matmuls (`--scale paper`), without Llama 2's 4096-11008 wide layers:
    # one single-threaded call of those takes seconds, times every schedule, engine and sample.
    "paper": list(dict.fromkeys((m, k, n) for label, m, k, n in paper_gemm_shapes() if not label.startswith("llama"))),
}
CANDIDATES = [
    Schedule((1, 1, 1), (mb, nb, 256), (mr, nr), 4, 4, shared)
    for (mr, nr), (mb, nb), shared in [
        ((4, 8), (64, 64), False), ((4, 8), (64, 64), True), ((6, 8), (48, 64), True), ((4, 12), (64, 48), True),
        ((4, 16), (64, 64), False), ((8, 8), (64, 64), True), ((2, 16), (64, 64), False),
    ]
]  # fmt: skip
"""Register blocks tried besides the default (which is (8, 8), in place)."""
WORK_FLOPS = 2e8
"""Each timing sample runs about this many flops."""


def inner_calls(m: int, k: int, n: int) -> int:
    return max(1, int(WORK_FLOPS / (2 * m * k * n)))


def numpy_single_thread(shapes: list[tuple[int, int, int]], repeats: int) -> list[float]:
    """Best seconds per matmul of numpy with one BLAS thread, measured in a fresh process."""
    code = textwrap.dedent(f"""
        import json, time
        import numpy as np
        out = []
        for m, k, n in {shapes!r}:
            rng = np.random.default_rng(0)
            a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
            inner = max(1, int({WORK_FLOPS} / (2 * m * k * n)))
            a @ b
            best = float("inf")
            for _ in range({repeats}):
                t = time.perf_counter()
                for _ in range(inner):
                    a @ b
                best = min(best, (time.perf_counter() - t) / inner)
            out.append(best)
        print(json.dumps(out))
    """)
    threads = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **threads}, check=True
    )
    return json.loads(run.stdout)


def ort_web(shapes: list[tuple[int, int, int]], repeats: int, folder: Path) -> tuple[str, list[float]]:
    """onnxruntime-web version and best seconds per `session.run` of each matmul."""
    jobs = []
    for index, (m, k, n) in enumerate(shapes):
        model, _, _ = matmul_model(m, k, n)
        model.ir_version = 8  # ORT Web 1.30 reads IR <= 13
        path = folder / f"matmul{index}.onnx"
        onnx.save(model, str(path))
        jobs.append({"model": str(path), "m": m, "k": k, "repeats": repeats, "inner": inner_calls(m, k, n)})
    run = subprocess.run(["node", str(ROOT / "benchmarks" / "ort_web_matmul.mjs"), str(ORT_ENTRY)], input=json.dumps(jobs),
                         capture_output=True, text=True, check=True)  # fmt: skip
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    version = ort_web_version()
    return version, [min(r["seconds"]) for r in answer["results"]]


def nnjit_matmul(shape: tuple[int, int, int], engines: dict[str, Any], repeats: int) -> dict[str, Any]:
    """GFLOP/s of the default schedule and of each candidate, per engine (results checked first)."""
    m, k, n = shape
    model, x, expected = matmul_model(m, k, n)
    compiled = nnjit.compile(model, {"x": (m, k)}, target="wasm")
    kernel = kernel_of(compiled)
    rows: dict[str, Any] = {"default": {}, "best": {}}
    for schedule in [WASM_DEFAULT_SCHEDULES["matmul"], *CANDIDATES]:
        kernel.schedule = schedule.to_attr()
        label = f"{list(schedule.thread)}{' packed' if schedule.shared else ''}"
        for name, engine in engines.items():
            got = engine.run(compiled.module, {"x": x}, compiled.weights)["y"]
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * k**0.5)
            seconds = min(engine.time(compiled.module, {"x": x}, compiled.weights, repeats, inner_calls(m, k, n)))
            rate = gflops(m, k, n, seconds)
            if schedule == WASM_DEFAULT_SCHEDULES["matmul"]:
                rows["default"][name] = rate
            if rate > rows["best"].get(name, (0.0, ""))[0]:
                rows["best"][name] = (rate, label)
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="zoo,1024")
    parser.add_argument(
        "--scale", choices=("paper",), help="paper: the paper models' weight matmuls (replaces --shapes)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", help="also write the table (with the machine) to this file")
    args = parser.parse_args(argv)
    if args.scale:
        args.shapes = args.scale
    shapes = [s for key in args.shapes.split(",") for s in SHAPE_SETS[key]]
    node = NodeExecutor()
    engines = {"v8": node, "wasmtime": WasmtimeExecutor()}
    results = [nnjit_matmul(shape, engines, args.repeats) for shape in shapes]
    roof = numpy_single_thread(shapes, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        ort_version, ort = ort_web(shapes, args.repeats, Path(folder)) if ensure_ort_web() else ("missing", [])
    header = (
        "| M x K x N | nnjit V8 default | nnjit V8 best (block) | nnjit wasmtime default | nnjit wasmtime best (block) "
        "| numpy 1 thread | ORT Web Wasm (V8) | V8 best / numpy | V8 best / ORT Web |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for index, ((m, k, n), r) in enumerate(zip(shapes, results, strict=True)):
        v8_best, v8_block = r["best"]["v8"]
        wt_best, wt_block = r["best"]["wasmtime"]
        numpy_rate = gflops(m, k, n, roof[index])
        ort_rate = gflops(m, k, n, ort[index]) if ort else float("nan")
        lines.append(
            f"| {m} x {k} x {n} | {r['default']['v8']:.1f} | {v8_best:.1f} {v8_block} | {r['default']['wasmtime']:.1f} "
            f"| {wt_best:.1f} {wt_block} | {numpy_rate:.1f} | {ort_rate:.1f} | {v8_best / numpy_rate:.2f} "
            f"| {v8_best / ort_rate:.2f} |"
        )
    table = header + "\n".join(lines) + "\n"
    from importlib.metadata import version

    intro = (
        "# Single-thread fp32 matmul on Wasm SIMD\n\n"
        f"Measured {date.today().isoformat()} with `python benchmarks/matmul_wasm.py --shapes {args.shapes}` on "
        f"{machine()}.\nEngines: V8 {node.v8} (Node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"relaxed SIMD {'on' if node.relaxed else 'off'}), wasmtime {version('wasmtime')} (relaxed SIMD on); numpy "
        f"{np.__version__} with one BLAS thread; onnxruntime-web {ort_version} (Wasm, 1 thread, SIMD).\n"
        "GFLOP/s, best of the samples; default = the `wasm` pipeline's matmul schedule (register block [8, 8], "
        "cache block [64, 64, 256], K unroll 4, B in place); best = the fastest of the default and "
        f"{len(CANDIDATES)} other register blocks `[mr, nr]` (packed = B packed into nr-wide panels). nnjit times "
        "the kernel alone; ORT Web is timed around `session.run`, which adds its per-call overhead (large for "
        "the small zoo shapes).\n\n"
    )
    print(intro + table)
    if args.markdown:
        Path(args.markdown).write_text(intro + table)
    node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
