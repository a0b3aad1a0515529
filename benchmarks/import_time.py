"""Time to import, canonicalise and recognise patterns in each zoo model, per stage.

    python benchmarks/import_time.py [--repeats 5] [--markdown docs/benchmarks/import-time.md]

The bar (foundation issue): every zoo model through all three stages in < 2 s on a 2-core machine.
Medians over `--repeats` runs; the peer column is onnxruntime's own session creation (which also
parses and optimises the graph) measured in the same run, as a sense of scale.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import onnxruntime

import nnjit
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path

SHAPE = (1, 16)
BUDGET_SECONDS = 2.0


def measure(name: str, repeats: int) -> dict[str, float]:
    """Median seconds per stage (and in total) over `repeats` compiles of one zoo model."""
    shapes = {k: v.shape for k, v in example_inputs(name, *SHAPE).items()}
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        compiled = nnjit.compile(zoo_path(name), shapes)
        total = time.perf_counter() - started
        for stage, seconds in {**compiled.stage_seconds, "total": total}.items():
            samples.setdefault(stage, []).append(seconds)
        started = time.perf_counter()
        onnxruntime.InferenceSession(str(zoo_path(name)), providers=["CPUExecutionProvider"])
        samples.setdefault("onnxruntime session", []).append(time.perf_counter() - started)
    return {stage: statistics.median(values) for stage, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    results = {}
    for index, name in enumerate(ZOO_MODELS, 1):
        print(f"[{index}/{len(ZOO_MODELS)}] {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(name, args.repeats)
    stages = list(next(iter(results.values())))
    header = "| model | " + " | ".join(f"{s} (ms)" for s in stages) + " | within 2 s |"
    rows = [header, "|" + "---|" * (len(stages) + 2)]
    for name, timing in results.items():
        cells = " | ".join(f"{timing[s] * 1e3:.0f}" for s in stages)
        rows.append(f"| {name} | {cells} | {'yes' if timing['total'] < BUDGET_SECONDS else 'NO'} |")
    table = "\n".join(rows)
    machine = f"{platform.node()} — {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    print(table)
    print(f"\nshape input_ids={SHAPE[0]}x{SHAPE[1]}, median of {args.repeats}; machine: {machine}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(
            f"# Import + canonicalise + pattern recognition time\n\n"
            f"Measured {date.today().isoformat()} with `python benchmarks/import_time.py --repeats {args.repeats}`\n"
            f"on the project's CI-class machine (2 cores, 24 GiB, no GPU; {machine}).\n"
            f"Shape `input_ids={SHAPE[0]}x{SHAPE[1]}`; medians in milliseconds. The `onnxruntime session` column is\n"
            f"onnxruntime {onnxruntime.__version__} creating a CPU session for the same file in the same run.\n\n"
            f"{table}\n"
        )
    return 0 if all(t["total"] < BUDGET_SECONDS for t in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
