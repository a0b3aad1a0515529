"""The numpy oracle's structured `nn` ops (contractions, windows, normalisations, reductions, data
movement), specified by onnxruntime on drawn shapes and values; plus `run_module`'s contract.

Tolerances: results within rtol 1e-4 of onnxruntime and an atol of 1e-5 * K, where K is the number
of terms summed into one output element (matmul/gemm K, conv Cg*kh*kw, reduction and
normalisation length): float32 accumulation error grows with K, the oracle's float64 one does not.
Integer and boolean results are exactly equal.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ort_oracle import FP32_ATOL, SPEC, broadcast_shapes, check_op, floats, ints, shapes
from xdsl.dialects.builtin import DenseResourceAttr, ModuleOp, TensorType, UnitAttr, f32, i1
from xdsl.ir import Attribute, Block

from nnjit.context import parse_module
from nnjit.dialects import nn
from nnjit.errors import NnjitError
from nnjit.runtime.reference import constant_value, dense_attr, element_type_for, erf, evaluate_op, run_module
from nnjit.weights import WeightStore


def atol_for(k: int) -> float:
    """The absolute tolerance of a result that sums `k` float32 terms."""
    return FP32_ATOL * max(k, 1)


# --- Contractions ----------------------------------------------------------------------------


@SPEC
@given(data=st.data())
def test_matmul(data: st.DataObject) -> None:
    """numpy.matmul semantics: broadcast batch dims; rank-1 operands promoted then dropped."""
    batch_a, batch_b = data.draw(broadcast_shapes(2, max_dims=2))
    m, k, n = (data.draw(st.integers(1, 6)) for _ in range(3))
    a_shape = (k,) if data.draw(st.booleans()) else (*batch_a, m, k)
    b_shape = (k,) if data.draw(st.booleans()) else (*batch_b, k, n)
    a, b = data.draw(floats(a_shape)), data.draw(floats(b_shape))
    check_op("MatMul", [a, b], nn.MatmulOp, atol=atol_for(k))


@SPEC
@given(data=st.data(), trans_a=st.booleans(), trans_b=st.booleans(), alpha=st.sampled_from([1.0, 0.5, -2.0]),
       beta=st.sampled_from([1.0, 0.0, 3.0]), bias=st.sampled_from(["none", "scalar", "row", "col", "full"]))  # fmt: skip
def test_gemm(data: st.DataObject, trans_a: bool, trans_b: bool, alpha: float, beta: float, bias: str) -> None:
    m, k, n = (data.draw(st.integers(1, 6)) for _ in range(3))
    a = data.draw(floats((k, m) if trans_a else (m, k)))
    b = data.draw(floats((n, k) if trans_b else (k, n)))
    c_shape = {"none": None, "scalar": (), "row": (n,), "col": (m, 1), "full": (m, n)}[bias]
    inputs = [a, b] if c_shape is None else [a, b, data.draw(floats(c_shape))]
    check_op(
        "Gemm", inputs, lambda x, y, *c: nn.GemmOp(x, y, *c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b),
        alpha=alpha, beta=beta, transA=int(trans_a), transB=int(trans_b), atol=atol_for(3 * k),
    )  # fmt: skip


WINDOW = st.fixed_dictionaries({
    "kernel": st.tuples(st.integers(1, 3), st.integers(1, 3)), "strides": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "pads": st.tuples(*[st.integers(0, 2)] * 4), "dilations": st.tuples(st.integers(1, 2), st.integers(1, 2)),
})  # fmt: skip


@SPEC
@given(data=st.data(), w=WINDOW, group=st.integers(1, 2), with_bias=st.booleans())
def test_conv2d(data: st.DataObject, w: dict[str, Any], group: int, with_bias: bool) -> None:
    """NCHW/OIHW, pads [top, left, bottom, right], grouped and dilated."""
    batch, cin, cout, h, width = (data.draw(st.integers(1, n)) for n in (2, 3, 3, 7, 7))
    (kh, kw), (dh, dw), pads = w["kernel"], w["dilations"], w["pads"]
    assume(h + pads[0] + pads[2] >= dh * (kh - 1) + 1 and width + pads[1] + pads[3] >= dw * (kw - 1) + 1)
    x = data.draw(floats((batch, cin * group, h, width)))
    weight = data.draw(floats((cout * group, cin, kh, kw)))
    inputs = [x, weight, data.draw(floats((cout * group,)))] if with_bias else [x, weight]
    check_op(
        "Conv", inputs, lambda *v: nn.Conv2dOp(v[0], v[1], v[2] if with_bias else None, w["strides"], pads, w["dilations"], group),
        kernel_shape=[kh, kw], strides=w["strides"], pads=pads, dilations=w["dilations"], group=group,
        atol=atol_for(cin * kh * kw + 1),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["max", "avg", "avg_count_pad"])
@SPEC
@given(data=st.data(), w=WINDOW)
def test_pool2d(kind: str, data: st.DataObject, w: dict[str, Any]) -> None:
    """Padding never wins a max; the average divides by the window (count_include_pad) or the real cells."""
    kernel, pads = w["kernel"], w["pads"]
    assume(all(p < k for p, k in zip(pads, kernel * 2, strict=True)))  # ONNX needs pad < kernel
    batch, channels = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    x = data.draw(floats((batch, channels, *(data.draw(st.integers(k, 6)) for k in kernel))))
    strides, include = w["strides"], kind == "avg_count_pad"
    window = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    if kind == "max":
        check_op("MaxPool", [x], lambda v: nn.MaxPool2dOp(v, kernel, strides, pads), **window)
    else:
        extra: dict[str, Attribute] = {"count_include_pad": UnitAttr()} if include else {}
        build = lambda v: nn.AvgPool2dOp(v, kernel, strides, pads, extra)  # noqa: E731
        check_op("AveragePool", [x], build, count_include_pad=int(include), **window)


# --- Normalisations and reductions -----------------------------------------------------------


@pytest.mark.parametrize(("onnx_op", "op"), [("Softmax", nn.SoftmaxOp), ("LogSoftmax", nn.LogSoftmaxOp)])
@SPEC
@given(data=st.data())
def test_softmax(onnx_op: str, op: type[nn.AxisOp], data: st.DataObject) -> None:
    """Stable: large inputs do not overflow."""
    shape = data.draw(shapes(1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(floats(shape, -80, 80))
    check_op(onnx_op, [x], lambda v: op(v, axis), axis=axis, opset=13, atol=atol_for(shape[axis]))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@SPEC
@given(data=st.data(), exclusive=st.booleans(), reverse=st.booleans())
def test_cumsum(dtype: type, data: st.DataObject, exclusive: bool, reverse: bool) -> None:
    shape = data.draw(shapes(1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(floats(shape) if dtype == np.float32 else ints(shape, dtype=dtype))
    extra: dict[str, Attribute] = {
        name: UnitAttr() for name, on in (("exclusive", exclusive), ("reverse", reverse)) if on
    }
    check_op("CumSum", [x], lambda v: nn.CumsumOp(v, axis, extra), consts=[np.array(axis)], opset=14,
             exclusive=int(exclusive), reverse=int(reverse), atol=atol_for(shape[axis]))  # fmt: skip


@SPEC
@given(data=st.data(), with_bias=st.booleans(), epsilon=st.sampled_from([1e-5, 1e-6, 0.1]))
def test_layer_norm(data: st.DataObject, with_bias: bool, epsilon: float) -> None:
    """Mean and biased variance over dims axis.. (ONNX LayerNormalization, opset 17)."""
    shape = data.draw(shapes(1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    norm = shape[axis:]
    inputs = [data.draw(floats(shape, -5, 5)), data.draw(floats(norm))]
    if with_bias:
        inputs.append(data.draw(floats(norm)))
    check_op("LayerNormalization", inputs, lambda x, s, *b: nn.LayerNormOp(x, s, b[0] if b else None, axis, epsilon),
             axis=axis, epsilon=epsilon, opset=17, atol=atol_for(math.prod(norm)))  # fmt: skip


@SPEC
@given(data=st.data(), epsilon=st.sampled_from([1e-5, 1e-6, 0.1]))
def test_rms_norm(data: st.DataObject, epsilon: float) -> None:
    """x / sqrt(mean(x^2) + eps) * scale over dims axis.. (ONNX RMSNormalization, opset 23)."""
    shape = data.draw(shapes(1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x, scale = data.draw(floats(shape, -5, 5)), data.draw(floats(shape[axis:]))
    check_op("RMSNormalization", [x, scale], lambda v, s: nn.RmsNormOp(v, s, axis, epsilon),
             axis=axis, epsilon=epsilon, opset=23, atol=atol_for(math.prod(shape[axis:])))  # fmt: skip


REDUCTIONS = [("ReduceSum", nn.ReduceSumOp), ("ReduceMean", nn.ReduceMeanOp), ("ReduceMax", nn.ReduceMaxOp),
              ("ReduceMin", nn.ReduceMinOp), ("ReduceProd", nn.ReduceProdOp)]  # fmt: skip


@pytest.mark.parametrize(("onnx_op", "op"), REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
@SPEC
@given(data=st.data(), keepdims=st.booleans())
def test_reduce(onnx_op: str, op: type[nn.ReduceOp], dtype: type, data: st.DataObject, keepdims: bool) -> None:
    """Any non-empty set of axes, negative ones included; integer mean truncates toward zero."""
    shape = data.draw(shapes(1))
    picked = data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))
    axes = [a - len(shape) if data.draw(st.booleans()) else a for a in sorted(picked)]
    lo, hi = (0.5, 1.5) if op is nn.ReduceProdOp else (-3, 3)
    x = data.draw(floats(shape, lo, hi) if dtype == np.float32 else ints(shape, -3, 3, dtype))
    k = math.prod(shape[a] for a in picked)
    # Integer overflow is undefined in ONNX (numpy wraps; onnxruntime's ReduceProd saturates).
    assume(np.abs(x.astype(np.float64)).prod(axis=tuple(picked)).max(initial=0) < 2**31)
    check_op(onnx_op, [x], lambda v: op(v, axes, keepdims), consts=[np.array(axes)], keepdims=int(keepdims),
             atol=atol_for(k) * (4 if op is nn.ReduceProdOp else 1))  # fmt: skip


# --- Data movement ---------------------------------------------------------------------------


@SPEC
@given(data=st.data())
def test_transpose_reshape_expand(data: st.DataObject) -> None:
    shape = data.draw(shapes())
    x = data.draw(ints(shape, dtype=np.int32))
    perm = data.draw(st.permutations(range(len(shape))))
    attrs: dict[str, Any] = {"perm": perm} if perm else {}  # onnx cannot type an empty list attribute
    check_op("Transpose", [x], lambda v: nn.TransposeOp(v, perm), **attrs)
    target = (*data.draw(st.permutations(shape)), *([1] * data.draw(st.integers(0, 1))))
    check_op("Reshape", [x], lambda v: nn.ReshapeOp(v, target), consts=[np.array(target, np.int64)])
    small, big = data.draw(broadcast_shapes(2))
    out = np.broadcast_shapes(small, big)
    check_op("Expand", [data.draw(floats(small))], lambda v: nn.ExpandOp(v, out), consts=[np.array(out, np.int64)])


@SPEC
@given(data=st.data(), count=st.integers(1, 3))
def test_concat(data: st.DataObject, count: int) -> None:
    shape = data.draw(shapes(1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(count):
        part_shape = list(shape)
        part_shape[axis] = data.draw(st.integers(1, 3))
        parts.append(data.draw(floats(part_shape)))
    check_op("Concat", parts, lambda *v: nn.ConcatOp(v, axis), axis=axis)


@SPEC
@given(data=st.data())
def test_slice(data: st.DataObject) -> None:
    """Python slice semantics per dim: negative and out-of-range bounds clamp, steps may be negative,
    empty results are fine. ONNX differs in one corner, a start below -dim with a negative step
    (ONNX clamps it to index 0, Python to "before the start"), which the frontend must normalise; it is
    not drawn here."""
    shape = data.draw(shapes(1))
    starts, ends, steps = [], [], []
    for dim in shape:
        steps.append(data.draw(st.sampled_from([1, 2, 3, -1, -2])))
        starts.append(data.draw(st.integers(-dim - 2 if steps[-1] > 0 else -dim, dim + 2)))
        ends.append(data.draw(st.integers(-dim - 2, dim + 2)))
    consts = [np.array(v, np.int64) for v in (starts, ends, range(len(shape)), steps)]
    check_op("Slice", [data.draw(floats(shape))], lambda v: nn.SliceOp(v, starts, ends, steps), consts=consts)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@SPEC
@given(data=st.data())
def test_gather(index_dtype: type, data: st.DataObject) -> None:
    """Negative indices count from the end."""
    shape = data.draw(shapes(1, 3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = shape[axis]
    indices = data.draw(ints(data.draw(shapes(0, 2)), -size, size - 1, index_dtype))
    check_op("Gather", [data.draw(floats(shape)), indices], lambda d, i: nn.GatherOp(d, i, axis), axis=axis)


# --- Constants, erf and run_module's contract ------------------------------------------------

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]


@SPEC
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_dense_attr_round_trips(data: st.DataObject, dtype: type) -> None:
    """dense_attr -> nn.constant -> print -> parse -> constant_value gives the array back, rank 0 and i1 included."""
    shape = data.draw(shapes(0, 3))
    if dtype == np.bool_:
        array = data.draw(ints(shape, 0, 1)).astype(np.bool_)
    elif np.dtype(dtype).kind == "f":
        array = data.draw(floats(shape, -1e3, 1e3, dtype=dtype))
    else:
        info = np.iinfo(dtype)
        array = data.draw(ints(shape, int(info.min), int(info.max), dtype))
    constant = nn.ConstantOp(dense_attr(array))
    np.testing.assert_array_equal(constant_value(constant), array)
    reparsed = parse_module(str(ModuleOp([constant.clone()]))).body.block.first_op
    assert isinstance(reparsed, nn.ConstantOp)
    value = constant_value(reparsed)
    assert value.dtype == array.dtype and value.shape == array.shape
    np.testing.assert_array_equal(value, array)


def test_splat_and_resource_constants() -> None:
    splat = parse_module("%c = nn.constant dense<2.5> : tensor<2x3xf32>").body.block.first_op
    assert isinstance(splat, nn.ConstantOp)
    np.testing.assert_array_equal(evaluate_op(splat, []), np.full((2, 3), 2.5, np.float32))
    weight = nn.ConstantOp(DenseResourceAttr.from_params("w0", TensorType(f32, [2])))
    store = WeightStore({"w0": np.array([1, 2], np.float32)})
    np.testing.assert_array_equal(evaluate_op(weight, [], store), [1, 2])
    for weights in (None, {}, WeightStore()):
        with pytest.raises(NnjitError, match="'w0'"):
            evaluate_op(weight, [], weights)


def test_erf_matches_libm() -> None:
    """Cody's rational approximations against math.erf: <= 1e-13 absolute on a dense grid and the tails."""
    grid = np.concatenate([np.linspace(-6, 6, 120_001), np.linspace(-40, 40, 8_001), np.geomspace(1e-300, 1e3, 4_000),
                           -np.geomspace(1e-300, 1e3, 4_000), [0.0, -0.0, 0.46875, 4.0, np.inf, -np.inf]])  # fmt: skip
    expected = np.array([math.erf(v) for v in grid])
    assert np.max(np.abs(erf(grid) - expected)) <= 1e-13
    assert np.isnan(erf(np.nan))


