"""The sizes a kernel's lite space is derived from: M, N, K and batch of a matmul, rows and row length
of a row reduction, lines and length of a scan, output elements of everything.

    problem_of(kernel)   # Problem(template='matmul', elements=512, batch=1, m=16, n=32, k=32)

`k` is always the reduction extent (matmul K, row length, scan length, reduced elements, window
times input channels): the oracle check's tolerance grows with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.ir import Operation

from nnjit.backends.indexing import anchors
from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp


@dataclass(frozen=True)
class Problem:
    """Sizes of one kernel: `m` rows (matmul M, reduction rows, scan lines), `n` columns, `k` reduced."""

    template: str
    elements: int
    batch: int = 1
    m: int = 1
    n: int = 1
    k: int = 1

    def describe(self) -> str:
        """A short human form: `16x32x96` for matmuls, `rows 64 x 32` for rows, `512 elements` else."""
        if self.template == "matmul":
            batch = f"{self.batch}x" if self.batch > 1 else ""
            return f"{batch}{self.m}x{self.k}x{self.n}"
        if self.template in ("row_reduce", "scan"):
            return f"{self.m} rows x {self.k}"
        return f"{self.elements} elements"


def pad(size: int, least: int = 4) -> int:
    """`size` rounded up to a power of two, at least `least`: the "padded problem" side."""
    padded = least
    while padded < size:
        padded *= 2
    return padded


def _matmul(kernel: KernelOp, elements: int) -> Problem:
    from nnjit.backends.matmul_geometry import MatmulGeometry

    g = MatmulGeometry.of(kernel)
    return Problem("matmul", elements, shapes.numel(g.batch), g.m, g.n, g.k)


def _row_axis(op: Operation) -> int:
    """First dim of the row a row anchor reduces over (the row is every dim from there on)."""
    rank = len(nn.tensor_shape(op.operands[0]))
    if isinstance(op, nn.ReduceOp):
        return min(a % rank for a in op.axes.get_values())
    if isinstance(op, nn.AxisOp | nn.NormOp):
        return shapes.normalize_axis(op.axis.value.data, rank)
    return rank - 1


def _rows(kernel: KernelOp, elements: int) -> Problem:
    found = anchors(kernel.body.block)
    if len(found) != 1:
        return Problem("row_reduce", elements, m=1, k=elements)
    shape = nn.tensor_shape(found[0].operands[0])
    axis = _row_axis(found[0])
    return Problem("row_reduce", elements, m=shapes.numel(shape[:axis]), k=shapes.numel(shape[axis:]))


def _scan(kernel: KernelOp, elements: int) -> Problem:
    (op,) = [a for a in anchors(kernel.body.block) if isinstance(a, nn.CumsumOp)]
    shape = nn.tensor_shape(op.input)
    length = shape[shapes.normalize_axis(op.axis.value.data, len(shape))]
    return Problem("scan", elements, m=elements // max(length, 1), k=length)


def problem_of(kernel: KernelOp) -> Problem:
    """The sizes of `kernel` that its template's lite space reads."""
    template = kernel.template.data
    elements = shapes.numel(nn.tensor_shape(kernel.root))
    if template == "matmul":
        return _matmul(kernel, elements)
    if template == "row_reduce":
        return _rows(kernel, elements)
    if template == "scan":
        return _scan(kernel, elements)
    # Reductions, convolutions, pools: the largest input over the output bounds the reduced extent.
    largest = max((shapes.numel(nn.tensor_shape(a)) for a in kernel.body.block.args), default=1)
    reduced = max(1, largest // max(elements, 1)) if template != "elementwise" else 1
    return Problem(template, elements, m=elements, k=reduced)
