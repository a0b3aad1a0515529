"""The WebGPU lite spaces: small, the default first, every candidate valid, every pruning rule holding.

Checked on every kernel of every zoo model (at sequence 16 and 128) and on drawn matmul problems,
under WebGPU's default limits and under lavapipe-like raised limits.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tuner_cases import make_kernel, tensor

import nnjit
from nnjit.dialects import nn
from nnjit.dialects.web import DEFAULT_LIMITS, KernelOp, LimitsAttr, Schedule, workgroup_storage_bytes
from nnjit.models.zoo import ZOO_MODELS, zoo_path
from nnjit.passes.convert_nn_to_web import DEFAULT_SCHEDULES
from nnjit.tuner.harness import kernel_module
from nnjit.tuner.lite import LITE_CAP, LiteSpace, webgpu_lite_space, webgpu_matmul
from nnjit.tuner.problem import pad
from nnjit.tuner.signature import kernel_signature
from nnjit.tuner.spaces import SPACES

RAISED = LimitsAttr(1024, (1024, 1024, 1024), 32768, 134217728)
LIMITS = {"default": DEFAULT_LIMITS, "raised": RAISED}


def zoo_kernels(seq: int) -> list[KernelOp]:
    """One kernel per signature over the zoo at (1, seq)."""
    kernels: dict[str, KernelOp] = {}
    for name, spec in ZOO_MODELS.items():
        shapes = {i.name: (1, seq) for i in spec.inputs}
        for kernel in nnjit.compile(zoo_path(name), shapes, target="webgpu", kernel_db=False).kernels:
            kernels.setdefault(kernel_signature(kernel).digest, kernel)
    return list(kernels.values())


@cache
def full_space(template: str, limits: LimitsAttr) -> set[Schedule]:
    return set(SPACES[template](limits))


@pytest.fixture(scope="module", params=[16, 48])
def zoo(request: pytest.FixtureRequest) -> list[KernelOp]:
    return zoo_kernels(request.param)


def assert_rules(kernel: KernelOp, space: LiteSpace, limits: LimitsAttr) -> None:
    template = kernel.template.data
    assert 1 <= space.size <= LITE_CAP
    assert space.candidates[0] == DEFAULT_SCHEDULES[template]
    assert len(set(space.candidates)) == space.size
    full = full_space(template, limits)
    assert space.full_size == len(full)
    p = space.problem
    for schedule in space.candidates:
        kernel_module(kernel, schedule, {"web.limits": limits})  # verifies: within the device's limits
        if schedule == DEFAULT_SCHEDULES[template]:
            continue
        assert schedule in full, schedule
        assert schedule.invocations <= 256 and workgroup_storage_bytes(template, schedule) <= limits.storage.data
        if template == "matmul":
            (x, y, _), (tile_m, tile_n, tile_k), (tm, tn) = schedule.workgroup, schedule.tile, schedule.thread
            assert tm == tn and x >= 4 and y >= 4  # square thread tiles, >= 4 threads a dimension
            assert (schedule.vector == 4) == (tn % 4 == 0) and schedule.unroll == tile_k
            assert tile_m <= pad(p.m) and tile_n <= pad(p.n) and tm * tn <= 64
        elif template == "row_reduce":
            assert schedule.workgroup[0] <= max(32, pad(p.k))


@pytest.mark.parametrize("limits", LIMITS.values(), ids=LIMITS.keys())
def test_every_zoo_kernel(zoo: list[KernelOp], limits: LimitsAttr) -> None:
    for kernel in zoo:
        assert_rules(kernel, webgpu_lite_space(kernel, limits), limits)


def test_zoo_matmul_spaces_are_a_few_dozen(zoo: list[KernelOp]) -> None:
    sizes = [webgpu_lite_space(k, RAISED).size for k in zoo if k.template.data == "matmul"]
    assert max(sizes) <= LITE_CAP and sum(sizes) / len(sizes) >= 10
    assert min(len(full_space("matmul", RAISED)) // s for s in sizes) >= 200  # vs. 14k valid schedules


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 4096), st.integers(1, 4096), st.sampled_from([(), (3,), (2, 4)]),
       st.sampled_from(list(LIMITS)))  # fmt: skip
def test_matmul_problems(m: int, n: int, k: int, batch: tuple[int, ...], limits: str) -> None:
    kernel = make_kernel([tensor([*batch, m, k]), tensor([k, n])], lambda a, b: nn.MatmulOp(a, b), "matmul")
    space = webgpu_lite_space(kernel, LIMITS[limits])
    assert space.problem.m == m and space.problem.n == n and space.problem.k == k
    for schedule in space.candidates[1:]:
        assert schedule.tile[0] <= pad(m) and schedule.tile[1] <= pad(n)
    assert len(webgpu_matmul(space.problem, LIMITS[limits])) < LITE_CAP  # the rules alone, never the cap


def test_current_schedule_stays_a_candidate() -> None:
    kernel = make_kernel([tensor([64, 64]), tensor([64, 64])], lambda a, b: nn.MatmulOp(a, b), "matmul")
    tuned = webgpu_lite_space(kernel, RAISED).candidates[-1]
    kernel.schedule = tuned.to_attr()
    again = webgpu_lite_space(kernel, RAISED)
    assert again.candidates[0] == DEFAULT_SCHEDULES["matmul"] and tuned in again.candidates


@pytest.mark.parametrize(
    ("template", "build", "shape"),
    [
        ("elementwise", lambda a: nn.ExpOp(a), [3, 1000]),
        ("row_reduce", lambda a: nn.SoftmaxOp(a, -1), [16, 384]),
        ("reduce", lambda a: nn.ReduceSumOp(a, [0], False), [300, 7]),
        ("scan", lambda a: nn.CumsumOp(a, 1), [40, 50]),
    ],
)
def test_one_dimensional_templates(template: str, build: object, shape: list[int]) -> None:
    kernel = make_kernel([tensor(shape)], build, template)  # type: ignore[arg-type]
    space = webgpu_lite_space(kernel, RAISED)
    assert 2 <= space.size <= 16
    assert_rules(kernel, space, RAISED)
