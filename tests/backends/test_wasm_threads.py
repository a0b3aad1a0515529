"""Multi-threaded Wasm programs (`build_program(threads=True)`) against the oracle and the one-thread program.

Two checks. **Shares** (wasmtime, the kernels called one thread at a time): from memory
filled with a sentinel, each `k(tid, nt)` alone must write only its own part of the output (and its
own scratch copy), every output element must be written by exactly one thread, and what it writes
must already equal the oracle; so no thread reads what another writes in the same step, whatever
the interleaving. **Concurrency** (Node 20, `wasm_threads_harness.mjs`): N `worker_threads` run the
browser worker's code (`nnjit/runtime/web/wasm_worker.js`) on a shared `WebAssembly.Memory`, with
barriers between steps; outputs for 1 to 4 threads (and `run(1)` without workers) must match.
Drawn: matmul shapes (M below the thread count, N off multiples of 4, batch, K past the cache
block) under lite-space and small-block schedules, elementwise and row_reduce kernels (softmax,
layer norm), reductions, scans, convolutions and pooling; and the GPT-2 zoo model.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st
from wasm_cases import assert_matches, floats, kernel_module, named, node_engine, splat, wasm_schedule
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from nnjit.backends.wasm import WasmProgram, assemble_wat, build_program, to_storage
from nnjit.backends.wasm_threads import PARALLEL_MIN_WORK, matmul_split
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp, Schedule
from nnjit.runtime.wasm import input_bytes, output_arrays
from nnjit.runtime.wasm_node import RELAXED_FLAGS
from nnjit.runtime.web_reference import run_web_module
from nnjit.tuner.lite_wasm import wasm_lite_space
from nnjit.tuner.wasm_spaces import wasm_matmul_schedules, wasm_row_reduce_schedules, wasm_simple_schedules

Array = np.ndarray[Any, Any]
HARNESS = Path(__file__).with_name("wasm_threads_harness.mjs")
POISON = 0x7FA5A5A5
"""A NaN no kernel computes (and an i32 none of these tests produces)."""
COUNTS = (1, 2, 3, 4)
SMALL_BLOCKS = [s for s in wasm_matmul_schedules() if s.tile[2] == 64 and s.tile[0] <= 16 and s.tile[1] <= 32]


@cache
def relaxed() -> bool:
    """Whether this Node's V8 takes relaxed SIMD (the harness passes the same flag)."""
    return node_engine().relaxed


def threaded(module: ModuleOp, weights: Any = None, min_work: int = 0) -> WasmProgram:
    """The threaded program; `min_work = 0` splits every kernel that has 2 blocks to split."""
    return build_program(module, weights, relaxed(), threads=True, parallel_min_work=min_work)


# --- Concurrency: Node workers --------------------------------------------------------------------


