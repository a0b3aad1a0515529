"""The sizes and operand coordinates of a kernel's matmul anchor, shared by every backend and the tuner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nnjit.backends.indexing import Expr, broadcast_coords, kernel_anchor, linear
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp


@dataclass(frozen=True)
class MatmulGeometry:
    """Sizes of a (batched, broadcasting) `nn.matmul`, 1-D operands promoted as numpy does."""

    op: nn.MatmulOp
    batch: tuple[int, ...]
    m: int
    n: int
    k: int

    @staticmethod
    def of(kernel: KernelOp) -> MatmulGeometry:
        """The geometry of the kernel's matmul anchor."""
        op: nn.MatmulOp = kernel_anchor(kernel, (nn.MatmulOp,))
        a, b = nn.tensor_shape(op.lhs), nn.tensor_shape(op.rhs)
        a2 = (1, *a) if len(a) == 1 else a
        b2 = (*b, 1) if len(b) == 1 else b
        return MatmulGeometry(op, shapes.broadcast(a2[:-2], b2[:-2]), a2[-2], b2[-1], a2[-1])

    def lhs(self, batch: Sequence[Expr], row: Expr, k: Expr) -> tuple[Expr, ...]:
        """Coordinates of `lhs[batch, row, k]`."""
        shape = nn.tensor_shape(self.op.lhs)
        return (k,) if len(shape) == 1 else (*broadcast_coords(batch, shape[:-2]), row, k)

    def rhs(self, batch: Sequence[Expr], k: Expr, col: Expr) -> tuple[Expr, ...]:
        """Coordinates of `rhs[batch, k, col]`."""
        shape = nn.tensor_shape(self.op.rhs)
        return (k,) if len(shape) == 1 else (*broadcast_coords(batch, shape[:-2]), k, col)

    def result(self, batch: Sequence[Expr], row: Expr, col: Expr) -> tuple[Expr, ...]:
        """Coordinates of the result element `(batch, row, col)` (dims of 1-D operands dropped)."""
        rows = () if len(nn.tensor_shape(self.op.lhs)) == 1 else (row,)
        cols = () if len(nn.tensor_shape(self.op.rhs)) == 1 else (col,)
        return (*batch, *rows, *cols)

    def flat(self, batch: Sequence[Expr], row: Expr, col: Expr) -> Expr:
        """Row-major position of the result element `(batch, row, col)`."""
        return linear(self.result(batch, row, col), nn.tensor_shape(self.op.result))
