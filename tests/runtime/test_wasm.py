"""The Wasm executors (wasmtime and V8 through Node): zoo models, memory safety, errors, host plans.

Modules are lowered by the `wasm` pipeline or hand-written `web` IR; results are compared with the
numpy oracle. A missing engine (no `node`, no wasmtime) is a failure, never a skip.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnjit
from nnjit.backends.wasm import HostPlan, WasmProgram, assemble_wat, build_program
from nnjit.cli import main as cli_main
from nnjit.context import parse_module
from nnjit.errors import NnjitError
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path
from nnjit.runtime.wasm import WasmtimeExecutor
from nnjit.runtime.wasm_node import NodeExecutor
from nnjit.runtime.web_reference import run_web_module

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends"))
from wasm_cases import engines, node_engine, wasmtime_engine

SCHEDULE = (
    "#web.schedule<workgroup = [1, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 4, unroll = 1, shared = false>"
)


def _kernel(name: str, op: str, shape: str, dtype: str = "f32") -> str:
    t = f"tensor<{shape}x{dtype}>"
    return f"""
web.kernel @{name}(%a: {t}, %b: {t}) -> {t} attributes {{template = "elementwise", schedule = {SCHEDULE}}} {{
  %r = {op} %a, %b : ({t}, {t}) -> {t}
  web.yield %r : {t}
}}"""


# Three dispatches; the first and last share slot 0, so `first` must be read before the last runs.
CHAIN = (
    _kernel("add", "nn.add", "4x6")
    + _kernel("mul", "nn.mul", "4x6")
    + _kernel("sub", "nn.sub", "24")
    + """
func.func @main(%x: tensor<4x6xf32> {nn.name = "x"}, %w: tensor<24xf32> {nn.name = "w"}) -> (tensor<24xf32> {nn.name = "y"}, tensor<4x6xf32> {nn.name = "first"}) {
  %c = nn.constant dense_resource<c0> : tensor<4x6xf32>
  %0 = web.dispatch @add(%x, %c) {slot = 0 : i64} : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %1 = web.dispatch @mul(%0, %x) {slot = 1 : i64} : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %2 = nn.reshape %1 : tensor<4x6xf32> -> tensor<24xf32>
  %3 = web.dispatch @sub(%2, %w) {slot = 0 : i64} : (tensor<24xf32>, tensor<24xf32>) -> tensor<24xf32>
  func.return %3, %0 : tensor<24xf32>, tensor<4x6xf32>
}
"""
)


def _wasm(text: str) -> Any:
    module = parse_module(f'builtin.module attributes {{web.target = "wasm"}} {{\n{text}\n}}')
    module.verify()
    return module


def _chain_case() -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((4, 6)).astype(np.float32), "w": rng.standard_normal(24).astype(np.float32)}
    return _wasm(CHAIN), inputs, {"c0": rng.standard_normal((4, 6)).astype(np.float32)}


# --- zoo models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8), (2, 13)], ids=["1x8", "2x13"])
@pytest.mark.parametrize("name", sorted(ZOO_MODELS))
def test_zoo_model_in_wasmtime_and_v8(name: str, shape: tuple[int, int]) -> None:
    """`nnjit.compile(model, target="wasm").run(inputs, executor=...)` matches the oracle in both engines."""
    inputs = example_inputs(name, *shape, seed=3)
    compiled = nnjit.compile(zoo_path(name), {k: v.shape for k, v in inputs.items()}, target="wasm")
    assert compiled.module.attributes["web.target"].data == "wasm"  # type: ignore[attr-defined]
    expected = compiled.run(inputs, executor="reference")
    for executor in ("wasm", "node"):
        got = compiled.run(inputs, executor=executor)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-3, atol=1e-4, err_msg=f"{executor}: {key}")


# --- memory safety ---------------------------------------------------------------------------------

POISONS = (0x7FC00BAD, 0x3F800000)
"""Guard fills: a NaN (poisons any float that reads it) and 1.0f (an out-of-range index as i32)."""


def _outside_regions(program: WasmProgram, size: int) -> np.ndarray:
    outside = np.ones(size, bool)
    for region in program.plan.regions:
        outside[region.offset : region.offset + region.nbytes] = False
    return outside


def _guarded_modules() -> list[tuple[str, Any, dict[str, np.ndarray], Any]]:
    cases: list[tuple[str, Any, dict[str, np.ndarray], Any]] = []
    for name in ("gpt2", "llama", "roberta"):
        inputs = example_inputs(name, 1, 7, seed=1)
        compiled = nnjit.compile(zoo_path(name), {k: v.shape for k, v in inputs.items()}, target="wasm")
        cases.append((name, compiled.module, inputs, compiled.weights))
    module, inputs, weights = _chain_case()
    cases.append(("chain", module, inputs, weights))
    return cases


def test_no_kernel_reads_or_writes_outside_its_buffers() -> None:
    """Every buffer sits between guard bytes holding a sentinel; after a run the sentinels are intact
    (no stray writes) and the outputs are bit-identical under two different poisons and match the
    oracle (no output depends on a byte outside the buffers)."""
    for name, module, inputs, weights in _guarded_modules():
        expected = run_web_module(module, inputs, weights)
        results: list[dict[str, np.ndarray]] = []
        for poison in POISONS:
            for executor in (WasmtimeExecutor(guard=64, poison=poison), NodeExecutor(guard=64, poison=poison)):
                got = executor.run(module, inputs, weights)
                memory = executor.memory(module, weights)
                program = executor.program(module, weights)
                outside = _outside_regions(program, memory.size)
                words = memory.view(np.uint32)
                assert (memory[outside] == np.frombuffer(np.uint32(poison).tobytes(), np.uint8)[
                    np.arange(memory.size)[outside] % 4]).all(), f"{name}: a kernel wrote outside its buffers"  # fmt: skip
                assert words[: 64 // 4].tolist() == [poison] * 16
                results.append(got)
                if isinstance(executor, NodeExecutor):
                    executor.close()
        for got in results:
            for key in expected:
                np.testing.assert_array_equal(
                    got[key], results[0][key], err_msg=f"{name}: {key} depends on guard bytes"
                )
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-3, atol=1e-4, err_msg=f"{name}: {key}")


def test_regions_are_disjoint_aligned_and_guarded() -> None:
    module, _, weights = _chain_case()
    plan = build_program(module, weights, guard=32, assemble=False).plan
    regions = sorted(plan.regions, key=lambda r: r.offset)
    assert all(r.offset % 16 == 0 for r in regions) and regions[0].offset >= 64 + 32
    for before, after in itertools.pairwise(regions):
        assert before.offset + max(before.nbytes, 4) + 32 <= after.offset
    slots = [r for r in regions if r.kind == "slot"]
    assert len(slots) == 2, "dispatches sharing a slot share one region"


# --- host plans -----------------------------------------------------------------------------------


def test_reused_slot_is_read_early_and_weights_are_copied_once() -> None:
    module, inputs, weights = _chain_case()
    expected = run_web_module(module, inputs, weights)
    for engine in engines():
        for _ in range(2):
            got = engine.run(module, inputs, weights)
            for key in expected:
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)
    plan = wasmtime_engine().program(module, weights).plan
    assert [o.after for o in plan.outputs] == [2, 0]
    assert plan.steps == ["k0_add", "k1_mul", "k2_sub"] and len(plan.weights) == 1
    assert wasmtime_engine().load(module, weights) is wasmtime_engine().load(module, weights)


def test_integers_and_booleans_round_trip() -> None:
    text = _kernel("k", "nn.add", "5", "i64") + """
