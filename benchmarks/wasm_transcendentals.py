"""Max error of the Wasm backend's SIMD polynomial transcendentals, measured in wasmtime and V8.

    python benchmarks/wasm_transcendentals.py [--points 400000] [--markdown FILE]

Each function runs as a one-kernel `web.target = "wasm"` module (f32x4 code, the same helpers every
kernel calls) on a dense grid over its domain plus special points, in both engines, against float64
numpy (erf: the oracle's Cody erf). Reported per function: max absolute error over the domain, and
max relative error and max error in float32 ulps of the exact value where |f| >= 1e-3 (GELU's far
negative tail, `0.5 x (1 + erf(x / sqrt 2))` with `1 + erf` cancelling in f32, is only accurate in
absolute terms, ~5e-7). The table goes to docs/wasm.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "backends"))

from nnjit.dialects import nn
from nnjit.runtime.special import erf

Reference = Callable[[np.ndarray], np.ndarray]
RELATIVE_FROM = 1e-3
"""Relative and ulp errors are reported where |f| is at least this."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


FUNCTIONS: dict[str, tuple[Callable[[Any], Any], Reference, float, float]] = {
    "exp": (nn.ExpOp, np.exp, -87.0, 88.0),
    "log": (nn.LogOp, np.log, 1e-30, 1e30),
    "tanh": (nn.TanhOp, np.tanh, -10.0, 10.0),
    "erf": (nn.ErfOp, erf, -5.0, 5.0),
    "sigmoid": (nn.SigmoidOp, _sigmoid, -30.0, 30.0),
    "silu": (nn.SiluOp, lambda x: x * _sigmoid(x), -30.0, 30.0),
    "gelu (erf)": (lambda a: nn.GeluOp(a, "none"), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), -10.0, 10.0),
    "gelu (tanh)": (
        lambda a: nn.GeluOp(a, "tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        -10.0,
        10.0,
    ),
    "sin": (nn.SinOp, np.sin, -100.0, 100.0),
    "cos": (nn.CosOp, np.cos, -100.0, 100.0),
}
"""name -> (nn op builder, float64 reference, domain low, domain high)."""


def grid(low: float, high: float, points: int) -> np.ndarray:
    """Points over [low, high]: uniform, plus log-spaced near zero for domains that span it."""
    if low > 0:
        values = np.geomspace(low, high, points)
    else:
        uniform = np.linspace(low, high, points)
        small = np.geomspace(1e-8, min(abs(low), high), points // 4)
        values = np.concatenate([uniform, small, -small, [0.0]])
    return values.astype(np.float32)


def ulp(x: np.ndarray) -> np.ndarray:
    """The float32 spacing at |x|."""
    return np.spacing(np.abs(x).astype(np.float32)).astype(np.float64)


def measure(points: int) -> list[dict[str, Any]]:
    """Errors of every function in both engines."""
    from wasm_cases import kernel_module, node_engine, wasm_schedule, wasmtime_engine

    rows: list[dict[str, Any]] = []
    for name, (op, reference, low, high) in FUNCTIONS.items():
        x = grid(low, high, points)
        exact = reference(x.astype(np.float64))
        module = kernel_module("elementwise", wasm_schedule(4, 1), [x], lambda a, op=op: op(a))
        row: dict[str, Any] = {"function": name, "domain": f"[{low:g}, {high:g}]"}
        for engine, label in ((wasmtime_engine(), "wasmtime"), (node_engine(), "v8")):
            got = engine.run(module, {"x0": x})["y"].astype(np.float64)
            error = np.abs(got - exact)
            relevant = np.abs(exact) >= RELATIVE_FROM
            row[f"{label} abs"] = float(error.max())
            row[f"{label} rel"] = float((error[relevant] / np.abs(exact[relevant])).max())
            row[f"{label} ulp"] = float((error[relevant] / ulp(exact[relevant])).max())
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], points: int) -> str:
    head = ("| function | domain | max abs error | max rel error (abs f >= 1e-3) | max ulp (f32, same) | same in V8 |\n"
            "|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for r in rows:
        same = all(
            math.isclose(r[f"wasmtime {k}"], r[f"v8 {k}"], rel_tol=1e-6, abs_tol=1e-12) for k in ("abs", "rel", "ulp")
        )
        lines.append(f"| {r['function']} | {r['domain']} | {r['wasmtime abs']:.2e} | {r['wasmtime rel']:.2e} | "
                     f"{r['wasmtime ulp']:.1f} | {'yes' if same else 'no'} |")  # fmt: skip
    return head + "\n".join(lines) + f"\n\n({points} grid points per function plus log-spaced points near 0.)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=400_000)
    parser.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args(argv)
    rows = measure(args.points)
    table = markdown(rows, args.points)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
