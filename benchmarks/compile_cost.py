"""Compile cost of one kernel candidate: nnjit against Apache TVM, for the same 512^3 fp32 matmul, in one run.

    python benchmarks/compile_cost.py [--size 512] [--candidates 8] [--repeats 5] [--markdown FILE]

Per candidate schedule (workgroup 16x16 / 8x8 / 16x8 ..., 4x4 or 2x2 per-thread tiles, k 8, A and B
staged in workgroup memory), the median of `--repeats` measurements of:

* nnjit, WebGPU: set the schedule on the `web.kernel` and print its WGSL (op -> WGSL text); plus
  shader module and compute pipeline creation on the adapter (-> validated pipeline: naga's
  validation and the driver's pipeline); plus the first dispatch (drivers that compile lazily, such
  as lavapipe, do their machine code there).
* nnjit, Wasm: print the kernel's WAT (op -> WAT text); plus assembling it (-> binary); plus
  wasmtime's Cranelift compile (-> machine code).
* TVM (`apache-tvm` 0.27: `te.compute` -> `s_tir.Schedule` with the same tiles, shared-memory
  staging, local accumulators and unrolling -> `tvm.compile`) for its `webgpu` target (WGSL device
  code plus a wasm32 LLVM host module, as TVM deploys to browsers) and for `llvm -mtriple=wasm32`;
  its WGSL is also passed through the same shader-module creation to validate it.

The ratio is TVM's schedule + compile time over nnjit's time to produce the same artifact (text; the
Wasm binary). Driver shader caches are off, so pipeline figures are cold.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from onnx import TensorProto, helper

import nnjit
from nnjit.backends.wgsl import print_kernel
from nnjit.dialects.web import KernelOp, Schedule

WGPU_SCHEDULES = [
    Schedule((16, 16, 1), (64, 64, 8), (4, 4), 4, 8, True),
    Schedule((8, 8, 1), (32, 32, 8), (4, 4), 4, 8, True),
    Schedule((16, 8, 1), (32, 64, 8), (4, 4), 4, 8, True),
    Schedule((8, 16, 1), (64, 32, 8), (4, 4), 4, 8, True),
    Schedule((16, 16, 1), (32, 32, 8), (2, 2), 2, 8, True),
    Schedule((8, 8, 1), (16, 16, 8), (2, 2), 2, 8, True),
    Schedule((16, 8, 1), (16, 32, 8), (2, 2), 2, 8, True),
    Schedule((8, 16, 1), (32, 16, 8), (2, 2), 2, 8, True),
]
"""Schedules both compilers can express the same way (TVM: the same split factors, `shared` and `local`)."""
WASM_SCHEDULES = [
    Schedule((1, 1, 1), (64, 64, 256), (8, 8), 4, 4, False),
    Schedule((1, 1, 1), (32, 64, 64), (4, 8), 4, 4, False),
    Schedule((1, 1, 1), (64, 32, 64), (8, 4), 4, 4, False),
    Schedule((1, 1, 1), (16, 64, 256), (2, 16), 4, 4, False),
]


def matmul_kernel(size: int, target: str) -> KernelOp:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"], name="matmul")], "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (kernel,) = nnjit.compile(model, target=target, kernel_db=False).kernels
    return kernel


def median_ms(work: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


@dataclass
class Costs:
    """Median milliseconds per candidate of each stage, over candidates."""

    rows: dict[str, list[float]]

    def add(self, stage: str, ms: float) -> None:
        self.rows.setdefault(stage, []).append(ms)

    def median(self, stage: str) -> float:
        return statistics.median(self.rows[stage]) if stage in self.rows else float("nan")


def nnjit_webgpu(size: int, repeats: int, costs: Costs) -> None:
    from nnjit.runtime.webgpu import WebGPUExecutor, shared_executor
    from nnjit.tuner.harness import kernel_module, named, oracle_case

    kernel = matmul_kernel(size, "webgpu")
    adapter = shared_executor().adapter
    case = oracle_case(kernel)
    for schedule in WGPU_SCHEDULES:
        costs.add("nnjit webgpu: op -> WGSL text", median_ms(lambda s=schedule: _print(kernel, s), repeats))
        samples, first = [], []
        for _ in range(repeats):
            executor = WebGPUExecutor(adapter)  # an empty pipeline cache: nothing is reused
            module, clone = kernel_module(kernel, schedule, {"web.limits": executor.limits()})
            started = time.perf_counter()
            executor.pipeline(clone)
            samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            executor.run(module, named(case.arguments))
            first.append(time.perf_counter() - started)
            executor.device.destroy()
        costs.add("nnjit webgpu: -> validated pipeline", statistics.median(samples) * 1e3)
        costs.add("nnjit webgpu: first dispatch (upload, lazy driver compile, run)", statistics.median(first) * 1e3)


def _print(kernel: KernelOp, schedule: Schedule) -> str:
    kernel.schedule = schedule.to_attr()
    return print_kernel(kernel).text


def nnjit_wasm(size: int, repeats: int, costs: Costs) -> None:
    import wasmtime
    from xdsl.dialects.builtin import StringAttr

    from nnjit.backends.wasm import assemble_wat, build_program
    from nnjit.tuner.harness import kernel_module

    kernel = matmul_kernel(size, "wasm")
    engine_config = wasmtime.Config()
    engine_config.wasm_simd = engine_config.wasm_relaxed_simd = True
    engine_config.cranelift_opt_level = "speed"
    engine = wasmtime.Engine(engine_config)
    for schedule in WASM_SCHEDULES:
        module, _ = kernel_module(kernel, schedule, {"web.target": StringAttr("wasm")})
        text = build_program(module, None, True, assemble=False).text
        binary = assemble_wat(text)
        costs.add("nnjit wasm: op -> WAT text",
                  median_ms(lambda m=module: build_program(m, None, True, assemble=False), repeats))  # fmt: skip
        costs.add("nnjit wasm: -> binary", costs.rows["nnjit wasm: op -> WAT text"][-1]
                  + median_ms(lambda t=text: assemble_wat(t), repeats))  # fmt: skip
        costs.add("nnjit wasm: -> machine code (wasmtime)", costs.rows["nnjit wasm: -> binary"][-1]
                  + median_ms(lambda b=binary: wasmtime.Module(engine, b), repeats))  # fmt: skip


def tvm_matmul(size: int) -> Any:
    from tvm import te

    a = te.placeholder((size, size), "float32", name="A")
    b = te.placeholder((size, size), "float32", name="B")
    k = te.reduce_axis((0, size), name="k")
    c = te.compute((size, size), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return te.create_prim_func([a, b, c])


def tvm_gpu_schedule(func: Any, schedule: Schedule) -> Any:
    from tvm import s_tir

    (x, y, _), (tm, tn), tk = schedule.workgroup, schedule.thread, schedule.tile[2]
    sch = s_tir.Schedule(func)
    block = sch.get_sblock("C")
    i, j, k = sch.get_loops(block)
    bi, ti, ii = sch.split(i, [None, y, tm])
    bj, tj, jj = sch.split(j, [None, x, tn])
    ko, ki = sch.split(k, [None, tk])
    sch.reorder(bi, bj, ti, tj, ko, ki, ii, jj)
    sch.bind(bi, "blockIdx.y")
    sch.bind(bj, "blockIdx.x")
    sch.bind(ti, "threadIdx.y")
    sch.bind(tj, "threadIdx.x")
    sch.reverse_compute_at(sch.cache_write(block, 0, "local"), tj)
    for operand in (0, 1):
        shared = sch.cache_read(block, operand, "shared")
        sch.compute_at(shared, ko)
        fused = sch.fuse(*sch.get_loops(shared)[-2:])
        _, ty, tx = sch.split(fused, [None, y, x])
        sch.bind(ty, "threadIdx.y")
        sch.bind(tx, "threadIdx.x")
    for loop in (ki, ii, jj):
        sch.unroll(loop)
    return sch.mod


def tvm_cpu_schedule(func: Any, schedule: Schedule) -> Any:
    from tvm import s_tir

    (mb, nb, kb), (mr, nr) = schedule.tile, schedule.thread
    sch = s_tir.Schedule(func)
    block = sch.get_sblock("C")
    i, j, k = sch.get_loops(block)
    io, ii, ir = sch.split(i, [None, mb // mr, mr])
    jo, ji, jr = sch.split(j, [None, nb // nr, nr])
    ko, ki = sch.split(k, [None, kb])
    sch.reorder(io, jo, ko, ii, ji, ki, ir, jr)
    sch.unroll(ir)
    sch.vectorize(jr)
    return sch.mod


def tvm_costs(size: int, repeats: int, costs: Costs) -> str:
    """TVM's figures into `costs`; returns its version, or why it could not build."""
    try:
        import tvm
    except ImportError as error:
        return f"not installed ({error}); `pip install apache-tvm`"
    webgpu = tvm.target.Target({"kind": "webgpu"}, host={"kind": "llvm", "mtriple": "wasm32-unknown-unknown-wasm"})
    wasm = tvm.target.Target({"kind": "llvm", "mtriple": "wasm32-unknown-unknown-wasm"})
    try:
        for schedule in WGPU_SCHEDULES:
            costs.add("tvm webgpu: schedule + tvm.compile (WGSL + wasm32 host)",
                      median_ms(lambda s=schedule: tvm.compile(tvm_gpu_schedule(tvm_matmul(size), s), target=webgpu),
                                repeats))  # fmt: skip
        wgsl = tvm.compile(tvm_gpu_schedule(tvm_matmul(size), WGPU_SCHEDULES[0]), target=webgpu).mod.imports[0]
        costs.add("tvm webgpu: its WGSL -> validated pipeline", _validate(wgsl.inspect_source(), repeats))
        for schedule in WASM_SCHEDULES:
            costs.add("tvm wasm32: schedule + tvm.compile",
                      median_ms(lambda s=schedule: tvm.compile(tvm_cpu_schedule(tvm_matmul(size), s), target=wasm),
                                repeats))  # fmt: skip
    except Exception as error:  # report why TVM cannot build here instead of failing the benchmark
        return f"{tvm.__version__}, failed: {' '.join(str(error).split())[:300]}"
    return str(tvm.__version__)