web.kernel @c(%a: tensor<5xi64>, %b: tensor<5xi64>) -> tensor<5xi1> attributes {template = "elementwise", schedule = """ + SCHEDULE + """} {
  %r = nn.less %a, %b : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi1>
  web.yield %r : tensor<5xi1>
}
func.func @main(%a: tensor<5xi64> {nn.name = "a"}, %b: tensor<5xi64> {nn.name = "b"}) -> (tensor<5xi64> {nn.name = "sum"}, tensor<5xi1> {nn.name = "less"}) {
  %s = web.dispatch @k(%a, %b) : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi64>
  %l = web.dispatch @c(%a, %b) : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi1>
  func.return %s, %l : tensor<5xi64>, tensor<5xi1>
}"""  # fmt: skip
    module = _wasm(text)
    a, b = np.array([1, -2, 3, 2**30, -7], np.int64), np.array([5, -6, 3, 2**30 - 1, 0], np.int64)
    for engine in engines():
        got = engine.run(module, {"a": a, "b": b})
        assert got["sum"].dtype == np.int64 and got["less"].dtype == np.bool_
        np.testing.assert_array_equal(got["sum"], a + b)
        np.testing.assert_array_equal(got["less"], a < b)
        with pytest.raises(NnjitError, match="value 2147483648 does not fit the wasm target's 32-bit integers"):
            engine.run(module, {"a": np.array([2**31, 0, 0, 0, 0], np.int64), "b": b})


def test_unsupported_types_and_inputs_are_refused() -> None:
    text = _kernel("k", "nn.add", "3", "f64") + """
func.func @main(%a: tensor<3xf64> {nn.name = "a"}) -> (tensor<3xf64> {nn.name = "y"}) {
  %s = web.dispatch @k(%a, %a) : (tensor<3xf64>, tensor<3xf64>) -> tensor<3xf64>
  func.return %s : tensor<3xf64>
}"""  # fmt: skip
    with pytest.raises(NnjitError, match=r"f64 .* not supported by the wasm target"):
        wasmtime_engine().run(_wasm(text), {"a": np.ones(3)})
    module, inputs, weights = _chain_case()
    with pytest.raises(NnjitError, match="@main takes inputs"):
        wasmtime_engine().run(module, {"x": inputs["x"]}, weights)
    with pytest.raises(NnjitError, match="input 'w': expected shape"):
        node_engine().run(module, {"x": inputs["x"], "w": np.zeros(24)}, weights)


def test_a_trap_is_a_clear_error() -> None:
    text = _kernel("k", "nn.div", "4", "i64") + """
