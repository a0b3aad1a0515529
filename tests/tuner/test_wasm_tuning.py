"""The Wasm tuning backend: lite spaces valid under `web.target = "wasm"` and within the CPU's registers
and L1, candidates drawn from them equal to the oracle in wasmtime, and a tiny model tuned end to end."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tuner_cases import make_kernel, tensor, tiny_model
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

import nnjit
from nnjit.dialects import nn
from nnjit.dialects.web import KernelOp
from nnjit.models.zoo import ZOO_MODELS, zoo_path
from nnjit.passes.convert_nn_to_web import WASM_DEFAULT_SCHEDULES
from nnjit.runtime.web_reference import run_web_module
from nnjit.tuner.backend_wasm import WasmBackend
from nnjit.tuner.harness import kernel_module, matches, oracle_case
from nnjit.tuner.lite import LITE_CAP
from nnjit.tuner.lite_wasm import WasmCpu, wasm_lite_space
from nnjit.tuner.measure import OK, Timing
from nnjit.tuner.problem import pad
from nnjit.tuner.signature import kernel_signature
from nnjit.tuner.wasm_spaces import register_pressure

WASM = {"web.target": StringAttr("wasm")}
ARM = WasmCpu("aarch64", 32, 64 * 1024, "test")


@pytest.fixture(scope="module")
def backend() -> WasmBackend:
    return WasmBackend()


def zoo_kernels() -> list[KernelOp]:
    kernels: dict[str, KernelOp] = {}
    for name, spec in ZOO_MODELS.items():
        shapes = {i.name: (1, 32) for i in spec.inputs}
        for kernel in nnjit.compile(zoo_path(name), shapes, target="wasm", kernel_db=False).kernels:
            kernels.setdefault(kernel_signature(kernel).digest, kernel)
    return list(kernels.values())


@pytest.mark.parametrize("cpu", [WasmCpu.detect(), ARM], ids=["this-cpu", "arm"])
def test_zoo_lite_spaces(cpu: WasmCpu) -> None:
    for kernel in zoo_kernels():
        space = wasm_lite_space(kernel, cpu)
        assert 1 <= space.size <= LITE_CAP and space.candidates[0] == WASM_DEFAULT_SCHEDULES[kernel.template.data]
        for schedule in space.candidates:
            kernel_module(kernel, schedule, WASM)  # verifies under the Wasm rules
        for schedule in space.candidates[1:]:
            if kernel.template.data == "matmul":
                (mb, nb, kb), (mr, nr), p = schedule.tile, schedule.thread, space.problem
                assert register_pressure(mr, nr) <= 1.25 * cpu.registers
                assert mr <= pad(p.m, 1) and nb <= pad(p.n) and mb <= pad(p.m)
                assert (min(mb, p.m) * min(kb, p.k) + min(kb, p.k) * min(nb, p.n)) * 4 <= cpu.l1_bytes
                assert not schedule.shared or p.m > mb


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_candidates_match_the_oracle(backend: WasmBackend, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["matmul", "elementwise", "row_reduce"]))
    if kind == "matmul":
        m, n, k = data.draw(st.integers(1, 70)), data.draw(st.integers(1, 70)), data.draw(st.integers(1, 300))
        batch = data.draw(st.sampled_from([[], [2]]))

        def body(a: SSAValue, b: SSAValue, c: SSAValue) -> Any:
            return nn.TanhOp(nn.AddOp(nn.MatmulOp(a, b), c))

        kernel = make_kernel([tensor([*batch, m, k]), tensor([k, n]), tensor([n])], body, "matmul", target="wasm")
    elif kind == "elementwise":
        shape = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=3))
        kernel = make_kernel([tensor(shape)], lambda a: nn.MulOp(nn.ExpOp(a), a), "elementwise", target="wasm")
    else:
        rows, length = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 300))
        kernel = make_kernel([tensor([rows, length])], lambda a: nn.SoftmaxOp(a, -1), "row_reduce", target="wasm")
    schedule = data.draw(st.sampled_from(backend.lite_space(kernel).candidates), label="schedule")
    case = oracle_case(kernel, seed=data.draw(st.integers(0, 2**16)))
    ok, error = matches(backend.run(backend.build(kernel, schedule), case.arguments), case)
    assert ok, f"{schedule} differs from the oracle by {error:.3g}"


def test_tune_a_tiny_model(backend: WasmBackend, tmp_path: Any) -> None:
    model = nnjit.compile(tiny_model(), target="wasm", kernel_db=False)
    report = model.tune(60, backend=backend, database=tmp_path / "k.sqlite", timing=Timing(repeats=3), strict=True,
                        progress=False)  # fmt: skip
    assert report.device.backend == "wasm" and "wasmtime" in report.device.name
    assert all(k.measured == k.lite_size and all(r.status == OK for r in k.results) for k in report.kernels)
    x = {"x": np.random.default_rng(0).uniform(-1, 1, (8, 16)).astype(np.float32)}
    expected = run_web_module(model.module, x, model.weights)
    for name, value in model.run(x).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=1e-4)
    again = nnjit.compile(tiny_model(), target="wasm", kernel_db=tmp_path / "k.sqlite")
    assert [k.schedule for k in again.kernels] == [k.schedule for k in model.kernels]
