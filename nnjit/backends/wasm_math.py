"""Functions the Wasm printer calls where Wasm has no instruction: SIMD polynomial approximations.

Every transcendental is one `f32x4 -> f32x4` function (scalar code splats, calls and extracts lane
0, so scalar and vector kernels share one approximation and one error bound). Polynomials are the
Cephes single-precision ones, evaluated with `f32x4.mul` + `f32x4.add` (never `relaxed_madd`, so the
error does not depend on the engine). Measured max errors: `benchmarks/wasm_transcendentals.py`,
table in docs/wasm.md.

* `exp`: clamp to [-104, 89] (NaN passes), `n = nearest(x log2 e)`, `r = x - n ln2` (Cody-Waite,
  two parts), degree-6 polynomial, times `2^n` built from exponent bits in two halves so that
  overflow gives inf and underflow gradual denormals.
* `log`: denormals scaled by 2^23; `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)); degree-9
  polynomial in `m - 1`; 0 gives -inf, negatives and NaN give NaN, inf gives inf.
* `tanh`: `x + x^3 P(x^2)` below 0.625, else `1 - 2 / (exp(2|x|) + 1)` with the sign of x.
* `sigmoid`: `1 / (1 + exp(-x))`. `erf`: Maclaurin series below 0.5, Abramowitz-Stegun 7.1.26 above.
* `sin`, `cos`: reduction by pi/2 in three parts, quadrant from `n`, sin/cos polynomials on
  [-pi/4, pi/4] (accuracy degrades past |x| ~ 1e4, as Cephes').
* `pow`: `exp(y log|x|)` with C99 signs (odd integer powers of negatives negative, non-integer NaN),
  `y = 0` gives 1 and `y = 2` gives `x * x`. `sign`, float `mod` (sign of the divisor, computed per
  lane in f64), integer `mod` and `pow` (scalar).
"""

from __future__ import annotations

import numpy as np


def fconst(value: float) -> str:
    """An f32 literal in WAT: exact hex (or nan / inf)."""
    number = float(np.float32(value))
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    return number.hex()


def fsplat(value: float) -> str:
    """A v128 constant with `value` in all four f32 lanes."""
    text = fconst(value)
    return f"(v128.const f32x4 {text} {text} {text} {text})"


def isplat(value: int) -> str:
    """A v128 constant with `value` in all four i32 lanes."""
    return f"(v128.const i32x4 {value} {value} {value} {value})"


def _horner(var: str, target: str, coefficients: list[float]) -> list[str]:
    """`target = ((c0 var + c1) var + c2) ...` as statements."""
    lines = [f"(local.set {target} {fsplat(coefficients[0])})"]
    for c in coefficients[1:]:
        lines.append(f"(local.set {target} (f32x4.add (f32x4.mul (local.get {target}) (local.get {var})) {fsplat(c)}))")
    return lines


def _func(name: str, params: str, result: str, local_names: str, lines: list[str]) -> str:
    words = local_names.split()
    locals_text = "".join(f"\n  (local {name} {kind})" for name, kind in zip(words[::2], words[1::2], strict=True))
    return f"(func ${name} {params} (result {result}){locals_text}\n  " + "\n  ".join(lines) + ")"


def _v(name: str) -> str:
    return f"(local.get ${name})"


_SIGN = isplat(-(2**31))

EXP = _func(
    "nn_exp",
    "(param $x v128)",
    "v128",
    "$n v128 $r v128 $p v128 $e v128 $h v128",
    [
        f"(local.set $x (f32x4.max (f32x4.min {_v('x')} {fsplat(89.0)}) {fsplat(-104.0)}))",
        f"(local.set $n (f32x4.nearest (f32x4.mul {_v('x')} {fsplat(1.4426950408889634)})))",
        f"(local.set $r (f32x4.sub (f32x4.sub {_v('x')} (f32x4.mul {_v('n')} {fsplat(0.693359375)})) "
        f"(f32x4.mul {_v('n')} {fsplat(-2.12194440e-4)})))",
        *_horner(
            "$r",
            "$p",
            [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1],
        ),
        f"(local.set $p (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul {_v('p')} {_v('r')}) {_v('r')}) {_v('r')}) {fsplat(1.0)}))",
        f"(local.set $e (i32x4.trunc_sat_f32x4_s {_v('n')}))",
        f"(local.set $h (i32x4.shr_s {_v('e')} (i32.const 1)))",
        f"(f32x4.mul (f32x4.mul {_v('p')} (i32x4.shl (i32x4.add {_v('h')} {isplat(127)}) (i32.const 23))) "
        f"(i32x4.shl (i32x4.add (i32x4.sub {_v('e')} {_v('h')}) {isplat(127)}) (i32.const 23)))",
    ],
)

