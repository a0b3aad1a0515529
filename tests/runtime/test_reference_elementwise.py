"""The numpy oracle's elementwise `nn` ops, specified by onnxruntime on drawn shapes and values.

Tolerances: fp32 results within rtol 1e-4 / atol 1e-5 of onnxruntime (DESIGN.md); integer and
boolean results exactly equal. Shapes are rank 0..4 with broadcasting and size-1 dims.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx.helper import np_dtype_to_tensor_dtype
from ort_oracle import SPEC, bools, broadcast_shapes, check_graph, check_op, floats, ints, node, shapes

from nnjit.dialects import nn
from nnjit.runtime.reference import element_type_for

# --- Binary arithmetic -----------------------------------------------------------------------

FLOAT_BINARY = [("Add", nn.AddOp), ("Sub", nn.SubOp), ("Mul", nn.MulOp), ("Div", nn.DivOp), ("Max", nn.MaxOp),
                ("Min", nn.MinOp)]  # fmt: skip


@pytest.mark.parametrize(("onnx_op", "op"), FLOAT_BINARY)
@SPEC
@given(data=st.data())
def test_float_binary(onnx_op: str, op: type[nn.ElementwiseBinaryOp], data: st.DataObject) -> None:
    a_shape, b_shape = data.draw(broadcast_shapes())
    a = data.draw(floats(a_shape))
    b = data.draw(floats(b_shape, nonzero=0.1 if op is nn.DivOp else 0.0))
    check_op(onnx_op, [a, b], op)


@pytest.mark.parametrize(("onnx_op", "op"), [*FLOAT_BINARY, ("Mod", nn.ModOp)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@SPEC
@given(data=st.data())
def test_integer_binary(onnx_op: str, op: type[nn.ElementwiseBinaryOp], dtype: type, data: st.DataObject) -> None:
    """Integer Div truncates toward zero; Mod takes the divisor's sign (ONNX fmod=0); both exact."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    a = data.draw(ints(a_shape, dtype=dtype))
    b = data.draw(ints(b_shape, dtype=dtype, nonzero=op in (nn.DivOp, nn.ModOp)))
    check_op(onnx_op, [a, b], op)


def test_integer_division_rounds_toward_zero() -> None:
    a = np.array([7, -7, 7, -7, 6, -1], np.int64)
    b = np.array([2, 2, -2, -2, 3, 5], np.int64)
    np.testing.assert_array_equal(check_op("Div", [a, b], nn.DivOp), [3, -3, -3, 3, 2, 0])
    np.testing.assert_array_equal(check_op("Mod", [a, b], nn.ModOp), [1, 1, -1, -1, 0, 4])


@SPEC
@given(data=st.data())
def test_float_mod_takes_sign_of_divisor(data: st.DataObject) -> None:
    """onnxruntime refuses float Mod with fmod=0, so the spec is composed: r = fmod(a, b), plus b
    where r is non-zero and its sign differs from b's."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    a, b = data.draw(floats(a_shape, -10, 10)), data.draw(floats(b_shape, -5, 5, nonzero=0.5))
    graph = [
        node("Mod", ["x0", "x1"], "r", fmod=1),
        node("Mul", ["r", "x1"], "rb"),
        node("Less", ["rb", "c0"], "fix"),
        node("Add", ["r", "x1"], "shifted"),
        node("Where", ["fix", "shifted", "r"], "y"),
    ]
    check_graph(graph, [a, b], nn.ModOp, consts=[np.float32(0)])


@SPEC
@given(data=st.data())
def test_float_pow(data: st.DataObject) -> None:
    """Positive bases with any exponent; negative bases with integral exponents."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    if data.draw(st.booleans()):
        a, b = data.draw(floats(a_shape, 0.1, 3)), data.draw(floats(b_shape, -3, 3))
    else:
        a, b = data.draw(floats(a_shape, -3, 3, nonzero=0.1)), data.draw(ints(b_shape, -3, 3)).astype(np.float32)
    check_op("Pow", [a, b], nn.PowOp, opset=15)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@SPEC
