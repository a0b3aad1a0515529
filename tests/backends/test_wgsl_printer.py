"""The WGSL printer's own rules: literals, index trees, fresh state, errors, the `nnjit-wgsl` target.

Numerics of each template are in `test_wgsl_<template>.py`; here the printed text itself is checked,
and every shader printed here is also built by naga.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from web_cases import check, kernel_module, splat
from xdsl.universe import Universe

from nnjit.backends.indexing import (
    INDEX,
    Apply,
    Const,
    Expr,
    IndexDiv,
    IndexMod,
    KernelIndexer,
    Load,
    Var,
    div,
    linear,
    mod,
    unflatten,
)
from nnjit.backends.wgsl import WgslPrinter, WgslTarget, literal
from nnjit.dialects import nn
from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.runtime.reference import dense_attr, erf
from nnjit.runtime.webgpu import WebGPUExecutor

ELEMENTWISE = Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False)


def _kernel(module: object) -> KernelOp:
    return next(op for op in module.ops if isinstance(op, KernelOp))  # type: ignore[attr-defined]


def test_literals() -> None:
    assert literal(1.0, "f32") == "1.0f"
    assert literal(-0.125, "f32") == "(-0.125f)"
    assert literal(1e-5, "f32") == "9.999999747378752e-06f"  # the f32 value, exactly
    assert literal(math.inf, "f32") == "nn_f32_bits(0x7f800000u)"
    assert literal(-math.inf, "f32") == "nn_f32_bits(0xff800000u)"
    assert literal(math.nan, "f32") == "nn_f32_bits(0x7fc00000u)"
    assert literal(7, "i64") == "7i" and literal(-3, "i32") == "(-3i)"
    assert literal(-(2**31), "i32") == "(-2147483647i - 1i)"
    assert literal(True, "bool") == "true"
    with pytest.raises(NnjitError, match="does not fit"):
        literal(2**31, "i64")


def _evaluate(expr: Expr, env: dict[str, int]) -> int:
    """An index tree's value (non-negative integer operands)."""
    if isinstance(expr, Const):
        return int(expr.value)
    if isinstance(expr, Var):
        return env[expr.name]
    assert isinstance(expr, Apply), expr
    a, b = (_evaluate(arg, env) for arg in expr.args)
    return {nn.AddOp: a + b, nn.SubOp: a - b, nn.MulOp: a * b, IndexDiv: a // max(b, 1), IndexMod: a % max(b, 1)}[
        expr.op
    ]


def test_index_arithmetic_composes_views_without_copies() -> None:
    """reshape -> transpose -> reshape is one load through an index tree, no copy."""
    module = kernel_module("elementwise", ELEMENTWISE, [np.zeros((2, 3, 4), np.float32)], lambda a: nn.ReshapeOp(
        nn.TransposeOp(nn.ReshapeOp(a, [6, 4]), [1, 0]), [4, 6]))  # fmt: skip
    kernel = _kernel(module)
    i = Var(INDEX, "i", 24)
    tree = KernelIndexer(kernel).value_at(kernel.root, unflatten(i, (4, 6)))
    assert isinstance(tree, Load) and tree.buffer == 0
    expected = np.arange(24).reshape(6, 4).T.reshape(-1)
    assert [_evaluate(tree.index, {"i": n}) for n in range(24)] == expected.tolist()
    # flattening the coordinates that unflatten split gives the index back, without div/mod
    assert linear(unflatten(i, (2, 3, 4)), (2, 3, 4)) == i
    assert (
        mod(div(i, 4), 6) == div(i, 4)
        and div(Apply(INDEX, nn.AddOp, (Apply(INDEX, nn.MulOp, (i, Const(INDEX, 8))), Var(INDEX, "r", 8))), 8) == i
    )


