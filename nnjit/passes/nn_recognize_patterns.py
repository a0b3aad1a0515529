"""`nn-recognize-patterns`: fold what ONNX exporters spell out op by op back into single `nn` ops.

    %h = nn.mul %x, %c0_5 ; %s = nn.div %x, %c1_414 ; %e = nn.erf %s ; %a = nn.add %e, %c1
    %y = nn.mul %h, %a                                   ->  %y = nn.gelu %x {approximate = "none"}

Recognised: erf-GELU, tanh-GELU, LayerNorm (scale and bias optional), RMSNorm (T5, Llama; scale
optional), softmax and SiLU; a missing scale becomes a splat `dense<1.0>` constant. Inline constants
match with a relative tolerance of `REL_TOL`; products of `nn.mul` match in any association and
operand order. A pattern only fires when every intermediate it replaces has no user outside the
pattern, so no work is duplicated; the dead chain is erased after.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.transforms.dead_code_elimination import region_dce
from xdsl.utils.hints import isa

from nnjit.dialects import shapes
from nnjit.dialects.nn import (
    AddOp,
    ConstantOp,
    DivOp,
    ErfOp,
    ExpOp,
    GeluOp,
    LayerNormOp,
    MulOp,
    PowOp,
    ReciprocalOp,
    ReduceMaxOp,
    ReduceMeanOp,
    ReduceOp,
    ReduceSumOp,
    RmsNormOp,
    RsqrtOp,
    SigmoidOp,
    SiluOp,
    SoftmaxOp,
    SqrtOp,
    SubOp,
    TanhOp,
    element_type,
    tensor_shape,
)
from nnjit.passes.canonicalization_patterns import splat_value

REL_TOL = 1e-3
"""Relative tolerance when matching an inline constant against 0.5, sqrt(2), 0.044715, ..."""

SQRT_2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


# ----------------------------------------------------------------------------------------------
# Matching helpers


def _is_float(value: SSAValue) -> bool:
    """Whether `value` is a float tensor: every recognised op is defined on floats only."""
    return isa(element_type(value), AnyFloat)


def _is_const(value: SSAValue, target: float) -> bool:
    """Whether `value` is an inline splat constant within `REL_TOL` of `target`."""
    found = splat_value(value)
    return found is not None and math.isclose(found, target, rel_tol=REL_TOL)


def _swaps(a: SSAValue, b: SSAValue) -> tuple[tuple[SSAValue, SSAValue], tuple[SSAValue, SSAValue]]:
    """Both operand orders of a commutative op."""
    return (a, b), (b, a)


def _factors(value: SSAValue) -> list[SSAValue]:
    """The leaves of the tree of single-use `nn.mul` ops that computes `value` (itself if none)."""
    owner = value.owner
    if isinstance(owner, MulOp) and value.has_one_use():
        return [*_factors(owner.lhs), *_factors(owner.rhs)]
    return [value]


def _scaled_input(value: SSAValue, factor: float) -> SSAValue | None:
    """`x` when single-use `value` is `x * factor` (either side) or `x / (1 / factor)`."""
    if not value.has_one_use():
        return None
    owner = value.owner
    if isinstance(owner, DivOp) and _is_const(owner.rhs, 1.0 / factor):
        return owner.lhs
    if isinstance(owner, MulOp):
        for x, constant in _swaps(owner.lhs, owner.rhs):
            if _is_const(constant, factor):
                return x
    return None


def _one_plus(value: SSAValue, op_type: type[ErfOp] | type[TanhOp]) -> SSAValue | None:
    """The argument `t` when single-use `value` is `1 + op(t)` (either order) with single-use `op(t)`."""
    owner = value.owner
    if not isinstance(owner, AddOp) or not value.has_one_use():
        return None
    for one, applied in _swaps(owner.lhs, owner.rhs):
        inner = applied.owner
        if _is_const(one, 1.0) and isinstance(inner, op_type) and applied.has_one_use():
            return inner.input
    return None


def _is_power(value: SSAValue, base: SSAValue, exponent: float) -> bool:
    """Whether single-use `value` is `pow(base, exponent)`, or `base * base` for exponent 2."""
    owner = value.owner
    if not value.has_one_use():
        return False
    if isinstance(owner, PowOp):
        return owner.lhs is base and _is_const(owner.rhs, exponent)
    return exponent == 2.0 and isinstance(owner, MulOp) and owner.lhs is base and owner.rhs is base


def _trailing_count(reduce: ReduceOp) -> int | None:
    """How many trailing dims `reduce` reduces, if exactly those and with kept dims."""
    rank = len(tensor_shape(reduce.input))
    axes = {shapes.normalize_axis(a, rank) for a in reduce.axes.get_values()}
    if not reduce.keepdims or not axes or axes != set(range(rank - len(axes), rank)):
        return None
    return len(axes)


def _single_axis(reduce: ReduceOp) -> int | None:
    """The one normalised axis of a keepdims reduction over a single axis."""
    values = reduce.axes.get_values()
    if not reduce.keepdims or len(values) != 1:
        return None
    return shapes.normalize_axis(values[0], len(tensor_shape(reduce.input)))


def _fits_trailing(value: SSAValue, x: SSAValue, count: int) -> bool:
    """Whether `value` can be the scale or bias of a norm of `x` over its last `count` dims."""
    normalized = tensor_shape(x)[len(tensor_shape(x)) - count :]
    if element_type(value) != element_type(x):
        return False
    try:
        return shapes.broadcast(tensor_shape(value), normalized) == normalized
    except shapes.ShapeError:
        return False


def _ones(x: SSAValue, count: int) -> ConstantOp:
    """An all-ones scale for a norm of `x` over its last `count` dims (a splat, so one number of text)."""
    normalized = tensor_shape(x)[len(tensor_shape(x)) - count :]
    element = element_type(x)
    assert isa(element, AnyFloat)  # the patterns only match float tensors
    ones = ConstantOp(DenseIntOrFPElementsAttr.from_list(TensorType(element, normalized), [1.0]))
    ones.result.name_hint = "ones"
    return ones


def _only_user(value: SSAValue) -> Operation | None:
    """The one op using `value`, if it has exactly one use."""
    use = value.get_unique_use()
    return use.operation if use is not None else None


def _other_operand(op: Operation, value: SSAValue) -> SSAValue | None:
    """The operand of binary `op` that is not `value` (None if both are)."""
    lhs, rhs = op.operands
    if lhs is value and rhs is not value:
        return rhs
    if rhs is value and lhs is not value:
        return lhs
    return None


def _affine_user(
    value: SSAValue, kind: type[MulOp] | type[AddOp], x: SSAValue, count: int
) -> tuple[Operation, SSAValue] | None:
    """`(user, t)` when the one user of `value` is `value * t` / `value + t` (either order) and `t` can be
    the scale / bias of a norm of `x` over its last `count` dims."""
    user = _only_user(value)
    if not isinstance(user, kind) or user.result.type != x.type:
        return None
    other = _other_operand(user, value)
    if other is None or not _fits_trailing(other, x, count):
        return None
    return user, other


@dataclass(frozen=True)
class _Normalized:
    """`numerator / sqrt(mean(square) + epsilon)` found at one op."""

    numerator: SSAValue
    epsilon: float
    count: int
    square: Operation


def _inverse_sqrt(value: SSAValue) -> SSAValue | None:
    """`a` when single-use `value` is `rsqrt(a)`, `reciprocal(sqrt(a))` or `1 / sqrt(a)`."""
    if not value.has_one_use():
        return None
    owner = value.owner
    if isinstance(owner, RsqrtOp):
        return owner.input
    if isinstance(owner, ReciprocalOp):
        root = owner.input
    elif isinstance(owner, DivOp) and _is_const(owner.lhs, 1.0):
        root = owner.rhs
    else:
        return None
    sqrt = root.owner
    return sqrt.input if isinstance(sqrt, SqrtOp) and root.has_one_use() else None


def _normalized(op: Operation) -> _Normalized | None:
    """Match `n / sqrt(v + eps)` or `n * rsqrt(v + eps)` (and kin) with `v = mean(n ** 2)` over trailing dims."""
    candidates: list[tuple[SSAValue, SSAValue | None]] = []
    if isinstance(op, DivOp) and isinstance(sqrt := op.rhs.owner, SqrtOp) and op.rhs.has_one_use():
        candidates.append((op.lhs, sqrt.input))
    if isinstance(op, MulOp):
        candidates += [(n, _inverse_sqrt(inv)) for n, inv in _swaps(op.lhs, op.rhs)]
    for numerator, shifted in candidates:
        if shifted is None or not isinstance(add := shifted.owner, AddOp) or not shifted.has_one_use():
            continue
        for variance, eps in _swaps(add.lhs, add.rhs):
            epsilon = splat_value(eps)
            mean = variance.owner
            if epsilon is None or not isinstance(mean, ReduceMeanOp) or not variance.has_one_use():
                continue
            count = _trailing_count(mean)
            square = mean.input.owner
            if count is not None and isinstance(square, Operation) and _is_power(mean.input, numerator, 2.0):
                return _Normalized(numerator, epsilon, count, square)
    return None


# ----------------------------------------------------------------------------------------------
# Patterns


def _gelu_input(op: MulOp, unary: type[ErfOp] | type[TanhOp], input_of: Callable[[SSAValue], SSAValue | None]) -> SSAValue | None:
    """`x` when `op` is `0.5 * x * (1 + unary(argument))` with `input_of(argument) is x`, in any order."""
    if not _is_float(op.result):
        return None
    factors = [*_factors(op.lhs), *_factors(op.rhs)]
    if len(factors) != 3:
        return None
    for half, branch, x in permutations(factors):
        argument = _one_plus(branch, unary)
        if argument is not None and _is_const(half, 0.5) and input_of(argument) is x and x.type == op.result.type:
            return x
    return None


class RecognizeErfGelu(RewritePattern):
    """`x * 0.5 * (1 + erf(x / sqrt(2)))`, in any association or operand order -> `nn.gelu`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp, rewriter: PatternRewriter, /) -> None:
        x = _gelu_input(op, ErfOp, lambda argument: _scaled_input(argument, 1.0 / SQRT_2))
        if x is not None:
            rewriter.replace(op, GeluOp(x, "none"))


