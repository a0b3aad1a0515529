"""Numeric safety of `nn-recognize-patterns` and `canonicalize`: the numpy oracle gives the same outputs
before and after each rewrite (rtol 1e-5, atol 1e-6), on shapes and values drawn by hypothesis.

Each case builds the composite an exporter emits, checks that the pass produced the fused op (and that
the composite is gone), and compares `run_module` on the module before and after. float64 cases check
the algebra with any values; float32 cases use the constants exporters print (`1.4142135381698608`)
and, for the norms, rows with a spread: on near-constant rows the composite's float32 `x - mean`
cancels, which makes the *composite* inaccurate (the fused op is the accurate one), not the rewrite wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from xdsl.builder import ImplicitBuilder
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.traits import HasCanonicalizationPatternsTrait
from xdsl.transforms.canonicalize import CanonicalizePass

from nnjit.context import make_context
from nnjit.dialects import nn
from nnjit.dialects.nn import NN
from nnjit.passes.canonicalization_patterns import (
    FOLD,
    PATTERNS,
    FoldConstants,
    ReshapeOfReshape,
    ShapeOpIdentity,
    patterns_for,
)
from nnjit.passes.nn_recognize_patterns import RecognizePatternsPass
from nnjit.runtime.reference import dense_attr, element_type_for, run_module

Array = np.ndarray[Any, Any]
Body = Callable[..., SSAValue]

RTOL, ATOL = 1e-5, 1e-6
CASES = settings(max_examples=15, deadline=None)
DTYPES = [np.float32, np.float64]


# --- Harness ---------------------------------------------------------------------------------


def build_main(inputs: dict[str, Array], body: Body) -> ModuleOp:
    """`@main` over `inputs` (by name) returning `body(*args)` as `y`."""
    types = [TensorType(element_type_for(a.dtype), list(a.shape)) for a in inputs.values()]
    names = ArrayAttr([DictionaryAttr({"nn.name": StringAttr(name)}) for name in inputs])
    main = FuncOp("main", (types, []), arg_attrs=names)
    with ImplicitBuilder(main.body) as args:
        result = body(*args)
        ReturnOp(result)
    main.function_type = FunctionType.from_lists(types, [result.type])
    main.res_attrs = ArrayAttr([DictionaryAttr({"nn.name": StringAttr("y")})])
    module = ModuleOp([main])
    module.verify()
    return module


def op_types(module: ModuleOp) -> list[type[Operation]]:
    return [type(op) for op in module.walk()]


def check_rewrite(
    inputs: dict[str, Array], body: Body, fused: type[Operation], gone: tuple[type[Operation], ...], *passes: ModulePass
) -> None:
    """Run `passes` on the module `body` builds; `fused` must appear, `gone` vanish, outputs stay."""
    module = build_main(inputs, body)
    before = run_module(module, inputs)["y"]
    ctx = make_context()
    for module_pass in passes or (RecognizePatternsPass(),):
        module_pass.apply(ctx, module)
    module.verify()
    kinds = op_types(module)
    assert fused in kinds, f"{fused.name} not recognised:\n{module}"
    assert not set(gone) & set(kinds), f"composite left behind:\n{module}"
    after = run_module(module, inputs)["y"]
    np.testing.assert_allclose(after, before, rtol=RTOL, atol=ATOL)


def const(value: float | Array, dtype: Any) -> SSAValue:
    return nn.ConstantOp(dense_attr(np.asarray(value, dtype))).result


def mul(a: SSAValue, b: SSAValue) -> SSAValue:
    return nn.MulOp(a, b).result


def add(a: SSAValue, b: SSAValue) -> SSAValue:
    return nn.AddOp(a, b).result


def div(a: SSAValue, b: SSAValue) -> SSAValue:
    return nn.DivOp(a, b).result


def values(data: st.DataObject, shape: tuple[int, ...], dtype: Any, bound: float = 6.0) -> Array:
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(-bound, bound, width=width, allow_subnormal=False)
    return data.draw(hnp.arrays(dtype, shape, elements=elements))


shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


# --- GELU ------------------------------------------------------------------------------------

SQRT2 = {np.float32: 1.4142135381698608, np.float64: math.sqrt(2.0)}


def erf_gelu(variant: str, dtype: Any) -> Body:
    def body(x: SSAValue) -> SSAValue:
        half, one = const(0.5, dtype), const(1.0, dtype)
        if variant == "div_sqrt2_half_last":  # BART / BERT: ((x * (erf(x / sqrt2) + 1)) * 0.5
            branch = add(nn.ErfOp(div(x, const(SQRT2[dtype], dtype))).result, one)
            return mul(mul(x, branch), half)
        if variant == "mul_rsqrt2_half_first":  # (0.5 * x) * (1 + erf(x * (1 / sqrt2)))
            scaled = mul(const(1 / SQRT2[dtype], dtype), x)
            return mul(mul(half, x), add(one, nn.ErfOp(scaled).result))
        branch = add(nn.ErfOp(div(x, const(SQRT2[dtype], dtype))).result, one)  # x * (0.5 * (erf + 1))
        return mul(x, mul(half, branch))

    return body


@pytest.mark.parametrize("variant", ["div_sqrt2_half_last", "mul_rsqrt2_half_first", "half_inside"])
@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_erf_gelu(variant: str, dtype: Any, data: st.DataObject) -> None:
    x = values(data, data.draw(shapes), dtype)
    check_rewrite({"x": x}, erf_gelu(variant, dtype), nn.GeluOp, (nn.ErfOp, nn.MulOp))


def tanh_gelu(cube: str, dtype: Any) -> Body:
    def body(x: SSAValue) -> SSAValue:
        if cube == "pow":  # GPT-2 gelu_new as exported
            cubed = mul(nn.PowOp(x, const(3.0, dtype)).result, const(0.044714998453855515, dtype))
        else:  # 0.044715 * x * x * x
            cubed = mul(mul(mul(const(0.044715, dtype), x), x), x)
        inner = mul(add(x, cubed), const(0.7978845834732056, dtype))
        return mul(mul(x, const(0.5, dtype)), add(nn.TanhOp(inner).result, const(1.0, dtype)))

    return body


@pytest.mark.parametrize("cube", ["pow", "products"])
@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_tanh_gelu(cube: str, dtype: Any, data: st.DataObject) -> None:
    x = values(data, data.draw(shapes), dtype)
    check_rewrite({"x": x}, tanh_gelu(cube, dtype), nn.GeluOp, (nn.TanhOp, nn.PowOp, nn.MulOp))


# --- Normalisations --------------------------------------------------------------------------


def normalized_inputs(data: st.DataObject, dtype: Any, count: int) -> tuple[Array, Array, Array]:
    """x with rank >= count + 1, plus scale and bias over its last `count` dims.

    x is drawn noise in [-2, 2] on a ramp from -10 to 10 over the normalised dims, so every row's
    standard deviation is at least a quarter of its largest magnitude: float32 `x - mean` then stays
    accurate to ~1e-7 of the result (see the module docstring).
    """
    batch = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    trailing = data.draw(hnp.array_shapes(min_dims=count, max_dims=count, min_side=2, max_side=8))
    ramp = np.linspace(-10.0, 10.0, math.prod(trailing)).reshape(trailing)
    x = (values(data, (*batch, *trailing), dtype, 2.0) + ramp).astype(dtype)
    return x, values(data, trailing, dtype, 2.0), values(data, trailing, dtype, 2.0)


def layer_norm(affine: str, count: int, dtype: Any) -> Body:
    axes = list(range(-count, 0))

    def body(x: SSAValue, g: SSAValue, b: SSAValue) -> SSAValue:
        d = nn.SubOp(x, nn.ReduceMeanOp(x, axes, True)).result
        square = nn.PowOp(d, const(2.0, dtype)).result if affine != "rsqrt" else mul(d, d)
        shifted = add(nn.ReduceMeanOp(square, axes, True).result, const(1e-5, dtype))
        if affine == "rsqrt":
            return mul(nn.RsqrtOp(shifted).result, d)
        y = div(d, nn.SqrtOp(shifted).result)
        if affine in ("scale", "scale_bias"):
            y = mul(g, y)
        if affine in ("bias", "scale_bias"):
            y = add(y, b)
        return y

    return body


@pytest.mark.parametrize("affine", ["scale_bias", "scale", "bias", "none", "rsqrt"])
@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_layer_norm(affine: str, count: int, dtype: Any, data: st.DataObject) -> None:
    x, g, b = normalized_inputs(data, dtype, count)
    gone = (nn.ReduceMeanOp, nn.SqrtOp, nn.RsqrtOp, nn.DivOp, nn.SubOp)
    check_rewrite({"x": x, "g": g, "b": b}, layer_norm(affine, count, dtype), nn.LayerNormOp, gone)


def rms_norm(form: str, dtype: Any) -> Body:
    def body(x: SSAValue, g: SSAValue) -> SSAValue:
        square = nn.PowOp(x, const(2.0, dtype)).result if form != "div" else mul(x, x)
        shifted = add(const(1e-6, dtype), nn.ReduceMeanOp(square, [-1], True).result)
        if form == "t5":  # weight * (x * (1 / sqrt(...)))
            return mul(g, mul(x, div(const(1.0, dtype), nn.SqrtOp(shifted).result)))
        if form == "div":  # x / sqrt(...) * weight
            return mul(div(x, nn.SqrtOp(shifted).result), g)
        if form == "reciprocal":
            return mul(mul(nn.ReciprocalOp(nn.SqrtOp(shifted)).result, x), g)
        return mul(x, nn.RsqrtOp(shifted).result)  # no scale

    return body


@pytest.mark.parametrize("form", ["t5", "div", "reciprocal", "unscaled"])
@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_rms_norm(form: str, dtype: Any, data: st.DataObject) -> None:
    x, g, _ = normalized_inputs(data, dtype, 1)
    gone = (nn.ReduceMeanOp, nn.SqrtOp, nn.RsqrtOp, nn.DivOp, nn.PowOp, nn.MulOp)
    check_rewrite({"x": x, "g": g}, rms_norm(form, dtype), nn.RmsNormOp, gone)


def test_llama_rms_norm_after_canonicalize() -> None:
    """The Llama export wraps the norm in f32 -> f32 casts; canonicalize removes them first."""
    x = np.random.default_rng(0).standard_normal((1, 5, 16)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(16).astype(np.float32)

    def body(x: SSAValue, g: SSAValue) -> SSAValue:
        c = nn.CastOp(x, element_type_for(np.float32)).result
        mean = nn.ReduceMeanOp(nn.PowOp(c, const(2.0, np.float32)), [-1], True).result
        root = nn.SqrtOp(add(mean, const(1e-5, np.float32))).result
        n = mul(c, div(const(1.0, np.float32), root))
        return mul(g, nn.CastOp(n, element_type_for(np.float32)).result)

    check_rewrite(
        {"x": x, "g": g}, body, nn.RmsNormOp, (nn.CastOp, nn.MulOp), CanonicalizePass(), RecognizePatternsPass()
    )


# --- Softmax and SiLU ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_softmax(dtype: Any, data: st.DataObject) -> None:
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = values(data, shape, dtype, 20.0)

    def body(x: SSAValue) -> SSAValue:
        e = nn.ExpOp(nn.SubOp(x, nn.ReduceMaxOp(x, [axis], True))).result
        return div(e, nn.ReduceSumOp(e, [axis], True).result)

    check_rewrite({"x": x}, body, nn.SoftmaxOp, (nn.ExpOp, nn.ReduceMaxOp, nn.ReduceSumOp, nn.DivOp))


@pytest.mark.parametrize("gate_first", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@CASES
@given(data=st.data())
def test_silu(gate_first: bool, dtype: Any, data: st.DataObject) -> None:
    x = values(data, data.draw(shapes), dtype, 20.0)

    def body(x: SSAValue) -> SSAValue:
        gate = nn.SigmoidOp(x).result
        return mul(gate, x) if gate_first else mul(x, gate)

    check_rewrite({"x": x}, body, nn.SiluOp, (nn.SigmoidOp, nn.MulOp))


# --- canonicalize ----------------------------------------------------------------------------


@CASES
@given(data=st.data())
def test_canonicalize_mixed_module(data: st.DataObject) -> None:
    """Folds, identities and compositions together keep the outputs and shrink the module."""
    rows, cols = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    x = values(data, (rows, cols), np.float32)
    c = values(data, (cols,), np.float32)

    def body(x: SSAValue) -> SSAValue:
        f32 = np.float32
        folded = nn.NegOp(mul(const(c, f32), const(2.0, f32))).result  # folds to one constant
        t = nn.TransposeOp(nn.TransposeOp(x, [1, 0]), [1, 0]).result  # composes to the identity
        r = nn.ReshapeOp(nn.ReshapeOp(t, [rows * cols]), [cols, rows]).result  # one reshape
        back = nn.ReshapeOp(r, [rows, cols]).result
        same = nn.SliceOp(nn.CastOp(back, element_type_for(f32)), [0, 0], [rows, cols], [1, 1]).result
        plain = div(nn.SubOp(mul(const(1.0, f32), same), const(0.0, f32)).result, const(1.0, f32))
        twice = nn.NegOp(nn.NegOp(nn.ConcatOp([plain], 0))).result
        nn.ExpOp(twice)  # dead
        return add(add(twice, folded), const(np.zeros((rows, cols)), f32))

    module = build_main({"x": x}, body)
    before = run_module(module, {"x": x})["y"]
    count = len(op_types(module))
    CanonicalizePass().apply(make_context(), module)
    module.verify()
    kinds = op_types(module)
    assert set(kinds) - {ModuleOp, FuncOp, ReturnOp} <= {nn.ConstantOp, nn.AddOp}, module  # x + folded (+ 0 if c is 0)
    assert len(kinds) < count
    np.testing.assert_allclose(run_module(module, {"x": x})["y"], before, rtol=RTOL, atol=ATOL)


def test_canonicalization_patterns_are_registered_once() -> None:
    """Every nn op but the constant has one trait; each pattern object exists once and is tried once."""
    for op_type in NN.operations:
        traits = op_type.get_traits_of_type(HasCanonicalizationPatternsTrait)
        assert len(traits) == (0 if op_type is nn.ConstantOp else 1), op_type.name
        for trait in traits:
            patterns = trait.get_patterns(op_type)
            assert patterns[0] is FOLD and len(set(map(id, patterns))) == len(patterns)
            assert all(any(p is q for q in PATTERNS) for p in patterns), op_type.name
    assert [type(p) for p in patterns_for(nn.ReshapeOp)] == [FoldConstants, ShapeOpIdentity, ReshapeOfReshape]


# --- The zoo's real exports ------------------------------------------------------------------

ZOO_FUSED = {
    "bart": {nn.GeluOp},  # erf GELU (LayerNorm and Softmax arrive as single ONNX ops)
    "roberta": {nn.GeluOp},
    "gpt2": {nn.GeluOp},  # tanh GELU (gelu_new)
    "t5": {nn.RmsNormOp},
    "llama": {nn.RmsNormOp, nn.SiluOp},
}
COMPOSITE_PIECES = (nn.ErfOp, nn.TanhOp, nn.PowOp, nn.SqrtOp, nn.RsqrtOp, nn.ReciprocalOp, nn.SigmoidOp)


@pytest.mark.parametrize("model", sorted(ZOO_FUSED))
def test_zoo_exports_are_recognised(model: str) -> None:
    """canonicalize + nn-recognize-patterns on the imported fixtures: every piece fused, outputs kept."""
    from nnjit.frontend.onnx import import_onnx
    from nnjit.models.zoo import example_inputs, zoo_path

    inputs = example_inputs(model, 1, 8)
    imported = import_onnx(zoo_path(model), {name: array.shape for name, array in inputs.items()})
    before = run_module(imported.module, inputs, imported.weights)
    ctx = make_context()
    CanonicalizePass().apply(ctx, imported.module)
    RecognizePatternsPass().apply(ctx, imported.module)
    imported.module.verify()
    kinds = set(op_types(imported.module))
    assert ZOO_FUSED[model] <= kinds
    assert not kinds & set(COMPOSITE_PIECES), sorted(k.name for k in kinds & set(COMPOSITE_PIECES))
    after = run_module(imported.module, inputs, imported.weights)
    for name, expected in before.items():
        np.testing.assert_allclose(after[name], expected, rtol=RTOL, atol=ATOL)
