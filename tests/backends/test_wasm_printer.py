"""The Wasm printer's pieces: lane analysis, address folding, the paper's tricks, relaxed SIMD, helpers' accuracy.

Lane strides are checked against brute-force evaluation of the index trees; printed modules are
assembled (and run where it matters) in both engines.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wasm_cases import check, floats, kernel_module, wasm_schedule

from nnjit.backends.indexing import INDEX, Apply, Const, Expr, IndexDiv, IndexMod, Var, add, const, div, mod, mul
from nnjit.backends.wasm import build_program, kernel_text
from nnjit.backends.wasm_lanes import LANES, LaneAnalysis, at_lane, linear_terms
from nnjit.dialects import nn
from nnjit.errors import NnjitError

# --- lane analysis against brute force ----------------------------------------------------------


def evaluate(e: Expr, env: dict[str, int]) -> int:
    """Integer value of an index tree (non-negative operands, as index arithmetic guarantees)."""
    if isinstance(e, Const):
        return int(e.value)
    if isinstance(e, Var):
        return env[e.name]
    assert isinstance(e, Apply)
    a, b = (evaluate(x, env) for x in e.args)
    table = {
        nn.AddOp: a + b,
        nn.SubOp: a - b,
        nn.MulOp: a * b,
        IndexDiv: a // b if b else 0,
        IndexMod: a % b if b else 0,
    }
    return table[e.op]


@st.composite
def index_trees(draw: st.DrawFn, depth: int = 3) -> Expr:
    c, o = Var(INDEX, "c"), Var(INDEX, "o")
    if depth == 0:
        return draw(st.sampled_from([c, o, const(draw(st.integers(0, 40)))]))
    a = draw(index_trees(depth - 1))
    k = draw(st.integers(1, 24))
    pick = draw(st.integers(0, 4))
    if pick == 0:
        return add(a, draw(index_trees(depth - 1)))
    if pick == 1:
        return mul(a, const(k))
    if pick == 2:
        return Apply(INDEX, IndexDiv, (a, const(k)))  # unsimplified, so the analysis meets raw div / mod
    if pick == 3:
        return Apply(INDEX, IndexMod, (a, const(k)))
    return add(a, const(k))


@settings(max_examples=400, deadline=None)
@given(tree=index_trees(), align=st.sampled_from([1, 2, 4, 8]))
def test_strides_hold_on_every_iteration(tree: Expr, align: int) -> None:
    """Where the analysis claims `e(c + l) = e(c) + step * l` and `e(c) ≡ r (mod m)`, enumeration agrees."""
    analysis = LaneAnalysis(Var(INDEX, "c"), align)
    stride = analysis.stride(tree)
    if stride is None:
        return
    for c, o in itertools.product(range(0, 96, align), range(5)):
        values = [evaluate(tree, {"c": c + lane, "o": o}) for lane in range(LANES)]
        assert values == [values[0] + stride.step * lane for lane in range(LANES)], (c, o, stride)
        if stride.modulus:
            assert (values[0] - stride.residue) % stride.modulus == 0
        else:
            assert values[0] == stride.residue


def test_strides_of_common_views() -> None:
    c = Var(INDEX, "c", 64)
    analysis = LaneAnalysis(c, 4)
    assert analysis.stride(add(mul(Var(INDEX, "row"), const(32)), c)).step == 1  # a row of a matrix
    assert analysis.stride(mod(add(mul(Var(INDEX, "row"), const(32)), c), 8)).step == 1  # head split, no wrap
    assert analysis.stride(mul(c, const(96))).step == 96  # a transposed read: four lane loads
    assert analysis.stride(div(c, 64)) is not None and analysis.stride(div(c, 64)).step == 0  # type: ignore[union-attr]
    assert analysis.stride(Apply(INDEX, IndexMod, (c, const(6)))) is None  # lanes may wrap
    half = Apply("bool", nn.LessOp, (c, const(8)))
    assert analysis.uniform(half) and not analysis.uniform(Apply("bool", nn.LessOp, (c, const(6))))
    assert linear_terms(at_lane(add(c, const(4)), c, 3)) == ([(c, 1)], 7)  # lane offsets fold into immediates


# --- the paper's tricks, as printed --------------------------------------------------------------


def _program_text(
    template: str, schedule: object, inputs: list[np.ndarray], body: object, relaxed: bool = False
) -> str:
    module = kernel_module(template, schedule, inputs, body)  # type: ignore[arg-type]
    return build_program(module, None, relaxed).text


def test_offsets_fold_base_and_constants_and_never_go_negative() -> None:
    x = floats(np.random.default_rng(0), (5, 9))
    text = _program_text("elementwise", wasm_schedule(4, 2), [x], lambda a: nn.SliceOp(a, [4, 8], [-6, -10], [-1, -1]))
    offsets = [int(part.split()[0]) for part in text.split("offset=")[1:]]
    assert offsets and min(offsets) >= 64, "buffers start at byte 64; no offset immediate is negative"
    check("elementwise", wasm_schedule(4, 2), [x], lambda a: nn.SliceOp(a, [4, 8], [-6, -10], [-1, -1]))


def test_broadcast_reads_are_load32_splat_and_repeated_loads_are_locals() -> None:
    rng = np.random.default_rng(1)
    x, scale = floats(rng, (6, 16)), floats(rng, (6, 1))
    text = _program_text(
        "elementwise", wasm_schedule(4), [x, scale], lambda a, s: nn.AddOp(nn.MulOp(a, s), nn.MulOp(a, a))
    )
    assert "v128.load32_splat" in text
    assert text.count("(v128.load offset=64 ") == 1, "x is read once per vector and kept in a local"


def test_relaxed_simd_only_where_asked() -> None:
    rng = np.random.default_rng(2)
    a, b = floats(rng, (8, 16)), floats(rng, (16, 8))
    plain = _program_text("matmul", wasm_schedule(4, 2, (8, 8, 16), (4, 8)), [a, b], nn.MatmulOp)
    relaxed = _program_text("matmul", wasm_schedule(4, 2, (8, 8, 16), (4, 8)), [a, b], nn.MatmulOp, relaxed=True)
    assert "relaxed_madd" not in plain and ";; relaxed-simd off" in plain
    assert "f32x4.relaxed_madd" in relaxed and ";; relaxed-simd on" in relaxed
    # the polynomials never use it: their error must not depend on the engine
    assert (
        "relaxed" not in _program_text("elementwise", wasm_schedule(4), [a], nn.TanhOp, relaxed=True).split(")\n", 1)[1]
    )


def test_printing_is_deterministic_and_fresh_per_emit() -> None:
    x = floats(np.random.default_rng(3), (3, 7))
    module = kernel_module("row_reduce", wasm_schedule(4, 2), [x], lambda a: nn.SoftmaxOp(a, -1))
    first, second = build_program(module).text, build_program(module).text
    assert first == second
    kernel = next(iter(module.body.block.ops))
    assert "(func $k0" in kernel_text(kernel)  # type: ignore[arg-type]


def test_vector_widths_other_than_1_and_4_are_refused() -> None:
    x = floats(np.random.default_rng(4), (4, 4))
    module = kernel_module("elementwise", wasm_schedule(2), [x], nn.ExpOp)
    with pytest.raises(NnjitError, match="computes vector 1 or 4, not 2"):
        build_program(module)


def test_wasm_verifier_rules_apply() -> None:
    from xdsl.utils.exceptions import VerifyException

    x = floats(np.random.default_rng(5), (4, 4))
    with pytest.raises(VerifyException, match="one thread per call"):
        kernel_module(
            "elementwise", wasm_schedule(4).__class__((64, 1, 1), (0, 0, 0), (1, 1), 4, 1, False), [x], nn.ExpOp
        )


# --- transcendental accuracy ----------------------------------------------------------------------


def _script() -> object:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "wasm_transcendentals.py"
    spec = importlib.util.spec_from_file_location("wasm_transcendentals", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BOUNDS = {  # max relative error (|f| >= 1e-3) and f32 ulps; docs/wasm.md has the measured table
    "exp": (2e-7, 2), "log": (2e-7, 2), "tanh": (3e-7, 3), "erf": (1e-6, 8), "sigmoid": (3e-7, 4),
    "silu": (3e-7, 4), "gelu (erf)": (5e-4, 5000), "gelu (tanh)": (2e-4, 1000), "sin": (3e-7, 3), "cos": (3e-7, 3),
}  # fmt: skip


def test_transcendentals_are_accurate_in_both_engines() -> None:
    rows = _script().measure(20_000)  # type: ignore[attr-defined]
    assert {r["function"] for r in rows} == set(BOUNDS)
    for row in rows:
        rel, ulps = BOUNDS[row["function"]]
        for engine in ("wasmtime", "v8"):
            assert row[f"{engine} rel"] <= rel and row[f"{engine} ulp"] <= ulps, row