def _tanh_gelu_input(argument: SSAValue) -> SSAValue | None:
    """`x` when `argument` is `sqrt(2/pi) * (x + 0.044715 * x ** 3)` (x ** 3 as pow or x * x * x)."""
    outer = _factors(argument)
    if len(outer) != 2 or not argument.has_one_use():
        return None
    for coefficient, inner in permutations(outer):
        add = inner.owner
        if not _is_const(coefficient, SQRT_2_OVER_PI) or not isinstance(add, AddOp) or not inner.has_one_use():
            continue
        for x, cubic in _swaps(add.lhs, add.rhs):
            terms = _factors(cubic)
            coefficient = next((t for t in terms if _is_const(t, GELU_CUBIC)), None)
            if coefficient is None or not cubic.has_one_use():
                continue
            rest = [t for t in terms if t is not coefficient]
            if (len(rest) == 1 and _is_power(rest[0], x, 3.0)) or (len(rest) == 3 and all(t is x for t in rest)):
                return x
    return None


class RecognizeTanhGelu(RewritePattern):
    """`0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x ** 3)))` -> `nn.gelu {approximate = "tanh"}`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp, rewriter: PatternRewriter, /) -> None:
        x = _gelu_input(op, TanhOp, _tanh_gelu_input)
        if x is not None:
            rewriter.replace(op, GeluOp(x, "tanh"))


class RecognizeSilu(RewritePattern):
    """`x * sigmoid(x)` (either order) -> `nn.silu`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp, rewriter: PatternRewriter, /) -> None:
        if not _is_float(op.result):
            return
        for x, gate in _swaps(op.lhs, op.rhs):
            sigmoid = gate.owner
            if isinstance(sigmoid, SigmoidOp) and sigmoid.input is x and gate.has_one_use():
                rewriter.replace(op, SiluOp(x))
                return


