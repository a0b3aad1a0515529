"""WAT for expression trees: function bodies, scalar and f32x4 rendering, loads and stores.

`Body` holds one function's statements (folded s-expressions, one a line), its locals and the
scopes of common subexpressions; `Renderer` turns `nnjit.backends.indexing` trees into WAT, one
handler per node family and the per-op text in the tables below (`{0}`, `{1}` are operands).
Every non-leaf node becomes one `local.set` (equal subtrees once per scope). In vector mode the
lanes are those of a `LaneAnalysis` variable: a load whose index moves by 1 per lane is one
`v128.load`, by 0 a `v128.load32_splat`, otherwise four `v128.load32_lane`s; ops without a SIMD
form run per lane; a select whose branches load runs as a branch, taken once when the condition is
provably uniform, else per lane. Addresses are `dynamic + offset`: the buffer's base address and
the index's constant term fold into the offset immediate.

Storage is 4 bytes an element: f32, i32 (i64 tensors compute in i32) and i32 0/1 for i1; in vector
code a boolean is a lane mask (0 / -1).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import singledispatchmethod

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
    mul,
)
from nnjit.backends.wasm_lanes import LANES, LaneAnalysis, at_lane, children, linear_terms, safe_select
from nnjit.backends.wasm_math import fconst
from nnjit.dialects import nn
from nnjit.errors import NnjitError

WASM_TYPE = {"f32": "f32", "i32": "i32", "i64": "i32", "bool": "i32"}
"""The Wasm scalar type computing each expression dtype; others are not supported."""

_UNARY_CALL = {
    nn.ExpOp: "nn_exp", nn.LogOp: "nn_log", nn.TanhOp: "nn_tanh", nn.ErfOp: "nn_erf", nn.SigmoidOp: "nn_sigmoid",
    nn.SinOp: "nn_sin", nn.CosOp: "nn_cos", nn.SignOp: "nn_sign",
}  # fmt: skip

VECTOR_OPS: dict[str, dict[type, str]] = {
    "f": {
        nn.AddOp: "(f32x4.add {0} {1})", nn.SubOp: "(f32x4.sub {0} {1})", nn.MulOp: "(f32x4.mul {0} {1})",
        nn.DivOp: "(f32x4.div {0} {1})", nn.MaxOp: "(f32x4.max {0} {1})", nn.MinOp: "(f32x4.min {0} {1})",
        nn.PowOp: "(call $nn_pow {0} {1})", nn.ModOp: "(call $nn_fmod {0} {1})",
        nn.EqualOp: "(f32x4.eq {0} {1})", nn.LessOp: "(f32x4.lt {0} {1})", nn.LessEqualOp: "(f32x4.le {0} {1})",
        nn.GreaterOp: "(f32x4.gt {0} {1})", nn.GreaterEqualOp: "(f32x4.ge {0} {1})",
        nn.SqrtOp: "(f32x4.sqrt {0})", nn.RsqrtOp: "(f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.sqrt {0}))",
        nn.ReluOp: "(f32x4.max {0} (v128.const f32x4 0 0 0 0))", nn.NegOp: "(f32x4.neg {0})",
        nn.ReciprocalOp: "(f32x4.div (v128.const f32x4 1 1 1 1) {0})", nn.AbsOp: "(f32x4.abs {0})",
        nn.FloorOp: "(f32x4.floor {0})", nn.CeilOp: "(f32x4.ceil {0})", nn.RoundOp: "(f32x4.nearest {0})",
        **{op: f"(call ${name} {{0}})" for op, name in _UNARY_CALL.items()},
    },
    "i": {
        nn.AddOp: "(i32x4.add {0} {1})", nn.SubOp: "(i32x4.sub {0} {1})", nn.MulOp: "(i32x4.mul {0} {1})",
        nn.MaxOp: "(i32x4.max_s {0} {1})", nn.MinOp: "(i32x4.min_s {0} {1})",
        nn.EqualOp: "(i32x4.eq {0} {1})", nn.LessOp: "(i32x4.lt_s {0} {1})", nn.LessEqualOp: "(i32x4.le_s {0} {1})",
        nn.GreaterOp: "(i32x4.gt_s {0} {1})", nn.GreaterEqualOp: "(i32x4.ge_s {0} {1})",
        nn.ReluOp: "(i32x4.max_s {0} (v128.const i32x4 0 0 0 0))", nn.NegOp: "(i32x4.neg {0})",
        nn.AbsOp: "(i32x4.abs {0})", nn.SignOp: "(i32x4.sub (i32x4.lt_s {0} (v128.const i32x4 0 0 0 0)) "
        "(i32x4.gt_s {0} (v128.const i32x4 0 0 0 0)))",
        nn.FloorOp: "{0}", nn.CeilOp: "{0}", nn.RoundOp: "{0}",
    },
    "b": {
        nn.AndOp: "(v128.and {0} {1})", nn.OrOp: "(v128.or {0} {1})", nn.XorOp: "(v128.xor {0} {1})",
        nn.NotOp: "(v128.not {0})", nn.MaxOp: "(v128.or {0} {1})", nn.MinOp: "(v128.and {0} {1})",
        nn.EqualOp: "(i32x4.eq {0} {1})",
    },
}  # fmt: skip
"""f32x4 / i32x4 / mask ops by operand family; ops missing here run per lane on the scalar table."""

SCALAR_OPS: dict[str, dict[type, str]] = {
    "f": {
        nn.AddOp: "(f32.add {0} {1})", nn.SubOp: "(f32.sub {0} {1})", nn.MulOp: "(f32.mul {0} {1})",
        nn.DivOp: "(f32.div {0} {1})", nn.MaxOp: "(f32.max {0} {1})", nn.MinOp: "(f32.min {0} {1})",
        nn.PowOp: "(f32x4.extract_lane 0 (call $nn_pow (f32x4.splat {0}) (f32x4.splat {1})))",
        nn.ModOp: "(call $nn_fmod_s {0} {1})",
        nn.EqualOp: "(f32.eq {0} {1})", nn.LessOp: "(f32.lt {0} {1})", nn.LessEqualOp: "(f32.le {0} {1})",
        nn.GreaterOp: "(f32.gt {0} {1})", nn.GreaterEqualOp: "(f32.ge {0} {1})",
        nn.SqrtOp: "(f32.sqrt {0})", nn.RsqrtOp: "(f32.div (f32.const 1) (f32.sqrt {0}))",
        nn.ReluOp: "(f32.max {0} (f32.const 0))", nn.NegOp: "(f32.neg {0})",
        nn.ReciprocalOp: "(f32.div (f32.const 1) {0})", nn.AbsOp: "(f32.abs {0})",
        nn.FloorOp: "(f32.floor {0})", nn.CeilOp: "(f32.ceil {0})", nn.RoundOp: "(f32.nearest {0})",
        **{op: f"(f32x4.extract_lane 0 (call ${name} (f32x4.splat {{0}})))" for op, name in _UNARY_CALL.items()},
    },
    "i": {
        nn.AddOp: "(i32.add {0} {1})", nn.SubOp: "(i32.sub {0} {1})", nn.MulOp: "(i32.mul {0} {1})",
        nn.DivOp: "(i32.div_s {0} {1})", nn.ModOp: "(call $nn_imod {0} {1})", nn.PowOp: "(call $nn_ipow {0} {1})",
        nn.MaxOp: "(select {0} {1} (i32.gt_s {0} {1}))", nn.MinOp: "(select {0} {1} (i32.lt_s {0} {1}))",
        nn.EqualOp: "(i32.eq {0} {1})", nn.LessOp: "(i32.lt_s {0} {1})", nn.LessEqualOp: "(i32.le_s {0} {1})",
        nn.GreaterOp: "(i32.gt_s {0} {1})", nn.GreaterEqualOp: "(i32.ge_s {0} {1})",
        nn.ReluOp: "(select {0} (i32.const 0) (i32.gt_s {0} (i32.const 0)))", nn.NegOp: "(i32.sub (i32.const 0) {0})",
        nn.AbsOp: "(select {0} (i32.sub (i32.const 0) {0}) (i32.ge_s {0} (i32.const 0)))",
        nn.SignOp: "(i32.sub (i32.gt_s {0} (i32.const 0)) (i32.lt_s {0} (i32.const 0)))",
        nn.FloorOp: "{0}", nn.CeilOp: "{0}", nn.RoundOp: "{0}",
        IndexDiv: "(i32.div_u {0} {1})", IndexMod: "(i32.rem_u {0} {1})",
    },
    "b": {
        nn.AndOp: "(i32.and {0} {1})", nn.OrOp: "(i32.or {0} {1})", nn.XorOp: "(i32.xor {0} {1})",
        nn.NotOp: "(i32.xor {0} (i32.const 1))", nn.MaxOp: "(i32.or {0} {1})", nn.MinOp: "(i32.and {0} {1})",
        nn.EqualOp: "(i32.eq {0} {1})",
    },
}  # fmt: skip
"""Scalar ops by operand family (booleans are i32 0 / 1; integer `/` truncates and traps on zero)."""

CONVERSIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("f", "i"): ("(i32.trunc_sat_f32_s {0})", "(i32x4.trunc_sat_f32x4_s {0})"),
    ("i", "f"): ("(f32.convert_i32_s {0})", "(f32x4.convert_i32x4_s {0})"),
    ("b", "f"): ("(f32.convert_i32_u {0})", "(v128.and {0} (v128.const f32x4 1 1 1 1))"),
    ("b", "i"): ("{0}", "(i32x4.neg {0})"),
    ("f", "b"): ("(f32.ne {0} (f32.const 0))", "(f32x4.ne {0} (v128.const f32x4 0 0 0 0))"),
    ("i", "b"): ("(i32.ne {0} (i32.const 0))", "(i32x4.ne {0} (v128.const i32x4 0 0 0 0))"),
    ("i", "i"): ("{0}", "{0}"), ("f", "f"): ("{0}", "{0}"), ("b", "b"): ("{0}", "{0}"),
}  # fmt: skip
"""(scalar, vector) text of each element conversion by (from family, to family)."""

LANE_SHAPE = {"f": "f32x4", "i": "i32x4", "b": "i32x4"}


def family(dtype: str) -> str:
    """`f`, `i` or `b`: which op table serves a dtype; `NnjitError` for dtypes Wasm kernels do not compute."""
    if dtype not in WASM_TYPE:
        raise NnjitError(f"element type {dtype} is not supported by the wasm target")
    return "b" if dtype == "bool" else "f" if dtype == "f32" else "i"


def literal(value: float | int | bool, dtype: str) -> str:
    """A scalar WAT constant of `dtype`."""
    kind = family(dtype)
    if kind == "f":
        return f"(f32.const {fconst(float(value))})"
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise NnjitError(f"constant {number} does not fit the wasm target's i32")
    return f"(i32.const {number})"


def vector_literal(value: float | int | bool, dtype: str) -> str:
    """A v128 constant with `value` in every lane (booleans as lane masks)."""
    kind = family(dtype)
    if kind == "f":
        text = fconst(float(value))
        return f"(v128.const f32x4 {text} {text} {text} {text})"
    number = -1 if kind == "b" and value else int(value)
    literal(number, "i32")
    return f"(v128.const i32x4 {number} {number} {number} {number})"


class Body:
    """One function's statements, locals and common-subexpression scopes; names come from a counter."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.locals: dict[str, str] = {}
        self.scopes: list[dict[Hashable, str]] = [{}]
        self.depth = 0
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        """A new `$<prefix><n>` name."""
        self.counter += 1
        return f"${prefix}{self.counter}"

    def local(self, prefix: str, wasm_type: str) -> str:
        """Declare a new local of `wasm_type` and return its name."""
        name = self.fresh(prefix)
        self.locals[name] = wasm_type
        return name

    def line(self, text: str) -> None:
        """Append one statement at the current nesting."""
        self.lines.append("  " * (self.depth + 1) + text)

    def open(self, text: str) -> None:
        """Start a nested construct (`(block $b`, `(then`, ...) and a new scope."""
        self.line(text)
        self.depth += 1
        self.scopes.append({})

    def close(self) -> None:
        """End the innermost construct."""
        self.scopes.pop()
        self.depth -= 1
        self.line(")")

    def known(self, key: Hashable) -> str | None:
        """The local holding `key` if an enclosing scope computed it."""
        for scope in reversed(self.scopes):
            if key in scope:
                return scope[key]
        return None

    def remember(self, key: Hashable, name: str) -> None:
        """Record that `name` holds `key` in the current scope."""
        self.scopes[-1][key] = name