LOG = _func(
    "nn_log",
    "(param $x v128)",
    "v128",
    "$s v128 $e v128 $m v128 $t v128 $z v128 $p v128 $k v128 $f v128",
    [
        f"(local.set $k (f32x4.lt {_v('x')} {fsplat(1.1754943508222875e-38)}))",
        f"(local.set $s (v128.bitselect (f32x4.mul {_v('x')} {fsplat(8388608.0)}) {_v('x')} {_v('k')}))",
        f"(local.set $e (i32x4.sub (i32x4.sub (i32x4.shr_u {_v('s')} (i32.const 23)) {isplat(126)}) "
        f"(v128.and {_v('k')} {isplat(23)})))",
        f"(local.set $m (v128.or (v128.and {_v('s')} {isplat(0x007FFFFF)}) {isplat(0x3F000000)}))",
        f"(local.set $k (f32x4.lt {_v('m')} {fsplat(0.707106781186547524)}))",
        f"(local.set $e (i32x4.add {_v('e')} {_v('k')}))",
        f"(local.set $t (f32x4.sub (v128.bitselect (f32x4.add {_v('m')} {_v('m')}) {_v('m')} {_v('k')}) {fsplat(1.0)}))",
        f"(local.set $z (f32x4.mul {_v('t')} {_v('t')}))",
        *_horner(
            "$t",
            "$p",
            [
                7.0376836292e-2,
                -1.1514610310e-1,
                1.1676998740e-1,
                -1.2420140846e-1,
                1.4249322787e-1,
                -1.6668057665e-1,
                2.0000714765e-1,
                -2.4999993993e-1,
                3.3333331174e-1,
            ],
        ),
        f"(local.set $f (f32x4.convert_i32x4_s {_v('e')}))",
        f"(local.set $p (f32x4.mul (f32x4.mul {_v('p')} {_v('t')}) {_v('z')}))",
        f"(local.set $p (f32x4.add {_v('p')} (f32x4.mul {_v('f')} {fsplat(-2.12194440e-4)})))",
        f"(local.set $p (f32x4.sub {_v('p')} (f32x4.mul {_v('z')} {fsplat(0.5)})))",
        f"(local.set $p (f32x4.add (f32x4.add {_v('t')} {_v('p')}) (f32x4.mul {_v('f')} {fsplat(0.693359375)})))",
        f"(local.set $p (v128.bitselect {fsplat(float('-inf'))} {_v('p')} (f32x4.eq {_v('x')} {fsplat(0.0)})))",
        f"(local.set $p (v128.bitselect {fsplat(float('inf'))} {_v('p')} (f32x4.eq {_v('x')} {fsplat(float('inf'))})))",
        f"(v128.bitselect {fsplat(float('nan'))} {_v('p')} (v128.or (f32x4.lt {_v('x')} {fsplat(0.0)}) "
        f"(f32x4.ne {_v('x')} {_v('x')})))",
    ],
)

TANH = _func(
    "nn_tanh",
    "(param $x v128)",
    "v128",
    "$a v128 $z v128 $p v128 $l v128",
    [
        f"(local.set $a (f32x4.abs {_v('x')}))",
        f"(local.set $z (f32x4.mul {_v('x')} {_v('x')}))",
        *_horner(
            "$z", "$p", [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1]
        ),
        f"(local.set $p (f32x4.add (f32x4.mul (f32x4.mul {_v('p')} {_v('z')}) {_v('x')}) {_v('x')}))",
        f"(local.set $l (f32x4.sub {fsplat(1.0)} (f32x4.div {fsplat(2.0)} (f32x4.add (call $nn_exp (f32x4.add {_v('a')} "
        f"{_v('a')})) {fsplat(1.0)}))))",
        f"(local.set $l (v128.or {_v('l')} (v128.and {_v('x')} {_SIGN})))",
        f"(v128.bitselect {_v('p')} {_v('l')} (f32x4.lt {_v('a')} {fsplat(0.625)}))",
    ],
)

SIGMOID = _func("nn_sigmoid", "(param $x v128)", "v128", "", [
    f"(f32x4.div {fsplat(1.0)} (f32x4.add {fsplat(1.0)} (call $nn_exp (f32x4.neg {_v('x')}))))",
])  # fmt: skip

