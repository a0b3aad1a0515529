"""The native WebGPU executor: host plans, buffers, element types, errors, timing, and zoo models.

Modules are hand-written `web` IR (parsed) or lowered by the `webgpu` pipeline; results are compared
with the numpy oracle of `web` modules. No adapter is a failure, never a skip.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnjit
from nnjit.backends.wgsl import kernel_grid
from nnjit.context import parse_module
from nnjit.dialects.web import KernelOp, LimitsAttr
from nnjit.errors import NnjitError
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path
from nnjit.runtime.web_reference import run_web_module
from nnjit.runtime.webgpu import WebGPUExecutor, shared_executor


@pytest.fixture(scope="module")
def executor() -> WebGPUExecutor:
    try:
        return shared_executor()
    except NnjitError as error:
        pytest.fail(f"the WebGPU executor tests need an adapter: {error}")


def _schedule(x: int = 64, unroll: int = 1) -> str:
    return f"#web.schedule<workgroup = [{x}, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = {unroll}, shared = false>"


def _kernel(name: str, op: str, shape: str, dtype: str = "f32", template: str = "elementwise") -> str:
    t = f"tensor<{shape}x{dtype}>"
    return f"""
web.kernel @{name}(%a: {t}, %b: {t}) -> {t} attributes {{template = "{template}", schedule = {_schedule()}}} {{
  %r = {op} %a, %b : ({t}, {t}) -> {t}
  web.yield %r : {t}
}}"""


# Three dispatches; the first and last share slot 0 (what buffer planning produces), and the
# reshape in @main aliases a dispatch result.
CHAIN = (
    _kernel("add", "nn.add", "4x6")
    + _kernel("mul", "nn.mul", "4x6")
    + """
web.kernel @sub(%a: tensor<24xf32>, %b: tensor<24xf32>) -> tensor<24xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [32, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 2, shared = false>} {
  %r = nn.sub %a, %b : (tensor<24xf32>, tensor<24xf32>) -> tensor<24xf32>
  web.yield %r : tensor<24xf32>
}
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


def test_slots_aliases_weights_and_a_reused_output_buffer(executor: WebGPUExecutor) -> None:
    """`first` lives in slot 0, which the last dispatch overwrites: it is read back before that."""
    module = parse_module(CHAIN)
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((4, 6)).astype(np.float32), "w": rng.standard_normal(24).astype(np.float32)}
    weights = {"c0": rng.standard_normal((4, 6)).astype(np.float32)}
    expected = run_web_module(module, inputs, weights)
    fresh = WebGPUExecutor(executor.adapter)
    for _ in range(2):
        got = fresh.run(module, inputs, weights)
        assert set(got) == {"y", "first"}
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)
    assert fresh.cache_sizes == (3, 1), "pipelines and weights are built once per executor"


def test_integers_and_booleans_round_trip(executor: WebGPUExecutor) -> None:
    """i64 travels as i32 and comes back as int64; i1 as u32 and comes back as bool."""
    text = (
        _kernel("k", "nn.add", "5", "i64")
        + """
web.kernel @c(%a: tensor<5xi64>, %b: tensor<5xi64>) -> tensor<5xi1> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
  %r = nn.less %a, %b : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi1>
  web.yield %r : tensor<5xi1>
}
func.func @main(%a: tensor<5xi64> {nn.name = "a"}, %b: tensor<5xi64> {nn.name = "b"}) -> (tensor<5xi64> {nn.name = "sum"}, tensor<5xi1> {nn.name = "less"}) {
  %s = web.dispatch @k(%a, %b) : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi64>
  %l = web.dispatch @c(%a, %b) : (tensor<5xi64>, tensor<5xi64>) -> tensor<5xi1>
  func.return %s, %l : tensor<5xi64>, tensor<5xi1>
}"""
    )
    module = parse_module(text)
    a, b = np.array([1, -2, 3, 2**30, -7], np.int64), np.array([5, -6, 3, 2**30 - 1, 0], np.int64)
    got = executor.run(module, {"a": a, "b": b})
    assert got["sum"].dtype == np.int64 and got["less"].dtype == np.bool_
    np.testing.assert_array_equal(got["sum"], a + b)
    np.testing.assert_array_equal(got["less"], a < b)
    with pytest.raises(NnjitError, match="does not fit the webgpu target's i32"):
        executor.run(module, {"a": np.array([2**31, 0, 0, 0, 0], np.int64), "b": b})


def test_f16_is_refused_with_a_clear_message(executor: WebGPUExecutor) -> None:
    text = (
        _kernel("k", "nn.add", "3", "f16")
        + """
func.func @main(%a: tensor<3xf16> {nn.name = "a"}) -> (tensor<3xf16> {nn.name = "y"}) {
  %s = web.dispatch @k(%a, %a) : (tensor<3xf16>, tensor<3xf16>) -> tensor<3xf16>
  func.return %s : tensor<3xf16>
}"""
    )
    with pytest.raises(NnjitError, match="f16 is not supported by the webgpu target"):
        executor.run(parse_module(text), {"a": np.ones(3, np.float16)})


def test_invalid_wgsl_names_the_kernel(executor: WebGPUExecutor) -> None:
    with pytest.raises(
        NnjitError, match=r"(?s)web.kernel @broken: the WebGPU device rejects its WGSL.*expected identifier"
    ):
        executor.compile_shader("web.kernel @broken", "fn main( {}", 1)


