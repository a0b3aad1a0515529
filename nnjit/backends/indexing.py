"""Kernel bodies as scalar expression trees: the value of any body SSA value at any coordinate.

Target-neutral: the WGSL printer and the Wasm printer both render these trees. A `web.kernel` body
is a DAG of `nn` ops on tensors; a printer asks `KernelIndexer.value_at(value, coords)` for one
element and gets a small tree of

* `Const(dtype, value)` and `Var(dtype, name, bound)` (a printer-named scalar, `bound` an exclusive
  upper bound when the printer knows one, used only to simplify index arithmetic),
* `Load(dtype, buffer, index)`: element `index` of the kernel's block argument number `buffer`,
* `Apply(dtype, op, args)`: the scalar semantics of the elementwise `nn` op class `op` (`nn.AddOp`,
  `nn.ExpOp`, ...) or of an index op of this module (`IndexDiv`, `IndexMod`) on its arguments,
* `Select(dtype, cond, on_true, on_false)` and `Convert(dtype, arg)` (an element type conversion).

View ops never copy: reshape is flatten/unflatten (div/mod), transpose permutes coordinates, slice
is `start + c * step`, expand reads index 0 of size-1 dims, gather loads its index and wraps
negatives, concat selects by range. Parameterised elementwise ops (gelu, leaky_relu, clip, silu) are
decomposed into table ops here, once for every backend. Nodes compare by value and cache their
hash, so printers can common up equal subtrees with a dict. `kernel_anchor` finds a template's
anchor and checks its epilogue; a template binds the anchor's result as a leaf of the indexer.

    indexer = KernelIndexer(kernel)
    idx = Var(INDEX, "i", bound=numel)
    tree = indexer.value_at(kernel.root, unflatten(idx, tensor_shape(kernel.root)))

Index arithmetic is `i32` (`INDEX`), on non-negative values except where a select discards it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar, dataclass_transform

from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult, SSAValue

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

INDEX = "i32"
"""The dtype of index arithmetic."""

# --- Scalar kinds --------------------------------------------------------------------------------


def scalar_kind(element: Attribute) -> str:
    """The expression dtype of a tensor element type: `f16`, `f32`, `f64`, `i<w>`, `u<w>` or `bool`."""
    if isinstance(element, IntegerType):
        width = element.width.data
        if width == 1:
            return "bool"
        return f"{'u' if element.signedness.data == Signedness.UNSIGNED else 'i'}{width}"
    for attr_type, kind in ((Float16Type, "f16"), (Float32Type, "f32"), (Float64Type, "f64")):
        if isinstance(element, attr_type):
            return kind
    raise NnjitError(f"no scalar kind for element type {element}")


def value_kind(value: SSAValue) -> str:
    """The expression dtype of one element of a tensor value."""
    return scalar_kind(nn.element_type(value))


def is_float(dtype: str) -> bool:
    """Whether an expression dtype is a floating-point kind."""
    return dtype.startswith("f")


# --- Nodes ---------------------------------------------------------------------------------------

_N = TypeVar("_N")


@dataclass_transform(frozen_default=True)
def _node(cls: type[_N]) -> type[_N]:
    """A frozen dataclass node with a structural hash computed once per object."""
    cls = dataclass(frozen=True)(cls)
    names = tuple(f.name for f in fields(cls))  # pyright: ignore[reportArgumentType]

    def cached_hash(self: Any) -> int:
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = hash((cls.__name__, *(getattr(self, n) for n in names)))
            object.__setattr__(self, "_hash", value)
            return value

    cls.__hash__ = cached_hash  # type: ignore[method-assign]
    return cls


@_node
class Expr:
    """A scalar expression of dtype `dtype`."""

    dtype: str


@_node
class Const(Expr):
    """A literal."""

    value: float | int | bool


@_node
class Var(Expr):
    """A scalar the printer names (a thread index, a loop counter, an accumulator)."""

    name: str
    bound: int | None = None


@_node
class Load(Expr):
    """Element `index` of block argument number `buffer` (row-major, contiguous)."""

    buffer: int
    index: Expr


@_node
class Apply(Expr):
    """The scalar op `op` (an elementwise `nn` op class or an `IndexOp`) on `args`."""

    op: type
    args: tuple[Expr, ...]


@_node
class Select(Expr):
    """`cond ? on_true : on_false`."""

    cond: Expr
    on_true: Expr
    on_false: Expr


@_node
class Convert(Expr):
    """`arg` converted to `dtype` (float to int truncates toward zero; to bool is `!= 0`)."""

    arg: Expr


class IndexOp:
    """Scalar index ops that views need beyond the `nn` ops, defined on non-negative operands."""


class IndexDiv(IndexOp):
    """Quotient of non-negative integers."""


class IndexMod(IndexOp):
    """Remainder of non-negative integers."""


Coords = tuple[Expr, ...]


def const(value: float | int | bool, dtype: str = INDEX) -> Const:
    """A literal of `dtype`, normalised to the Python type that dtype holds."""
    if dtype == "bool":
        return Const(dtype, bool(value))
    return Const(dtype, float(value) if is_float(dtype) else int(value))


# --- Simplifying index constructors --------------------------------------------------------------


def bound(e: Expr) -> int | None:
    """An exclusive upper bound of a non-negative index expression, or None when unknown."""
    if isinstance(e, Const) and isinstance(e.value, int) and e.value >= 0:
        return e.value + 1
    if isinstance(e, Var):
        return e.bound
    if not isinstance(e, Apply) or e.op not in (nn.AddOp, nn.MulOp, IndexDiv, IndexMod):
        return None
    a, b = bound(e.args[0]), bound(e.args[1])
    divisor = _const(e.args[1])
    if e.op is IndexMod and divisor is not None:
        return min(a or divisor, divisor)
    if a is None or b is None:
        return None
    if e.op is nn.AddOp:
        return a + b - 1
    if e.op is nn.MulOp:
        return (a - 1) * (b - 1) + 1
    return (a - 1) // divisor + 1 if e.op is IndexDiv and divisor else None


def _const(e: Expr) -> int | None:
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


def _terms(e: Expr) -> list[tuple[Expr | None, int]]:
    """A sum as `(factor, coefficient)` pairs; factor None is the constant term."""
    if isinstance(e, Apply) and e.op is nn.AddOp:
        return _terms(e.args[0]) + _terms(e.args[1])
    value = _const(e)
    if value is not None:
        return [(None, value)]
    if isinstance(e, Apply) and e.op is nn.MulOp and _const(e.args[1]) is not None:
        return [(term, coeff * (_const(e.args[1]) or 0)) for term, coeff in _terms(e.args[0])]
    return [(e, 1)]


def _sum(terms: Sequence[tuple[Expr | None, int]]) -> Expr:
    result: Expr = const(0)
    for term, coeff in terms:
        result = add(result, const(coeff) if term is None else mul(term, const(coeff)))
    return result


def add(a: Expr, b: Expr) -> Expr:
    """`a + b` on indices, folded."""
    x, y = _const(a), _const(b)
    if x is not None and y is not None:
        return const(x + y)
    if x == 0:
        return b
    if y == 0:
        return a
    if x is not None:
        return add(b, a)
    for high, low in ((a, b), (b, a)):  # (y / k) * k + y % k == y: flattening what unflatten split
        if isinstance(low, Apply) and low.op is IndexMod and isinstance(high, Apply) and high.op is nn.MulOp:
            k = _const(low.args[1])
            if k is not None and high.args[1] == low.args[1] and high.args[0] == div(low.args[0], k):
                return low.args[0]
    return Apply(INDEX, nn.AddOp, (a, b))


def sub(a: Expr, b: Expr) -> Expr:
    """`a - b` on indices, folded."""
    y = _const(b)
    if y is not None:
        return add(a, const(-y))
    return Apply(INDEX, nn.SubOp, (a, b))


def mul(a: Expr, b: Expr) -> Expr:
    """`a * b` on indices, folded."""
    x, y = _const(a), _const(b)
    if x is not None and y is not None:
        return const(x * y)
    if x is not None:
        return mul(b, a)
    if y == 0:
        return const(0)
    if y == 1:
        return a
    if y is not None and isinstance(a, Apply) and a.op is nn.MulOp and _const(a.args[1]) is not None:
        return mul(a.args[0], const((_const(a.args[1]) or 0) * y))
    return Apply(INDEX, nn.MulOp, (a, b))


def _split(a: Expr, c: int) -> tuple[list[tuple[Expr | None, int]], list[tuple[Expr | None, int]]] | None:
    """`a` as `c * whole + rest` with `rest` known to lie in `[0, c)`, or None.

    For non-negative `a` this makes `a / c == whole` and `a % c == rest`.
    """
    terms = _terms(a)
    whole = [(t, k // c) for t, k in terms if k % c == 0]
    rest = [(t, k) for t, k in terms if k % c != 0]
    rest_bound = bound(_sum(rest)) if rest else 1
    if rest_bound is None or rest_bound > c:
        return None
    return whole, rest


def div(a: Expr, b: int) -> Expr:
    """`a / b` for non-negative `a` and positive constant `b`, simplified."""
    if b == 1:
        return a
    limit = bound(a)
    if limit is not None and limit <= b:
        return const(0)
    if isinstance(a, Apply) and a.op is IndexDiv and _const(a.args[1]) is not None:
        return div(a.args[0], (_const(a.args[1]) or 1) * b)
    split = _split(a, b)
    if split is not None and split[0]:
        return _sum(split[0])
    return Apply(INDEX, IndexDiv, (a, const(b)))


def mod(a: Expr, b: int) -> Expr:
    """`a % b` for non-negative `a` and positive constant `b`, simplified."""
    if b == 1:
        return const(0)
    limit = bound(a)
    if limit is not None and limit <= b:
        return a
    split = _split(a, b)
    if split is not None and split[0]:
        return _sum(split[1])
    return Apply(INDEX, IndexMod, (a, const(b)))


def linear(coords: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """The row-major offset of `coords` in a tensor of `shape`."""
    offset: Expr = const(0)
    for coord, size in zip(coords, shape, strict=True):
        offset = add(mul(offset, const(size)), const(0) if size == 1 else coord)
    return offset


def unflatten(index: Expr, shape: Sequence[int]) -> Coords:
    """The coordinates of row-major offset `index` in a tensor of `shape`."""
    coords: list[Expr] = []
    stride = shapes.numel(shape)
    for size in shape:
        stride //= max(size, 1)
        coords.append(const(0) if size == 1 else mod(div(index, stride), size))
    return tuple(coords)


def broadcast_coords(coords: Sequence[Expr], shape: Sequence[int]) -> Coords:
    """Coordinates into an operand of `shape` broadcast to the rank of `coords` (numpy rules)."""
    tail = coords[len(coords) - len(shape) :]
    return tuple(const(0) if size == 1 else c for c, size in zip(tail, shape, strict=True))


# --- Elementwise ops -----------------------------------------------------------------------------

PRIMITIVE_UNARY: frozenset[type[Operation]] = frozenset({
    nn.ExpOp, nn.LogOp, nn.SqrtOp, nn.RsqrtOp, nn.TanhOp, nn.ErfOp, nn.SigmoidOp, nn.ReluOp, nn.NegOp,
    nn.ReciprocalOp, nn.AbsOp, nn.SinOp, nn.CosOp, nn.FloorOp, nn.CeilOp, nn.RoundOp, nn.SignOp, nn.NotOp,
})  # fmt: skip
"""Unary `nn` ops that reach printers as `Apply` nodes; each printer has one table row per op."""

PRIMITIVE_BINARY: frozenset[type[Operation]] = frozenset({
    nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp, nn.PowOp, nn.MaxOp, nn.MinOp, nn.ModOp, nn.AndOp, nn.OrOp,
    nn.XorOp, nn.EqualOp, nn.LessOp, nn.LessEqualOp, nn.GreaterOp, nn.GreaterEqualOp,
})  # fmt: skip
"""Binary `nn` ops that reach printers as `Apply` nodes (comparisons give `bool`)."""

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu(op: nn.GeluOp, x: Expr) -> Expr:
    k = x.dtype
    if op.approximate.data == "tanh":
        cube = Apply(k, nn.MulOp, (Apply(k, nn.MulOp, (x, x)), x))
        inner = Apply(k, nn.AddOp, (x, Apply(k, nn.MulOp, (const(0.044715, k), cube))))
        gate = Apply(k, nn.TanhOp, (Apply(k, nn.MulOp, (const(_SQRT_2_OVER_PI, k), inner)),))
    else:
        gate = Apply(k, nn.ErfOp, (Apply(k, nn.MulOp, (x, const(math.sqrt(0.5), k))),))
    half = Apply(k, nn.MulOp, (const(0.5, k), x))
    return Apply(k, nn.MulOp, (half, Apply(k, nn.AddOp, (const(1.0, k), gate))))


def _leaky_relu(op: nn.LeakyReluOp, x: Expr) -> Expr:
    k = x.dtype
    scaled = Apply(k, nn.MulOp, (const(op.alpha.value.data, k), x))
    return Select(k, Apply("bool", nn.GreaterEqualOp, (x, const(0, k))), x, scaled)


def _clip(op: nn.ClipOp, x: Expr) -> Expr:
    k = x.dtype
    lo = -math.inf if op.min is None else op.min.value.data
    hi = math.inf if op.max is None else op.max.value.data
    if not is_float(k):  # float bounds on integers clamp to the integers inside [lo, hi]
        lo, hi = math.ceil(lo) if lo != -math.inf else lo, math.floor(hi) if hi != math.inf else hi
    result = x
    if lo != -math.inf:
        result = Apply(k, nn.MaxOp, (result, const(lo, k)))
    if hi != math.inf:
        result = Apply(k, nn.MinOp, (result, const(hi, k)))
    return result


_UNARY_DECOMPOSED: dict[type[Operation], Callable[[Any, Expr], Expr]] = {
    nn.GeluOp: _gelu,
    nn.LeakyReluOp: _leaky_relu,
    nn.ClipOp: _clip,
    nn.SiluOp: lambda op, x: Apply(x.dtype, nn.MulOp, (x, Apply(x.dtype, nn.SigmoidOp, (x,)))),
    nn.CastOp: lambda op, x: Convert(value_kind(op.result), x) if value_kind(op.result) != x.dtype else x,
}
"""Unary ops with properties, spelled in primitive ops."""

ELEMENTWISE: frozenset[type[Operation]] = frozenset(
    {*PRIMITIVE_UNARY, *PRIMITIVE_BINARY, *_UNARY_DECOMPOSED, nn.WhereOp}
)
"""Elementwise ops (numpy broadcasting of every operand to the result)."""

# --- The indexer ---------------------------------------------------------------------------------

Leaf = Callable[[Coords], Expr]
ViewRule = Callable[["KernelIndexer", Any, Coords], Expr]


class KernelIndexer:
    """Expression trees for the values of one kernel body.

    `leaves` maps values a template computes itself (a matmul accumulator, a softmax from row
    statistics) to a function of the coordinates; `value_at` stops there. Any other op must be
    injective (elementwise or a view); an anchor without a leaf raises `NnjitError`.
    """

    def __init__(self, kernel: KernelOp | Block, leaves: Mapping[SSAValue, Leaf] | None = None):
        block = kernel.body.block if isinstance(kernel, KernelOp) else kernel
        self.block = block
        self.leaves = dict(leaves or {})
        self._memo: dict[tuple[SSAValue, Coords], Expr] = {}

    def value_at(self, value: SSAValue, coords: Sequence[Expr]) -> Expr:
        """The value of tensor `value` at `coords` (one expression per dim of its shape)."""
        key = (value, tuple(coords))
        if key not in self._memo:
            self._memo[key] = self._compute(value, key[1])
        return self._memo[key]

    def _compute(self, value: SSAValue, coords: Coords) -> Expr:
        if len(coords) != len(nn.tensor_shape(value)):
            raise NnjitError(f"indexing: {len(coords)} coordinates for a value of type {value.type}")
        if value in self.leaves:
            return self.leaves[value](coords)
        if isinstance(value, BlockArgument):
            if value.block is not self.block:
                raise NnjitError("indexing: a block argument of another block")
            return Load(value_kind(value), value.index, linear(coords, nn.tensor_shape(value)))
        assert isinstance(value, OpResult)
        op = value.op
        if type(op) in ELEMENTWISE:
            operands = [self.value_at(o, broadcast_coords(coords, nn.tensor_shape(o))) for o in op.operands]
            kind = value_kind(value)
            if type(op) in _UNARY_DECOMPOSED:
                return _UNARY_DECOMPOSED[type(op)](op, operands[0])
            if isinstance(op, nn.WhereOp):
                return Select(kind, operands[0], operands[1], operands[2])
            return Apply(kind, type(op), tuple(operands))
        rule = _VIEW_RULES.get(type(op))
        if rule is not None:
            return rule(self, op, coords)
        if isinstance(op, nn.ConstantOp):
            return _splat(op)
        raise NnjitError(f"indexing: '{op.name}' is not injective and has no leaf in this kernel")

    # --- views ---

    def _reshape(self, op: nn.ReshapeOp, coords: Coords) -> Expr:
        offset = linear(coords, nn.tensor_shape(op.result))
        return self.value_at(op.input, unflatten(offset, nn.tensor_shape(op.input)))

    def _transpose(self, op: nn.TransposeOp, coords: Coords) -> Expr:
        source: list[Expr] = [const(0)] * len(coords)
        for position, axis in enumerate(op.perm.get_values()):
            source[axis] = coords[position]
        return self.value_at(op.input, source)

    def _slice(self, op: nn.SliceOp, coords: Coords) -> Expr:
        source: list[Expr] = []
        bounds = zip(
            nn.tensor_shape(op.input), op.starts.get_values(), op.ends.get_values(), op.steps.get_values(), strict=True
        )
        for coord, (size, start, end, step) in zip(coords, bounds, strict=True):
            picked = range(size)[start:end:step]
            first = picked.start if len(picked) else 0
            source.append(
                add(const(first), mul(coord, const(picked.step)))
                if step > 0
                else sub(const(first), mul(coord, const(-picked.step)))
            )
        return self.value_at(op.input, source)

    def _expand(self, op: nn.ExpandOp, coords: Coords) -> Expr:
        return self.value_at(op.input, broadcast_coords(coords, nn.tensor_shape(op.input)))

    def _gather(self, op: nn.GatherOp, coords: Coords) -> Expr:
        data_shape = nn.tensor_shape(op.data)
        axis = shapes.normalize_axis(op.axis.value.data, len(data_shape))
        rank = len(nn.tensor_shape(op.indices))
        raw = self.value_at(op.indices, coords[axis : axis + rank])
        index = raw if raw.dtype == INDEX else Convert(INDEX, raw)
        size = const(data_shape[axis])
        wrapped = Select(
            INDEX, Apply("bool", nn.LessOp, (index, const(0))), Apply(INDEX, nn.AddOp, (index, size)), index
        )
        return self.value_at(op.data, (*coords[:axis], wrapped, *coords[axis + rank :]))

    def _concat(self, op: nn.ConcatOp, coords: Coords) -> Expr:
        axis = shapes.normalize_axis(op.axis.value.data, len(coords))
        pieces: list[tuple[int, SSAValue]] = []
        offset = 0
        for piece in op.inputs:
            pieces.append((offset, piece))
            offset += nn.tensor_shape(piece)[axis]
        pieces = [(start, piece) for start, piece in pieces if nn.tensor_shape(piece)[axis] > 0]
        if not pieces:
            raise NnjitError("indexing: nn.concat of empty tensors has no elements to read")
        start, last = pieces[-1]
        result = self.value_at(last, (*coords[:axis], sub(coords[axis], const(start)), *coords[axis + 1 :]))
        for (start, piece), (end, _) in zip(reversed(pieces[:-1]), reversed(pieces[1:]), strict=True):
            inside = Apply("bool", nn.LessOp, (coords[axis], const(end)))
            value = self.value_at(piece, (*coords[:axis], sub(coords[axis], const(start)), *coords[axis + 1 :]))
            result = Select(result.dtype, inside, value, result)
        return result


def _splat(op: nn.ConstantOp) -> Const:
    from nnjit.runtime.reference import constant_value

    if not isinstance(op.value, DenseIntOrFPElementsAttr):
        raise NnjitError("indexing: a kernel body holds a dense_resource constant; only splats may be inlined")
    array = constant_value(op)
    flat = array.reshape(-1)
    same = (flat == flat[0]) | ((flat != flat) & (flat[0] != flat[0]))  # NaN splats count as splats
    if flat.size == 0 or not same.all():
        raise NnjitError(f"indexing: constant of type {op.result.type} in a kernel body is not a splat")
    return const(flat[0].item(), value_kind(op.result))


_VIEW_RULES: dict[type[Operation], ViewRule] = {
    nn.ReshapeOp: KernelIndexer._reshape,
    nn.TransposeOp: KernelIndexer._transpose,
    nn.SliceOp: KernelIndexer._slice,
    nn.ExpandOp: KernelIndexer._expand,
    nn.GatherOp: KernelIndexer._gather,
    nn.ConcatOp: KernelIndexer._concat,
}
"""Index maps of the view ops: result coordinates to operand coordinates."""

INJECTIVE: frozenset[type[Operation]] = frozenset({*ELEMENTWISE, nn.ConstantOp, *_VIEW_RULES})
"""Ops `value_at` composes without a leaf."""


def anchors(block: Block) -> list[Operation]:
    """Ops of a kernel body that are not injective (the template's anchor, if any)."""
    return [op for op in block.ops if type(op) not in INJECTIVE and op is not block.last_op]


def dependents(block: Block, source: SSAValue) -> list[Operation]:
    """The ops of `block` that use `source`, directly or through other ops (an anchor's epilogue)."""
    reached: set[SSAValue] = {source}
    found: list[Operation] = []
    for op in block.ops:
        if any(o in reached for o in op.operands) and op is not block.last_op:
            found.append(op)
            reached.update(op.results)
    return found


def kernel_anchor(kernel: KernelOp, kinds: tuple[type[Operation], ...]) -> Any:
    """The kernel's single anchor, which must be one of `kinds`.

    Its epilogue (every op using its result) must be elementwise ops and reshapes that keep its
    element count, so that output element `f` (row-major) is computed from anchor element `f`.
    """
    found = anchors(kernel.body.block)
    name = f"web.kernel @{kernel.sym_name.data} ({kernel.template.data})"
    if len(found) != 1 or not isinstance(found[0], kinds):
        raise NnjitError(f"{name}: expected one {' / '.join(k.name for k in kinds)} anchor, found "  # pyright: ignore
                         f"{[op.name for op in found] or 'none'}")  # fmt: skip
    anchor = found[0]
    count = shapes.numel(nn.tensor_shape(anchor.results[0]))
    for op in dependents(kernel.body.block, anchor.results[0]):
        if type(op) not in (*ELEMENTWISE, nn.ReshapeOp) or shapes.numel(nn.tensor_shape(op.results[0])) != count:
            raise NnjitError(f"{name}: epilogue op '{op.name}' is not elementwise on the anchor's {count} elements")
    if shapes.numel(nn.tensor_shape(kernel.root)) != count:
        raise NnjitError(f"{name}: the output {kernel.root.type} does not have the anchor's {count} elements")
    return anchor
