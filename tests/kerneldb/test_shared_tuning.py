"""The tuner with a kernel-db service: a faster shared schedule is adopted without a search, a slow one
is measured and dropped, a hostile service's offers are rejected before anything is built (or, when
in-space but wrong, by the oracle), and tuned outputs always equal the oracle. Wasm in wasmtime, and
one WebGPU (lavapipe) case."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from conftest import Service, start_service
from onnx import TensorProto, helper, numpy_helper
from xdsl.ir import Attribute

import nnjit
from nnjit.cli import main
from nnjit.compiler import CompiledModel
from nnjit.dialects.web import KernelOp, LimitsAttr, Schedule
from nnjit.kerneldb.client import KernelDbClient
from nnjit.kerneldb.schema import Submission, schedule_json
from nnjit.kerneldb.shared import ServiceWarning
from nnjit.passes.convert_nn_to_web import TARGET_DEFAULTS
from nnjit.runtime.web_reference import run_web_module
from nnjit.tuner.backend import Array, Backend, Build, Device, get_backend
from nnjit.tuner.database import nnjit_version
from nnjit.tuner.lite import LiteSpace
from nnjit.tuner.measure import Timing, WrongResultWarning
from nnjit.tuner.signature import kernel_signature
from nnjit.tuner.spaces import SPACES
from nnjit.tuner.tune import KernelTuning, TuningReport, tune
from nnjit.tuner.wasm_spaces import wasm_matmul_schedules

TIMING = Timing(repeats=3, warmup=1)


def model(m: int) -> onnx.ModelProto:
    """y = softmax(tanh(x[m,16] W[16,32])): a matmul kernel and a row_reduce kernel."""
    w = numpy_helper.from_array(np.random.default_rng(m).standard_normal((16, 32)).astype(np.float32) * 0.3, "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Softmax", ["t"], ["y"], axis=-1)]  # fmt: skip
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, 32])], initializer=[w])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@dataclass
class Spy:
    """A real backend with lite spaces cut to `limit`, time scaled per schedule, outputs corrupted per schedule."""

    inner: Backend
    limit: int = 8
    scale: dict[Schedule, float] = field(default_factory=dict[Schedule, float])
    corrupt: set[Schedule] = field(default_factory=set[Schedule])
    built: list[tuple[str, Schedule]] = field(default_factory=list[tuple[str, Schedule]])

    @property
    def name(self) -> str:
        return self.inner.name

    def device(self) -> Device:
        return self.inner.device()

    def module_attributes(self) -> dict[str, Attribute]:
        return self.inner.module_attributes()

    def lite_space(self, kernel: KernelOp) -> LiteSpace:
        space = self.inner.lite_space(kernel)
        return LiteSpace(space.problem, space.candidates[: self.limit], space.full_size)

    def build(self, kernel: KernelOp, schedule: Schedule) -> Build:
        self.built.append((kernel.template.data, schedule))
        return self.inner.build(kernel, schedule)

    def run(self, build: Build, arguments: Sequence[Array]) -> Array:
        output = self.inner.run(build, arguments)
        return output + 1 if build.kernel.schedule.values in self.corrupt else output

    def time(self, build: Build, arguments: Sequence[Array], repeats: int, warmup: int) -> list[float]:
        factor = self.scale.get(build.kernel.schedule.values, 1.0)
        return [t * factor for t in self.inner.time(build, arguments, repeats, warmup)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Generator[Service]:
    folder = tmp_path_factory.mktemp("tuning-service")
    running = start_service(f"sqlite:///{folder}/kernels.sqlite", folder, "--rate", "0")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def wasm() -> Backend:
    return get_backend("wasm")


def compiled(m: int, target: str = "wasm") -> tuple[CompiledModel, dict[str, KernelOp]]:
    result = nnjit.compile(model(m), target=target, kernel_db=False)
    return result, {k.template.data: k for k in result.kernels}


def entry(report: TuningReport, template: str) -> KernelTuning:
    return next(k for k in report.kernels if k.template == template)


def assert_equals_oracle(model: CompiledModel, m: int) -> None:
    x = {"x": np.random.default_rng(1).uniform(-1, 1, (m, 16)).astype(np.float32)}
    expected = run_web_module(model.module, x, model.weights)
    for name, value in model.run(x).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=1e-4)


def offer(client: KernelDbClient, device: Device, kernel: KernelOp, schedule: Schedule, median: float) -> None:
    signature = kernel_signature(kernel).digest
    record = Submission(signature, kernel.template.data, schedule, median, 2 * median, nnjit_version())
    assert client.upload(device, [record]) == 1


def other_matmul(registers: int) -> Schedule:
    """A Wasm matmul schedule in the full space that is not the default (nor in a tiny lite space)."""
    default = TARGET_DEFAULTS["wasm"]["matmul"]
    return next(s for s in wasm_matmul_schedules(registers) if s != default and s.thread == (4, 8) and s.tile[2] == 64)


def test_a_faster_shared_schedule_is_adopted_without_a_search(service: Service, wasm: Any, tmp_path: Path) -> None:
    m = 8
    model_, kernels = compiled(m)
    spy = Spy(wasm)
    device, default = spy.device(), TARGET_DEFAULTS["wasm"]["matmul"]
    shared = other_matmul(device.limits["v128_registers"])
    client = KernelDbClient(service.url)
    offer(client, device, kernels["matmul"], shared, 1e-6)
    spy.scale[shared] = 0.01  # it is much faster here too
    other = Device("wasm", {"engine": "another machine"}, device.limits)
    hint = wasm.lite_space(kernels["row_reduce"]).candidates[-1]
    offer(client, other, kernels["row_reduce"], hint, 1e-6)  # another device's: a hint, searched first
    report = tune(model_, 30, backend=spy, database=tmp_path / "k.sqlite", service=service.url, timing=TIMING,
                  strict=True, progress=False)  # fmt: skip
    matmul, rows = entry(report, "matmul"), entry(report, "row_reduce")
    assert matmul.source == "shared" and matmul.chosen == shared
    assert [o.status for o in matmul.shared] == ["adopted"] and [r.schedule for r in matmul.results] == [
        default,
        shared,
    ]
    assert [s for t, s in spy.built if t == "matmul"] == [default, shared]  # no search
    assert rows.source == "tuned" and rows.measured == rows.lite_size
    assert [(o.origin, o.status in ("measured", "chosen")) for o in rows.shared] == [("hint", True)]
    assert [s for t, s in spy.built if t == "row_reduce"][:2] == [TARGET_DEFAULTS["wasm"]["row_reduce"], hint]
    assert "(shared; offers: 1 adopted)" in report.table() and "uploaded" in report.service_note
    assert kernels["matmul"].schedule.values == shared
    assert_equals_oracle(model_, m)
    # what was measured went back: the shared schedule now has two submissions, the default one
    found = client.lookup(device, [kernel_signature(kernels["matmul"]).digest])[
        kernel_signature(kernels["matmul"]).digest
    ]
    submissions = {tuple(map(str, e["schedule"].values())): e["submissions"] for e in found}
    assert submissions == {
        tuple(map(str, schedule_json(shared).values())): 2,
        tuple(map(str, schedule_json(default).values())): 1,
    }
    again = tune(compiled(m)[0], 30, backend=spy, database=tmp_path / "k.sqlite", service=service.url, progress=False)
    assert entry(again, "matmul").source == "database"


def test_a_slow_shared_schedule_is_measured_and_the_default_kept(service: Service, wasm: Any, tmp_path: Path) -> None:
    m = 12
    model_, kernels = compiled(m)
    spy = Spy(wasm, limit=1)
    device, default = spy.device(), TARGET_DEFAULTS["wasm"]["matmul"]
    poisoned = other_matmul(device.limits["v128_registers"])
    offer(KernelDbClient(service.url), device, kernels["matmul"], poisoned, 1e-9)  # claims to be very fast
    spy.scale[poisoned] = 100.0  # but is slow here
    report = tune(model_, 30, backend=spy, database=tmp_path / "k.sqlite", service=service.url, timing=TIMING,
                  strict=True, progress=False)  # fmt: skip
    matmul = entry(report, "matmul")
    assert matmul.source == "tuned" and matmul.chosen == default and kernels["matmul"].schedule.values == default
    assert [(o.status, o.schedule) for o in matmul.shared] == [("slower", poisoned)]
    assert "us here, default" in matmul.shared[0].reason and "offers: 1 slower" in report.table()
    assert_equals_oracle(model_, m)


@contextmanager
def hostile_service(offers: dict[str, list[Any]]) -> Generator[tuple[str, list[Any]]]:
    """A service that answers lookups with `offers` and accepts every upload (kept in the list)."""
    from aiohttp import web

    uploads: list[Any] = []

    async def lookup(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"results": {s: offers.get(s, []) for s in body["signatures"]}})

    async def records(request: web.Request) -> web.Response:
        uploads.append(await request.json())
        return web.json_response({"accepted": len(uploads[-1]["records"])})

    app = web.Application()
    app.router.add_post("/v1/lookup", lookup)
    app.router.add_post("/v1/records", records)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    def start() -> None:  # in a thread: the main thread may hold Playwright's running loop
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())

    starter = threading.Thread(target=start)
    starter.start()
    starter.join(10)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", uploads
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_hostile_services_offers_are_rejected(wasm: Any, tmp_path: Path) -> None:
    m = 6
    model_, kernels = compiled(m)
    spy = Spy(wasm, limit=2)
    device, default = spy.device(), TARGET_DEFAULTS["wasm"]["matmul"]
    registers = device.limits["v128_registers"]
    wrong = other_matmul(registers)  # in the space and verifies, but (simulated) computes garbage
    spy.corrupt.add(wrong)
    good = schedule_json(wrong)
    bad: list[Any] = [
        "not an object",
        {"source": "evil", "template": "matmul", "schedule": good},
        {"source": "device", "template": "row_reduce", "schedule": good},                       # not the kernel's template
        {"source": "device", "template": "matmul", "schedule": "'; DROP TABLE kernels; --"},
        {"source": "device", "template": "matmul", "schedule": good | {"code": "import os"}},
        {"source": "device", "template": "matmul", "schedule": good | {"workgroup": [64, 1, 1]}},  # fails verification here
        {"source": "hint", "template": "matmul", "schedule": good | {"vector": 3}},
    ]  # fmt: skip
    beyond = [s for s in wasm_matmul_schedules(32) if s not in set(wasm_matmul_schedules(registers))]
    if beyond:  # valid on a 32-register CPU, not in this CPU's space
        bad.append({"source": "device", "template": "matmul", "schedule": schedule_json(beyond[0])})
    matmul_signature = kernel_signature(kernels["matmul"]).digest
    offers = {
        matmul_signature: [*bad, {"source": "device", "template": "matmul", "schedule": good}],
        kernel_signature(kernels["row_reduce"]).digest: [{"source": "hint", "template": "matmul", "schedule": good}],
    }
    with hostile_service(offers) as (url, uploads), pytest.warns(WrongResultWarning):
        report = tune(
            model_, 30, backend=spy, database=tmp_path / "k.sqlite", service=url, timing=TIMING, progress=False
        )
    matmul = entry(report, "matmul")
    statuses = [o.status for o in matmul.shared]
    assert statuses == ["rejected"] * len(bad) + ["wrong"] and matmul.source == "tuned" and matmul.chosen == default
    reasons = [o.reason for o in matmul.shared]
    assert "entry is not an object" in reasons[0] and "neither device nor hint" in reasons[1]
    assert "template 'row_reduce' is not the kernel's 'matmul'" in reasons[2]
    assert "schedule: expected an object, got a string" in reasons[3] and "schedule: unknown key 'code'" in reasons[4]
    assert "is not in the wasm matmul space" in reasons[5] and "is not in the wasm matmul space" in reasons[6]
    assert "differs from the oracle" in reasons[-1]
    assert [o.status for o in entry(report, "row_reduce").shared] == ["rejected"]
    assert {s for t, s in spy.built if t == "matmul"} == {default, wrong}  # nothing rejected was ever built
    assert kernels["matmul"].schedule.values == default
    assert_equals_oracle(model_, m)
    sent = [r["schedule"] for u in uploads for r in u["records"]]
    assert sent and good not in sent  # a wrong schedule is never uploaded


def test_webgpu_lavapipe_adopts_and_never_sees_other_devices_oversized_schedules(
    service: Service, tmp_path: Path
) -> None:
    m = 8
    model_, kernels = compiled(m, "webgpu")
    spy = Spy(get_backend("webgpu"), limit=2)
    device = spy.device()
    kernel = kernels["matmul"]
    space = spy.inner.lite_space(kernel)
    shared = space.candidates[-1]
    client = KernelDbClient(service.url)
    offer(client, device, kernel, shared, 1e-6)
    spy.scale[shared] = 0.01
    limits = dict(device.limits) | {
        "max-compute-workgroup-storage-size": 1 << 20,
        "max-compute-invocations-per-workgroup": 4096,
    }
    big = Device("webgpu", {"device": "big"}, limits)
    huge = next(
        s
        for s in SPACES["matmul"](LimitsAttr(4096, (4096,) * 3, 1 << 20))
        if s.shared and (s.tile[0] + s.tile[1]) * s.tile[2] * 4 > device.limits["max-compute-workgroup-storage-size"]
    )
    offer(client, big, kernel, huge, 1e-9)
    offered = client.lookup(device, [kernel_signature(kernel).digest])[kernel_signature(kernel).digest]
    assert schedule_json(huge) not in [e["schedule"] for e in offered]  # filtered by this device's limits
    report = tune(model_, 30, backend=spy, database=tmp_path / "k.sqlite", service=service.url, timing=TIMING,
                  strict=True, progress=False)  # fmt: skip
    matmul = entry(report, "matmul")
    assert matmul.source == "shared" and matmul.chosen == shared and kernel.schedule.values == shared
    assert math.isfinite(matmul.best_median)
    assert_equals_oracle(model_, m)


def test_cli_tune_with_a_service_and_without_one(
    service: Service, wasm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(model(4), path)
    code = main(["tune", str(path), "--target", "wasm", "--budget", "10", "--repeats", "3", "--quiet",
                 "--db", str(tmp_path / "k.sqlite"), "--service", service.url])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and f"kernel-db service {service.url}: looked up 2 signatures" in out
    assert re.search(r"uploaded [1-9][0-9]* measurements", out), out
    spy = Spy(wasm, limit=1)
    with pytest.warns(ServiceWarning, match="tuning without the kernel-db service"):
        report = tune(compiled(3)[0], 10, backend=spy, database=False, service="http://127.0.0.1:9", progress=False)
    assert "lookup failed" in report.service_note and "upload skipped" in report.service_note
    assert all(k.source == "tuned" and k.chosen is not None for k in report.kernels)
