"""Time to first inference (cold and cached) and online JIT sessions on the native executors.

    python benchmarks/online_native.py --markdown docs/benchmarks/online-native.md
    python benchmarks/online_native.py --part ttfi --models gpt2 minilm --targets webgpu wasm
    python benchmarks/online_native.py --part online --models gpt2 minilm --targets webgpu --budget 20
    python benchmarks/online_native.py --models gpt2 bart minilm --targets webgpu --budget 10   # on a GPU machine

Models: the zoo's (gpt2 bart t5 roberta llama) at (1, `--seq`), and `minilm`, the pretrained
all-MiniLM-L6-v2 (`nnjit.models.minilm`, exported on first use) at (2, 9): corpus sentences 15
and 16, 9 tokens each. Targets: `webgpu` (wgpu-native on whatever adapter wgpu picks: Mesa
lavapipe on a CPU-only machine, the GPU elsewhere; its name heads the tables) and `wasm` (wasmtime).

`--part ttfi`: per model and target, three fresh Python processes (this file with a hidden worker
flag) run `nnjit.compile(..., kernel_db=False, cache=FOLDER)` then the first run, each timed:
"cold" with an empty compile-cache folder, then "cached" twice on what the first wrote. Import of
nnjit is not counted; the compile's lazy imports are. The last process then times warm runs
(median) for scale. With `--driver-cache fresh` (default) the driver's shader disk cache (Mesa,
NVIDIA) is a new folder per model and target, so "cold" is cold for the driver too and "cached"
sees what the first process left there, as a user's second start would.

`--part online`: per model and target, one fresh process compiles (kernel database and compile
cache off), opens `compiled.online(budget, margin)` on a throwaway kernel database and runs back to
back until tuning is over (budget spent or every lite space measured); every output is compared
with the first answer, and the first with the reference executor. Then the default and the tuned
model are timed in turns (`--rounds` rounds, medians): the whole run (wall clock around `run`),
and on WebGPU with timestamp queries the GPU pass too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ZOO = ("gpt2", "bart", "t5", "roberta", "llama")
MODELS = (*ZOO, "minilm")
TARGETS = ("webgpu", "wasm")
MINILM_SENTENCES = (14, 15)
"""0-based indices into the MiniLM corpus: a paraphrase pair of 9 tokens each, so (2, 9) with no padding."""


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the measured side (runs in a worker process) ---------------------------------------------------


def case(model: str, seq: int) -> tuple[Path, dict[str, np.ndarray], str]:
    """The ONNX file, the inputs and the row label of a model name."""
    if model == "minilm":
        from nnjit.models.minilm import load_sentences, minilm_onnx, tokenize

        sentences = load_sentences()
        inputs = tokenize([sentences[i] for i in MINILM_SENTENCES], pad_to=9, max_length=9)
        return minilm_onnx(), inputs, "MiniLM (2, 9)"
    from nnjit.models.zoo import example_inputs, zoo_path

    return zoo_path(model), example_inputs(model, 1, seq), f"{model} (1, {seq})"


def executor(target: str) -> Any:
    if target == "webgpu":
        from nnjit.runtime.webgpu import shared_executor

        return shared_executor()
    from nnjit.runtime.wasm import shared_wasmtime

    return shared_wasmtime()


def device(target: str) -> str:
    """The adapter (WebGPU) or engine and CPU (Wasm) this process ran on."""
    if target == "webgpu":
        info = dict(executor("webgpu").adapter.info)
        return f"{info.get('device', '?')} ({info.get('backend_type', '?')}, {info.get('description', '')})"
    from nnjit.tuner.backend import get_backend

    described = get_backend("wasm").device().description
    return f"{described.get('engine', 'wasmtime')} ({described.get('simd', '?')}) on {described.get('cpu', '?')}"


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - np.asarray(b[k], np.float64)))) for k in b)


def sample(run: Callable[[], Any], least: int = 3, most: int = 20, seconds: float = 1.0) -> list[float]:
    """Seconds of `run()` calls: at least `least`, then until `seconds` have passed or `most` were taken."""
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < most and (len(samples) < least or time.perf_counter() - started < seconds):
        begin = time.perf_counter()
        run()
        samples.append(time.perf_counter() - begin)
    return samples


def worker_ttfi(args: argparse.Namespace) -> dict[str, Any]:
    """Compile and first run in this (fresh) process; warm runs with `--warm`."""
    begin = time.perf_counter()
    import nnjit

    nnjit.compile  # noqa: B018  (the library's lazy import of the compiler, onnx and xDSL: not timed below)
    imported = time.perf_counter() - begin
    path, inputs, _ = case(args.model, args.seq)
    shapes = {k: v.shape for k, v in inputs.items()}
    started = time.perf_counter()
    compiled = nnjit.compile(path, shapes, target=args.target, kernel_db=False, cache=args.cache_dir)
    compiled_at = time.perf_counter()
    outputs = compiled.run(inputs)
    first_at = time.perf_counter()
    entry = compiled.cache
    np.savez(args.result.with_suffix(".npz"), **outputs)
    result: dict[str, Any] = {
        "import": imported, "compile": compiled_at - started, "first": first_at - compiled_at, "kernels": len(compiled.kernels),
        "hit": bool(entry and entry.hit), "code_hit": bool(entry and entry.code_hit), "device": device(args.target),
    }  # fmt: skip
    if args.warm:
        result["warm"] = statistics.median(sample(lambda: compiled.run(inputs), seconds=2.0))
    return result


def worker_online(args: argparse.Namespace) -> dict[str, Any]:
    """One online session until tuning is over, then the default and tuned models in turns."""
    import nnjit

    path, inputs, label = case(args.model, args.seq)
    shapes = {k: v.shape for k, v in inputs.items()}
    oracle = nnjit.compile(path, shapes).run(inputs)
    compiled = nnjit.compile(path, shapes, target=args.target, kernel_db=False, cache=False)
    default = compiled.module.clone()
    latencies: list[float] = []
    worst = 0.0
    deadline = time.perf_counter() + 4 * args.budget + 120  # a guard: tuning ends on its own well before
    with (
        tempfile.TemporaryDirectory(prefix="nnjit-online-") as folder,
        compiled.online(args.budget, args.margin, database=Path(folder) / "kernels.sqlite") as session,
    ):
        started = time.perf_counter()
        first = session.run(inputs)
        first_seconds = time.perf_counter() - started
        progress(f"  {label} {args.target}: first answer in {first_seconds * 1e3:.1f} ms; tuning {args.budget:g} s")
        shown = time.perf_counter()
        while not session.wait(0.0) and time.perf_counter() < deadline:
            begin = time.perf_counter()
            outputs = session.run(inputs)
            latencies.append(time.perf_counter() - begin)
            worst = max(worst, max_diff(outputs, first))
            if time.perf_counter() - shown > 5.0:
                shown = time.perf_counter()
                progress(f"    {session.progress().describe().splitlines()[0]}")
        wall = time.perf_counter() - started
    done = session.progress()
    progress(f"  {done.describe()}")
    run = executor(args.target).run
    timed: dict[str, list[float]] = {"default": [], "tuned": [], "default_gpu": [], "tuned_gpu": []}
    for _ in range(args.rounds):  # in turns: drift and other jobs hit both alike
        for name, module in (("default", default), ("tuned", compiled.module)):
            outputs = run(module, inputs, compiled.weights)  # warm-up (builds the plan or program)
            worst = max(worst, max_diff(outputs, first))
            timed[name].append(statistics.median(sample(lambda m=module: run(m, inputs, compiled.weights))))
            if args.target == "webgpu" and executor("webgpu").timestamps:
                repeats = max(3, min(20, int(0.5 / timed[name][-1])))
                gpu = executor("webgpu").time(module, inputs, compiled.weights, repeats=repeats)
                timed[f"{name}_gpu"].append(statistics.median(gpu))
    swaps = [s.describe() for s in done.swaps]
    return {
        "label": label, "first": first_seconds, "runs": latencies, "wall": wall, "kernels": done.kernels,
        "done": done.done, "candidates": done.candidates, "tuning_seconds": done.tuning_seconds,
        "finished": done.finished, "error": done.error, "swaps": swaps, "longest_step": done.longest_step,
        "longest_wait": done.longest_wait, "max_diff": worst, "oracle_diff": max_diff(first, oracle),
        "timed": {k: statistics.median(v) if v else None for k, v in timed.items()}, "device": device(args.target),
    }  # fmt: skip


# --- the driver ------------------------------------------------------------------------------------


def spawn(kind: str, model: str, target: str, args: argparse.Namespace, env: dict[str, str],
          extra: list[str]) -> dict[str, Any]:  # fmt: skip
    """Run this file as a worker in a fresh process; its result (JSON)."""
    with tempfile.TemporaryDirectory(prefix="nnjit-bench-") as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--models", model,
                   "--targets", target, "--seq", str(args.seq), "--result", str(result), *extra]  # fmt: skip
        done = subprocess.run(command, env=env, stdout=sys.stderr, check=False)
        if done.returncode != 0 or not result.is_file():
            raise RuntimeError(f"worker {kind} {model} {target} failed (exit {done.returncode})")
        answer = json.loads(result.read_text())
        outputs = result.with_suffix(".npz")
        if outputs.is_file():
            with np.load(outputs) as saved:
                answer["outputs"] = {k: saved[k] for k in saved.files}
        return answer


def driver_env(args: argparse.Namespace, folder: Path) -> dict[str, str]:
    """The worker's environment: the driver's shader disk cache per `--driver-cache`."""
    env = dict(os.environ)
    if args.driver_cache == "fresh":
        (folder / "driver").mkdir(exist_ok=True)
        env["MESA_SHADER_CACHE_DIR"] = env["__GL_SHADER_DISK_CACHE_PATH"] = str(folder / "driver")
    elif args.driver_cache == "off":
        env["MESA_SHADER_CACHE_DISABLE"], env["__GL_SHADER_DISK_CACHE"] = "true", "0"
    return env


def ttfi(args: argparse.Namespace, devices: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for model in args.models:
        for target in args.targets:
            with tempfile.TemporaryDirectory(prefix="nnjit-ttfi-") as folder:
                env, cache = driver_env(args, Path(folder)), str(Path(folder) / "artifacts")
                runs = []
                for index, name in enumerate(("cold", "cached", "cached")):
                    extra = ["--cache-dir", cache, *(["--warm"] if index == 2 else [])]
                    runs.append(spawn("ttfi", model, target, args, env, extra))
                    r = runs[-1]
                    progress(f"{model} {target} {name}: compile {r['compile']:.2f} s + first run {r['first']:.2f} s"
                             f" (IR from cache: {r['hit']}, code: {r['code_hit']})")  # fmt: skip
            devices[target] = runs[0]["device"]
            same = all(max_diff(r["outputs"], runs[0]["outputs"]) == 0.0 for r in runs[1:])
            rows.append({"label": case_label(model, args.seq), "target": target, "runs": runs, "same": same})
    return rows


def online(args: argparse.Namespace, devices: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for model in args.models:
        for target in args.targets:
            with tempfile.TemporaryDirectory(prefix="nnjit-online-") as folder:
                extra = ["--budget", str(args.budget), "--margin", str(args.margin), "--rounds", str(args.rounds)]
                row = spawn("online", model, target, args, driver_env(args, Path(folder)), extra)
            devices[target] = row["device"]
            rows.append({**row, "target": target})
    return rows


def case_label(model: str, seq: int) -> str:
    return "MiniLM (2, 9)" if model == "minilm" else f"{model} (1, {seq})"


def ms(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def slash(values: Any) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def ttfi_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | target | cold | cached (two processes) | speedup | warm run | cache hits (IR, code) | "
             "import nnjit (not counted) |", "|" + "---|" * 8]  # fmt: skip
    for row in rows:
        cold, *cached = row["runs"]
        total = cold["compile"] + cold["first"]
        totals = [r["compile"] + r["first"] for r in cached]
        speedups = sorted(f"{total / t:.1f}" for t in totals)
        speedup = speedups[0] if speedups[0] == speedups[-1] else f"{speedups[0]}-{speedups[-1]}"
        hits = f"{sum(r['hit'] for r in cached)}/2, {sum(r['code_hit'] for r in cached)}/2"
        lines.append(
            f"| {row['label']} | {row['target']} | {cold['compile']:.2f} + {cold['first']:.2f} = **{total:.2f}** | "
            f"{slash(r['compile'] for r in cached)} + {slash(r['first'] for r in cached)} = "
            f"**{slash(totals)}** | {speedup}x | {ms(cached[-1]['warm'])} ms | "
            f"{hits}{'' if row['same'] else ', outputs differ!'} | {slash(r['import'] for r in row['runs'])} |"
        )
    return "\n".join(lines)


def online_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | target | first answer | runs while tuning: n, median / p99 / max | longest step (wait) | "
             "model before -> after (run) | GPU pass before -> after | kernels tuned, candidates | swaps | "
             "max diff (first vs oracle) |", "|" + "---|" * 10]  # fmt: skip
    for row in rows:
        runs, t = np.array(row["runs"] or [0.0]), row["timed"]
        while_tuning = (f"{len(row['runs'])}: {ms(float(np.median(runs)))} / {ms(float(np.percentile(runs, 99)))} / "
                        f"{ms(float(runs.max()))} ms")  # fmt: skip
        model = (f"{ms(t['default'])} -> {ms(t['tuned'])} ms ({t['default'] / t['tuned']:.2f}x) "
                 f"in {row['tuning_seconds']:.1f} s")  # fmt: skip
        gpu = (f"{ms(t['default_gpu'])} -> {ms(t['tuned_gpu'])} ms ({t['default_gpu'] / t['tuned_gpu']:.2f}x)"
               if t["default_gpu"] else "-")  # fmt: skip
        over = "all measured" if row["done"] == row["kernels"] else "budget spent" if row["finished"] else "stopped"
        tuned = (
            f"{row['done']}/{row['kernels']}, {row['candidates']} ({over}{', ' + row['error'] if row['error'] else ''})"
        )
        lines.append(
            f"| {row['label']} | {row['target']} | {ms(row['first'])} ms | {while_tuning} | "
            f"{ms(row['longest_step'])} ({ms(row['longest_wait'])}) ms | {model} | {gpu} | {tuned} | "
            f"{len(row['swaps'])} | {row['max_diff']:.1e} ({row['oracle_diff']:.1e}) |"
        )
    return "\n".join(lines)


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("ttfi", "online", "both"), default="both")
    parser.add_argument("--models", nargs="+", default=["gpt2", "minilm"], choices=MODELS)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--seq", type=int, default=16, help="sequence length of the zoo models")
    parser.add_argument("--budget", type=float, default=20.0, help="online: tuning seconds (device time of steps)")
    parser.add_argument("--margin", type=float, default=0.03, help="online: swap when this much faster")
    parser.add_argument("--rounds", type=int, default=3, help="online: default / tuned timing rounds")
    parser.add_argument("--driver-cache", choices=("fresh", "user", "off"), default="fresh",
                        help="driver shader disk cache: a new folder per model and target, the user's, or off")  # fmt: skip
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--worker", choices=("ttfi", "online"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.model, args.target = args.models[0], args.targets[0]
        result = (worker_ttfi if args.worker == "ttfi" else worker_online)(args)
        args.result.write_text(json.dumps(result))
        return 0

    if "minilm" in args.models:
        from nnjit.models.minilm import minilm_onnx

        minilm_onnx()  # exported once here, not inside a timed worker
    started_load = load()
    devices: dict[str, str] = {}
    sections: list[str] = []
    if args.part in ("ttfi", "both"):
        rows = ttfi(args, devices)
        sections.append(
            "### Time to first inference, cold and cached\n\nSeconds in fresh processes: `nnjit.compile` "
            "(kernel database off) + first run = total; cold with an empty compile cache, then two cached "
            f"processes; warm run: median in the last one. Driver shader cache: {args.driver_cache}.\n\n"
            + ttfi_table(rows)
        )
    if args.part in ("online", "both"):
        rows = online(args, devices)
        sections.append(
            f"### Online sessions\n\nBudget {args.budget:g} s of tuning steps, margin {args.margin:g}, runs back to "
            f"back until tuning is over; before -> after: medians of {args.rounds} rounds in turns. Max diff: "
            "largest |output - first answer| over every run (and the first answer vs the reference executor).\n\n"
            + online_table(rows)
        )
    from nnjit.tuner.lite_wasm import WasmCpu

    where = "; ".join(
        [*(f"{t}: {d}" for t, d in devices.items()),
         f"{platform.node()}, {WasmCpu.detect().model}, {os.cpu_count()} CPUs, load average {started_load} -> {load()}"]
    )  # fmt: skip
    text = f"{where}\n\n" + "\n\n".join(sections)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python benchmarks/online_native.py", *sys.argv[1:]])
        with args.markdown.open("a") as out:
            head = devices.get("webgpu", devices.get("wasm", "")).split(" (")[0]
            out.write(f"\n## {date.today().isoformat()}: {head}, {os.cpu_count()} CPUs\n\n`{command}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
