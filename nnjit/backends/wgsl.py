"""WGSL for `web.kernel`s: one compute shader per kernel, printed from expression trees.

`WgslPrinter(kernel).emit()` returns the shader of one kernel; `kernel_grid(kernel)` the workgroup
counts to dispatch it with. Bindings: block argument `i` at `@binding(i)` (read-only), the output at
`@binding(len(args))`; storage is `f32` for f32, `i32` for i32 and i64, `u32` (0/1) for i1.
The `nnjit-wgsl` target (`nnjit-opt m.mlir -t nnjit-wgsl`) prints every kernel of a module.

The printer decides nothing: the code shape comes from the kernel's `template`, every size from its
`#web.schedule` and its types. Values come from `nnjit.backends.indexing` trees, rendered by one
handler per node family with per-op text from the tables below; every non-leaf node becomes one
`let` (equal subtrees once per scope). Identifiers come from counters. Templates and what they read:

* `elementwise`, `reduce`, `scan`, `conv2d`, `pool`: one thread per output element (per line for a
  scan), `unroll` contiguous ones per thread, straight-line; `workgroup` (flattened) threads per
  workgroup; the grid goes 2-D past 65535 workgroups (`GRID_LIMIT`).
* `matmul` (`wgsl_matmul.py`): `tile` [m, n, k] per workgroup, `thread` [m, n] accumulators per
  thread as named variables (`vector = N` > 1: vecN accumulators along n), K in steps of tile k,
  `unroll` k-steps printed straight-line per loop iteration (`unroll = tile k`: the whole tile);
  `shared = true` stages A and B tiles in workgroup memory.
* `row_reduce`: one workgroup per row, its threads stride over the row, a straight-line tree
  reduction in workgroup memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatchmethod
from typing import IO

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.utils.target import Target

from nnjit.backends.indexing import (
    INDEX,
    Apply,
    Const,
    Convert,
    Expr,
    IndexDiv,
    IndexMod,
    KernelIndexer,
    Leaf,
    Load,
    Select,
    Var,
    is_float,
    unflatten,
    value_kind,
)
from nnjit.dialects import nn
from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError

GRID_LIMIT = 65535
"""WebGPU's default maxComputeWorkgroupsPerDimension."""

WGSL_TYPE = {"f32": "f32", "i32": "i32", "i64": "i32", "bool": "bool"}
"""The WGSL type computing with each expression dtype; other dtypes are not supported."""
STORAGE_TYPE = {"f32": "f32", "i32": "i32", "i64": "i32", "bool": "u32"}
"""The element type of the storage buffer of each tensor dtype."""

FLOAT_OPS: dict[type, str] = {
    nn.AddOp: "({0} + {1})", nn.SubOp: "({0} - {1})", nn.MulOp: "({0} * {1})", nn.DivOp: "({0} / {1})",
    nn.PowOp: "nn_pow({0}, {1})", nn.MaxOp: "max({0}, {1})", nn.MinOp: "min({0}, {1})", nn.ModOp: "nn_fmod({0}, {1})",
    nn.EqualOp: "({0} == {1})", nn.LessOp: "({0} < {1})", nn.LessEqualOp: "({0} <= {1})",
    nn.GreaterOp: "({0} > {1})", nn.GreaterEqualOp: "({0} >= {1})",
    nn.ExpOp: "exp({0})", nn.LogOp: "log({0})", nn.SqrtOp: "sqrt({0})", nn.RsqrtOp: "inverseSqrt({0})",
    nn.TanhOp: "tanh(clamp({0}, -15.0f, 15.0f))",  # tanh(15) is 1.0 in f32; some drivers give NaN past ~89
    nn.ErfOp: "nn_erf({0})", nn.SigmoidOp: "(1.0f / (1.0f + exp(-{0})))", nn.ReluOp: "max({0}, 0.0f)",
    nn.NegOp: "(-{0})", nn.ReciprocalOp: "(1.0f / {0})", nn.AbsOp: "abs({0})", nn.SinOp: "sin({0})",
    nn.CosOp: "cos({0})", nn.FloorOp: "floor({0})", nn.CeilOp: "ceil({0})", nn.RoundOp: "round({0})",
    nn.SignOp: "sign({0})",
}  # fmt: skip
"""f32 ops; `round` is half-to-even in WGSL, as in ONNX."""

