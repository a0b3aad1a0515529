"""Elementwise ONNX ops: arithmetic, comparisons, logic, unary math, Where, Cast.

Most are one row of a table: ONNX op type -> `nn` op class, from the opset where ONNX adopted
numpy broadcasting (7) on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Attribute, SSAValue

from nnjit.dialects import nn
from nnjit.frontend.onnx import element_type_of
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op

BINARY_OPS: dict[str, type[nn.ElementwiseBinaryOp]] = {
    "Add": nn.AddOp,
    "Sub": nn.SubOp,
    "Mul": nn.MulOp,
    "Div": nn.DivOp,
    "And": nn.AndOp,
    "Or": nn.OrOp,
    "Xor": nn.XorOp,
    "Equal": nn.EqualOp,
    "Less": nn.LessOp,
    "Greater": nn.GreaterOp,
}
BINARY_OPS_SINCE_12: dict[str, type[nn.ElementwiseBinaryOp]] = {
    "LessOrEqual": nn.LessEqualOp,
    "GreaterOrEqual": nn.GreaterEqualOp,
}
VARIADIC_OPS: dict[str, type[nn.ElementwiseBinaryOp]] = {"Max": nn.MaxOp, "Min": nn.MinOp, "Sum": nn.AddOp}
UNARY_OPS: dict[str, type[nn.ElementwiseUnaryOp]] = {
    "Exp": nn.ExpOp,
    "Log": nn.LogOp,
    "Sqrt": nn.SqrtOp,
    "Tanh": nn.TanhOp,
    "Erf": nn.ErfOp,
    "Sigmoid": nn.SigmoidOp,
    "Relu": nn.ReluOp,
    "Neg": nn.NegOp,
    "Reciprocal": nn.ReciprocalOp,
    "Abs": nn.AbsOp,
    "Sin": nn.SinOp,
    "Cos": nn.CosOp,
    "Floor": nn.FloorOp,
    "Ceil": nn.CeilOp,
    "Round": nn.RoundOp,
    "Sign": nn.SignOp,
    "Not": nn.NotOp,
}


def _binary(op_class: type[nn.ElementwiseBinaryOp]) -> Callable[[NodeContext], Outputs]:
    def convert(node: NodeContext) -> Outputs:
        return node.emit(op_class(node.input(0), node.input(1)))

    convert.__name__ = f"convert_{op_class.name.removeprefix('nn.')}"
    return convert


def _variadic(op_class: type[nn.ElementwiseBinaryOp]) -> Callable[[NodeContext], Outputs]:
    def convert(node: NodeContext) -> Outputs:
        return reduce(lambda lhs, rhs: node.emit(op_class(lhs, rhs)), node.inputs())

    convert.__name__ = f"convert_variadic_{op_class.name.removeprefix('nn.')}"
    return convert


def _unary(op_class: type[nn.ElementwiseUnaryOp]) -> Callable[[NodeContext], Outputs]:
    def convert(node: NodeContext) -> Outputs:
        return node.emit(op_class(node.input(0)))

    convert.__name__ = f"convert_{op_class.name.removeprefix('nn.')}"
    return convert


for _op_type, _op_class in BINARY_OPS.items():
    onnx_op(_op_type, since=7)(_binary(_op_class))
for _op_type, _op_class in BINARY_OPS_SINCE_12.items():
    onnx_op(_op_type, since=12)(_binary(_op_class))
for _op_type, _op_class in VARIADIC_OPS.items():
    onnx_op(_op_type, since=8)(_variadic(_op_class))
for _op_type, _unary_class in UNARY_OPS.items():
    # Not never changed; the others lost the `consumed_inputs` attribute in opset 6.
    onnx_op(_op_type, since=1 if _op_type == "Not" else 6)(_unary(_unary_class))


def scalar_like(node: NodeContext, value: float, like: SSAValue) -> SSAValue:
    """A 0-d constant `value` of `like`'s element type."""
    return node.constant(np.array(value, dtype=_numpy_dtype(like)))


def cast_to(node: NodeContext, value: SSAValue, element: Attribute) -> SSAValue:
    """`value` converted to `element`, or `value` itself when it already has that element type."""
    if nn.element_type(value) == element:
        return value
    return node.emit(nn.CastOp(value, element))


@onnx_op("Pow", since=7)
def Pow(node: NodeContext) -> Outputs:
    """`base ** exponent`; ONNX lets the exponent have another element type, `nn.pow` does not."""
    base = node.input(0)
    return node.emit(nn.PowOp(base, cast_to(node, node.input(1), nn.element_type(base))))


@onnx_op("Mean", since=8)
def Mean(node: NodeContext) -> Outputs:
    """Elementwise mean of the inputs, as a sum times the reciprocal count."""
    inputs = node.inputs()
    total = reduce(lambda lhs, rhs: node.emit(nn.AddOp(lhs, rhs)), inputs)
    scale = node.constant(np.array(1.0 / len(inputs), dtype=_numpy_dtype(total)))
    return node.emit(nn.MulOp(total, scale))