func.func @main(%a: tensor<4xi64> {nn.name = "a"}, %b: tensor<4xi64> {nn.name = "b"}) -> (tensor<4xi64> {nn.name = "y"}) {
  %s = web.dispatch @k(%a, %b) : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  func.return %s : tensor<4xi64>
}"""  # fmt: skip
    module = _wasm(text)
    for engine in engines():
        with pytest.raises(NnjitError, match=r"wasm kernel k0_k trapped in (wasmtime|V8).*(divi|zero)"):
            engine.run(module, {"a": np.arange(4), "b": np.array([1, 2, 0, 4])})


# --- bad modules and memory -------------------------------------------------------------------------

_INVALID = '(module (memory (export "memory") 1) (func (export "run") (param i32) (drop (f32.add (i32.const 1) (i32.const 2)))))'


def test_a_bad_module_is_a_clear_error() -> None:
    with pytest.raises(NnjitError, match="the printed WAT does not assemble"):
        assemble_wat("(module (func $f (i32.add")
    program = WasmProgram(_INVALID, assemble_wat(_INVALID), HostPlan(1, False))
    with pytest.raises(NnjitError, match=r"wasmtime rejects the module.*type mismatch"):
        wasmtime_engine().instantiate(program)
    with pytest.raises(NnjitError, match="V8 rejects the module"):
        node_engine().load_program(program)
    junk = WasmProgram("", b"\0asm\x01\0\0\0\x01garbage", HostPlan(1, False))
    with pytest.raises(NnjitError, match="wasmtime rejects the module"):
        wasmtime_engine().instantiate(junk)
    with pytest.raises(NnjitError, match="V8 rejects the module"):
        node_engine().load_program(junk)


def test_out_of_memory_is_a_clear_error() -> None:
    """Past 4 GiB at layout time; past an engine's limit at instantiation; past wasm32 in V8."""
    huge = _kernel("k", "nn.add", "600000000") + """
func.func @main(%a: tensor<600000000xf32> {nn.name = "a"}) -> (tensor<600000000xf32> {nn.name = "y"}) {
  %s = web.dispatch @k(%a, %a) : (tensor<600000000xf32>, tensor<600000000xf32>) -> tensor<600000000xf32>
  func.return %s : tensor<600000000xf32>
}"""  # fmt: skip
    with pytest.raises(NnjitError, match="bytes of linear memory; wasm32 memories hold at most 4 GiB"):
        wasmtime_engine().program(_wasm(huge))
    module, _, weights = _chain_case()
    small = WasmtimeExecutor(memory_limit=1 << 16)
    program = build_program(module, weights)
    grown = WasmProgram(program.text.replace('(memory (export "memory") 1)', '(memory (export "memory") 40)'),
                        assemble_wat(program.text.replace('(memory (export "memory") 1)', '(memory (export "memory") 40)')),
                        program.plan)  # fmt: skip
    with pytest.raises(NnjitError, match="wasmtime cannot allocate the module's"):
        small.instantiate(grown)
    too_big = '(module (memory (export "memory") 65537) (func (export "run") (param i32)))'
    with pytest.raises(NnjitError, match="V8 rejects the module"):
        node_engine().load_program(WasmProgram(too_big, assemble_wat(too_big), HostPlan(65537, False)))


def test_missing_node_is_an_error_not_a_skip() -> None:
    with pytest.raises(NnjitError, match=r"cannot start Node\.js"):
        NodeExecutor(node="/nonexistent/node")


def test_relaxed_simd_is_probed_and_printed() -> None:
    module, inputs, weights = _chain_case()
    assert node_engine().relaxed == node_engine().relaxed_supported
    assert "relaxed-simd on" in WasmtimeExecutor(relaxed=True).program(module, weights).text
    plain = NodeExecutor(relaxed=False)
    assert not plain.relaxed and "relaxed-simd off" in plain.program(module, weights).text
    plain.run(module, inputs, weights)
    plain.close()


def test_timing() -> None:
    module, inputs, weights = _chain_case()
    for engine in engines():
        seconds = engine.time(module, inputs, weights, repeats=3, inner=5)
        assert len(seconds) == 3 and all(0 < s < 1 for s in seconds)


# --- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [[], ["--executor", "node"]], ids=["wasmtime", "node"])
def test_cli_runs_wasm(executor: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_main(["run", str(zoo_path("gpt2")), "--shape", "input_ids=1x8", "--target", "wasm", *executor,
                       "--check", "--rtol", "1e-3", "--atol", "1e-4"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0 and "check logits vs onnxruntime" in out and "OK" in out
