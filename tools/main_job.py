"""The main job: every zoo model compiled by nnjit, run, checked against onnxruntime, with timings.

Run through `bash tools/main.sh` (which installs what it needs first). Today the executor is the
numpy oracle (`reference`); the WebGPU and Wasm executors join this table as they land.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import onnx
import onnxruntime

import nnjit
from nnjit.errors import NnjitError
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path

SHAPES = [(1, 16), (2, 32)]
RTOL, ATOL = 1e-4, 1e-5


def count_ops(module_text: str) -> int:
    """Number of `nn.` ops in printed IR, constants excluded."""
    return sum(1 for line in module_text.splitlines() if " = nn." in line and "nn.constant" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(ZOO_MODELS))
    args = parser.parse_args()
    header = (
        f"{'model':<8} {'shape':<7} {'onnx':>5} {'nn':>4} {'import':>8} {'passes':>8} "
        f"{'nnjit run':>10} {'ort run':>8} {'max |diff|':>11}  check"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for name in args.models:
        path = zoo_path(name)
        onnx_nodes = sum(1 for n in onnx.load(str(path)).graph.node if n.op_type != "Constant")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch, seq in SHAPES:
            inputs = example_inputs(name, batch, seq)
            shapes = {k: v.shape for k, v in inputs.items()}
            compiled = nnjit.compile(path, shapes)
            started = time.perf_counter()
            outputs = compiled.run(inputs)
            ours = time.perf_counter() - started
            started = time.perf_counter()
            expected = session.run(None, inputs)
            theirs = time.perf_counter() - started
            worst = max(
                float(np.max(np.abs(outputs[k].astype(np.float64) - e)))
                for k, e in zip(compiled.output_names, expected, strict=True)
            )
            ok = all(
                np.allclose(outputs[k], e, rtol=RTOL, atol=ATOL)
                for k, e in zip(compiled.output_names, expected, strict=True)
            )
            failures += not ok
            passes = sum(v for k, v in compiled.stage_seconds.items() if k != "import")
            print(
                f"{name:<8} {batch}x{seq:<5} {onnx_nodes:>5} {count_ops(compiled.ir):>4} "
                f"{compiled.stage_seconds['import'] * 1e3:>6.0f}ms {passes * 1e3:>6.0f}ms "
                f"{ours * 1e3:>8.1f}ms {theirs * 1e3:>6.1f}ms {worst:>11.2e}  {'OK' if ok else 'MISMATCH'}"
            )
    print(f"\nexecutor: numpy oracle; tolerance rtol {RTOL}, atol {ATOL}; onnxruntime {onnxruntime.__version__}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NnjitError as error:
        print(f"nnjit: error: {error}", file=sys.stderr)
        sys.exit(2)