@onnx_op("Mod", since=10)
def Mod(node: NodeContext, fmod: int = 0) -> Outputs:
    """Remainder; `fmod=1` (C fmod, sign of the dividend) is `a - trunc(a / b) * b`."""
    lhs, rhs = node.input(0), node.input(1)
    if not fmod:
        return node.emit(nn.ModOp(lhs, rhs))
    if isinstance(nn.element_type(lhs), IntegerType):
        # Integer division in nn truncates toward zero, which is exactly what fmod needs.
        quotient = node.emit(nn.DivOp(lhs, rhs))
    else:
        ratio = node.emit(nn.DivOp(lhs, rhs))
        quotient = node.emit(nn.MulOp(node.emit(nn.SignOp(ratio)), node.emit(nn.FloorOp(node.emit(nn.AbsOp(ratio))))))
    return node.emit(nn.SubOp(lhs, node.emit(nn.MulOp(quotient, rhs))))


@onnx_op("Gelu", since=20)
def Gelu(node: NodeContext, approximate: str = "none") -> Outputs:
    """GELU, exact or tanh-approximated."""
    if approximate not in ("none", "tanh"):
        raise node.error(f'approximate="{approximate}" is not a GELU variant')
    return node.emit(nn.GeluOp(node.input(0), approximate))


@onnx_op("LeakyRelu", since=6)
def LeakyRelu(node: NodeContext, alpha: float = 0.01) -> Outputs:
    """`x if x >= 0 else alpha * x`."""
    return node.emit(nn.LeakyReluOp(node.input(0), alpha))


@onnx_op("Clip", since=6, until=10)
def Clip_6(node: NodeContext, min: float = -3.4028234663852886e38, max: float = 3.4028234663852886e38) -> Outputs:
    """Clamp with bounds as attributes."""
    return node.emit(nn.ClipOp(node.input(0), min, max))


@onnx_op("Clip", since=11)
def Clip(node: NodeContext) -> Outputs:
    """Clamp with optional bound inputs: `nn.clip` for constant float bounds, else `min(max(x, low), high)`."""
    x = node.input(0)
    bounds = [node.optional_input(i) for i in (1, 2)]
    known = [None if b is None else node.known(b) for b in bounds]
    if not isinstance(nn.element_type(x), IntegerType) and all(
        k is not None or b is None for b, k in zip(bounds, known, strict=True)
    ):
        low, high = (None if k is None else float(np.asarray(k).reshape(-1)[0]) for k in known)
        return node.emit(nn.ClipOp(x, low, high))
    result = x
    for bound, op_class in zip(bounds, (nn.MaxOp, nn.MinOp), strict=True):
        if bound is not None:
            result = node.emit(op_class(result, bound))
    return result


@onnx_op("Where", since=9)
def Where(node: NodeContext) -> Outputs:
    """`condition ? x : y` with broadcasting."""
    return node.emit(nn.WhereOp(node.input(0), node.input(1), node.input(2)))


@onnx_op("Cast", since=6)
def Cast(node: NodeContext, to: int, saturate: int = 1) -> Outputs:
    """Element type conversion; `saturate` only concerns float8 types, which nnjit rejects."""
    return cast_to(node, node.input(0), element_type_of(to))


@onnx_op("CastLike", since=15)
def CastLike(node: NodeContext, saturate: int = 1) -> Outputs:
    """Convert to the element type of the second input."""
    return cast_to(node, node.input(0), nn.element_type(node.input(1)))


@onnx_op("Identity", since=1)
def Identity(node: NodeContext) -> Outputs:
    """The input itself."""
    return node.input(0)


def _no_dropout(node: NodeContext) -> list[SSAValue]:
    """The input itself and an all-true mask."""
    x = node.input(0)
    return [x, node.constant(np.ones(nn.tensor_shape(x), dtype=bool), "dropout_mask")]


@onnx_op("Dropout", since=7, until=11)
def Dropout_7(node: NodeContext, ratio: float = 0.5) -> Outputs:
    """Dropout at inference (these opsets have no training flag): the identity, an all-true mask."""
    return _no_dropout(node)


@onnx_op("Dropout", since=12)
def Dropout(node: NodeContext, seed: int = 0) -> Outputs:
    """The identity at inference, or in training mode with a zero ratio; the optional mask is all true."""
    training = node.has_input(2) and bool(node.const(2))
    if training and (not node.has_input(1) or float(node.const(1)) != 0):
        raise node.error("training_mode=True dropout is random and not supported for inference")
    return _no_dropout(node)


def _numpy_dtype(value: SSAValue) -> np.dtype:
    from nnjit.runtime.reference import to_numpy_dtype

    return to_numpy_dtype(nn.element_type(value))
