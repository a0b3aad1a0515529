"""Activations and math functions that `nn` has no op for, composed from the ops it has.

Each converter spells out the ONNX formula in `nn` ops (`Where`, `Exp`, `Clip`, ...), so every backend
that runs those ops runs these too; a pass may later fuse them back into one kernel.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.frontend.ops.elementwise import scalar_like
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op


def _exp_minus_one(node: NodeContext, x: SSAValue, alpha: float) -> SSAValue:
    """`alpha * (exp(x) - 1)`."""
    exp = node.emit(nn.SubOp(node.emit(nn.ExpOp(x)), scalar_like(node, 1.0, x)))
    return node.emit(nn.MulOp(exp, scalar_like(node, alpha, x)))


def _positive(node: NodeContext, x: SSAValue) -> SSAValue:
    return node.emit(nn.GreaterOp(x, scalar_like(node, 0.0, x)))


@onnx_op("Elu", since=6)
def Elu(node: NodeContext, alpha: float = 1.0) -> Outputs:
    """`x if x > 0 else alpha * (exp(x) - 1)`."""
    x = node.input(0)
    return node.emit(nn.WhereOp(_positive(node, x), x, _exp_minus_one(node, x, alpha)))


@onnx_op("Selu", since=6)
def Selu(node: NodeContext, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875) -> Outputs:
    """`gamma * (x if x > 0 else alpha * (exp(x) - 1))`."""
    x = node.input(0)
    elu = node.emit(nn.WhereOp(_positive(node, x), x, _exp_minus_one(node, x, alpha)))
    return node.emit(nn.MulOp(elu, scalar_like(node, gamma, x)))


@onnx_op("Celu", since=12)
def Celu(node: NodeContext, alpha: float = 1.0) -> Outputs:
    """`max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`."""
    x = node.input(0)
    zero = scalar_like(node, 0.0, x)
    scaled = node.emit(nn.DivOp(x, scalar_like(node, alpha, x)))
    negative = node.emit(nn.MinOp(zero, _exp_minus_one(node, scaled, alpha)))
    return node.emit(nn.AddOp(node.emit(nn.MaxOp(zero, x)), negative))


def _hard_sigmoid(node: NodeContext, x: SSAValue, alpha: float, beta: float) -> SSAValue:
    line = node.emit(nn.AddOp(node.emit(nn.MulOp(x, scalar_like(node, alpha, x))), scalar_like(node, beta, x)))
    return node.emit(nn.ClipOp(line, 0.0, 1.0))


@onnx_op("HardSigmoid", since=6)
def HardSigmoid(node: NodeContext, alpha: float = 0.2, beta: float = 0.5) -> Outputs:
    """`clip(alpha * x + beta, 0, 1)`."""
    return _hard_sigmoid(node, node.input(0), alpha, beta)


@onnx_op("HardSwish", since=14)
def HardSwish(node: NodeContext) -> Outputs:
    """`x * clip(x / 6 + 1 / 2, 0, 1)`."""
    x = node.input(0)
    return node.emit(nn.MulOp(x, _hard_sigmoid(node, x, 1.0 / 6.0, 0.5)))


def _softplus(node: NodeContext, x: SSAValue) -> SSAValue:
    """`log(1 + exp(x))` as `max(x, 0) + log(1 + exp(-|x|))`, which cannot overflow."""
    tail = node.emit(nn.ExpOp(node.emit(nn.NegOp(node.emit(nn.AbsOp(x))))))
    log = node.emit(nn.LogOp(node.emit(nn.AddOp(tail, scalar_like(node, 1.0, x)))))
    return node.emit(nn.AddOp(node.emit(nn.ReluOp(x)), log))


@onnx_op("Softplus", since=1)
def Softplus(node: NodeContext) -> Outputs:
    """`log(exp(x) + 1)`."""
    return _softplus(node, node.input(0))


@onnx_op("Softsign", since=1)
def Softsign(node: NodeContext) -> Outputs:
    """`x / (1 + |x|)`."""
    x = node.input(0)
    return node.emit(nn.DivOp(x, node.emit(nn.AddOp(node.emit(nn.AbsOp(x)), scalar_like(node, 1.0, x)))))


@onnx_op("Mish", since=18)
def Mish(node: NodeContext) -> Outputs:
    """`x * tanh(softplus(x))`."""
    x = node.input(0)
    return node.emit(nn.MulOp(x, node.emit(nn.TanhOp(_softplus(node, x)))))


@onnx_op("Swish", since=24)
def Swish(node: NodeContext, alpha: float = 1.0) -> Outputs:
    """`x * sigmoid(alpha * x)`: `nn.silu` when alpha is 1."""
    x = node.input(0)
    if alpha == 1.0:
        return node.emit(nn.SiluOp(x))
    gate = node.emit(nn.SigmoidOp(node.emit(nn.MulOp(x, scalar_like(node, alpha, x)))))
    return node.emit(nn.MulOp(x, gate))


@onnx_op("ThresholdedRelu", since=10)
def ThresholdedRelu(node: NodeContext, alpha: float = 1.0) -> Outputs:
    """`x if x > alpha else 0`."""
    x = node.input(0)
    above = node.emit(nn.GreaterOp(x, scalar_like(node, alpha, x)))
    return node.emit(nn.WhereOp(above, x, scalar_like(node, 0.0, x)))


@onnx_op("Shrink", since=9)
def Shrink(node: NodeContext, bias: float = 0.0, lambd: float = 0.5) -> Outputs:
    """`x + bias if x < -lambd, x - bias if x > lambd, else 0`."""
    x = node.input(0)
    below = node.emit(nn.LessOp(x, scalar_like(node, -lambd, x)))
    above = node.emit(nn.GreaterOp(x, scalar_like(node, lambd, x)))
    shifted_up = node.emit(nn.AddOp(x, scalar_like(node, bias, x)))
    shifted_down = node.emit(nn.SubOp(x, scalar_like(node, bias, x)))
    inner = node.emit(nn.WhereOp(above, shifted_down, scalar_like(node, 0.0, x)))
    return node.emit(nn.WhereOp(below, shifted_up, inner))


@onnx_op("PRelu", since=7)
def PRelu(node: NodeContext) -> Outputs:
    """`x if x >= 0 else slope * x`, the slope broadcast to x."""
    x = node.input(0)
    negative = node.emit(nn.LessOp(x, scalar_like(node, 0.0, x)))
    return node.emit(nn.WhereOp(negative, node.emit(nn.MulOp(x, node.input(1))), x))


@onnx_op("Tan", since=7)
def Tan(node: NodeContext) -> Outputs:
    """`sin(x) / cos(x)`."""
    x = node.input(0)
    return node.emit(nn.DivOp(node.emit(nn.SinOp(x)), node.emit(nn.CosOp(x))))


def _exp_pair(node: NodeContext, x: SSAValue) -> tuple[SSAValue, SSAValue]:
    """`exp(x) / 2` and `exp(-x) / 2`."""
    half = scalar_like(node, 0.5, x)
    up = node.emit(nn.MulOp(node.emit(nn.ExpOp(x)), half))
    return up, node.emit(nn.MulOp(node.emit(nn.ExpOp(node.emit(nn.NegOp(x)))), half))


@onnx_op("Sinh", since=9)
def Sinh(node: NodeContext) -> Outputs:
    """`(exp(x) - exp(-x)) / 2`."""
    up, down = _exp_pair(node, node.input(0))
    return node.emit(nn.SubOp(up, down))


@onnx_op("Cosh", since=9)
def Cosh(node: NodeContext) -> Outputs:
    """`(exp(x) + exp(-x)) / 2`."""
    up, down = _exp_pair(node, node.input(0))
    return node.emit(nn.AddOp(up, down))


def _log_of_x_plus_root(node: NodeContext, x: SSAValue, sign: float) -> SSAValue:
    """`log(x + sqrt(x * x + sign))`."""
    root = node.emit(nn.SqrtOp(node.emit(nn.AddOp(node.emit(nn.MulOp(x, x)), scalar_like(node, sign, x)))))
    return node.emit(nn.LogOp(node.emit(nn.AddOp(x, root))))


@onnx_op("Asinh", since=9)
def Asinh(node: NodeContext) -> Outputs:
    """`log(x + sqrt(x^2 + 1))`."""
    return _log_of_x_plus_root(node, node.input(0), 1.0)


@onnx_op("Acosh", since=9)
def Acosh(node: NodeContext) -> Outputs:
    """`log(x + sqrt(x^2 - 1))`."""
    return _log_of_x_plus_root(node, node.input(0), -1.0)


@onnx_op("Atanh", since=9)
def Atanh(node: NodeContext) -> Outputs:
    """`log((1 + x) / (1 - x)) / 2`."""
    x = node.input(0)
    one = scalar_like(node, 1.0, x)
    ratio = node.emit(nn.DivOp(node.emit(nn.AddOp(one, x)), node.emit(nn.SubOp(one, x))))
    return node.emit(nn.MulOp(node.emit(nn.LogOp(ratio)), scalar_like(node, 0.5, x)))


@onnx_op("IsNaN", since=9)
def IsNaN(node: NodeContext) -> Outputs:
    """`x != x`."""
    x = node.input(0)
    return node.emit(nn.NotOp(node.emit(nn.EqualOp(x, x))))


@onnx_op("IsInf", since=10)
def IsInf(node: NodeContext, detect_negative: int = 1, detect_positive: int = 1) -> Outputs:
    """`x == +inf` and/or `x == -inf`."""
    x = node.input(0)
    tests = [
        node.emit(nn.EqualOp(x, scalar_like(node, value, x)))
        for value, wanted in ((np.inf, detect_positive), (-np.inf, detect_negative))
        if wanted
    ]
    if not tests:
        return node.constant(np.zeros(nn.tensor_shape(x), dtype=bool), "isinf_none")
    return tests[0] if len(tests) == 1 else node.emit(nn.OrOp(tests[0], tests[1]))
