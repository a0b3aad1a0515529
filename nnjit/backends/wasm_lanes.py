"""Lane analysis for the Wasm printer: how an index expression moves across the 4 lanes of a v128.

A vectorised loop runs a lane variable `c` (a `Var` of `nnjit.backends.indexing`) whose lanes are
`c, c + 1, c + 2, c + 3`, with `c` a multiple of `align` on every iteration. For an index
expression `e(c)`, `LaneAnalysis.stride(e)` proves, without enumerating iterations, that

    e(c + l) == e(c) + step * l   for l in 0..3,   and   e(c) ≡ residue (mod modulus)

(`modulus = 0`: `e(c)` is exactly `residue`), or returns None. The printer turns step 1 into one
`v128.load`, step 0 into `v128.load32_splat` and anything else into four lane loads. Division and
remainder by a constant keep a step only when no lane can cross a multiple of the divisor, which
the residue decides. `uniform(cond)` proves that a condition is the same on all lanes (a concat
boundary at a multiple of 4), so a branch can be taken once for the whole vector.

Also here: `substitute` (rebuild a tree with a variable replaced, re-simplifying index arithmetic
so lane offsets fold into constants) and `linear_terms` (an index as a sum of `coefficient *
factor` plus a constant, for address offset immediates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from nnjit.backends.indexing import (
    INDEX,
    Apply,
    Const,
    Convert,
    Expr,
    IndexDiv,
    IndexMod,
    Load,
    Select,
    Var,
    add,
    const,
    div,
    mod,
    mul,
    sub,
)
from nnjit.dialects import nn

LANES = 4
"""f32 / i32 lanes of a v128."""


@dataclass(frozen=True)
class Stride:
    """`e(c + l) = e(c) + step * l`; `e(c) ≡ residue (mod modulus)`, exact when `modulus == 0`."""

    step: int
    modulus: int
    residue: int

    @staticmethod
    def of(step: int, modulus: int, residue: int) -> Stride:
        """A stride with its residue normalised into `[0, modulus)`."""
        modulus = abs(modulus)
        return Stride(step, modulus, residue % modulus if modulus else residue)


UNKNOWN_UNIFORM = Stride(0, 1, 0)
"""The same on every lane, value unknown."""


def _const_int(e: Expr) -> int | None:
    return e.value if isinstance(e, Const) and isinstance(e.value, int) and not isinstance(e.value, bool) else None


def _no_wrap(residue: int, modulus: int, step: int, divisor: int) -> bool:
    """Whether `x mod divisor` cannot wrap between lane 0 and lane 3 for any `x ≡ residue (mod modulus)`."""
    g = math.gcd(modulus, divisor)  # x mod divisor ranges over residue mod g, + g, ... (exact when modulus == 0)
    low = residue % divisor if modulus == 0 else residue % g
    high = low if modulus == 0 else divisor - g + low
    span = (LANES - 1) * step
    return high + span < divisor if step >= 0 else low + span >= 0


class LaneAnalysis:
    """Strides and uniformity of expressions in a loop whose lane variable is `var` (a multiple of `align`)."""

    def __init__(self, var: Var, align: int = LANES):
        self.var = var
        self.align = align
        self._contains: dict[Expr, bool] = {}
        self._strides: dict[Expr, Stride | None] = {}

    def contains(self, e: Expr) -> bool:
        """Whether `e` depends on the lane variable."""
        if e not in self._contains:
            self._contains[e] = (
                any(self.contains(child) for child in children(e)) if not isinstance(e, Var) else e == self.var
            )
        return self._contains[e]

    def stride(self, e: Expr) -> Stride | None:
        """The lane stride of an index expression, or None when lanes do not move by a constant step."""
        if e not in self._strides:
            self._strides[e] = self._stride(e)
        return self._strides[e]

    def _stride(self, e: Expr) -> Stride | None:
        value = _const_int(e)
        if value is not None:
            return Stride(0, 0, value)
        if isinstance(e, Var):
            return Stride.of(1, self.align, 0) if e == self.var else UNKNOWN_UNIFORM
        if not (
            isinstance(e, Apply) and e.dtype == INDEX and e.op in (nn.AddOp, nn.SubOp, nn.MulOp, IndexDiv, IndexMod)
        ):
            return None if self.contains(e) else UNKNOWN_UNIFORM
        a, b = (self.stride(arg) for arg in e.args)
        if a is None or b is None:
            return None
        if e.op is nn.AddOp:
            return Stride.of(a.step + b.step, math.gcd(a.modulus, b.modulus), a.residue + b.residue)
        if e.op is nn.SubOp:
            return Stride.of(a.step - b.step, math.gcd(a.modulus, b.modulus), a.residue - b.residue)
        k = b.residue if b.modulus == 0 and b.step == 0 else None
        if e.op is nn.MulOp:
            if k is not None:
                return Stride.of(a.step * k, a.modulus * k, a.residue * k)
            if a.step == 0 and a.modulus == 0:
                return Stride.of(b.step * a.residue, b.modulus * a.residue, b.residue * a.residue)
            return UNKNOWN_UNIFORM if a.step == b.step == 0 else None
        if k is None or k <= 0 or not _no_wrap(a.residue, a.modulus, a.step, k):
            return None
        if e.op is IndexDiv:
            if a.modulus % k == 0:  # exact (modulus 0) or a whole number of divisors per period
                return Stride.of(0, a.modulus // k, a.residue // k)
            return UNKNOWN_UNIFORM
        if a.modulus % k == 0:
            return Stride(a.step, 0, a.residue % k)
        g = math.gcd(a.modulus, k)
        return Stride.of(a.step, g, a.residue % g)

    def uniform(self, cond: Expr) -> bool:
        """Whether a bool expression has the same value on all lanes."""
        if not self.contains(cond):
            return True
        if not isinstance(cond, Apply):
            return False
        if cond.op in (nn.AndOp, nn.OrOp, nn.XorOp, nn.NotOp):
            return all(self.uniform(arg) for arg in cond.args)
        if len(cond.args) != 2 or cond.args[0].dtype != INDEX:
            return False
        lhs, rhs = cond.args
        # Every comparison as `d < 0` for a difference `d` of the operands.
        differences: dict[type, tuple[Expr, Expr, int]] = {
            nn.LessOp: (lhs, rhs, 0), nn.LessEqualOp: (lhs, rhs, -1),
            nn.GreaterOp: (rhs, lhs, 0), nn.GreaterEqualOp: (rhs, lhs, -1),
        }  # fmt: skip
        if cond.op not in differences:
            return False
        left, right, shift = differences[cond.op]
        a, b = self.stride(left), self.stride(right)
        if a is None or b is None:
            return False
        d = Stride.of(a.step - b.step, math.gcd(a.modulus, b.modulus), a.residue - b.residue + shift)
        return _never_crosses_zero(d)


def _never_crosses_zero(d: Stride) -> bool:
    """Whether `d(c + l) < 0` is the same for all lanes: no lane-0 value lets the lanes straddle 0."""
    if d.step == 0:
        return True
    span = abs(d.step) * (LANES - 1)
    # Increasing lanes straddle 0 when d0 is in [-span, -1]; decreasing ones when d0 is in [0, span - 1].
    low = -span if d.step > 0 else 0
    high = -1 if d.step > 0 else span - 1
    if d.modulus == 0:
        return not low <= d.residue <= high
    first = low + (d.residue - low) % d.modulus  # the smallest lane-0 value >= low
    return first > high


def children(e: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of a node."""
    if isinstance(e, Load):
        return (e.index,)
    if isinstance(e, Apply):
        return e.args
    if isinstance(e, Select):
        return (e.cond, e.on_true, e.on_false)
    if isinstance(e, Convert):
        return (e.arg,)
    return ()