INT_OPS: dict[type, str] = {
    nn.AddOp: "({0} + {1})", nn.SubOp: "({0} - {1})", nn.MulOp: "({0} * {1})", nn.DivOp: "({0} / {1})",
    nn.PowOp: "nn_ipow({0}, {1})", nn.MaxOp: "max({0}, {1})", nn.MinOp: "min({0}, {1})", nn.ModOp: "nn_imod({0}, {1})",
    nn.EqualOp: "({0} == {1})", nn.LessOp: "({0} < {1})", nn.LessEqualOp: "({0} <= {1})",
    nn.GreaterOp: "({0} > {1})", nn.GreaterEqualOp: "({0} >= {1})",
    nn.ReluOp: "max({0}, 0i)", nn.NegOp: "(-{0})", nn.AbsOp: "abs({0})", nn.SignOp: "sign({0})",
    nn.FloorOp: "{0}", nn.CeilOp: "{0}", nn.RoundOp: "{0}",
    IndexDiv: "({0} / {1})", IndexMod: "({0} % {1})",
}  # fmt: skip
"""i32 ops (i64 tensors compute in i32); integer `/` truncates toward zero, as ONNX Div."""

BOOL_OPS: dict[type, str] = {
    nn.AndOp: "({0} && {1})", nn.OrOp: "({0} || {1})", nn.XorOp: "({0} != {1})", nn.NotOp: "(!{0})",
    nn.MaxOp: "({0} || {1})", nn.MinOp: "({0} && {1})", nn.EqualOp: "({0} == {1})",
}  # fmt: skip
"""Ops on `bool`."""

CONVERSIONS: dict[tuple[str, str], str] = {
    ("f", "i"): "i32({0})", ("i", "f"): "f32({0})", ("b", "f"): "f32({0})", ("b", "i"): "i32({0})",
    ("f", "b"): "({0} != 0.0f)", ("i", "b"): "({0} != 0i)", ("i", "i"): "{0}", ("f", "f"): "{0}",
}  # fmt: skip
"""Element type conversions by (from family, to family); WGSL's f32 -> i32 truncates toward zero."""

NON_FINITE = "nn_f32_bits"
"""The helper that makes inf / NaN literals run-time values."""

