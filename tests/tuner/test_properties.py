"""Tuned schedules are never wrong: kernels under candidates drawn from their lite spaces match the oracle.

Hypothesis draws a kernel (matmuls with batch, ragged sizes, a transposed operand and an epilogue;
elementwise chains; row reductions; reductions over a leading axis; scans), then one candidate of
its WebGPU lite space under the adapter's limits, and runs it exactly as the tuner does (one-kernel
module, `oracle_case` arguments, `harness.matches`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tuner_cases import make_kernel, tensor
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError
from nnjit.tuner.backend_webgpu import WebGPUBackend
from nnjit.tuner.harness import matches, oracle_case


def examples(count: int) -> settings:
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def backend() -> WebGPUBackend:
    try:
        return WebGPUBackend()
    except NnjitError as error:
        pytest.fail(f"the tuner's property tests need a WebGPU adapter: {error}")


def check(backend: WebGPUBackend, kernel: KernelOp, data: st.DataObject) -> None:
    space = backend.lite_space(kernel)
    schedule = data.draw(st.sampled_from(space.candidates), label="schedule")
    case = oracle_case(kernel, seed=data.draw(st.integers(0, 2**16), label="seed"))
    output = backend.run(backend.build(kernel, schedule), case.arguments)
    ok, error = matches(output, case)
    assert ok, f"{schedule} differs from the oracle by {error:.3g} (atol {case.atol:g})"


EPILOGUES: dict[str, Callable[[SSAValue, SSAValue], Any]] = {
    "none": lambda y, extra: y,
    "bias": lambda y, extra: nn.AddOp(y, extra),
    "relu": lambda y, extra: nn.ReluOp(y),
    "tanh-residual": lambda y, extra: nn.AddOp(nn.TanhOp(y), extra),
}


@examples(40)
@given(st.data())
def test_matmul_candidates(backend: WebGPUBackend, data: st.DataObject) -> None:
    m, n = data.draw(st.integers(1, 70)), data.draw(st.integers(1, 70))
    k = data.draw(st.one_of(st.integers(1, 40), st.integers(100, 300)))
    batch = data.draw(st.sampled_from([[], [2], [2, 3]]))
    transposed = data.draw(st.booleans())
    epilogue = data.draw(st.sampled_from(list(EPILOGUES)))
    b_shape = [n, k] if transposed else [k, n]
    extra = [n] if epilogue == "bias" else [*batch, m, n]

    def body(a: SSAValue, b: SSAValue, e: SSAValue) -> Any:
        rhs = nn.TransposeOp(b, [1, 0]) if transposed else b
        return EPILOGUES[epilogue](SSAValue.get(nn.MatmulOp(a, rhs)), e)

    kernel = make_kernel([tensor([*batch, m, k]), tensor(b_shape), tensor(extra)], body, "matmul")
    check(backend, kernel, data)


@examples(12)
@given(st.data())
def test_elementwise_candidates(backend: WebGPUBackend, data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=3))
    kernel = make_kernel([tensor(shape), tensor(shape[-1:])],
                         lambda a, b: nn.MulOp(nn.ExpOp(nn.SubOp(a, b)), a), "elementwise")  # fmt: skip
    check(backend, kernel, data)


ROWS: dict[str, Callable[[SSAValue, SSAValue], Any]] = {
    "softmax": lambda x, g: nn.SoftmaxOp(x, -1),
    "layer_norm": lambda x, g: nn.LayerNormOp(x, g, None, -1, 1e-5),
    "sum": lambda x, g: nn.ReduceSumOp(x, [1], False),
}


@examples(20)
@given(st.data())
def test_row_reduce_candidates(backend: WebGPUBackend, data: st.DataObject) -> None:
    rows, length = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 300))
    anchor = data.draw(st.sampled_from(list(ROWS)))
    kernel = make_kernel([tensor([rows, length]), tensor([length])], ROWS[anchor], "row_reduce")
    check(backend, kernel, data)


@examples(10)
@given(st.data())
def test_reduce_and_scan_candidates(backend: WebGPUBackend, data: st.DataObject) -> None:
    a, b = data.draw(st.integers(1, 60)), data.draw(st.integers(1, 60))
    if data.draw(st.booleans()):
        kernel = make_kernel([tensor([a, b])], lambda x: nn.ReduceMaxOp(x, [0], True), "reduce")
    else:
        kernel = make_kernel([tensor([a, b])], lambda x: nn.CumsumOp(x, 1), "scan")
    check(backend, kernel, data)
