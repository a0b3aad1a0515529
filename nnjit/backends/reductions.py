"""Which axes a kernel's reduction anchor reduces: shared by every backend's reduction templates."""

from __future__ import annotations

from xdsl.ir import Operation

from nnjit.dialects import nn, shapes
from nnjit.errors import NnjitError

REDUCE_OPS = (nn.ReduceSumOp, nn.ReduceMeanOp, nn.ReduceProdOp, nn.ReduceMaxOp, nn.ReduceMinOp)
ROW_ANCHORS = (nn.SoftmaxOp, nn.LogSoftmaxOp, nn.LayerNormOp, nn.RmsNormOp, *REDUCE_OPS)
"""Anchors of the `row_reduce` template: each reduces every dim from some axis on."""


def reduce_axes(op: nn.ReduceOp) -> list[int]:
    """The reduced axes of `op`, normalised and sorted."""
    rank = len(nn.tensor_shape(op.input))
    return sorted({shapes.normalize_axis(a, rank) for a in op.axes.get_values()})


def row_axis(op: Operation) -> int:
    """First dim of the row an anchor reduces over (the row is every dim from there on)."""
    rank = len(nn.tensor_shape(op.operands[0]))
    if isinstance(op, nn.ReduceOp):
        axes = reduce_axes(op)
        if axes != list(range(axes[0], rank)):
            raise NnjitError(f"{op.name} over axes {axes} is not a trailing reduction (use the reduce template)")
        return axes[0]
    axis = shapes.normalize_axis(op.axis.value.data, rank)  # pyright: ignore[reportAttributeAccessIssue]
    if isinstance(op, nn.SoftmaxOp | nn.LogSoftmaxOp) and axis != rank - 1:
        raise NnjitError(f"{op.name} over axis {axis} of rank {rank}: row_reduce needs the last axis")
    return axis
