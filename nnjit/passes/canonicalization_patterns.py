"""Canonicalisation patterns of the `nn` dialect, run by xDSL's stock `canonicalize` pass.

The ops carry the `NNCanonicalization` trait (`nnjit/dialects/nn.py`), which asks `patterns_for` for
the patterns of one op class: constant folding for every op, plus the identities and compositions
rooted at that class. Each pattern object is made once, in `PATTERNS`.

    nn.reshape(nn.reshape(%x))                  ->  nn.reshape(%x)
    nn.transpose(nn.transpose(%x, p), q)        ->  nn.transpose(%x, [p[i] for i in q])
    nn.add %x, dense<0.0> (same result type)    ->  %x
    op(nn.constant dense<...>, ...)             ->  nn.constant dense<...>   (up to FOLD_LIMIT elements)

Dead pure ops are erased by `canonicalize` itself (they are `Pure`).
"""

from __future__ import annotations

import functools
from abc import ABC
from typing import ClassVar

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.traits import ConstantLike, Pure

from nnjit.dialects import shapes
from nnjit.dialects.nn import (
    AddOp,
    CastOp,
    ConcatOp,
    ConstantOp,
    DivOp,
    ElementwiseBinaryOp,
    ExpandOp,
    MulOp,
    NegOp,
    ReshapeOp,
    SliceOp,
    SubOp,
    TransposeOp,
    tensor_shape,
)
from nnjit.errors import NnjitError

FOLD_LIMIT = 4096
"""Largest result (in elements) that folding may inline as `dense<...>` text."""


# ----------------------------------------------------------------------------------------------
# Constant helpers, shared with the pattern-recognition pass


def inline_constant(value: SSAValue) -> ConstantOp | None:
    """The `nn.constant` defining `value` when it holds inline `dense<...>` data (never a resource)."""
    owner = value.owner
    if isinstance(owner, ConstantOp) and isinstance(owner.value, DenseIntOrFPElementsAttr):
        return owner
    return None