def test_inputs_are_checked(executor: WebGPUExecutor) -> None:
    module = parse_module(CHAIN)
    with pytest.raises(NnjitError, match="@main takes inputs"):
        executor.run(module, {"x": np.zeros((4, 6), np.float32)}, {"c0": np.zeros((4, 6), np.float32)})
    with pytest.raises(NnjitError, match="input 'w': expected shape"):
        executor.run(
            module, {"x": np.zeros((4, 6), np.float32), "w": np.zeros(24)}, {"c0": np.zeros((4, 6), np.float32)}
        )


def test_grids_past_65535_workgroups_go_two_dimensional(executor: WebGPUExecutor) -> None:
    """2.1 M elements at 32 threads a workgroup, and 70 000 rows of a row reduction."""
    count, rows = 65535 * 32 + 77, 70000
    text = f"""
web.kernel @big(%a: tensor<{count}xf32>, %b: tensor<{count}xf32>) -> tensor<{count}xf32> attributes {{template = "elementwise", schedule = {_schedule(32)}}} {{
  %r = nn.add %a, %b : (tensor<{count}xf32>, tensor<{count}xf32>) -> tensor<{count}xf32>
  web.yield %r : tensor<{count}xf32>
}}
web.kernel @rows(%a: tensor<{rows}x2xf32>) -> tensor<{rows}x2xf32> attributes {{template = "row_reduce", schedule = {_schedule(32)}}} {{
  %r = nn.softmax %a {{axis = -1 : i64}} : tensor<{rows}x2xf32>
  web.yield %r : tensor<{rows}x2xf32>
}}
func.func @main(%a: tensor<{count}xf32> {{nn.name = "a"}}, %m: tensor<{rows}x2xf32> {{nn.name = "m"}}) -> (tensor<{count}xf32> {{nn.name = "y"}}, tensor<{rows}x2xf32> {{nn.name = "p"}}) {{
  %y = web.dispatch @big(%a, %a) : (tensor<{count}xf32>, tensor<{count}xf32>) -> tensor<{count}xf32>
  %p = web.dispatch @rows(%m) : (tensor<{rows}x2xf32>) -> tensor<{rows}x2xf32>
  func.return %y, %p : tensor<{count}xf32>, tensor<{rows}x2xf32>
}}"""
    module = parse_module(text)
    grids = [kernel_grid(op) for op in module.ops if isinstance(op, KernelOp)]
    assert all(g[1] == 2 and max(g) <= 65535 for g in grids), grids
    a = np.arange(count, dtype=np.float32)
    m = np.random.default_rng(1).standard_normal((rows, 2)).astype(np.float32)
    got = executor.run(module, {"a": a, "m": m})
    np.testing.assert_array_equal(got["y"], a + a)
    np.testing.assert_allclose(got["p"], run_web_module(module, {"a": a, "m": m})["p"], rtol=1e-5, atol=1e-6)


def test_limits_and_timing(executor: WebGPUExecutor) -> None:
    limits = executor.limits()
    assert isinstance(limits, LimitsAttr)
    assert limits.invocations.data == executor.adapter.limits["max-compute-invocations-per-workgroup"]
    module = parse_module(CHAIN)
    module.attributes["web.limits"] = limits
    module.verify()
    inputs = {"x": np.ones((4, 6), np.float32), "w": np.ones(24, np.float32)}
    seconds = executor.time(module, inputs, {"c0": np.ones((4, 6), np.float32)}, repeats=3)
    assert len(seconds) == 3 and all(0 < s < 10 for s in seconds)


@pytest.mark.parametrize("name", sorted(ZOO_MODELS))
def test_zoo_model_end_to_end(executor: WebGPUExecutor, name: str) -> None:
    """Every zoo model, compiled for `webgpu` through the public API, matches the nn oracle on the GPU."""
    inputs = example_inputs(name, 1, 7, seed=2)
    shapes = {k: v.shape for k, v in inputs.items()}
    low = nnjit.compile(zoo_path(name), shapes, target="webgpu")
    assert set(low.wgsl) == {k.sym_name.data for k in low.kernels} and all("@compute" in t for t in low.wgsl.values())
    expected = nnjit.compile(zoo_path(name), shapes, target="reference").run(inputs)
    got = low.run(inputs)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-3, atol=1e-4, err_msg=key)


def test_no_adapter_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an adapter the executor raises NnjitError (and the fixtures above turn that into a failure)."""
    import wgpu

    def refuse(**_: object) -> None:
        raise RuntimeError("Request adapter failed (3): Validation Error\n\nNo suitable graphics adapter found")

    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", lambda **_: None)
    with pytest.raises(NnjitError, match="no WebGPU adapter found"):
        WebGPUExecutor()
    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", refuse)
    with pytest.raises(NnjitError, match="No suitable graphics adapter found"):
        WebGPUExecutor()


def test_a_weight_over_the_binding_limit_is_split_and_runs():
    """A weight larger than one storage binding (128 MiB on lavapipe and on many browsers) is cut by
    `web-split-bindings` into pieces that fit; rows on both sides of the cut read back exactly."""
    from onnx import TensorProto, helper

    limit = int(shared_executor().device.limits["max-storage-buffer-binding-size"])
    rows, dim = limit // 4000 + 1, 1000
    table = np.arange(rows, dtype=np.float32)[:, None] + np.linspace(0, 0.5, dim, dtype=np.float32)
    initializer = helper.make_tensor("table", TensorProto.FLOAT, [rows, dim], table.tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["y"], name="lookup")], "big",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, dim])], [initializer],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compiled = nnjit.compile(model, None, "webgpu", kernel_db=False)
    ids = np.array([0, limit // 4000 - 1, limit // 4000, rows - 1], dtype=np.int64)
    np.testing.assert_array_equal(compiled.run({"ids": ids})["y"], table[ids])