def _validate(source: str, repeats: int) -> float:
    from nnjit.runtime.webgpu import shared_executor

    device = shared_executor().device
    start = source.index("@group")  # TVM prefixes comments naming the function
    text = source[start:]
    entry = text.split("fn ", 1)[1].split("(", 1)[0].strip()

    def build() -> None:
        module = device.create_shader_module(code=text)
        device.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": entry})

    return median_ms(build, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma list of: webgpu, wasm, tvm")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")
    os.environ.setdefault("__GL_SHADER_DISK_CACHE", "0")
    skip = set(args.skip.split(","))
    costs = Costs({})
    adapter = "-"
    if "webgpu" not in skip:
        nnjit_webgpu(args.size, args.repeats, costs)
        from nnjit.runtime.webgpu import shared_executor

        info = dict(shared_executor().adapter.info)
        adapter = f"{info.get('device', '?')} ({info.get('backend_type', '?')})"
    if "wasm" not in skip:
        nnjit_wasm(args.size, args.repeats, costs)
    tvm_version = tvm_costs(args.size, args.repeats, costs) if "tvm" not in skip else "skipped"
    lines = ["| stage (per candidate) | candidates | median ms |", "|---|---|---|"]
    lines += [f"| {stage} | {len(values)} | {statistics.median(values):.2f} |" for stage, values in costs.rows.items()]
    ratios = {
        "TVM / nnjit, WebGPU text": ("tvm webgpu: schedule + tvm.compile (WGSL + wasm32 host)", "nnjit webgpu: op -> WGSL text"),
        "TVM's text / nnjit's validated pipeline": ("tvm webgpu: schedule + tvm.compile (WGSL + wasm32 host)",
                                                    "nnjit webgpu: -> validated pipeline"),
        "TVM / nnjit, Wasm binary": ("tvm wasm32: schedule + tvm.compile", "nnjit wasm: -> binary"),
    }  # fmt: skip
    summary = (
        "; ".join(
            f"{label}: **{costs.median(theirs) / costs.median(ours):.1f}x**"
            for label, (theirs, ours) in ratios.items()
            if theirs in costs.rows and ours in costs.rows
        )
        or "no TVM figures in this run"
    )
    where = f"{adapter}; {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs; apache-tvm {tvm_version}"
    text = "\n".join(lines)
    print(text, "", summary, where, sep="\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        command = " ".join(["python benchmarks/compile_cost.py", *sys.argv[1:]])
        with args.markdown.open("a") as out:
            out.write(f"\n## {date.today().isoformat()} — {where}\n\n`{command}`, {args.size}³ fp32 matmul.\n\n"
                      f"{text}\n\n{summary}\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