class RecognizeSoftmax(RewritePattern):
    """`e = exp(x - reduce_max(x, a)); e / reduce_sum(e, a)` (kept dims, one axis) -> `nn.softmax`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DivOp, rewriter: PatternRewriter, /) -> None:
        if not _is_float(op.result):
            return
        exp, total = op.lhs.owner, op.rhs.owner
        if not isinstance(exp, ExpOp) or not isinstance(total, ReduceSumOp) or total.input is not op.lhs:
            return
        if op.lhs.uses.get_length() != 2 or not op.rhs.has_one_use():
            return
        shifted = exp.input.owner
        if not isinstance(shifted, SubOp) or not exp.input.has_one_use():
            return
        x, peak = shifted.lhs, shifted.rhs.owner
        if not isinstance(peak, ReduceMaxOp) or peak.input is not x or not shifted.rhs.has_one_use():
            return
        axis = _single_axis(peak)
        if axis is None or axis != _single_axis(total) or op.result.type != x.type:
            return
        rewriter.replace(op, SoftmaxOp(x, peak.axes.get_values()[0]))


class RecognizeLayerNorm(RewritePattern):
    """`d = x - mean(x); d / sqrt(mean(d ** 2) + eps)`, then optional `* scale`, `+ bias` -> `nn.layer_norm`.

    The means reduce the same trailing dims with kept dims; the op is rooted at the division (or the
    multiplication by `rsqrt`) and takes in the scale and bias that follow it.
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DivOp | MulOp, rewriter: PatternRewriter, /) -> None:
        if not _is_float(op.result):
            return
        found = _normalized(op)
        if found is None:
            return
        centered = found.numerator.owner
        if not isinstance(centered, SubOp) or not isinstance(mean := centered.rhs.owner, ReduceMeanOp):
            return
        x = centered.lhs
        if mean.input is not x or not centered.rhs.has_one_use() or _trailing_count(mean) != found.count:
            return
        if any(use.operation not in (op, found.square) for use in found.numerator.uses):
            return
        if op.result.type != x.type:
            return
        last: Operation = op
        scale = bias = None
        if (scaled := _affine_user(op.result, MulOp, x, found.count)) is not None:
            last, scale = scaled
        if (shifted := _affine_user(last.results[0], AddOp, x, found.count)) is not None:
            last, bias = shifted
        new_ops: list[Operation] = []
        if scale is None:
            new_ops.append(ones := _ones(x, found.count))
            scale = ones.result
        new_ops.append(LayerNormOp(x, scale, bias, -found.count, found.epsilon))
        rewriter.replace(last, new_ops)