_INDEX_BUILDERS: dict[type, Callable[[Expr, Expr], Expr]] = {
    nn.AddOp: add,
    nn.SubOp: sub,
    nn.MulOp: mul,
}


def rebuild(e: Expr, args: tuple[Expr, ...]) -> Expr:
    """`e` with new children, index arithmetic re-simplified."""
    if isinstance(e, Load):
        return Load(e.dtype, e.buffer, args[0])
    if isinstance(e, Select):
        return Select(e.dtype, *args)
    if isinstance(e, Convert):
        return Convert(e.dtype, args[0])
    assert isinstance(e, Apply)
    if e.dtype == INDEX and e.op in _INDEX_BUILDERS:
        return _INDEX_BUILDERS[e.op](*args)
    divisor = _const_int(args[1]) if len(args) == 2 else None
    if e.dtype == INDEX and e.op in (IndexDiv, IndexMod) and divisor is not None and divisor > 0:
        return div(args[0], divisor) if e.op is IndexDiv else mod(args[0], divisor)
    return Apply(e.dtype, e.op, args)


def substitute(e: Expr, var: Var, replacement: Expr, memo: dict[Expr, Expr] | None = None) -> Expr:
    """`e` with `var` replaced by `replacement` (lane `l` of a vector: `var + l`)."""
    memo = {} if memo is None else memo
    if e == var:
        return replacement
    if e in memo:
        return memo[e]
    kids = children(e)
    result = e if not kids else rebuild(e, tuple(substitute(k, var, replacement, memo) for k in kids))
    memo[e] = result
    return result


def at_lane(e: Expr, var: Var, lane: int) -> Expr:
    """`e` on lane `lane`: the lane variable shifted by `lane`."""
    return e if lane == 0 else substitute(e, var, add(var, const(lane)))


def linear_terms(e: Expr) -> tuple[list[tuple[Expr, int]], int]:
    """An index as `sum(coefficient * factor) + constant` (factors are non-constant sub-expressions)."""
    value = _const_int(e)
    if value is not None:
        return [], value
    if isinstance(e, Apply) and e.dtype == INDEX and e.op is nn.AddOp:
        (a, x), (b, y) = linear_terms(e.args[0]), linear_terms(e.args[1])
        return a + b, x + y
    if isinstance(e, Apply) and e.dtype == INDEX and e.op is nn.MulOp:
        k = _const_int(e.args[1])
        if k is not None:
            terms, offset = linear_terms(e.args[0])
            return [(f, c * k) for f, c in terms], offset * k
    return [(e, 1)], 0


def loads(e: Expr, found: set[Load] | None = None) -> set[Load]:
    """Every `Load` node of a tree."""
    found = set() if found is None else found
    if isinstance(e, Load):
        found.add(e)
    for child in children(e):
        loads(child, found)
    return found


def safe_select(e: Select) -> bool:
    """Whether both branches of a select may be evaluated whatever the condition (no load of their own)."""
    guarded = loads(e.cond)
    return not ((loads(e.on_true) | loads(e.on_false)) - guarded)