ERF = _func("nn_erf", "(param $x v128)", "v128", "$a v128 $z v128 $p v128 $t v128 $q v128", [
    f"(local.set $a (f32x4.abs {_v('x')}))",
    f"(local.set $z (f32x4.mul {_v('x')} {_v('x')}))",
    *_horner("$z", "$p", [-0.0008548327, 0.0052239776, -0.0268661706, 0.1128379167, -0.3761263890, 1.1283791671]),
    f"(local.set $p (f32x4.mul {_v('p')} {_v('x')}))",
    f"(local.set $t (f32x4.div {fsplat(1.0)} (f32x4.add {fsplat(1.0)} (f32x4.mul {fsplat(0.3275911)} {_v('a')}))))",
    *_horner("$t", "$q", [1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592]),
    f"(local.set $q (f32x4.sub {fsplat(1.0)} (f32x4.mul (f32x4.mul {_v('q')} {_v('t')}) "
    f"(call $nn_exp (f32x4.neg (f32x4.mul {_v('a')} {_v('a')}))))))",
    f"(local.set $q (v128.or {_v('q')} (v128.and {_v('x')} {_SIGN})))",
    f"(v128.bitselect {_v('p')} {_v('q')} (f32x4.lt {_v('a')} {fsplat(0.5)}))",
])  # fmt: skip

SINCOS = _func("nn_sincos", "(param $x v128) (param $quadrant i32)", "v128", "$n v128 $r v128 $z v128 $s v128 $c v128 $q v128", [
    f"(local.set $n (f32x4.nearest (f32x4.mul {_v('x')} {fsplat(0.6366197723675814)})))",
    f"(local.set $r (f32x4.sub {_v('x')} (f32x4.mul {_v('n')} {fsplat(1.5703125)})))",
    f"(local.set $r (f32x4.sub {_v('r')} (f32x4.mul {_v('n')} {fsplat(4.837512969970703125e-4)})))",
    f"(local.set $r (f32x4.sub {_v('r')} (f32x4.mul {_v('n')} {fsplat(7.54978995489188216e-8)})))",
    f"(local.set $q (i32x4.add (i32x4.trunc_sat_f32x4_s {_v('n')}) (i32x4.splat {_v('quadrant')})))",
    f"(local.set $z (f32x4.mul {_v('r')} {_v('r')}))",
    *_horner("$z", "$s", [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1]),
    f"(local.set $s (f32x4.add (f32x4.mul (f32x4.mul {_v('s')} {_v('z')}) {_v('r')}) {_v('r')}))",
    *_horner("$z", "$c", [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2]),
    f"(local.set $c (f32x4.add (f32x4.sub {fsplat(1.0)} (f32x4.mul {fsplat(0.5)} {_v('z')})) "
    f"(f32x4.mul (f32x4.mul {_v('c')} {_v('z')}) {_v('z')})))",
    f"(local.set $s (v128.bitselect {_v('c')} {_v('s')} (i32x4.ne (v128.and {_v('q')} {isplat(1)}) {isplat(0)})))",
    f"(v128.xor {_v('s')} (i32x4.shl (v128.and {_v('q')} {isplat(2)}) (i32.const 30)))",
])  # fmt: skip

SIN = _func("nn_sin", "(param $x v128)", "v128", "", ["(call $nn_sincos (local.get $x) (i32.const 0))"])
COS = _func("nn_cos", "(param $x v128)", "v128", "", ["(call $nn_sincos (local.get $x) (i32.const 1))"])

POW = _func("nn_pow", "(param $x v128) (param $y v128)", "v128", "$p v128 $n v128 $t v128", [
    f"(local.set $p (call $nn_exp (f32x4.mul {_v('y')} (call $nn_log (f32x4.abs {_v('x')})))))",
    f"(local.set $n (f32x4.lt {_v('x')} {fsplat(0.0)}))",
    f"(local.set $t (f32x4.trunc {_v('y')}))",
    # negative base: NaN unless y is an integer, negative for odd y
    f"(local.set $p (v128.bitselect {fsplat(float('nan'))} {_v('p')} (v128.and {_v('n')} (f32x4.ne {_v('t')} {_v('y')}))))",
    # odd integer powers of negative bases, -0 included (pow(-0, -1) = -inf), are negative
    f"(local.set $p (v128.bitselect (f32x4.neg {_v('p')}) {_v('p')} (v128.and (i32x4.lt_s {_v('x')} {isplat(0)}) (f32x4.ne (f32x4.trunc "
    f"(f32x4.mul {_v('y')} {fsplat(0.5)})) (f32x4.mul {_v('y')} {fsplat(0.5)})))))",
    f"(local.set $p (v128.bitselect (f32x4.mul {_v('x')} {_v('x')}) {_v('p')} (f32x4.eq {_v('y')} {fsplat(2.0)})))",
    f"(v128.bitselect {fsplat(1.0)} {_v('p')} (f32x4.eq {_v('y')} {fsplat(0.0)}))",
])  # fmt: skip

