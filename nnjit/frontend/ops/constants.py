"""Ops whose value is known at compile time once shapes are specialised: Constant, Shape, Range, ..."""

from __future__ import annotations

import numpy as np

from nnjit.dialects.nn import element_type
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op


@onnx_op("Constant", since=1)
def Constant(
    node: NodeContext,
    value: np.ndarray | None = None,
    value_float: float | None = None,
    value_floats: list[float] | None = None,
    value_int: int | None = None,
    value_ints: list[int] | None = None,
) -> Outputs:
    """A constant from whichever `value*` attribute is set (strings and sparse tensors are rejected)."""
    choices: list[np.ndarray] = []
    if value is not None:
        choices.append(np.asarray(value))
    if value_float is not None:
        choices.append(np.array(value_float, dtype=np.float32))
    if value_floats is not None:
        choices.append(np.array(value_floats, dtype=np.float32))
    if value_int is not None:
        choices.append(np.array(value_int, dtype=np.int64))
    if value_ints is not None:
        choices.append(np.array(value_ints, dtype=np.int64))
    if len(choices) != 1:
        raise node.error("exactly one numeric value attribute must be set")
    return node.constant(choices[0], node.node.output[0])


@onnx_op("ConstantOfShape", since=9)
def ConstantOfShape(node: NodeContext, value: np.ndarray | None = None) -> Outputs:
    """A tensor of the constant shape filled with `value` (float 0 by default)."""
    fill = np.asarray(value).reshape(-1)[0] if value is not None else np.float32(0)
    shape = tuple(int(d) for d in node.const(0).reshape(-1))
    return node.constant(np.full(shape, fill, dtype=np.asarray(fill).dtype), node.node.output[0])


@onnx_op("Shape", since=1)
def Shape(node: NodeContext, start: int = 0, end: int | None = None) -> Outputs:
    """The static shape of the input (optionally a `start:end` range of it, opset 15)."""
    return node.constant(np.array(node.shape(0)[start:end], dtype=np.int64), node.node.output[0])


@onnx_op("Size", since=1)
def Size(node: NodeContext) -> Outputs:
    """The static element count of the input."""
    return node.constant(np.array(int(np.prod(node.shape(0))), dtype=np.int64), node.node.output[0])


@onnx_op("Range", since=11)
def Range(node: NodeContext) -> Outputs:
    """`arange(start, limit, delta)` of constant scalars, in their element type."""
    start, limit, delta = (node.const(i) for i in range(3))
    return node.constant(np.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype), node.node.output[0])


@onnx_op("EyeLike", since=9)
def EyeLike(node: NodeContext, dtype: int | None = None, k: int = 0) -> Outputs:
    """An identity-like 2-D matrix of the input's shape."""
    from nnjit.frontend.onnx import element_type_of
    from nnjit.runtime.reference import to_numpy_dtype

    rows, cols = node.shape(0)
    element = element_type_of(dtype) if dtype is not None else element_type(node.input(0))
    numpy_dtype = to_numpy_dtype(element)
    return node.constant(np.eye(rows, cols, k, dtype=numpy_dtype), node.node.output[0])
