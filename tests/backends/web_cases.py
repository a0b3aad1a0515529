"""Test helpers: one-kernel `web` modules built from `nn` op builders, their oracle, and comparison.

`kernel_module("matmul", schedule, [a, b], lambda a, b: nn.MatmulOp(a, b))` makes

    web.kernel @k0(%a, %b) -> ... attributes {template = "matmul", schedule = ...} { <body>; web.yield }
    func.func @main(%x0, %x1) { %r = web.dispatch @k0(%x0, %x1) ; func.return %r }

with `nn.name`s `x0, x1, ...` and `y`. `check` runs it on the WebGPU executor and compares with the
numpy oracle of `web` modules (`run_web_module`: each kernel body op by op, the kernels inlined).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.builder import ImplicitBuilder
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue

from nnjit.dialects import nn
from nnjit.dialects.web import DispatchOp, KernelOp, LimitsAttr, Schedule, YieldOp
from nnjit.runtime.reference import dense_attr, element_type_for
from nnjit.runtime.web_reference import run_web_module
from nnjit.runtime.webgpu import WebGPUExecutor

Array = np.ndarray[Any, Any]
Body = Callable[..., Operation | SSAValue]

FP32_RTOL, FP32_ATOL = 1e-3, 1e-4


def _types(arrays: Sequence[Array]) -> list[TensorType[Any]]:
    return [TensorType(element_type_for(a.dtype), list(a.shape)) for a in arrays]


def splat(value: float | int | bool, dtype: Any, shape: Sequence[int] = ()) -> nn.ConstantOp:
    """An inline splat constant for kernel bodies."""
    return nn.ConstantOp(dense_attr(np.full(shape, value, dtype=dtype)))


def kernel_module(template: str, schedule: Schedule, inputs: Sequence[Array], body: Body,
                  limits: LimitsAttr | None = None) -> ModuleOp:  # fmt: skip
    """A module with one kernel of `template` computing `body(*args)` and `@main` dispatching it."""
    types = _types(inputs)
    block = Block(arg_types=types)
    with ImplicitBuilder(block):
        root = SSAValue.get(body(*block.args))
        YieldOp(root)
    kernel = KernelOp("k0", FunctionType.from_lists(types, [root.type]), Region(block), template, schedule.to_attr())
    main = FuncOp("main", (types, [root.type]), arg_attrs=ArrayAttr(
        [DictionaryAttr({"nn.name": StringAttr(f"x{i}")}) for i in range(len(inputs))]))  # fmt: skip
    with ImplicitBuilder(main.body) as args:
        dispatch = DispatchOp("k0", list(args), [root.type])
        ReturnOp(dispatch)
    main.res_attrs = ArrayAttr([DictionaryAttr({"nn.name": StringAttr("y")})])
    module = ModuleOp([kernel, main])
    if limits is not None:
        module.attributes["web.limits"] = limits
    module.verify()
    return module


def named(inputs: Sequence[Array]) -> dict[str, Array]:
    """Inputs keyed `x0, x1, ...` as `kernel_module` names them."""
    return {f"x{i}": a for i, a in enumerate(inputs)}


def assert_matches(actual: Array, expected: Array, rtol: float = FP32_RTOL, atol: float = FP32_ATOL) -> None:
    """Floats within tolerance (NaN where the oracle has NaN); integers and booleans exactly."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (
        actual.shape,
        actual.dtype,
        expected.shape,
        expected.dtype,
    )
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(executor: WebGPUExecutor, template: str, schedule: Schedule, inputs: Sequence[Array], body: Body,
          rtol: float = FP32_RTOL, atol: float = FP32_ATOL) -> ModuleOp:  # fmt: skip
    """Run `body` as one kernel of `template` under `schedule` and compare with the oracle."""
    module = kernel_module(template, schedule, inputs, body)
    expected = run_web_module(module, named(inputs))["y"]
    assert_matches(executor.run(module, named(inputs))["y"], expected, rtol, atol)
    return module


def floats(rng: np.random.Generator, shape: Sequence[int], low: float = -3.0, high: float = 3.0) -> Array:
    """Uniform f32 values in `[low, high)`."""
    return rng.uniform(low, high, size=tuple(shape)).astype(np.float32)