@given(data=st.data())
def test_integer_pow(dtype: type, data: st.DataObject) -> None:
    """Exact; a negative exponent truncates the real power toward zero, as onnxruntime does."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    a, b = data.draw(ints(a_shape, -4, 4, dtype, nonzero=True)), data.draw(ints(b_shape, -2, 6, dtype))
    check_op("Pow", [a, b], nn.PowOp, opset=15)


@pytest.mark.parametrize(("onnx_op", "op"), [("And", nn.AndOp), ("Or", nn.OrOp), ("Xor", nn.XorOp)])
@SPEC
@given(data=st.data())
def test_logical_binary(onnx_op: str, op: type[nn.ElementwiseBinaryOp], data: st.DataObject) -> None:
    a_shape, b_shape = data.draw(broadcast_shapes())
    check_op(onnx_op, [data.draw(bools(a_shape)), data.draw(bools(b_shape))], op)


COMPARISONS = [("Equal", nn.EqualOp), ("Less", nn.LessOp), ("LessOrEqual", nn.LessEqualOp),
               ("Greater", nn.GreaterOp), ("GreaterOrEqual", nn.GreaterEqualOp)]  # fmt: skip


@pytest.mark.parametrize(("onnx_op", "op"), COMPARISONS)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@SPEC
@given(data=st.data())
def test_comparison(onnx_op: str, op: type[nn.ComparisonOp], dtype: type, data: st.DataObject) -> None:
    """Values on a coarse grid so that ties (the interesting case) are common; results are i1."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    scale = 2 if dtype == np.float32 else 1
    a, b = (np.asarray(data.draw(ints(s, -3, 3)) / scale).astype(dtype) for s in (a_shape, b_shape))
    check_op(onnx_op, [a, b], op)


# --- Unary -----------------------------------------------------------------------------------

FLOAT_UNARY = [
    ("Exp", nn.ExpOp, -10, 10), ("Log", nn.LogOp, 0.01, 100), ("Sqrt", nn.SqrtOp, 0, 100),
    ("Tanh", nn.TanhOp, -10, 10), ("Erf", nn.ErfOp, -5, 5), ("Sigmoid", nn.SigmoidOp, -20, 20),
    ("Relu", nn.ReluOp, -5, 5), ("Neg", nn.NegOp, -5, 5), ("Abs", nn.AbsOp, -5, 5), ("Sin", nn.SinOp, -10, 10),
    ("Cos", nn.CosOp, -10, 10), ("Floor", nn.FloorOp, -5, 5), ("Ceil", nn.CeilOp, -5, 5), ("Sign", nn.SignOp, -2, 2),
]  # fmt: skip


@pytest.mark.parametrize(("onnx_op", "op", "lo", "hi"), FLOAT_UNARY)
@SPEC
@given(data=st.data())
def test_float_unary(onnx_op: str, op: type[nn.ElementwiseUnaryOp], lo: float, hi: float, data: st.DataObject) -> None:
    check_op(onnx_op, [data.draw(floats(data.draw(shapes()), lo, hi))], op)


@SPEC
@given(data=st.data())
def test_reciprocal_and_rsqrt(data: st.DataObject) -> None:
    """nn.rsqrt is Reciprocal(Sqrt(x)) in ONNX."""
    shape = data.draw(shapes())
    check_op("Reciprocal", [data.draw(floats(shape, -10, 10, nonzero=0.01))], nn.ReciprocalOp)
    x = data.draw(floats(shape, 0.01, 100))
    check_graph([node("Sqrt", ["x0"], "s"), node("Reciprocal", ["s"], "y")], [x], nn.RsqrtOp)


@SPEC
@given(data=st.data())
def test_round_halves_to_even(data: st.DataObject) -> None:
    shape = data.draw(shapes())
    halves = data.draw(ints(shape, -10, 10)).astype(np.float32) / 2
    mixed = np.where(data.draw(bools(shape)), halves, data.draw(floats(shape, -5, 5)))
    check_op("Round", [mixed.astype(np.float32)], nn.RoundOp)


def test_round_examples() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998], np.float32)
    np.testing.assert_array_equal(check_op("Round", [x], nn.RoundOp), [0, 2, 2, -0, -2, -2, 2])


