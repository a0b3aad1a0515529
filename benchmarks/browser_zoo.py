"""nnjit vs onnxruntime-web in one Chromium session: every zoo model on WebGPU and on Wasm.

    python benchmarks/browser_zoo.py --markdown docs/benchmarks/browser-zoo.md
    python benchmarks/browser_zoo.py --models gpt2 --seq 16 --repeats 20 --tune-budget 10
    python benchmarks/browser_zoo.py --scale paper --repeats 5 --tune-budget 60 --markdown docs/benchmarks/browser-paper.md

Per model: nnjit's exported page (`nnjit.export`) tunes in the page on this device (WebGPU and Wasm,
`--tune-budget` seconds each), then runs `--repeats` times per backend; onnxruntime-web (npm, the
`ort.all` bundle) runs the same ONNX file on its WebGPU and Wasm execution providers in another tab
of the same browser, with the same Wasm thread count. Both sides are timed the same way: wall clock
in the page around one inference call (inputs in, outputs back in JS). Reported: median ms, the
ratio ORT / nnjit (> 1: nnjit faster), each side's largest |difference| from native onnxruntime,
and the first-run and load times.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory import ChromiumMemory  # noqa: E402
from peers import ORT_DIST, ensure_ort_web, ort_web_version  # noqa: E402

import nnjit  # noqa: E402
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path  # noqa: E402
from nnjit.runtime.chromium import ChromiumBrowser  # noqa: E402
from nnjit.runtime.serve import SiteServer  # noqa: E402

BACKENDS = ("webgpu", "wasm")
PAPER_IN_BROWSER = ("gpt2", "bart", "roberta", "t5-encoder")
"""Paper models run in the page. Llama 2's two 7B layers (2.7 GB of fp32 weights, in an external data
file) do not fit beside their activations in a 4 GiB wasm32 memory, for either engine; it runs
natively (`benchmarks/paper_native.py`)."""


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def max_error(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(outputs[k].astype(np.float64) - v))) for k, v in reference.items())


def feeds(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {n: {"dtype": str(a.dtype), "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}
            for n, a in inputs.items()}  # fmt: skip


def decode(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    kinds = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_}
    return {
        n: np.frombuffer(base64.b64decode(o["data"]), kinds[o["dtype"]]).reshape(o["shape"]) for n, o in outputs.items()
    }


def ort_page(browser: ChromiumBrowser, url: str) -> Any:
    """A fresh onnxruntime-web page (its Wasm thread count is fixed at its first session)."""
    return browser.open_url(url + "ort_page.html", ready="() => window.ortBench !== undefined", strict=False)


def bench_model(browser: ChromiumBrowser, peer_url: str, name: str, model: Path, inputs: dict[str, np.ndarray],
                args: argparse.Namespace, folder: Path) -> dict[str, Any]:  # fmt: skip
    """One model on both backends, both engines; each engine and backend in a fresh page whose Chromium
    memory peak (above the browser before it opened) is recorded."""
    shapes = {k: v.shape for k, v in inputs.items()}
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    reference = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs), strict=True))
    del session
    progress(f"{name}: export")
    started = time.perf_counter()
    site = nnjit.export(model, folder / name, shapes, BACKENDS, inputs, name, args.candidates, kernel_db=False)
    export_s = time.perf_counter() - started
    onnx_name = f"{name}.onnx"
    shutil.copyfile(model, folder / "onnx" / onnx_name)
    row: dict[str, Any] = {"model": name, "shape": "x".join(map(str, inputs["input_ids"].shape)), "export_s": export_s}
    for backend in BACKENDS:
        threads = args.threads if backend == "wasm" else None
        with ChromiumMemory() as memory:
            page = browser.open(site)
            first = page.run(backend, inputs, repeats=1, threads=threads)
            progress(f"{name}: nnjit {backend} tuning ({args.tune_budget:.0f} s budget)")
            report = page.tune(backend, args.tune_budget)
            result = page.run(backend, inputs, repeats=args.repeats, threads=threads)
            page.close()
        row[f"nnjit_{backend}"] = statistics.median(result.ms)
        row[f"nnjit_{backend}_first"] = first.ms[0]
        row[f"nnjit_{backend}_load"] = first.load_ms
        row[f"nnjit_{backend}_err"] = max_error(result.outputs, reference)
        row[f"nnjit_{backend}_tuned"] = sum(r["best"] != 0 for r in report["rows"])
        row[f"nnjit_{backend}_kernels"] = len(report["rows"])
        row[f"nnjit_{backend}_mib"] = memory.peak_mib
        if backend == "wasm":
            row["threads"] = result.threads
        progress(f"{name}: onnxruntime-web {backend}")
        with ChromiumMemory() as memory:
            peer = ort_page(browser, peer_url)
            answer = peer.evaluate("(job) => window.ortBench.run(job)", {"model": f"/onnx/{onnx_name}", "ep": backend,
                                   "threads": row.get("threads") or 1, "feeds": feeds(inputs), "repeats": args.repeats})  # fmt: skip
            peer.close()
        row[f"ort_{backend}"] = statistics.median(answer["ms"])
        row[f"ort_{backend}_first"] = answer["firstMs"]
        row[f"ort_{backend}_load"] = answer["loadMs"]
        row[f"ort_{backend}_err"] = max_error(decode(answer["outputs"]), reference)
        row[f"ort_{backend}_mib"] = memory.peak_mib
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | shape | nnjit WebGPU ms | ORT Web WebGPU ms | WebGPU ratio | nnjit Wasm ms | ORT Web Wasm ms | "
            "Wasm ratio | Wasm threads | max err nnjit (WebGPU / Wasm) | max err ORT Web (WebGPU / Wasm) |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['shape']} | {r['nnjit_webgpu']:.2f} | {r['ort_webgpu']:.2f} | "
            f"{r['ort_webgpu'] / r['nnjit_webgpu']:.2f}x | {r['nnjit_wasm']:.3f} | {r['ort_wasm']:.3f} | "
            f"{r['ort_wasm'] / r['nnjit_wasm']:.2f}x | {r['threads']} | {r['nnjit_webgpu_err']:.1e} / {r['nnjit_wasm_err']:.1e} | "
            f"{r['ort_webgpu_err']:.1e} / {r['ort_wasm_err']:.1e} |"
        )
    return "\n".join(lines)


def memory_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | nnjit WebGPU MiB | ORT Web WebGPU MiB | nnjit Wasm MiB | ORT Web Wasm MiB |", "|" + "---|" * 5]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['nnjit_webgpu_mib']:.0f} | {r['ort_webgpu_mib']:.0f} | {r['nnjit_wasm_mib']:.0f} | "
            f"{r['ort_wasm_mib']:.0f} |"
        )
    return "\n".join(lines)


def first_run_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | nnjit WebGPU load + first run ms | ORT Web WebGPU session + first run ms | "
             "nnjit Wasm load + first run ms | ORT Web Wasm session + first run ms | kernels tuned (WebGPU / Wasm) |",
             "|" + "---|" * 6]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['nnjit_webgpu_load'] + r['nnjit_webgpu_first']:.0f} | "
            f"{r['ort_webgpu_load'] + r['ort_webgpu_first']:.0f} | {r['nnjit_wasm_load'] + r['nnjit_wasm_first']:.0f} | "
            f"{r['ort_wasm_load'] + r['ort_wasm_first']:.0f} | {r['nnjit_webgpu_tuned']}/{r['nnjit_webgpu_kernels']} / "
            f"{r['nnjit_wasm_tuned']}/{r['nnjit_wasm_kernels']} |"
        )
    return "\n".join(lines)


def models_to_run(args: argparse.Namespace, skip: set[str]) -> Iterator[tuple[str, Path, dict[str, np.ndarray]]]:
    """(name, ONNX path, inputs) of each model of the chosen scale but `skip`; paper models are
    exported when their turn comes."""
    if args.scale == "zoo":
        names = args.models or sorted(ZOO_MODELS)
        yield from ((n, zoo_path(n), example_inputs(n, 1, args.seq)) for n in names if n not in skip)
        return
    from nnjit.models.paper import export_paper_model, paper_models

    for m in paper_models(only=args.models or list(PAPER_IN_BROWSER)):
        if m.name not in skip:
            yield m.name, export_paper_model(m), m.example_inputs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("zoo", "paper"), default="zoo",
                        help="zoo: the tiny fixtures at --seq; paper: nnjit.models.paper at the paper's shapes")  # fmt: skip
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--seq", type=int, default=16, help="zoo sequence length (paper models use their own)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tune-budget", type=float, default=10.0)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="Wasm threads (default: the page's choice)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--rows", type=Path,
                        help="JSON file of finished rows: written after each model, models already in it are skipped "
                        "(a long paper-scale run can stop and go on)")  # fmt: skip
    args = parser.parse_args()
    if not ensure_ort_web():
        sys.exit("cannot install onnxruntime-web from npm")
    folder = Path(tempfile.mkdtemp(prefix="nnjit-browser-bench-"))
    (folder / "onnx").mkdir()
    browser = ChromiumBrowser()
    peer_server = SiteServer({"/ort/": ORT_DIST, "/onnx/": folder / "onnx", "/": ROOT / "benchmarks" / "browser"},
                             csp=False).start()  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(args.rows.read_text()) if args.rows and args.rows.exists() else []
    try:
        for name, model, inputs in models_to_run(args, skip={r["model"] for r in rows}):
            rows.append(bench_model(browser, peer_server.url, name, model, inputs, args, folder))
            if args.rows:
                args.rows.write_text(json.dumps(rows, indent=1))
    finally:
        browser.close()
        peer_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    machine = f"{platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, {platform.system()}"
    shape = f"--seq {args.seq}" if args.scale == "zoo" else "--scale paper"
    text = (
        f"# nnjit vs onnxruntime-web in Chromium, {args.scale} models\n\n"
        f"Measured {date.today()} with `python benchmarks/browser_zoo.py {shape} --repeats {args.repeats} "
        f"--tune-budget {args.tune_budget:g}` on {machine}; Chromium {browser.version} (headless; WebGPU = Dawn on "
        f"SwiftShader, a CPU rasteriser: no GPU here), onnxruntime-web {ort_web_version()} (npm, `ort.all.min.mjs`).\n"
        f"Median ms of {args.repeats} runs after tuning in the page; ratio = ORT Web / nnjit (> 1: nnjit faster). "
        f"Errors: largest |difference| from native onnxruntime (CPU) on the same inputs. Peak memory: the highest "
        f"total PSS of Chromium's processes while one engine loads and runs one backend in a fresh page, minus "
        f"the level before it opened.\n\n"
        f"{table(rows)}\n\n## Peak memory\n\n{memory_table(rows)}\n\n## Load and first run\n\n{first_run_table(rows)}\n"
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