HELPERS: dict[str, str] = {
    NON_FINITE: f"fn {NON_FINITE}(bits: u32) -> f32 {{\n  return bitcast<f32>(bits);\n}}",
    # erf: |x| < 0.5 by its Maclaurin series to x^11 (truncation < 2e-8); otherwise Abramowitz &
    # Stegun 7.1.26, |error| <= 1.5e-7. Max error in f32 about 2e-7 absolute, 4e-7 relative.
    "nn_erf": """fn nn_erf(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.5f) {
    let z = x * x;
    return x * (1.1283791671f + z * (-0.3761263890f + z * (0.1128379167f + z * (-0.0268661706f + z * (0.0052239776f + z * (-0.0008548327f))))));
  }
  let t = 1.0f / (1.0f + 0.3275911f * a);
  let p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  return sign(x) * (1.0f - p * exp(-a * a));
}""",
    # pow as C99 / numpy: negative bases (and -0) to integral powers keep the sign of odd powers,
    # to non-integral powers give NaN; 0 to negative powers is inf.
    "nn_pow": """fn nn_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0f) { return 1.0f; }
  if (y == 2.0f) { return x * x; }
  let p = select(pow(abs(x), y), select(0.0f, bitcast<f32>(0x7f800000u), y < 0.0f), x == 0.0f);
  if ((bitcast<u32>(x) >> 31u) == 0u) { return p; }
  if (y != floor(y)) { return select(bitcast<f32>(0x7fc00000u), p, x == 0.0f); }
  return select(p, -p, fract(y * 0.5f) != 0.0f);
}""",
    # remainders with the sign of the divisor (ONNX Mod, fmod = 0)
    "nn_fmod": """fn nn_fmod(a: f32, b: f32) -> f32 {
  let r = a - b * trunc(a / b);
  return select(r, r + b, r != 0.0f && (r < 0.0f) != (b < 0.0f));
}""",
    # (NVIDIA's Vulkan driver gets `%` wrong for negative operands; `/` truncates correctly)
    "nn_imod": """fn nn_imod(a: i32, b: i32) -> i32 {
  let r = a - b * (a / b);
  return select(r, r + b, r != 0i && (r < 0i) != (b < 0i));
}""",
    # integer power by squaring; a negative exponent truncates the float power toward zero
    "nn_ipow": """fn nn_ipow(x: i32, y: i32) -> i32 {
  if (y < 0i) { return select(0i, select(1i, -1i, x == -1i && (y & 1i) != 0i), abs(x) == 1i); }
  var r = 1i;
  var b = x;
  var e = y;
  loop {
    if (e == 0i) { break; }
    if ((e & 1i) != 0i) { r = r * b; }
    b = b * b;
    e = e >> 1u;
  }
  return r;
}""",
}
"""Functions without a WGSL builtin, printed once before a shader that calls them."""


RESERVED = frozenset(f"{kind}{width}" for kind in "iuf" for width in (8, 16, 32, 64))
"""Counter names that would spell a WGSL type."""


def family(dtype: str) -> str:
    """`f`, `i` or `b`: which op table serves a dtype."""
    if dtype == "bool":
        return "b"
    return "f" if is_float(dtype) else "i"


def wgsl_type(dtype: str) -> str:
    """The WGSL type of an expression dtype, or `NnjitError` for f16/f64 and narrow integers."""
    if dtype not in WGSL_TYPE:
        raise NnjitError(f"element type {dtype} is not supported by the webgpu target")
    return WGSL_TYPE[dtype]


def literal(value: float | int | bool, dtype: str) -> str:
    """A WGSL literal of `dtype` (negative values parenthesised; inf and NaN as bit patterns)."""
    kind = family(dtype)
    if kind == "b":
        return "true" if value else "false"
    if kind == "f":
        import numpy as np

        number = float(np.float32(value))
        if math.isnan(number) or math.isinf(number):
            # Through a function call: WGSL const-expressions may not produce inf or NaN (Tint rejects
            # `bitcast<f32>(0x7f800000u)`), and a user function's result is never a const-expression.
            bits = "0x7fc00000u" if math.isnan(number) else ("0x7f800000u" if number > 0 else "0xff800000u")
            return f"{NON_FINITE}({bits})"
        text = repr(number) + "f"
        return f"({text})" if number < 0 else text
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise NnjitError(f"constant {number} does not fit the webgpu target's i32")
    if number == -(2**31):
        return "(-2147483647i - 1i)"
    return f"({number}i)" if number < 0 else f"{number}i"


def fma_text(dtype: str, a: str, b: str, acc: str) -> str:
    """`acc + a * b` (fused for floats)."""
    return f"fma({a}, {b}, {acc})" if is_float(dtype) else f"({acc} + {a} * {b})"


