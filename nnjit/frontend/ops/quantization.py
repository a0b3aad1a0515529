"""Linear quantization: QuantizeLinear and DequantizeLinear, per tensor, per axis or per block.

Both are elementwise formulas in `nn` ops once the scale and zero point are broadcast to the input:
a scalar as it is, a 1-D tensor along `axis`, a blocked one (opset 21) repeated `block_size` times along
`axis` by a constant gather. Element types nnjit lacks (int4, int16, float8, ...) fail in
`element_type_of` with "element type ... is not supported".
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import IntegerType, Signedness, i32
from xdsl.ir import Attribute, SSAValue

from nnjit.dialects import nn
from nnjit.dialects.shapes import normalize_axis
from nnjit.frontend.onnx import element_type_of
from nnjit.frontend.ops.elementwise import cast_to
from nnjit.frontend.ops.movement import reshape
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op
from nnjit.runtime.reference import to_numpy_dtype


def _broadcast_parameter(node: NodeContext, parameter: SSAValue, axis: int, block_size: int) -> SSAValue:
    """A scale or zero point shaped to broadcast against input 0."""
    shape = node.shape(0)
    given = nn.tensor_shape(parameter)
    if len(given) <= 1 and (not given or given[0] == 1):
        return reshape(node, parameter, [])
    axis = normalize_axis(axis, len(shape))
    if len(given) == 1 and not block_size:
        return reshape(node, parameter, [shape[axis] if i == axis else 1 for i in range(len(shape))])
    if not block_size or len(given) != len(shape):
        raise node.error(f"a quantization parameter of shape {given} does not fit input {shape} on axis {axis}")
    blocks = np.arange(shape[axis], dtype=np.int64) // block_size
    return node.emit(nn.GatherOp(parameter, node.constant(blocks, "quant_blocks"), axis))


def _widened(node: NodeContext, value: SSAValue) -> SSAValue:
    """Integers as i32 (so that `x - zero_point` is exact), other types unchanged."""
    element = nn.element_type(value)
    return cast_to(node, value, i32) if isinstance(element, IntegerType) and element.width.data < 32 else value


@onnx_op("DequantizeLinear", since=10)
def DequantizeLinear(node: NodeContext, axis: int = 1, block_size: int = 0, output_dtype: int = 0) -> Outputs:
    """`(x - zero_point) * scale`, in the scale's (or `output_dtype`'s) float type."""
    scale = node.input(1)
    target: Attribute = element_type_of(output_dtype) if output_dtype else nn.element_type(scale)
    x = _widened(node, node.input(0))
    zero_point = node.optional_input(2)
    if zero_point is not None:
        x = node.emit(nn.SubOp(x, _broadcast_parameter(node, _widened(node, zero_point), axis, block_size)))
    scale = cast_to(node, _broadcast_parameter(node, scale, axis, block_size), target)
    return node.emit(nn.MulOp(cast_to(node, x, target), scale))


@onnx_op("QuantizeLinear", since=10)
def QuantizeLinear(
    node: NodeContext, axis: int = 1, block_size: int = 0, output_dtype: int = 0, saturate: int = 1, precision: int = 0
) -> Outputs:
    """`clip(round_half_even(x / scale) + zero_point)` in the zero point's (or `output_dtype`'s, else uint8) type."""
    x = node.input(0)
    zero_point = node.optional_input(2)
    if zero_point is not None:
        target = nn.element_type(zero_point)
    else:
        target = element_type_of(output_dtype) if output_dtype else IntegerType(8, Signedness.UNSIGNED)
    dtype = to_numpy_dtype(target)
    if dtype.kind not in "iu":
        raise node.error(f"quantizing to {dtype} is not supported")
    work = element_type_of(precision) if precision else nn.element_type(x)
    scale = cast_to(node, _broadcast_parameter(node, node.input(1), axis, block_size), work)
    q = node.emit(nn.RoundOp(node.emit(nn.DivOp(cast_to(node, x, work), scale))))
    if zero_point is not None:
        q = node.emit(nn.AddOp(q, cast_to(node, _broadcast_parameter(node, zero_point, axis, block_size), work)))
    info = np.iinfo(dtype)
    return cast_to(node, node.emit(nn.ClipOp(q, float(info.min), float(info.max))), target)
