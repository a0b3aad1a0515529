"""Online JIT in the page, against onnxruntime-web: latency over the first seconds of a cold start,
the tuned latency, and time to first inference (cold and after a reload).

    python benchmarks/online_jit.py --markdown docs/benchmarks/online-jit.md --plots docs/images
    python benchmarks/online_jit.py --models gpt2 --backends wasm --seconds 10

Per zoo model and backend, one fresh Chromium (nothing compiled or cached before):
1. nnjit's page opens in a fresh context with `?backend=B&autorun=1&online=1`: it runs the sample as
   soon as it loads (TTFI cold: performance.now() at the first output, i.e. ms since navigation),
   then tunes online between inferences; the page requests an inference every `--period-ms` (or as
   soon as the previous one answered, when later) until `--seconds` after navigation and records
   every one (`SitePage.run_online`).
2. The online tuner finishes (all variants measured, or its `--budget`); then the same loop for
   `--tuned-seconds` gives the tuned latency (median).
3. Reload (same context: bundle files from the Cache API, schedules from IndexedDB): TTFI reload.
4. onnxruntime-web (npm) in a fresh context of the same browser, same inputs, same Wasm thread count
   as nnjit ended with: TTFI cold (session + first run from navigation), median of `--repeats`
   runs (requested as nnjit's), TTFI after a reload.
Every output nnjit produced in the window is compared with native onnxruntime (largest |error|).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers import ORT_DIST, ensure_ort_web, ort_web_version  # noqa: E402

import nnjit  # noqa: E402
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path  # noqa: E402
from nnjit.runtime.chromium import ChromiumBrowser, OnlineRun  # noqa: E402
from nnjit.runtime.serve import SiteServer  # noqa: E402

BACKENDS = ("webgpu", "wasm")
LABELS = {"webgpu": "WebGPU", "wasm": "Wasm"}


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def feeds(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {n: {"dtype": str(a.dtype), "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}
            for n, a in inputs.items()}  # fmt: skip


def max_error(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(outputs[k].astype(np.float64) - v))) for k, v in reference.items())


def nnjit_side(browser: ChromiumBrowser, site: Path, backend: str, inputs: dict[str, np.ndarray],
               reference: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    query = f"backend={backend}&autorun=1&online=1&budget={args.budget:g}"
    page = browser.open(site, context=browser.new_context(), query=query)
    cold_ttfi = page.ttfi()
    cold = cold_ttfi["first"][backend]
    progress(f"  nnjit TTFI cold {cold['atMs']:.0f} ms; online until {args.seconds:g} s")
    online: OnlineRun = page.run_online(backend, 0, inputs, period_ms=args.period_ms, budget_seconds=args.budget,
                                        until=args.seconds)  # fmt: skip
    status = page.online_status(backend, wait_seconds=args.budget) or {}
    progress(f"  online: {len(online.inferences)} inferences, {len(online.swaps)} swaps; tuner "
             f"{'done' if status.get('complete') else 'stopped'} after {status.get('elapsedMs', 0) / 1000:.1f} s")  # fmt: skip
    tuned = page.run_online(backend, args.tuned_seconds, inputs, period_ms=args.period_ms)
    distinct = {id(i.outputs): i.outputs for i in [*online.inferences, *tuned.inferences]}
    page.reload()
    warm_ttfi = page.ttfi()
    warm = warm_ttfi["first"][backend]
    progress(f"  nnjit TTFI reload {warm['atMs']:.0f} ms (from cache: {warm['cache']['fromCache']}, "
             f"{warm['stored']} schedules from IndexedDB)")  # fmt: skip
    page.close()
    return {
        "ttfi_cold": cold["atMs"], "ttfi_reload": warm["atMs"], "reload_from_cache": warm["cache"]["fromCache"],
        "reload_stored": warm["stored"], "stages_cold": cold["stages"], "stages_reload": warm["stages"],
        "timeline_cold": cold_ttfi["timeline"], "timeline_reload": warm_ttfi["timeline"],
        "runs": [[i.t, i.latency_ms, i.wait_ms, i.steps_before] for i in online.inferences],
        "swaps": [[s["t"] / 1000, s["kernel"], s["speedup"]] for s in status.get("swaps", online.swaps)],
        "tuner": {k: v for k, v in status.items() if k != "swaps"}, "online_started": online.started,
        "tuned_ms": statistics.median(i.latency_ms for i in tuned.inferences), "threads": tuned.threads,
        "description": tuned.description, "max_err": max(max_error(o, reference) for o in distinct.values()),
    }  # fmt: skip


def ort_side(browser: ChromiumBrowser, peer_url: str, name: str, backend: str, threads: int,
             inputs: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    ready = "() => window.ortBench !== undefined && window.ortBench.ttfi !== undefined"
    url = (
        f"{peer_url}ort_page.html?model=/onnx/{name}.onnx&ep={backend}&threads={threads}&feeds=/onnx/{name}.feeds.json"
    )
    page = browser.open_url(
        url, ready=ready, context=browser.new_context(), strict=False
    )  # ORT logs warnings as errors
    cold = page.evaluate("() => window.ortBench.ttfi")
    if "error" in cold:
        raise RuntimeError(f"onnxruntime-web {backend} on {name}: {cold['error']}")
    job = {"model": f"/onnx/{name}.onnx", "ep": backend, "threads": threads, "feeds": feeds(inputs),
           "repeats": args.repeats, "periodMs": args.period_ms}  # fmt: skip
    answer = page.evaluate("(job) => window.ortBench.run(job)", job)
    page.page.reload()
    page.page.wait_for_function(ready)
    warm = page.evaluate("() => window.ortBench.ttfi")
    page.close()
    progress(
        f"  ORT Web TTFI cold {cold['atMs']:.0f} ms, reload {warm['atMs']:.0f} ms; {statistics.median(answer['ms']):.3f} ms a run"
    )
    return {"ttfi_cold": cold["atMs"], "ttfi_reload": warm["atMs"], "ms": statistics.median(answer["ms"])}


def settle_time(runs: list[list[float]], tuned_ms: float, window: int = 10) -> float | None:
    """When the latency settled within 10 % of the tuned one: the first request from which the median
    of the next `window` runs stays there."""
    latencies = [r[1] for r in runs]
    for index in range(len(runs)):
        ahead = latencies[index : index + window]
        if len(ahead) == window and statistics.median(ahead) <= 1.1 * tuned_ms:
            return runs[index][0]
    return None


def summary(row: dict[str, Any]) -> dict[str, Any]:
    n = row["nnjit"]
    runs = n["runs"]
    first_second = [r[1] for r in runs if r[0] <= runs[0][0] + 1.0] or [runs[0][1]]
    last = [r[1] for r in runs if r[0] >= runs[-1][0] - 5.0]
    return {"inferences": len(runs), "first": runs[0][1], "first_second": statistics.median(first_second),
            "all": statistics.median(r[1] for r in runs), "last5": statistics.median(last),
            "longest_wait": max([r[2] for r in runs if r[3] > 0] or [0.0]),
            "longest_other": max([r[2] for r in runs if r[3] == 0] or [0.0]),
            "settled": settle_time(runs, n["tuned_ms"])}  # fmt: skip


def latency_table(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = [f"| model | backend | inferences in {seconds:g} s | first s median ms | median ms (whole window) | "
             f"last 5 s median ms | tuned ms | ORT Web ms | ORT / tuned | within 10 % of tuned at s | swaps | "
             f"tuning steps | longest wait for a step ms | longest other delay ms | tuner done at s | max err |",
             "|" + "---|" * 16]  # fmt: skip
    for row in rows:
        n, s, tuner = row["nnjit"], summary(row), row["nnjit"]["tuner"]
        backend = LABELS[row["backend"]] + (f" ({n['threads']} thr)" if n["threads"] else "")
        settled = "—" if s["settled"] is None else f"{s['settled']:.1f}"
        done = f"{(tuner['startedAt'] + tuner['elapsedMs']) / 1000:.1f}" if tuner.get("complete") else "—"
        lines.append(
            f"| {row['model']} | {backend} | {s['inferences']} | {s['first_second']:.3g} | {s['all']:.3g} | "
            f"{s['last5']:.3g} | {n['tuned_ms']:.3g} | {row['ort']['ms']:.3g} | {row['ort']['ms'] / n['tuned_ms']:.2f}x | "
            f"{settled} | {len(n['swaps'])} | {tuner.get('steps', 0)} | {s['longest_wait']:.0f} | {s['longest_other']:.0f} | {done} | "
            f"{n['max_err']:.1e} |"
        )
    return "\n".join(lines)


def ttfi_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | backend | nnjit cold ms | ORT Web cold ms | nnjit reload ms | ORT Web reload ms | "
             "nnjit reload: bundle from Cache API, schedules from IndexedDB |", "|" + "---|" * 7]  # fmt: skip
    for row in rows:
        n, o = row["nnjit"], row["ort"]
        lines.append(
            f"| {row['model']} | {LABELS[row['backend']]} | {n['ttfi_cold']:.0f} | {o['ttfi_cold']:.0f} | "
            f"{n['ttfi_reload']:.0f} | {o['ttfi_reload']:.0f} | {'yes' if n['reload_from_cache'] else 'no'}, "
            f"{n['reload_stored']} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], folder: Path, seconds: float) -> list[Path]:
    """One PNG per model and backend, and one grid of all (`online-jit-zoo.png`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    def plain(value: float, _: int) -> str:
        return f"{value:g}"

    def draw(ax: Any, row: dict[str, Any]) -> list[Any]:
        n, o = row["nnjit"], row["ort"]
        t = np.array([r[0] for r in n["runs"]])
        ms = np.array([r[1] for r in n["runs"]])
        stepped = np.array([r[3] > 0 for r in n["runs"]])  # a tuning step ran since the previous inference
        total = ms + np.array([r[2] for r in n["runs"]])
        ax.scatter(t[stepped], total[stepped], s=5, color="#c3cbdb", rasterized=True)
        ax.scatter(t, ms, s=5, color="#1f5fbf", rasterized=True)
        ax.axhline(n["tuned_ms"], color="#2a9d4b", ls="--", lw=1.3)
        ax.axhline(o["ms"], color="#c8352b", ls="--", lw=1.3)
        ax.axvline(n["ttfi_cold"] / 1000, color="#1f5fbf", ls=":", lw=1.2)
        ax.axvline(o["ttfi_cold"] / 1000, color="#c8352b", ls=":", lw=1.2)
        swaps = [when for when, _, _ in n["swaps"] if when <= seconds]
        ax.plot(swaps, [0.97] * len(swaps), "v", color="#444", ms=4, transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(plain))
        ax.set_xlim(0, seconds)
        ax.set_title(
            f"{row['model']} · {LABELS[row['backend']]}: nnjit tuned {n['tuned_ms']:.3g} ms, ORT Web {o['ms']:.3g} ms; "
            f"TTFI {n['ttfi_cold'] / 1000:.2f} s vs {o['ttfi_cold'] / 1000:.2f} s",
            fontsize=8.5,
        )
        ax.set_xlabel("s since navigation", fontsize=8)
        ax.set_ylabel("latency ms (log)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.35, lw=0.4)
        return [
            Line2D([], [], ls="", marker="o", ms=4, color="#1f5fbf", label="nnjit online: one inference's run"),
            Line2D([], [], ls="", marker="o", ms=4, color="#c3cbdb", label="… plus its wait, after a tuning step"),
            Line2D([], [], ls="", marker="v", ms=5, color="#444", label="a kernel swapped in"),
            Line2D([], [], ls="--", color="#2a9d4b", label="nnjit tuned (online tuner done)"),
            Line2D([], [], ls="--", color="#c8352b", label="onnxruntime-web"),
            Line2D([], [], ls=":", color="#1f5fbf", label="nnjit first output (TTFI)"),
            Line2D([], [], ls=":", color="#c8352b", label="onnxruntime-web first output"),
        ]

    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        fig, ax = plt.subplots(figsize=(9, 3.4), dpi=110)
        handles = draw(ax, row)
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        path = folder / f"online-jit-{row['model']}-{row['backend']}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    models = sorted({r["model"] for r in rows})
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in rows)]
    fig, axes = plt.subplots(len(models), len(backends), figsize=(6.4 * len(backends), 2.6 * len(models) + 0.6),
                             dpi=90, squeeze=False)  # fmt: skip
    handles: list[Any] = []
    for row in rows:
        handles = draw(axes[models.index(row["model"])][backends.index(row["backend"])], row)
    fig.legend(handles=handles, fontsize=8, loc="upper center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / (2.6 * len(models) + 0.6)))
    path = folder / "online-jit-zoo.png"
    fig.savefig(path)
    plt.close(fig)
    return [*written, path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=sorted(ZOO_MODELS))
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--seconds", type=float, default=30.0, help="the window after navigation (s)")
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--budget", type=float, default=180.0, help="the online tuner's budget (s)")
    parser.add_argument("--period-ms", type=float, default=5.0, help="an inference is due this often (ms)")
    parser.add_argument("--tuned-seconds", type=float, default=3.0, help="the loop after tuning (s)")
    parser.add_argument("--repeats", type=int, default=20, help="ORT Web runs")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plots", type=Path, help="folder for the PNGs")
    parser.add_argument("--json", type=Path, help="all measurements, every inference included")
    parser.add_argument("--replot", type=Path, help="only the report, from an earlier run's --json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        report(saved["rows"], args, saved["chromium"])
        return
    if not ensure_ort_web():
        sys.exit("cannot install onnxruntime-web from npm")
    folder = Path(tempfile.mkdtemp(prefix="nnjit-online-bench-"))
    (folder / "onnx").mkdir()
    peer_server = SiteServer({"/ort/": ORT_DIST, "/onnx/": folder / "onnx", "/": ROOT / "benchmarks" / "browser"},
                             csp=False).start()  # fmt: skip
    rows: list[dict[str, Any]] = []
    version = ""
    try:
        for name in args.models:
            inputs = example_inputs(name, 1, args.seq)
            shapes = {k: v.shape for k, v in inputs.items()}
            session = onnxruntime.InferenceSession(str(zoo_path(name)), providers=["CPUExecutionProvider"])
            results = session.run(None, inputs)
            reference = {o.name: np.asarray(v) for o, v in zip(session.get_outputs(), results, strict=True)}
            progress(f"{name}: export")
            site = nnjit.export(zoo_path(name), folder / name, shapes, args.backends, inputs, name, args.candidates,
                                kernel_db=False)  # fmt: skip
            shutil.copyfile(zoo_path(name), folder / "onnx" / f"{name}.onnx")
            (folder / "onnx" / f"{name}.feeds.json").write_text(json.dumps(feeds(inputs)))
            for backend in args.backends:
                load = os.getloadavg()[0]
                progress(f"{name} {backend}: fresh Chromium (load average {load:.1f})")
                browser = ChromiumBrowser()
                version = browser.version
                try:
                    ours = nnjit_side(browser, site, backend, inputs, reference, args)
                    theirs = ort_side(browser, peer_server.url, name, backend, ours["threads"] or 1, inputs, args)
                finally:
                    browser.close()
                rows.append({"model": name, "backend": backend, "shape": f"1x{args.seq}", "nnjit": ours, "ort": theirs,
                             "load": load})  # fmt: skip
    finally:
        peer_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"chromium": version, "rows": rows}))
    report(rows, args, version)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, version: str) -> None:
    """The markdown (printed, and written to `--markdown`) and the plots (`--plots`)."""
    images = plot(rows, args.plots, args.seconds) if args.plots else []
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.system()}"
    command = (f"python benchmarks/online_jit.py --seconds {args.seconds:g} --seq {args.seq} --candidates {args.candidates} "
               f"--budget {args.budget:g} --period-ms {args.period_ms:g} --tuned-seconds {args.tuned_seconds:g} "
               f"--repeats {args.repeats}")  # fmt: skip
    grid = [p for p in images if p.name == "online-jit-zoo.png"]
    text = (
        f"# Online JIT in the page vs onnxruntime-web, zoo models\n\n"
        f"Measured {date.today()} with `{command}` on {machine} (a shared 2-core Debian VM, no GPU); Chromium "
        f"{version} headless, WebGPU = Dawn on SwiftShader (a CPU rasteriser), onnxruntime-web {ort_web_version()} "
        f"(npm, `ort.all.min.mjs`). Inputs 1x{args.seq} tokens. One fresh Chromium per model and backend. How it "
        f"works and how to read this: `docs/online-jit.md`.\n\n"
        f"## Latency over the first {args.seconds:g} s of a cold start\n\n"
        f"nnjit's page answers its first request with the default schedules and tunes between inferences; an "
        f"inference is due every {args.period_ms:g} ms (or as soon as the previous one answered, when later). "
        f"Latency: one inference's run (inputs in, outputs back in JS), not counting its wait (from when it was "
        f"due to its start): the longest wait of an inference that a tuning step preceded has its own column, "
        f"the longest delay of any other (timers, garbage collection, other processes) the next one. Tuned: median of the same "
        f"loop for {args.tuned_seconds:g} s after the online tuner finished (every variant measured, or its "
        f"{args.budget:g} s budget). ORT Web: median of {args.repeats} runs after its first, requested the same "
        f"way, same Wasm threads as nnjit ended with. Max err: largest |difference| from native onnxruntime over "
        f"every output nnjit produced. Load average (1 min) of the machine when each pair started: "
        f"{min(r['load'] for r in rows):.1f} to {max(r['load'] for r in rows):.1f} (others' jobs share its 2 "
        f"cores: single runs are noisy).\n\n"
        f"{latency_table(rows, args.seconds)}\n\n"
        f"## Time to first inference (ms from navigation start to the first output in JS)\n\n"
        f"Cold: a fresh browser (no HTTP, shader or code cache) and context. Reload: the same page again; nnjit "
        f"reads its bundle from the Cache API (keyed by its content hash) and its tuned schedules from IndexedDB, "
        f"ORT Web gets its files from the HTTP cache (revalidated: the server sends `no-cache`).\n\n"
        f"{ttfi_table(rows)}\n"
    )
    if grid:
        text += f"\n![latency over time, every model and backend](../images/{grid[0].name})\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
