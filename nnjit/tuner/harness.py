"""What every tuning backend runs: one kernel in a module of its own, on random inputs, against the oracle.

    module = kernel_module(kernel, schedule, {"web.target": StringAttr("webgpu")})
    case = oracle_case(kernel, seed=0)          # arguments and the oracle's output (`run_kernel`)
    ok, error = matches(actual, case)

`kernel_module` makes

    web.kernel @k0(...) attributes {template = ..., schedule = <candidate>} { <the kernel's body> }
    func.func @main(%x0, ...) { %y = web.dispatch @k0(%x0, ...) ; func.return %y }

with inputs named `x0, x1, ...` and the result `y`. Arguments are drawn per kernel: floats uniform in
[-1, 1), booleans fair, integers in [0, 4) unless they reach an `nn.gather`'s indices, where they stay
within the gathered axis (and shrink until the oracle accepts them, for indices computed by arithmetic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, BlockArgument, Region

from nnjit.backends.indexing import dependents
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DispatchOp, KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.runtime.reference import to_numpy_dtype
from nnjit.runtime.web_reference import run_kernel
from nnjit.tuner.problem import problem_of

Array = np.ndarray[Any, Any]

INPUT_NAMES = "x{}"
OUTPUT_NAME = "y"
NON_INDEX_INT_HIGH = 4
"""Integers that index nothing are drawn from [0, 4) (masks, ids, small counts)."""
FP32_RTOL = 1e-3
FP32_ATOL = 1e-4
FP32_ATOL_PER_TERM = 1e-5
"""A candidate matches the oracle within rtol 1e-3 and atol 1e-4 + 1e-5 x (reduced extent)."""


def kernel_module(
    kernel: KernelOp, schedule: Schedule, attributes: Mapping[str, Attribute]
) -> tuple[ModuleOp, KernelOp]:
    """A verified module running only `kernel` (a clone, under `schedule`), and that clone.

    `attributes` are the module's (`web.target`, `web.limits`); `VerifyException` when the schedule is
    invalid for the kernel there.
    """
    clone = KernelOp("k0", kernel.function_type, kernel.body.clone(), kernel.template.data, schedule.to_attr())
    inputs, outputs = kernel.function_type.inputs.data, kernel.function_type.outputs.data
    block = Block(arg_types=inputs)
    dispatch = DispatchOp("k0", list(block.args), list(outputs))
    block.add_ops([dispatch, ReturnOp(*dispatch.outputs)])
    main = FuncOp(
        "main",
        FunctionType.from_lists(list(inputs), list(outputs)),
        Region(block),
        arg_attrs=ArrayAttr(
            [DictionaryAttr({"nn.name": StringAttr(INPUT_NAMES.format(i))}) for i in range(len(inputs))]
        ),
        res_attrs=ArrayAttr([DictionaryAttr({"nn.name": StringAttr(OUTPUT_NAME)})]),
    )
    module = ModuleOp([clone, main])
    module.attributes.update(attributes)
    module.verify()
    return module, clone


def named(arguments: Sequence[Array]) -> dict[str, Array]:
    """Arguments keyed `x0, x1, ...` as `kernel_module` names them."""
    return {INPUT_NAMES.format(i): a for i, a in enumerate(arguments)}


def index_bound(argument: BlockArgument) -> int | None:
    """The smallest gathered axis an integer argument reaches as (part of) `nn.gather` indices, or None."""
    block = argument.block
    reached = {argument, *(r for op in dependents(block, argument) for r in op.results)}
    bounds = [
        nn.tensor_shape(op.data)[shapes.normalize_axis(op.axis.value.data, len(nn.tensor_shape(op.data)))]
        for op in block.ops
        if isinstance(op, nn.GatherOp) and op.indices in reached
    ]
    return min(bounds) if bounds else None


def draw_arguments(kernel: KernelOp, rng: np.random.Generator, shrink: int = 0) -> list[Array]:
    """Random arguments of `kernel`'s types; index ranges divided by 2**shrink (at least [0, 1))."""
    arguments: list[Array] = []
    for argument in kernel.body.block.args:
        shape, dtype = nn.tensor_shape(argument), to_numpy_dtype(nn.element_type(argument))
        if dtype == np.bool_:
            arguments.append(rng.random(shape) < 0.5)
        elif np.issubdtype(dtype, np.integer):
            bound = index_bound(argument)
            high = NON_INDEX_INT_HIGH if bound is None else max(1, bound >> shrink)
            arguments.append(rng.integers(0, high, shape).astype(dtype))
        else:
            arguments.append(rng.uniform(-1, 1, shape).astype(dtype))
    return arguments


@dataclass(frozen=True)
class OracleCase:
    """Arguments of one kernel, the oracle's output on them, and the tolerance a candidate must meet."""

    arguments: list[Array]
    expected: Array
    rtol: float
    atol: float


def oracle_case(kernel: KernelOp, seed: int = 0) -> OracleCase:
    """Draw arguments the oracle accepts (index ranges shrink up to 8 times) and evaluate the kernel body."""
    rng = np.random.default_rng(seed)
    reduced = problem_of(kernel).k
    for shrink in range(9):
        arguments = draw_arguments(kernel, rng, shrink)
        try:
            expected = run_kernel(kernel, arguments)
        except NnjitError:
            continue
        return OracleCase(arguments, expected, FP32_RTOL, FP32_ATOL + FP32_ATOL_PER_TERM * reduced)
    raise NnjitError(f"web.kernel @{kernel.sym_name.data}: no random arguments the oracle accepts")


def max_error(actual: Array, expected: Array) -> float:
    """Largest absolute difference (0 for empty arrays; inf when shapes or NaN positions differ)."""
    if actual.shape != expected.shape:
        return float("inf")
    if not actual.size:
        return 0.0
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    if np.any(np.isnan(a) != np.isnan(e)):
        return float("inf")
    with np.errstate(invalid="ignore"):
        diff = np.where(np.isnan(e) | (a == e), 0.0, np.abs(a - e))
    return float(np.max(diff))


def matches(actual: Array, case: OracleCase) -> tuple[bool, float]:
    """Whether a candidate's output equals the oracle's (floats within tolerance, others exactly)."""
    expected = case.expected
    error = max_error(actual, expected)
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return False, float("inf")
    if expected.dtype.kind != "f":
        return bool(np.array_equal(actual, expected)), error
    ok = np.allclose(actual, expected, rtol=case.rtol, atol=case.atol, equal_nan=True)
    return bool(ok), error