def splat_value(value: SSAValue) -> float | None:
    """The one number of an inline constant whose elements are all equal, else None."""
    constant = inline_constant(value)
    if constant is None:
        return None
    attr = constant.value
    assert isinstance(attr, DenseIntOrFPElementsAttr)
    count, raw = len(attr), attr.data.data
    if count == 0 or raw != raw[: len(raw) // count] * count:  # compare bytes: no unpacking of big ones
        return None
    first = attr.get_element_type().unpack(raw[: len(raw) // count], 1)[0]
    return float(first) if isinstance(first, int | float) else None


def _forward(rewriter: PatternRewriter, op: Operation, value: SSAValue) -> None:
    """Replace `op` by an existing value of the same type."""
    rewriter.replace(op, [], [value])


class RootedPattern(RewritePattern, ABC):
    """A pattern that only ever matches ops of the classes in `roots`."""

    roots: ClassVar[tuple[type[Operation], ...]]


# ----------------------------------------------------------------------------------------------
# Constant folding


class FoldConstants(RewritePattern):
    """A pure nn op whose operands are all inline constants becomes an inline constant.

    Results over `FOLD_LIMIT` elements stay (they would inline weights as text), and so do ops touching
    `dense_resource` constants or ops the numpy oracle cannot evaluate.
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not op.operands or len(op.results) != 1 or op.has_trait(ConstantLike) or not op.has_trait(Pure):
            return
        result_type = op.results[0].type
        if not isinstance(result_type, TensorType) or shapes.numel(result_type.get_shape()) > FOLD_LIMIT:
            return
        constants = [inline_constant(operand) for operand in op.operands]
        if any(c is None for c in constants):
            return

        from nnjit.runtime.reference import constant_value, dense_attr, evaluate_op

        try:
            values = [constant_value(c) for c in constants if c is not None]
            folded = dense_attr(evaluate_op(op, values))
        except NnjitError:  # an op the oracle does not know, an integer division by zero, ...
            return
        if folded.get_type() != result_type:
            return
        rewriter.replace(op, ConstantOp(folded))


# ----------------------------------------------------------------------------------------------
# Identities


class ShapeOpIdentity(RootedPattern):
    """`nn.reshape` / `nn.expand` / `nn.cast` whose result type equals its input type is a no-op."""

    roots = (ReshapeOp, ExpandOp, CastOp)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ReshapeOp | ExpandOp | CastOp, rewriter: PatternRewriter, /) -> None:
        if op.result.type == op.input.type:
            _forward(rewriter, op, op.input)


class TransposeIdentity(RootedPattern):
    """`nn.transpose` with the identity permutation is a no-op."""

    roots = (TransposeOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransposeOp, rewriter: PatternRewriter, /) -> None:
        if tuple(op.perm.get_values()) == tuple(range(len(tensor_shape(op.input)))):
            _forward(rewriter, op, op.input)


class SliceIdentity(RootedPattern):
    """`nn.slice` with unit steps that keeps every element is a no-op."""

    roots = (SliceOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: SliceOp, rewriter: PatternRewriter, /) -> None:
        if all(step == 1 for step in op.steps.get_values()) and op.result.type == op.input.type:
            _forward(rewriter, op, op.input)


class ConcatIdentity(RootedPattern):
    """`nn.concat` of a single input is that input."""

    roots = (ConcatOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ConcatOp, rewriter: PatternRewriter, /) -> None:
        if len(op.inputs) == 1 and op.inputs[0].type == op.result.type:
            _forward(rewriter, op, op.inputs[0])


class BinaryIdentity(RootedPattern):
    """`x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x / 1` are `x`, when no broadcast changes its type."""

    roots = (AddOp, SubOp, MulOp, DivOp)
    # (op class, neutral element, may the constant be on the left)
    _NEUTRAL: ClassVar[dict[type[ElementwiseBinaryOp], tuple[float, bool]]] = {
        AddOp: (0.0, True),
        SubOp: (0.0, False),
        MulOp: (1.0, True),
        DivOp: (1.0, False),
    }

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AddOp | SubOp | MulOp | DivOp, rewriter: PatternRewriter, /) -> None:
        neutral, commutes = self._NEUTRAL[type(op)]
        candidates: list[tuple[SSAValue, SSAValue]] = [(op.lhs, op.rhs)]
        if commutes:
            candidates.append((op.rhs, op.lhs))
        for kept, constant in candidates:
            if splat_value(constant) == neutral and kept.type == op.result.type:
                _forward(rewriter, op, kept)
                return


# ----------------------------------------------------------------------------------------------
# Compositions


class ReshapeOfReshape(RootedPattern):
    """`reshape(reshape(x))` is one `reshape(x)`."""

    roots = (ReshapeOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ReshapeOp, rewriter: PatternRewriter, /) -> None:
        inner = op.input.owner
        if isinstance(inner, ReshapeOp):
            rewriter.replace(op, ReshapeOp(inner.input, tensor_shape(op.result)))


class TransposeOfTranspose(RootedPattern):
    """`transpose(transpose(x, p), q)` is `transpose(x, r)` with `r[i] = p[q[i]]`."""

    roots = (TransposeOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransposeOp, rewriter: PatternRewriter, /) -> None:
        inner = op.input.owner
        if not isinstance(inner, TransposeOp):
            return
        first, second = inner.perm.get_values(), op.perm.get_values()
        rewriter.replace(op, TransposeOp(inner.input, [first[i] for i in second]))


class NegOfNeg(RootedPattern):
    """`neg(neg(x))` is `x`."""

    roots = (NegOp,)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: NegOp, rewriter: PatternRewriter, /) -> None:
        inner = op.input.owner
        if isinstance(inner, NegOp):
            _forward(rewriter, op, inner.input)


FOLD = FoldConstants()

PATTERNS: tuple[RewritePattern, ...] = (
    FOLD,
    ShapeOpIdentity(),
    TransposeIdentity(),
    SliceIdentity(),
    ConcatIdentity(),
    BinaryIdentity(),
    ReshapeOfReshape(),
    TransposeOfTranspose(),
    NegOfNeg(),
)
"""Every nn canonicalisation pattern, each object made once."""


@functools.cache
def patterns_for(op_type: type[Operation]) -> tuple[RewritePattern, ...]:
    """The patterns `canonicalize` tries on an op of `op_type`: folding, then those rooted at it."""
    rooted = tuple(p for p in PATTERNS if isinstance(p, RootedPattern) and issubclass(op_type, p.roots))
    return (FOLD, *rooted)
