"""Test helpers for the Wasm backend: one-kernel `web` modules (`web.target = "wasm"`), both engines, the oracle.

`kernel_module("matmul", schedule, [a, b], lambda a, b: nn.MatmulOp(a, b))` makes

    module attributes {web.target = "wasm"} {
      web.kernel @k0(%a, %b) -> ... attributes {template = "matmul", schedule = ...} { <body>; web.yield }
      func.func @main(%x0, %x1) { %r = web.dispatch @k0(%x0, %x1) ; func.return %r }
    }

with `nn.name`s `x0, x1, ...` and `y`. `check` runs it in wasmtime and in V8 (one shared executor
each; a missing engine is a test failure, never a skip) and compares both with the numpy oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue

from nnjit.dialects import nn
from nnjit.dialects.web import DispatchOp, KernelOp, Schedule, YieldOp
from nnjit.errors import NnjitError
from nnjit.runtime.reference import dense_attr, element_type_for
from nnjit.runtime.wasm import WasmtimeExecutor
from nnjit.runtime.wasm_node import NodeExecutor
from nnjit.runtime.web_reference import run_web_module

Array = np.ndarray[Any, Any]
Body = Callable[..., Operation | SSAValue]

FP32_RTOL, FP32_ATOL = 1e-3, 1e-4


@cache
def wasmtime_engine() -> WasmtimeExecutor:
    return WasmtimeExecutor()


@cache
def node_engine() -> NodeExecutor:
    try:
        return NodeExecutor()
    except NnjitError as error:
        pytest.fail(f"the Wasm backend tests need Node.js: {error}")


def engines() -> list[WasmtimeExecutor | NodeExecutor]:
    """Both engines: wasmtime (Cranelift) and V8 (Node)."""
    return [wasmtime_engine(), node_engine()]


def splat(value: float | int | bool, dtype: Any, shape: Sequence[int] = ()) -> nn.ConstantOp:
    """An inline splat constant for kernel bodies."""
    return nn.ConstantOp(dense_attr(np.full(shape, value, dtype=dtype)))


def wasm_schedule(vector: int = 4, unroll: int = 1, tile: Sequence[int] = (0, 0, 0), thread: Sequence[int] = (1, 1),
                  shared: bool = False) -> Schedule:  # fmt: skip
    """A Wasm schedule (workgroup [1, 1, 1])."""
    return Schedule((1, 1, 1), tuple(tile), tuple(thread), vector, unroll, shared)  # type: ignore[arg-type]


def kernel_module(template: str, schedule: Schedule, inputs: Sequence[Array], body: Body) -> ModuleOp:
    """A `web.target = "wasm"` module with one kernel of `template` computing `body(*args)`, dispatched by `@main`."""
    types = [TensorType(element_type_for(a.dtype), list(a.shape)) for a in inputs]
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
    module.attributes["web.target"] = StringAttr("wasm")
    module.verify()
    return module


def named(inputs: Sequence[Array]) -> dict[str, Array]:
    """Inputs keyed `x0, x1, ...` as `kernel_module` names them."""
    return {f"x{i}": a for i, a in enumerate(inputs)}


def assert_matches(actual: Array, expected: Array, rtol: float = FP32_RTOL, atol: float = FP32_ATOL) -> None:
    """Floats within tolerance (NaN where the oracle has NaN); integers and booleans exactly."""
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def check(template: str, schedule: Schedule, inputs: Sequence[Array], body: Body, rtol: float = FP32_RTOL,
          atol: float = FP32_ATOL) -> ModuleOp:  # fmt: skip
    """Run `body` as one kernel of `template` under `schedule` on both engines; compare with the oracle."""
    module = kernel_module(template, schedule, inputs, body)
    expected = run_web_module(module, named(inputs))["y"]
    for engine in engines():
        try:
            actual = engine.run(module, named(inputs))["y"]
            assert_matches(actual, expected, rtol, atol)
        except (AssertionError, NnjitError) as error:
            raise AssertionError(f"{type(engine).__name__}, {template} {schedule}: {error}") from error
    return module


def floats(rng: np.random.Generator, shape: Sequence[int], low: float = -3.0, high: float = 3.0) -> Array:
    """Uniform f32 values in `[low, high)`."""
    return rng.uniform(low, high, size=tuple(shape)).astype(np.float32)
