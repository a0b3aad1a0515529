"""`nn-decompose-gemm`: ONNX Gemm as a matmul with transposes and an elementwise epilogue.

Kernel templates then know one contraction (`nn.matmul`); the transposes become index arithmetic in
the matmul's operand reads and `alpha`/`beta`/`c` become a fusable epilogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.dialects import nn


def splat_constant(value: float, like: SSAValue) -> nn.ConstantOp:
    """A rank-0 inline constant of `like`'s element type."""
    from nnjit.runtime.reference import dense_attr, to_numpy_dtype

    return nn.ConstantOp(dense_attr(np.array(value, dtype=to_numpy_dtype(nn.element_type(like)))))


class DecomposeGemm(RewritePattern):
    """`gemm(a, b, c)` -> `matmul(a', b') * alpha + c * beta` with only the parts that are not identities."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.GemmOp, rewriter: PatternRewriter) -> None:
        new_ops: list[Operation] = []
        a, b = op.a, op.b
        if op.trans_a is not None:
            new_ops.append(transposed := nn.TransposeOp(a, [1, 0]))
            a = transposed.result
        if op.trans_b is not None:
            new_ops.append(transposed := nn.TransposeOp(b, [1, 0]))
            b = transposed.result
        new_ops.append(product := nn.MatmulOp(a, b))
        result = product.result
        if op.alpha.value.data != 1.0:
            new_ops += [alpha := splat_constant(op.alpha.value.data, result), scaled := nn.MulOp(result, alpha)]
            result = scaled.result
        if op.c is not None:
            bias = op.c
            if op.beta.value.data != 1.0:
                new_ops += [beta := splat_constant(op.beta.value.data, bias), scaled_bias := nn.MulOp(bias, beta)]
                bias = scaled_bias.result
            new_ops.append(added := nn.AddOp(result, bias))
            result = added.result
        rewriter.replace(op, new_ops, [result])


@dataclass(frozen=True)
class DecomposeGemmPass(ModulePass):
    """Rewrite every `nn.gemm` into `nn.matmul` plus transposes and an elementwise epilogue."""

    name = "nn-decompose-gemm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(DecomposeGemm()).rewrite_module(op)