class RecognizeRmsNorm(RewritePattern):
    """`x / sqrt(mean(x ** 2) + eps)` (or `x * rsqrt(...)`, `x * (1 / sqrt(...))`), then optional `* scale` -> `nn.rms_norm`.

    Rooted at the division (or multiplication) by the root mean square; a following multiplication
    by a scale that broadcasts to the normalised dims (on either side) is taken in, else the scale is ones.
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DivOp | MulOp, rewriter: PatternRewriter, /) -> None:
        if not _is_float(op.result):
            return
        found = _normalized(op)
        if found is None or op.result.type != found.numerator.type:
            return
        x = found.numerator
        if (scaled := _affine_user(op.result, MulOp, x, found.count)) is not None:
            user, scale = scaled
            rewriter.replace(user, RmsNormOp(x, scale, -found.count, found.epsilon))
            return
        ones = _ones(x, found.count)
        rewriter.replace(op, [ones, RmsNormOp(x, ones, -found.count, found.epsilon)])


@dataclass(frozen=True)
class RecognizePatternsPass(ModulePass):
    """Replace exporter-expanded GELU, LayerNorm, RMSNorm, softmax and SiLU by single `nn` ops.

    `nnjit-opt m.mlir -p canonicalize,nn-recognize-patterns` (canonicalize first, so that no-op casts
    and reshapes between the pieces are gone).
    """

    name = "nn-recognize-patterns"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns: list[RewritePattern] = [
            RecognizeLayerNorm(),
            RecognizeRmsNorm(),
            RecognizeErfGelu(),
            RecognizeTanhGelu(),
            RecognizeSoftmax(),
            RecognizeSilu(),
        ]
        PatternRewriteWalker(GreedyRewritePatternApplier(patterns), post_walk_func=region_dce).rewrite_module(op)