def test_printing_is_fresh_and_deterministic() -> None:
    x = np.zeros((3, 5), np.float32)
    first = _kernel(kernel_module("elementwise", ELEMENTWISE, [x], lambda a: nn.GeluOp(nn.TanhOp(a))))
    second = _kernel(kernel_module("elementwise", ELEMENTWISE, [x], lambda a: nn.ExpOp(a)))
    text = WgslPrinter(first).emit()
    assert WgslPrinter(second).emit() == WgslPrinter(second).emit()
    assert WgslPrinter(first).emit() == text
    assert "nn_erf" in text and "fn nn_erf" in text and "nn_erf" not in WgslPrinter(second).emit()


def test_unsupported_types_and_bodies_are_errors() -> None:
    with pytest.raises(NnjitError, match="f16 is not supported by the webgpu target"):
        WgslPrinter(
            _kernel(kernel_module("elementwise", ELEMENTWISE, [np.zeros(3, np.float16)], lambda a: nn.NegOp(a)))
        ).emit()
    dense = nn.ConstantOp(dense_attr(np.arange(3, dtype=np.float32)))
    with pytest.raises(NnjitError, match="not a splat"):
        WgslPrinter(_kernel(kernel_module("elementwise", ELEMENTWISE, [np.zeros(3, np.float32)],
                                          lambda a: nn.AddOp(a, dense.clone())))).emit()  # fmt: skip
    with pytest.raises(NnjitError, match=r"expected one nn\.matmul anchor"):
        WgslPrinter(_kernel(kernel_module("matmul", Schedule((4, 4, 1), (4, 4, 4), (1, 1), 1, 1, False),
                                          [np.zeros(3, np.float32)], lambda a: nn.NegOp(a)))).emit()  # fmt: skip
    with pytest.raises(NnjitError, match="non-injective"):
        WgslPrinter(_kernel(kernel_module("elementwise", ELEMENTWISE, [np.zeros((3, 3), np.float32)],
                                          lambda a: nn.SoftmaxOp(a, -1)))).emit()  # fmt: skip


def test_erf_polynomial_error(executor: WebGPUExecutor) -> None:
    """The documented bound: |erf error| <= 1.5e-7 (A&S 7.1.26) plus f32 rounding, relative 4e-7 near 0."""
    x = np.concatenate([np.linspace(-6, 6, 20001), np.geomspace(1e-6, 0.6, 2000)]).astype(np.float32)
    module = kernel_module("elementwise", ELEMENTWISE, [x], lambda a: nn.ErfOp(a))
    got = executor.run(module, {"x0": x})["y"].astype(np.float64)
    exact = erf(x.astype(np.float64))
    assert np.abs(got - exact).max() < 3e-7
    small = np.abs(x) < 0.5
    assert (np.abs(got - exact)[small] / np.abs(exact[small])).max() < 1e-6


def test_names_come_from_counters_not_models(executor: WebGPUExecutor) -> None:
    """Even a reserved-looking counter name (`i32`) is avoided; weights' handles never reach WGSL."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    module = check(executor, "elementwise", Schedule((32, 1, 1), (0, 0, 0), (1, 1), 1, 8, False), [x],
                   lambda a: nn.MulOp(nn.SinOp(a), splat(2.0, np.float32)))  # fmt: skip
    text = WgslPrinter(_kernel(module)).emit()
    assert "let i32 " not in text and "k0" not in text


def test_target_is_registered_as_nnjit_wgsl(tmp_path: Path) -> None:
    targets = Universe.get_multiverse().all_targets
    assert targets["nnjit-wgsl"]() is WgslTarget and targets["wgsl"]() is not WgslTarget
    module = kernel_module("elementwise", ELEMENTWISE, [np.zeros(4, np.float32)], lambda a: nn.AbsOp(a))
    source = tmp_path / "k.mlir"
    source.write_text(str(module))
    run = subprocess.run([sys.executable, "-c", "from nnjit.cli_opt import opt_main; opt_main()", str(source), "-t", "nnjit-wgsl"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert run.stdout.startswith("// kernel @k0 grid [1, 1, 1]") and "@compute @workgroup_size(64, 1, 1)" in run.stdout