TWO_INPUTS = """
func.func @main(%a: tensor<2x3xf32> {nn.name = "a"}, %b: tensor<3xi64> {nn.name = "b"})
    -> (tensor<2x3xf32> {nn.name = "sum"}, tensor<3xi64> {nn.name = "b_out"}) {
  %c = nn.cast %b : tensor<3xi64> -> tensor<3xf32>
  %s = nn.add %a, %c : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %s, %b : tensor<2x3xf32>, tensor<3xi64>
}
"""


def test_run_module_by_names() -> None:
    a, b = np.ones((2, 3), np.float32), np.array([1, 2, 3], np.int64)
    outputs = run_module(parse_module(TWO_INPUTS), {"a": a, "b": b})
    assert sorted(outputs) == ["b_out", "sum"]
    np.testing.assert_array_equal(outputs["sum"], a + b.astype(np.float32))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"a": np.ones((2, 3), np.float32)}, r"missing input 'b' \(shape \(3,\) dtype int64\)"),
        ({"a": np.ones((2, 3), np.float32), "b": np.ones(3, np.int64), "c": np.ones(1)}, "unexpected input 'c'"),
        ({"a": np.ones((3, 2), np.float32), "b": np.ones(3, np.int64)},
         r"input 'a': expected shape \(2, 3\) dtype float32, got shape \(3, 2\) dtype float32"),
        ({"a": np.ones((2, 3), np.float32), "b": np.ones(3, np.int32)},
         r"input 'b': expected shape \(3,\) dtype int64, got shape \(3,\) dtype int32"),
    ],
)  # fmt: skip
def test_run_module_rejects_bad_inputs(inputs: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(NnjitError, match=message) as error:
        run_module(parse_module(TWO_INPUTS), inputs)
    assert "\n" not in str(error.value)


def test_run_module_rejects_unknown_ops() -> None:
    module = parse_module("""
    func.func @main(%a: tensor<2xf32> {nn.name = "a"}) -> (tensor<2xf32> {nn.name = "y"}) {
      %y = arith.addf %a, %a : tensor<2xf32>
      func.return %y : tensor<2xf32>
    }""")
    with pytest.raises(NnjitError, match=r"arith\.addf"):
        run_module(module, {"a": np.ones(2, np.float32)})


def test_evaluate_op_checks_operands() -> None:
    module = parse_module(TWO_INPUTS)
    cast_op = next(op for op in module.walk() if isinstance(op, nn.CastOp))
    with pytest.raises(NnjitError, match="operand 0 expects shape"):
        evaluate_op(cast_op, [np.ones(4, np.int64)])
    assert element_type_for(np.bool_) == i1


@pytest.mark.parametrize(
    "op_class, dtype, expected",
    [
        (nn.ReduceMaxOp, np.float32, -np.inf),
        (nn.ReduceMinOp, np.float32, np.inf),
        (nn.ReduceMaxOp, np.int64, np.iinfo(np.int64).min),
        (nn.ReduceMinOp, np.int32, np.iinfo(np.int32).max),
        (nn.ReduceMaxOp, np.bool_, False),
        (nn.ReduceMinOp, np.bool_, True),
        (nn.ReduceMeanOp, np.float32, np.nan),
        (nn.ReduceMeanOp, np.int64, 0),
    ],
)
def test_reductions_over_an_empty_extent_give_the_identity(op_class, dtype, expected):
    """ONNX's reference: max of nothing is the lowest value, min the highest, mean NaN (0 for integers)."""
    x = np.zeros((2, 0, 4), dtype=dtype)
    block = Block(arg_types=[nn.tensor_of(x.shape, element_type_for(x.dtype))])
    op = op_class(block.args[0], [1], keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_op(op, [x])
    assert result.shape == (2, 1, 4) and result.dtype == dtype
    np.testing.assert_array_equal(result, np.full((2, 1, 4), expected, dtype=dtype))