def node_threads(program: WasmProgram, inputs: dict[str, Array], counts: Sequence[int] = COUNTS,
                 repeats: int = 0) -> tuple[dict[int, dict[str, Array]], dict[int, list[float]]]:  # fmt: skip
    """Outputs (and with `repeats`, seconds per run) of the program on each thread count (0: `run(1)`)."""
    plan = program.plan
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "program.wasm").write_bytes(program.binary)
        (folder / "plan.json").write_text(program.plan_json())
        (folder / "weights.bin").write_bytes(b"".join(data for _, data in plan.weights))
        (folder / "inputs.bin").write_bytes(b"".join(input_bytes(plan, inputs)))
        flags = list(RELAXED_FLAGS) if plan.relaxed else []
        command = [node_engine().node, *flags, str(HARNESS), tmp, ",".join(map(str, counts)), str(repeats)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise AssertionError(f"the threads harness failed: {done.stderr.strip()[-2000:]}")
        seconds = {int(k): v for k, v in json.loads(done.stdout)["seconds"].items()}
        results: dict[int, dict[str, Array]] = {}
        for count in counts:
            raw, at, parts = (folder / f"outputs-{count}.bin").read_bytes(), 0, []
            for t in plan.outputs:
                parts.append(raw[at : at + 4 * t.count])
                at += 4 * t.count
            results[count] = output_arrays(plan, parts)
    return results, seconds


def check_node(module: ModuleOp, inputs: Sequence[Array], atol: float = 1e-4) -> None:
    """`run(1)` and every thread count in Node agree with the oracle."""
    program = threaded(module)
    expected = run_web_module(module, named(inputs))["y"]
    results, _ = node_threads(program, named(inputs), (0, *COUNTS))
    for count, outputs in results.items():
        try:
            assert_matches(outputs["y"], expected, atol=atol)
        except AssertionError as error:
            raise AssertionError(f"{count} threads: {error}") from error


# --- Shares: each thread alone, in wasmtime ---------------------------------------------------------


@cache
def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.wasm_relaxed_simd = True
    return wasmtime.Engine(config)


class SharedInstance:
    """A threaded program's kernels in wasmtime, called one thread at a time.

    The import of the shared memory is swapped for an exported plain one of the same size (the
    kernels use no atomics, so they validate either way): the functions are the program's own.
    """

    def __init__(self, program: WasmProgram):
        engine, pages = _engine(), program.plan.pages
        text = program.text.replace(f'(import "env" "memory" (memory {pages} {pages} shared))',
                                    f'(memory (export "memory") {pages})')  # fmt: skip
        assert text != program.text
        self.store = wasmtime.Store(engine)
        instance = wasmtime.Instance(self.store, wasmtime.Module(engine, assemble_wat(text)), [])
        self.exports = instance.exports(self.store)
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        size = memory.data_len(self.store)
        self.bytes = np.ctypeslib.as_array(memory.data_ptr(self.store), shape=(size,))
        self.words = self.bytes.view(np.uint32)

    def call(self, name: str, *args: int) -> None:
        """Call an export."""
        function = self.exports[name]
        assert isinstance(function, wasmtime.Func)
        function(self.store, *args)


def check_shares(module: ModuleOp, inputs: Sequence[Array], counts: Sequence[int] = (2, 3, 5),
                 atol: float = 1e-4) -> WasmProgram:  # fmt: skip
    """Each thread alone writes only its share, exactly once over all threads, already equal to the oracle."""
    program = threaded(module)
    plan = program.plan
    expected = run_web_module(module, named(inputs))["y"]
    out = plan.outputs[0]
    want = to_storage(expected, out.storage, "y").reshape(-1).view(np.uint32)
    scratch = next(r for r in plan.regions if r.kind == "scratch")
    inst = SharedInstance(program)
    inst.words[:] = POISON
    for t, data in zip(plan.inputs, input_bytes(plan, named(inputs)), strict=True):
        inst.bytes[t.offset : t.offset + len(data)] = np.frombuffer(data, np.uint8)
    start = inst.words.copy()
    lo, hi = out.offset // 4, out.offset // 4 + out.count
    s_lo, s_hi = scratch.offset // 4, (scratch.offset + scratch.nbytes) // 4
    if not plan.parallel[0]:  # not split: thread 0 does it all, any other thread nothing
        inst.words[:] = start
        inst.call(plan.steps[0], 1, 2)
        assert (inst.words == start).all(), "thread 1 of an unsplit kernel writes"
    for nt in counts if plan.parallel[0] else (1,):
        owner = np.full(out.count, -1)
        scratch_owner = np.full(s_hi - s_lo, -1)
        for tid in range(nt):
            inst.words[:] = start
            inst.call(plan.steps[0], tid, nt)
            changed = np.flatnonzero(inst.words != start)
            stray = changed[((changed < lo) | (changed >= hi)) & ((changed < s_lo) | (changed >= s_hi))]
            assert stray.size == 0, f"thread {tid}/{nt} writes outside its output and scratch: words {stray[:8]}"
            mine = changed[(changed >= lo) & (changed < hi)] - lo
            assert (owner[mine] == -1).all(), f"thread {tid}/{nt} writes output another thread writes"
            owner[mine] = tid
            packed = changed[(changed >= s_lo) & (changed < s_hi)] - s_lo
            assert (scratch_owner[packed] == -1).all(), f"thread {tid}/{nt} packs into another thread's scratch"
            scratch_owner[packed] = tid
            got = inst.words[lo:hi][mine]
            if expected.dtype.kind == "f":
                np.testing.assert_allclose(got.view(np.float32), want[mine].view(np.float32), rtol=1e-3, atol=atol,
                                           equal_nan=True, err_msg=f"thread {tid}/{nt} alone")  # fmt: skip
            else:
                np.testing.assert_array_equal(got, want[mine], err_msg=f"thread {tid}/{nt} alone")
        unwritten = np.flatnonzero(owner < 0)
        assert unwritten.size == 0 or (want[unwritten] == POISON).all(), f"{nt} threads leave {unwritten[:8]} unwritten"
    return program


# --- Matmul ---------------------------------------------------------------------------------------


@st.composite
def matmuls(draw: st.DrawFn) -> dict[str, Any]:
    """Shapes with M often below the thread count, N off multiples of 4, batch, K past the cache block."""
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    return {
        "batch": batch,
        "b_batch": [b if draw(st.booleans()) else 1 for b in batch],
        "m": draw(st.one_of(st.integers(1, 5), st.integers(6, 70))),
        "n": draw(st.one_of(st.integers(1, 9), st.integers(10, 70))),
        "k": draw(st.one_of(st.integers(1, 48), st.integers(60, 300))),
        "transpose_b": draw(st.booleans()),
        "epilogue": draw(st.sampled_from(["none", "bias", "gelu"])),
    }


def _matmul(problem: dict[str, Any], seed: int) -> tuple[list[Array], Callable[..., Any]]:
    rng = np.random.default_rng(seed)
    m, n, k = problem["m"], problem["n"], problem["k"]
    b_shape = [*problem["b_batch"], *((n, k) if problem["transpose_b"] else (k, n))]
    inputs = [floats(rng, [*problem["batch"], m, k], -1, 1), floats(rng, b_shape, -1, 1), floats(rng, [n], -1, 1)]

    def body(a: SSAValue, b: SSAValue, bias: SSAValue) -> Any:
        rank = len(b_shape)
        rhs: Any = nn.TransposeOp(b, [*range(rank - 2), rank - 1, rank - 2]) if problem["transpose_b"] else b
        y: Any = nn.MatmulOp(a, rhs)
        if problem["epilogue"] != "none":
            y = nn.AddOp(y, bias)
        return nn.GeluOp(y, "tanh") if problem["epilogue"] == "gelu" else y

    return inputs, body


def _scheduled(module: ModuleOp, pick: int, small: Schedule | None) -> ModuleOp:
    """The module's kernel under lite-space candidate `pick` (or `small`, a small-block schedule)."""
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    candidates = wasm_lite_space(kernel).candidates
    kernel.schedule = (small or candidates[pick % len(candidates)]).to_attr()
    module.verify()
    return module


MATMUL_DRAWS = {"problem": matmuls(), "pick": st.integers(0, 63), "small": st.one_of(st.none(), st.sampled_from(SMALL_BLOCKS)),
                "seed": st.integers(0, 2**32 - 1)}  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(**MATMUL_DRAWS)
def test_matmul_shares(problem: dict[str, Any], pick: int, small: Schedule | None, seed: int) -> None:
    inputs, body = _matmul(problem, seed)
    module = _scheduled(kernel_module("matmul", wasm_schedule(4, 1, (8, 8, 64), (8, 8)), inputs, body), pick, small)
    program = check_shares(module, inputs, atol=1e-4 + 1e-5 * problem["k"])
    s = next(op for op in module.walk() if isinstance(op, KernelOp)).schedule.values
    units = max(-(-problem["m"] // s.thread[0]), -(-problem["n"] // s.thread[1]), shapes.numel(problem["batch"]))
    assert program.plan.parallel == [units >= 2]


@settings(max_examples=25, deadline=None)
@given(**MATMUL_DRAWS)
def test_matmul_in_node_workers(problem: dict[str, Any], pick: int, small: Schedule | None, seed: int) -> None:
    inputs, body = _matmul(problem, seed)
    module = _scheduled(kernel_module("matmul", wasm_schedule(4, 1, (8, 8, 64), (8, 8)), inputs, body), pick, small)
    check_node(module, inputs, atol=1e-4 + 1e-5 * problem["k"])


def test_matmul_split_dims() -> None:
    """Rows when there are enough register blocks of rows, strips for the zoo's M = 16, batch for 1-row heads."""
    rng = np.random.default_rng(0)

    def dim(a_shape: list[int], b_shape: list[int], thread: tuple[int, int] = (8, 8)) -> str | None:
        module = kernel_module("matmul", wasm_schedule(4, 1, (thread[0], thread[1], 64), thread),
                               [floats(rng, a_shape), floats(rng, b_shape)], nn.MatmulOp)  # fmt: skip
        return matmul_split(next(op for op in module.walk() if isinstance(op, KernelOp)), 8)

    assert dim([384, 384], [384, 1536]) == "m"
    assert dim([16, 32], [32, 96]) == "n"
    assert dim([4, 1, 8], [4, 8, 4], (1, 4)) == "z"
    assert dim([1, 8], [8, 4], (1, 4)) is None


# --- Other templates ------------------------------------------------------------------------------

ROWS = st.sampled_from([(1, 517), (3, 130), (2, 5, 33), (37, 9), (9, 3), (1, 3)])


def _row_op(op: str) -> Callable[..., Any]:
    def body(a: SSAValue, g: SSAValue, b: SSAValue) -> Any:
        if op == "softmax":
            return nn.SoftmaxOp(a, -1)
        return nn.LayerNormOp(a, g, b, len(nn.tensor_shape(a)) - 1, 1e-5)

    return body


@settings(max_examples=40, deadline=None)
@given(shape=ROWS, op=st.sampled_from(["softmax", "layer_norm"]), schedule=st.sampled_from(wasm_row_reduce_schedules()),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_row_reduce_shares(shape: tuple[int, ...], op: str, schedule: Schedule, seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs = [floats(rng, shape), floats(rng, shape[-1:]), floats(rng, shape[-1:])]
    program = check_shares(kernel_module("row_reduce", schedule, inputs, _row_op(op)), inputs)
    assert program.plan.parallel == [shapes.numel(shape[:-1]) >= 2]


ELEMENTWISE_SHAPES = st.sampled_from([(1, 1030), (2, 517), (3, 2, 9), (64, 12), (7,), (1, 3), (5, 1)])


@settings(max_examples=40, deadline=None)
@given(shape=ELEMENTWISE_SHAPES, schedule=st.sampled_from(wasm_simple_schedules()), seed=st.integers(0, 2**32 - 1))
def test_elementwise_shares(shape: tuple[int, ...], schedule: Schedule, seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs = [floats(rng, shape), floats(rng, shape[-1:])]
    check_shares(kernel_module("elementwise", schedule, inputs, lambda x, b: nn.GeluOp(nn.AddOp(x, b), "none")), inputs)


def test_reductions_scans_convolutions_and_pooling_share() -> None:
    rng = np.random.default_rng(3)
    for schedule in (wasm_schedule(4, 2), wasm_schedule(1, 1)):
        x = floats(rng, (2, 3, 9, 11))
        check_shares(kernel_module("reduce", schedule, [x], lambda a: nn.ReduceSumOp(a, [1], True)), [x])
        check_shares(kernel_module("scan", schedule, [x], lambda a: nn.CumsumOp(a, 2)), [x])
        w, b = floats(rng, (4, 3, 3, 3)), floats(rng, (4,))
        check_shares(kernel_module("conv2d", schedule, [x, w, b],
                                   lambda a, k, c: nn.Conv2dOp(a, k, c, [1, 1], [1, 1, 1, 1], [1, 1], 1)),
                     [x, w, b], atol=1e-3)  # fmt: skip
        check_shares(kernel_module("pool", schedule, [x], lambda a: nn.MaxPool2dOp(a, [2, 2], [2, 2], [0, 0, 1, 1])),
                     [x])  # fmt: skip


def test_elementwise_and_row_reduce_in_node_workers() -> None:
    rng = np.random.default_rng(5)
    for shape in [(1, 1030), (3, 130), (37, 9)]:
        x, g, b = floats(rng, shape), floats(rng, shape[-1:]), floats(rng, shape[-1:])
        for op in ("softmax", "layer_norm"):
            check_node(kernel_module("row_reduce", wasm_schedule(4, 2), [x, g, b], _row_op(op)), [x, g, b])
        check_node(kernel_module("elementwise", wasm_schedule(4, 2), [x, b],
                                 lambda a, c: nn.MulOp(nn.TanhOp(nn.AddOp(a, c)), splat(0.5, np.float32))), [x, b])  # fmt: skip


# --- Programs -------------------------------------------------------------------------------------


def test_threaded_module_text_and_plan() -> None:
    rng = np.random.default_rng(1)
    a, b = floats(rng, (64, 32)), floats(rng, (32, 48))
    module = kernel_module("matmul", wasm_schedule(4, 1, (16, 16, 64), (8, 8), True), [a, b], nn.MatmulOp)
    plain, program = build_program(module, None), threaded(module)
    assert '(memory (export "memory")' in plain.text and "$tid" not in plain.text
    assert plain.plan.to_json()["threads"] is False and plain.plan.to_json()["parallel"] == [False]
    pages = program.plan.pages
    assert f'(import "env" "memory" (memory {pages} {pages} shared))' in program.text
    assert (
        "(param $tid i32) (param $nt i32)" in program.text
        and "(call $k0_k0 (i32.const 0) (i32.const 1))" in program.text
    )
    plan = program.plan.to_json()
    assert plan["threads"] is True and plan["parallel"] == [True] and plan["max_threads"] == 8
    scratch = next(r for r in program.plan.regions if r.kind == "scratch")
    assert scratch.nbytes == 8 * 4 * 32 * 16  # one K x nb = 32 x 16 panel per thread, 8 threads
    small = build_program(module, None, threads=True, parallel_min_work=10**9)
    assert small.plan.parallel == [False]


def test_more_threads_than_the_program_reserves_are_refused() -> None:
    rng = np.random.default_rng(2)
    a, b = floats(rng, (32, 8)), floats(rng, (8, 16))
    module = kernel_module("matmul", wasm_schedule(4, 1, (8, 8, 64), (8, 8)), [a, b], nn.MatmulOp)
    program = build_program(module, None, relaxed(), threads=True, max_threads=2, parallel_min_work=0)
    assert node_threads(program, named([a, b]), (2,))[0][2]["y"].shape == (32, 16)
    with pytest.raises(AssertionError, match="runs on 1 to 2 threads"):
        node_threads(program, named([a, b]), (3,))


def test_a_trap_in_one_worker_fails_the_run() -> None:
    """Integer division by zero traps in the worker that owns the zero; the run still ends, as a failure."""
    a = np.arange(1, 4097, dtype=np.int64).reshape(64, 64)
    b = np.ones((64, 64), dtype=np.int64)
    b[60, 5] = 0  # in the last rows: not thread 0's share
    program = threaded(kernel_module("elementwise", wasm_schedule(4, 1), [a, b], nn.DivOp))
    assert program.plan.parallel == [True]
    with pytest.raises(AssertionError, match="worker 1: wasm kernel k0_k0 trapped"):
        node_threads(program, named([a, b]), (2,))


def test_gpt2_with_1_to_4_threads() -> None:
    """The zoo's GPT-2 with threads equals the one-thread program, with the default threshold and with every step split."""
    import nnjit
    from nnjit.models.zoo import example_inputs, zoo_path

    inputs = example_inputs("gpt2", 1, 16)
    compiled = nnjit.compile(zoo_path("gpt2"), {"input_ids": (1, 16)}, target="wasm", kernel_db=False)
    expected = node_engine().run(compiled.module, inputs, compiled.weights)
    for min_work in (PARALLEL_MIN_WORK, 0):
        program = threaded(compiled.module, compiled.weights, min_work)
        if min_work == 0:
            assert all(program.plan.parallel)
        results, _ = node_threads(program, inputs, (0, *COUNTS))
        for count, outputs in results.items():
            for name, value in expected.items():
                np.testing.assert_allclose(outputs[name], value, rtol=1e-5, atol=1e-5, err_msg=f"{count} threads")