def grid_2d(groups: int) -> tuple[int, int]:
    """Workgroup counts `(x, y)` with `x * y >= groups`, each within `GRID_LIMIT`."""
    if groups <= GRID_LIMIT:
        return groups, 1
    rows = -(-groups // GRID_LIMIT)
    return -(-groups // rows), rows


def kernel_grid(kernel: KernelOp) -> tuple[int, int, int]:
    """Workgroups to dispatch `kernel` with, from its template, schedule and types."""
    from nnjit.backends.wgsl_templates import GRIDS

    if kernel.template.data not in GRIDS:
        raise NnjitError(f"the webgpu target has no template '{kernel.template.data}'")
    return GRIDS[kernel.template.data](kernel)


class Code:
    """Lines of a function body with block scopes; each scope remembers the `let`s printed in it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.scopes: list[dict[Expr, str]] = [{}]
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        """A new identifier `<prefix><n>`."""
        self.counter += 1
        name = f"{prefix}{self.counter}"
        return f"{name}_" if name in RESERVED else name  # `i32`, `f16`, ... are WGSL types

    def line(self, text: str) -> None:
        """Append one statement at the current depth."""
        self.lines.append("  " * len(self.scopes) + text)

    def open(self, header: str = "") -> None:
        """Start a `header {` block (a bare `{` without header) and a new scope."""
        self.line(f"{header} {{" if header else "{")
        self.scopes.append({})

    def close(self) -> None:
        """End the innermost block."""
        self.scopes.pop()
        self.line("}")

    def known(self, expr: Expr) -> str | None:
        """The name of `expr` if an enclosing scope printed it."""
        for scope in reversed(self.scopes):
            if expr in scope:
                return scope[expr]
        return None

    def bind(self, expr: Expr, text: str) -> str:
        """Print `let v = text;` for `expr` in the current scope and return `v`."""
        name = self.fresh("v")
        self.line(f"let {name} = {text};")
        self.scopes[-1][expr] = name
        return name


@dataclass
class Shader:
    """One printed kernel: its WGSL and its dispatch grid."""

    text: str
    grid: tuple[int, int, int]


class WgslPrinter:
    """Prints one `web.kernel`; make a fresh printer per kernel (all state lives in the instance)."""

    def __init__(self, kernel: KernelOp):
        self.kernel = kernel
        self.schedule = kernel.schedule.values
        self.code = Code()
        self.helpers: dict[str, None] = {}
        self.shared: list[str] = []
        self.args = list(kernel.body.block.args)
        self.out = f"b{len(self.args)}"
        self.out_kind = value_kind(kernel.root)

    def emit(self) -> str:
        """The WGSL of the kernel."""
        from nnjit.backends.wgsl_templates import TEMPLATES

        template = self.kernel.template.data
        if template not in TEMPLATES:
            raise NnjitError(f"the webgpu target has no template '{template}'")
        for value in (*self.args, self.kernel.root):
            wgsl_type(value_kind(value))
        TEMPLATES[template](self)
        if any(f"{NON_FINITE}(" in line for line in (*self.code.lines, *self.shared)):
            self.helpers[NON_FINITE] = None
        x, y, z = self.schedule.workgroup
        parts = [HELPERS[name] for name in self.helpers]
        parts.append("\n".join(self._bindings() + self.shared))
        parts.append(
            f"@compute @workgroup_size({x}, {y}, {z})\n"
            "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,\n"
            "        @builtin(local_invocation_index) lidx: u32) {\n" + "\n".join(self.code.lines) + "\n}"
        )
        return "\n\n".join(parts) + "\n"

    def _bindings(self) -> list[str]:
        lines = [
            f"@group(0) @binding({i}) var<storage, read> b{i}: array<{STORAGE_TYPE[value_kind(arg)]}>;"
            for i, arg in enumerate(self.args)
        ]
        lines.append(
            f"@group(0) @binding({len(self.args)}) var<storage, read_write> {self.out}: "
            f"array<{STORAGE_TYPE[self.out_kind]}>;"
        )
        return lines

    # --- expressions ---

    def value(self, expr: Expr) -> str:
        """WGSL text for `expr`: a literal or a name, printing `let`s for its subtrees as needed."""
        if isinstance(expr, Const):
            return literal(expr.value, expr.dtype)
        if isinstance(expr, Var):
            return expr.name
        name = self.code.known(expr)
        return name if name is not None else self.code.bind(expr, self._render(expr))

    @singledispatchmethod
    def _render(self, expr: Expr) -> str:
        raise NnjitError(f"the WGSL printer cannot render {type(expr).__name__}")

    @_render.register
    def _(self, expr: Load) -> str:
        text = f"b{expr.buffer}[{self.value(expr.index)}]"
        return f"({text} != 0u)" if expr.dtype == "bool" else text

    @_render.register
    def _(self, expr: Apply) -> str:
        kind = family(expr.args[0].dtype)
        table = {"f": FLOAT_OPS, "i": INT_OPS, "b": BOOL_OPS}[kind]
        if expr.op not in table:
            name = getattr(expr.op, "name", expr.op.__name__)
            raise NnjitError(f"{name} on {expr.args[0].dtype} is not supported by the webgpu target")
        text = table[expr.op]
        function = text.split("(")[0]
        if function in HELPERS:
            self.helpers[function] = None
        return text.format(*(self.value(a) for a in expr.args))

    @_render.register
    def _(self, expr: Select) -> str:
        return f"select({self.value(expr.on_false)}, {self.value(expr.on_true)}, {self.value(expr.cond)})"

    @_render.register
    def _(self, expr: Convert) -> str:
        key = (family(expr.arg.dtype), family(expr.dtype))
        return CONVERSIONS[key].format(self.value(expr.arg))

    # --- statements the templates share ---

    def store(self, index: Expr, value: Expr) -> None:
        """`out[index] = value`, converting to the output's storage type."""
        text = self.value(value)
        if self.out_kind == "bool":
            text = f"select(0u, 1u, {text})"
        self.code.line(f"{self.out}[{self.value(index)}] = {text};")

    def store_output(self, anchor: SSAValue, leaf: Leaf, flat: Expr) -> None:
        """Write output element `flat` through the epilogue, anchor element `flat` being `leaf`."""
        root = self.kernel.root
        tree = KernelIndexer(self.kernel, {anchor: leaf}).value_at(root, unflatten(flat, nn.tensor_shape(root)))
        self.store(flat, tree)

    def let(self, prefix: str, text: str, dtype: str = INDEX, bound: int | None = None) -> Var:
        """`let <fresh> = text;` as a `Var` the expression trees can use."""
        name = self.code.fresh(prefix)
        self.code.line(f"let {name} = {text};")
        return Var(dtype, name, bound)

    def var(self, prefix: str, type_text: str, init: str) -> str:
        """`var <fresh>: type_text = init;`, returning its name."""
        name = self.code.fresh(prefix)
        self.code.line(f"var {name}: {type_text} = {init};")
        return name

    def per_thread(self, count: int, body: Callable[[Var], None]) -> None:
        """Run `body` for each of `unroll` contiguous items `< count` of this thread (straight-line)."""
        unroll, invocations = self.schedule.unroll, self.schedule.invocations
        grid_x = kernel_grid(self.kernel)[0]
        thread = self.let("t", f"i32((wid.x + wid.y * {grid_x}u) * {invocations}u + lidx)")
        for step in range(unroll):
            index = thread.name if unroll == 1 else f"{thread.name} * {unroll}i + {step}i"
            self.code.open(f"if ({index} < {count}i)")
            body(self.let("i", index, bound=count))
            self.code.close()


def print_kernel(kernel: KernelOp) -> Shader:
    """The WGSL and grid of one kernel (a fresh printer)."""
    return Shader(WgslPrinter(kernel).emit(), kernel_grid(kernel))


@dataclass(frozen=True)
class WgslTarget(Target):
    """`-t nnjit-wgsl`: every `web.kernel` of the module as a WGSL compute shader."""

    name = "nnjit-wgsl"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        for op in module.walk():
            if isinstance(op, KernelOp):
                shader = print_kernel(op)
                output.write(f"// kernel @{op.sym_name.data} grid {list(shader.grid)}\n{shader.text}\n")