SIGN = _func("nn_sign", "(param $x v128)", "v128", "", [
    f"(v128.bitselect (v128.or (v128.and {_v('x')} {_SIGN}) {fsplat(1.0)}) {_v('x')} "
    f"(v128.and (f32x4.ne {_v('x')} {fsplat(0.0)}) (f32x4.eq {_v('x')} {_v('x')})))",
])  # fmt: skip

# Remainder with the sign of the divisor (numpy / ONNX Mod, fmod = 0), in f64 so the product is exact.
FMOD_SCALAR = _func("nn_fmod_s", "(param $a f32) (param $b f32)", "f32", "$x f64 $y f64 $r f64", [
    "(local.set $x (f64.promote_f32 (local.get $a)))",
    "(local.set $y (f64.promote_f32 (local.get $b)))",
    "(local.set $r (f64.sub (local.get $x) (f64.mul (local.get $y) (f64.trunc (f64.div (local.get $x) (local.get $y))))))",
    "(f32.demote_f64 (select (f64.add (local.get $r) (local.get $y)) (local.get $r) (i32.and (f64.ne (local.get $r) "
    "(f64.const 0)) (i32.ne (f64.lt (local.get $r) (f64.const 0)) (f64.lt (local.get $y) (f64.const 0))))))",
])  # fmt: skip


def _fmod_lanes() -> str:
    calls = [f"(call $nn_fmod_s (f32x4.extract_lane {lane} (local.get $a)) (f32x4.extract_lane {lane} (local.get $b)))"
             for lane in range(4)]  # fmt: skip
    text = f"(f32x4.splat {calls[0]})"
    for lane in range(1, 4):
        text = f"(f32x4.replace_lane {lane} {text} {calls[lane]})"
    return text


FMOD = _func("nn_fmod", "(param $a v128) (param $b v128)", "v128", "", [_fmod_lanes()])

IMOD = _func("nn_imod", "(param $a i32) (param $b i32)", "i32", "$r i32", [
    "(local.set $r (i32.rem_s (local.get $a) (local.get $b)))",
    "(select (i32.add (local.get $r) (local.get $b)) (local.get $r) (i32.and (i32.ne (local.get $r) (i32.const 0)) "
    "(i32.ne (i32.lt_s (local.get $r) (i32.const 0)) (i32.lt_s (local.get $b) (i32.const 0)))))",
])  # fmt: skip

# integer power by squaring; a negative exponent truncates the float power toward zero
IPOW = _func("nn_ipow", "(param $x i32) (param $y i32)", "i32", "$r i32", [
    "(if (i32.lt_s (local.get $y) (i32.const 0)) (then (return (select (select (i32.const -1) (i32.const 1) "
    "(i32.and (i32.eq (local.get $x) (i32.const -1)) (i32.and (local.get $y) (i32.const 1)))) (i32.const 0) "
    "(i32.le_u (i32.add (local.get $x) (i32.const 1)) (i32.const 2))))))",
    "(local.set $r (i32.const 1))",
    "(block $done (loop $next",
    "  (br_if $done (i32.eqz (local.get $y)))",
    "  (if (i32.and (local.get $y) (i32.const 1)) (then (local.set $r (i32.mul (local.get $r) (local.get $x)))))",
    "  (local.set $x (i32.mul (local.get $x) (local.get $x)))",
    "  (local.set $y (i32.shr_u (local.get $y) (i32.const 1)))",
    "  (br $next)))",
    "(local.get $r)",
])  # fmt: skip

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nn_exp": (EXP, ()),
    "nn_log": (LOG, ()),
    "nn_tanh": (TANH, ("nn_exp",)),
    "nn_sigmoid": (SIGMOID, ("nn_exp",)),
    "nn_erf": (ERF, ("nn_exp",)),
    "nn_sincos": (SINCOS, ()),
    "nn_sin": (SIN, ("nn_sincos",)),
    "nn_cos": (COS, ("nn_sincos",)),
    "nn_pow": (POW, ("nn_exp", "nn_log")),
    "nn_sign": (SIGN, ()),
    "nn_fmod_s": (FMOD_SCALAR, ()),
    "nn_fmod": (FMOD, ("nn_fmod_s",)),
    "nn_imod": (IMOD, ()),
    "nn_ipow": (IPOW, ()),
}
"""Helper functions by name: WAT text and the helpers it calls."""


def helper_texts(used: set[str]) -> list[str]:
    """The text of every used helper and its dependencies, each once, in a fixed order."""
    needed: set[str] = set()
    stack = list(used)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(HELPERS[name][1])
    return [HELPERS[name][0] for name in HELPERS if name in needed]