class Renderer:
    """WAT for expression trees of one kernel; `bases[i]` is the byte address of argument buffer `i`."""

    def __init__(self, body: Body, bases: Sequence[int], relaxed: bool):
        self.body = body
        self.bases = list(bases)
        self.relaxed = relaxed
        self.lanes: LaneAnalysis | None = None
        self.vectors: set[str] = set()
        self.helpers: set[str] = set()
        self.loop_depth: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self._reads: dict[Expr, bool] = {}
        self._mutables: dict[Expr, tuple[str, ...]] = {}

    # --- scalars ---

    def scalar(self, expr: Expr, lane: int | None = None) -> str:
        """A scalar operand for `expr` (on vector lane `lane` where it reads vector variables)."""
        if isinstance(expr, Const):
            return literal(expr.value, expr.dtype)
        if isinstance(expr, Var):
            if expr.name not in self.vectors:
                return f"(local.get {expr.name})"
            if lane is None:
                raise NnjitError(f"wasm printer: vector {expr.name} read as a scalar")
            return self._extract(f"(local.get {expr.name})", expr.dtype, lane)
        key = ("s", expr, lane if self._reads_vectors(expr) else None, self._version(expr))
        name = self.body.known(key)
        if name is None:
            text = self._scalar(expr, lane)
            name = self.bind(text, WASM_TYPE.get(expr.dtype, "i32"))
            self.body.remember(key, name)
        return f"(local.get {name})"

    def bind(self, text: str, wasm_type: str, prefix: str = "v") -> str:
        """`(local.set $new text)`; returns the local's name."""
        name = self.body.local(prefix, wasm_type)
        self.body.line(f"(local.set {name} {text})")
        return name

    # --- mutable variables (accumulators): a value cached before an assignment is stale after it ---

    def mutable(self, name: str) -> None:
        """Declare `name` a variable that `assign` changes (an accumulator)."""
        self.versions[name] = 0

    def assign(self, name: str, text: str) -> None:
        """`(local.set name text)`; subexpressions read before it are not reused after it."""
        self.body.line(f"(local.set {name} {text})")
        self.versions[name] += 1

    def _version(self, expr: Expr) -> tuple[int, ...]:
        if expr not in self._mutables:
            if isinstance(expr, Var):
                self._mutables[expr] = (expr.name,) if expr.name in self.versions else ()
            else:
                self._mutables[expr] = tuple(sorted({n for c in children(expr) for n in self._mutable_names(c)}))
        return tuple(self.versions[name] for name in self._mutables[expr])

    def _mutable_names(self, expr: Expr) -> tuple[str, ...]:
        self._version(expr)
        return self._mutables[expr]

    def _reads_vectors(self, expr: Expr) -> bool:
        if expr not in self._reads:
            self._reads[expr] = (
                expr.name in self.vectors
                if isinstance(expr, Var)
                else any(self._reads_vectors(c) for c in children(expr))
            )
        return self._reads[expr]

    @singledispatchmethod
    def _scalar(self, expr: Expr, lane: int | None) -> str:
        raise NnjitError(f"the wasm printer cannot render {type(expr).__name__}")

    @_scalar.register
    def _(self, expr: Load, lane: int | None) -> str:
        dynamic, offset = self.address(self.bases[expr.buffer], expr.index, lane)
        return f"({'f32' if family(expr.dtype) == 'f' else 'i32'}.load offset={offset} {dynamic})"

    @_scalar.register
    def _(self, expr: Apply, lane: int | None) -> str:
        text = self._op_text(SCALAR_OPS, expr)
        return text.format(*(self.scalar(a, lane) for a in expr.args))

    @_scalar.register
    def _(self, expr: Select, lane: int | None) -> str:
        if safe_select(expr):
            return f"(select {self.scalar(expr.on_true, lane)} {self.scalar(expr.on_false, lane)} {self.scalar(expr.cond, lane)})"
        wasm_type = WASM_TYPE[expr.dtype]
        result = self.body.local("s", wasm_type)
        self.branch(self.scalar(expr.cond, lane),
                    lambda: self.body.line(f"(local.set {result} {self.scalar(expr.on_true, lane)})"),
                    lambda: self.body.line(f"(local.set {result} {self.scalar(expr.on_false, lane)})"))  # fmt: skip
        return f"(local.get {result})"

    @_scalar.register
    def _(self, expr: Convert, lane: int | None) -> str:
        return CONVERSIONS[(family(expr.arg.dtype), family(expr.dtype))][0].format(self.scalar(expr.arg, lane))

    def _op_text(self, tables: dict[str, dict[type, str]], expr: Apply) -> str:
        table = tables[family(expr.args[0].dtype)]
        if expr.op not in table:
            name = getattr(expr.op, "name", expr.op.__name__)
            raise NnjitError(f"{name} on {expr.args[0].dtype} is not supported by the wasm target")
        text = table[expr.op]
        if "(call $" in text:
            self.helpers.add(text.split("(call $")[1].split(" ")[0])
        return text

    def _extract(self, vector: str, dtype: str, lane: int) -> str:
        kind = family(dtype)
        text = f"({LANE_SHAPE[kind]}.extract_lane {lane} {vector})"
        return f"(i32.and {text} (i32.const 1))" if kind == "b" else text

    # --- control flow the renderers and templates share ---

    def branch(self, cond: str, then: Callable[[], None], otherwise: Callable[[], None] | None = None) -> None:
        """`(if cond (then ...) (else ...))`, each branch in its own scope."""
        self.body.open(f"(if {cond}")
        self.body.open("(then")
        then()
        self.body.close()
        if otherwise is not None:
            self.body.open("(else")
            otherwise()
            self.body.close()
        self.body.close()

    def loop(self, start: int | str, end: int | str, step: int, body: Callable[[Var], object],
             bound: int | None = None, prefix: str = "i") -> str | None:  # fmt: skip
        """`for (v = start; v < end; v += step) body(v)`; `start` and `end` may be WAT i32 expressions.

        Returns the loop variable's local (after the loop: the first value not run), or None when a
        static range is empty and nothing is printed.
        """
        if isinstance(start, int) and isinstance(end, int) and start >= end:
            return None
        var = self.body.local(prefix, "i32")
        self.loop_depth[var] = self.body.depth + 1
        start_text = literal(start, INDEX) if isinstance(start, int) else start
        end_text = literal(end, INDEX) if isinstance(end, int) else end
        self.body.line(f"(local.set {var} {start_text})")
        exit_label, repeat_label = self.body.fresh("b"), self.body.fresh("l")
        self.body.open(f"(block {exit_label}")
        self.body.open(f"(loop {repeat_label}")
        if not (isinstance(start, int) and isinstance(end, int)):
            self.body.line(f"(br_if {exit_label} (i32.ge_s (local.get {var}) {end_text}))")
        body(Var(INDEX, var, bound))
        self.body.line(f"(br_if {repeat_label} (i32.lt_s (local.tee {var} (i32.add (local.get {var}) "
                       f"{literal(step, INDEX)})) {end_text}))")  # fmt: skip
        self.body.close()
        self.body.close()
        return var

    # --- addresses ---

    def address(self, base: int, index: Expr, lane: int | None = None) -> tuple[str, int]:
        """`(dynamic byte address, offset immediate)` of element `index` of the buffer at byte `base`.

        The constant term of the index and the buffer's base fold into the offset immediate; terms
        are summed outer loop first, so the loop-invariant prefix is one subexpression.
        """
        terms, constant = linear_terms(index)
        if any(c < 0 for _, c in terms) or base + 4 * constant < 0:
            return self.scalar(mul(index, const(4)), lane), base
        terms.sort(key=lambda term: self._depth(term[0]))
        dynamic: Expr = const(0)
        for factor, coefficient in terms:
            dynamic = add(dynamic, mul(factor, const(4 * coefficient)))
        return self.scalar(dynamic, lane), base + 4 * constant

    def _depth(self, expr: Expr) -> int:
        if isinstance(expr, Var):
            return self.loop_depth.get(expr.name, 0)
        return max((self._depth(c) for c in children(expr)), default=0)

    # --- vectors ---

    def vector(self, expr: Expr) -> str:
        """A v128 operand for `expr` over the lanes of the current `LaneAnalysis`."""
        if isinstance(expr, Const):
            return vector_literal(expr.value, expr.dtype)
        if isinstance(expr, Var) and expr.name in self.vectors:
            return f"(local.get {expr.name})"
        lanes = self.lanes
        assert lanes is not None, "vector rendering needs a lane variable"
        key = ("v", expr, self._version(expr))
        name = self.body.known(key)
        if name is None:
            name = self.bind(self._vector(expr, lanes), "v128")
            self.body.remember(key, name)
        return f"(local.get {name})"

    def _vector(self, expr: Expr, lanes: LaneAnalysis) -> str:
        kind = family(expr.dtype)
        if isinstance(expr, Load):  # a uniform load is `v128.load32_splat`: the broadcast is the load
            return self._vector_load(expr, lanes)
        if not lanes.contains(expr) and not self._reads_vectors(expr):
            scalar = self.scalar(expr)
            return f"(i32x4.neg (i32x4.splat {scalar}))" if kind == "b" else f"({LANE_SHAPE[kind]}.splat {scalar})"
        if expr.dtype == INDEX and not isinstance(expr, Load):
            stride = lanes.stride(expr)
            if stride is not None:
                ramp = " ".join(str(stride.step * lane) for lane in range(LANES))
                return f"(i32x4.add (i32x4.splat {self.scalar(expr)}) (v128.const i32x4 {ramp}))"
        if isinstance(expr, Apply):
            table = VECTOR_OPS[family(expr.args[0].dtype)]
            if expr.op in table:
                text = self._op_text(VECTOR_OPS, expr)
                return text.format(*(self.vector(a) for a in expr.args))
            return self._per_lane_op(expr)
        if isinstance(expr, Select):
            return self._vector_select(expr, lanes)
        if isinstance(expr, Convert):
            return CONVERSIONS[(family(expr.arg.dtype), kind)][1].format(self.vector(expr.arg))
        return self.lanewise(expr)

    def _vector_load(self, expr: Load, lanes: LaneAnalysis) -> str:
        stride, base = lanes.stride(expr.index), self.bases[expr.buffer]
        mask = family(expr.dtype) == "b"
        dynamic, offset = self.address(base, expr.index)
        if stride is not None and stride.step in (0, 1):
            text = f"(v128.load{'32_splat' if stride.step == 0 else ''} offset={offset} {dynamic})"
        else:
            text = f"(v128.load32_splat offset={offset} {dynamic})"
            for lane in range(1, LANES):
                dynamic, offset = self.address(base, at_lane(expr.index, lanes.var, lane))
                text = f"(v128.load32_lane offset={offset} {lane} {dynamic} {text})"
        return f"(i32x4.neg {text})" if mask else text

    def _per_lane_op(self, expr: Apply) -> str:
        """An op without a SIMD form: the scalar op on each lane of the vector operands."""
        args = [self.vector(a) for a in expr.args]
        text = self._op_text(SCALAR_OPS, expr)
        values = [text.format(*(self._extract(a, e.dtype, lane) for a, e in zip(args, expr.args, strict=True)))
                  for lane in range(LANES)]  # fmt: skip
        return self.combine(values, expr.dtype)

    def _vector_select(self, expr: Select, lanes: LaneAnalysis) -> str:
        if safe_select(expr):
            return f"(v128.bitselect {self.vector(expr.on_true)} {self.vector(expr.on_false)} {self.vector(expr.cond)})"
        result = self.body.local("s", "v128")

        def assign(value: Expr) -> Callable[[], None]:
            return lambda: self.body.line(f"(local.set {result} {self.vector(value)})")

        if lanes.uniform(expr.cond):
            self.branch(self.scalar(expr.cond), assign(expr.on_true), assign(expr.on_false))
            return f"(local.get {result})"
        # Decided per vector at run time: all lanes one way (the common case), else lane by lane.
        mask = self.vector(expr.cond)
        self.branch(f"(i32x4.all_true {mask})", assign(expr.on_true), lambda: self.branch(
            f"(v128.any_true {mask})",
            lambda: self.body.line(f"(local.set {result} {self.lanewise(expr)})"),
            assign(expr.on_false)))  # fmt: skip
        return f"(local.get {result})"

    def lanewise(self, expr: Expr) -> str:
        """`expr` computed lane by lane as scalars (the lane variable shifted per lane), as a v128."""
        lanes = self.lanes
        assert lanes is not None
        return self.combine([self.scalar(at_lane(expr, lanes.var, lane), lane) for lane in range(LANES)], expr.dtype)

    def combine(self, scalars: Sequence[str], dtype: str) -> str:
        """Four scalars of `dtype` as one v128 (booleans as a mask)."""
        kind = family(dtype)
        shape = LANE_SHAPE[kind]
        text = f"({shape}.splat {scalars[0]})"
        for lane in range(1, LANES):
            text = f"({shape}.replace_lane {lane} {text} {scalars[lane]})"
        return f"(i32x4.neg {text})" if kind == "b" else text

    # --- stores ---

    def store(self, base: int, index: Expr, value: Expr, vector: bool = False, lane: int | None = None) -> None:
        """Write `value` (scalar, or its 4 lanes with `vector`) at element `index` of the buffer at byte `base`."""
        if not vector:
            text = self.scalar(value, lane)
            dynamic, offset = self.address(base, index, lane)
            self.body.line(f"({'f32' if family(value.dtype) == 'f' else 'i32'}.store offset={offset} {dynamic} {text})")
            return
        lanes = self.lanes
        assert lanes is not None
        text = self.vector(value)
        if family(value.dtype) == "b":
            text = f"(i32x4.neg {text})"
        stride = lanes.stride(index)
        if stride is not None and stride.step == 1:
            dynamic, offset = self.address(base, index)
            self.body.line(f"(v128.store offset={offset} {dynamic} {text})")
            return
        vec = self.bind(text, "v128")
        for lane_index in range(LANES):
            dynamic, offset = self.address(base, at_lane(index, lanes.var, lane_index))
            self.body.line(f"(v128.store32_lane offset={offset} {lane_index} {dynamic} (local.get {vec}))")

    def fma(self, a: str, b: str, acc: str) -> str:
        """`acc + a * b` on f32x4: `f32x4.relaxed_madd` where the module allows relaxed SIMD."""
        return f"(f32x4.relaxed_madd {a} {b} {acc})" if self.relaxed else f"(f32x4.add {acc} (f32x4.mul {a} {b}))"