@SPEC
@given(data=st.data())
def test_silu(data: st.DataObject) -> None:
    """nn.silu is Mul(x, Sigmoid(x)) in ONNX."""
    x = data.draw(floats(data.draw(shapes()), -20, 20))
    check_graph([node("Sigmoid", ["x0"], "s"), node("Mul", ["x0", "s"], "y")], [x], nn.SiluOp)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@SPEC
@given(data=st.data())
def test_gelu(approximate: str, data: st.DataObject) -> None:
    """Exact GELU uses erf; "tanh" the tanh formula (ONNX Gelu, opset 20)."""
    x = data.draw(floats(data.draw(shapes()), -6, 6))
    check_op("Gelu", [x], lambda v: nn.GeluOp(v, approximate), opset=20, approximate=approximate)


@SPEC
@given(data=st.data(), alpha=st.sampled_from([0.01, 0.2, 1.5]))
def test_leaky_relu(data: st.DataObject, alpha: float) -> None:
    x = data.draw(floats(data.draw(shapes()), -5, 5))
    check_op("LeakyRelu", [x], lambda v: nn.LeakyReluOp(v, alpha), alpha=alpha)


@SPEC
@given(data=st.data(), lo=st.sampled_from([None, -1.0, 0.0]), hi=st.sampled_from([None, 0.5, 2.0]))
def test_clip(data: st.DataObject, lo: float | None, hi: float | None) -> None:
    """An absent bound is unbounded (an omitted ONNX input)."""
    x = data.draw(floats(data.draw(shapes()), -3, 3))
    bounds = [None if v is None else np.float32(v) for v in (lo, hi)]
    check_op("Clip", [x], lambda v: nn.ClipOp(v, lo, hi), consts=bounds, opset=13)


@pytest.mark.parametrize(("onnx_op", "op"), [("Abs", nn.AbsOp), ("Neg", nn.NegOp), ("Sign", nn.SignOp)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@SPEC
@given(data=st.data())
def test_integer_unary(onnx_op: str, op: type[nn.ElementwiseUnaryOp], dtype: type, data: st.DataObject) -> None:
    check_op(onnx_op, [data.draw(ints(data.draw(shapes()), dtype=dtype))], op)


@SPEC
@given(data=st.data())
def test_integer_relu_and_not(data: st.DataObject) -> None:
    shape = data.draw(shapes())
    check_op("Relu", [data.draw(ints(shape, dtype=np.int32))], nn.ReluOp, opset=14)
    check_op("Not", [data.draw(bools(shape))], nn.NotOp)


# --- Where and Cast --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@SPEC
@given(data=st.data())
def test_where(dtype: type, data: st.DataObject) -> None:
    """All three operands broadcast together."""
    c_shape, t_shape, f_shape = data.draw(broadcast_shapes(3))
    t, f = (data.draw(ints(s)).astype(dtype) for s in (t_shape, f_shape))
    check_op("Where", [data.draw(bools(c_shape)), t, f], nn.WhereOp)


CASTS = [(np.float32, np.int32), (np.float32, np.int64), (np.float32, np.bool_), (np.float32, np.float16),
         (np.float32, np.float64), (np.int64, np.float32), (np.int64, np.int32), (np.int64, np.bool_),
         (np.bool_, np.float32), (np.bool_, np.int64), (np.int32, np.int8)]  # fmt: skip


@pytest.mark.parametrize(("source", "target"), CASTS)
@SPEC
@given(data=st.data())
def test_cast(source: type, target: type, data: st.DataObject) -> None:
    """Float to int truncates toward zero; anything to bool is `!= 0`; int to int wraps."""
    shape = data.draw(shapes())
    if source == np.float32:
        x = np.where(data.draw(bools(shape)), data.draw(floats(shape, -100, 100)), data.draw(ints(shape, -2, 2)))
    elif source == np.bool_:
        x = data.draw(bools(shape))
    else:
        x = data.draw(ints(shape, -300, 300))
    to = np_dtype_to_tensor_dtype(np.dtype(target))
    check_op("Cast", [x.astype(source)], lambda v: nn.CastOp(v, element_type_for(target)), to=to)
