"""The numpy reference executor of the `nn` dialect: the oracle every backend is compared with.

Semantics follow ONNX / onnxruntime (checked by `tests/runtime/test_reference_*.py`), computed as
accurately as numpy cheaply allows: float ops run in float64 and are rounded once to the result's
element type, so the oracle is the *correct* answer rather than one more float32 implementation.

Dispatch is by op class through explicit tables (`_FLOAT_BINARY`, `_FLOAT_UNARY`, ...) and one
handler per op family registered in `_HANDLERS`; adding an op is one new row.

    module = parse_module(text)
    outputs = run_module(module, {"input_ids": ids}, weights)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    f16,
    f32,
    f64,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation, SSAValue

from nnjit.dialects import nn, shapes
from nnjit.errors import NnjitError
from nnjit.runtime.special import erf

Array = npt.NDArray[Any]
Handler = Callable[[Any, Sequence[Array]], Array]
"""`(op, operands) -> result`; the op argument is the handler's own op class (dispatch guarantees it)."""

# --- Element types ---------------------------------------------------------------------------

_FLOATS: tuple[tuple[type[Attribute], Attribute, type[np.generic]], ...] = (
    (Float16Type, f16, np.float16), (Float32Type, f32, np.float32), (Float64Type, f64, np.float64),
)  # fmt: skip


def to_numpy_dtype(element_type: Attribute) -> np.dtype[Any]:
    """The numpy dtype holding one element of `element_type` (`i1` is `bool`)."""
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width in (8, 16, 32, 64):
            unsigned = element_type.signedness.data == Signedness.UNSIGNED
            return np.dtype(f"{'u' if unsigned else 'i'}{width // 8}")
    for attr_type, _, scalar in _FLOATS:
        if isinstance(element_type, attr_type):
            return np.dtype(scalar)
    raise NnjitError(f"the reference executor has no numpy dtype for element type {element_type}")


def element_type_for(dtype: npt.DTypeLike) -> Attribute:
    """The builtin element type of a numpy dtype (`bool` is `i1`; integers are signless unless unsigned)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return IntegerType(1)
    if dt.kind in "iu":
        return IntegerType(dt.itemsize * 8, Signedness.UNSIGNED if dt.kind == "u" else Signedness.SIGNLESS)
    for _, attr, scalar in _FLOATS:
        if dt == scalar:
            return attr
    raise NnjitError(f"numpy dtype {dt} has no nn element type")


def _tensor_type(value: SSAValue) -> tuple[tuple[int, ...], np.dtype[Any]]:
    value_type = value.type
    if not isinstance(value_type, TensorType):
        raise NnjitError(f"the reference executor only handles tensors, got {value_type}")
    value_type = cast(TensorType[Attribute], value_type)
    return tuple(value_type.get_shape()), to_numpy_dtype(value_type.get_element_type())


# --- Constants -------------------------------------------------------------------------------


def _storage_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    # Dense attributes pack elements little-endian with Python's `struct`; `i1` takes one byte and
    # xDSL writes `true` as -1 (0xFF), so booleans are read and written as int8.
    return np.dtype(np.int8) if dtype == np.bool_ else dtype.newbyteorder("<")


def dense_attr(array: npt.ArrayLike) -> DenseIntOrFPElementsAttr:
    """An inline `dense<...>` attribute holding `array` (any rank, including 0; bool becomes `i1`)."""
    values = np.asarray(array)
    element = element_type_for(values.dtype)
    if values.dtype == np.bool_:
        data = np.where(values, -1, 0).astype(np.int8).tobytes()
    else:
        data = np.ascontiguousarray(values, dtype=_storage_dtype(values.dtype)).tobytes()
    tensor = TensorType(element, list(values.shape))
    return DenseIntOrFPElementsAttr(tensor, BytesAttr(data))  # pyright: ignore[reportArgumentType]


def constant_value(op: nn.ConstantOp, weights: Mapping[str, np.ndarray] | None = None) -> Array:
    """The array an `nn.constant` stands for: decoded inline, or looked up in `weights` by handle."""
    shape, dtype = _tensor_type(op.result)
    value = op.value
    if isinstance(value, DenseResourceAttr):
        handle = value.resource_handle.data
        try:
            if weights is None:
                raise KeyError(handle)
            array = np.asarray(weights[handle])
        except KeyError:
            raise NnjitError(f"weight '{handle}' is referenced by the IR but missing from the weight store") from None
        if array.shape != shape or array.dtype != dtype:
            raise NnjitError(
                f"weight '{handle}': IR expects shape {shape} dtype {dtype}, store has {array.shape} {array.dtype}"
            )
        return array
    raw = np.frombuffer(value.data.data, dtype=_storage_dtype(dtype))
    count = shapes.numel(shape)
    if raw.size == 1 and count != 1:  # a splat stored as one element
        raw = np.broadcast_to(raw, (count,))
    if raw.size != count:
        raise NnjitError(f"nn.constant: {raw.size} stored elements for shape {shape}")
    decoded = raw.reshape(shape)
    return decoded != 0 if dtype == np.bool_ else decoded.astype(dtype)


def _sigmoid(x: Array) -> Array:
    # 1 / (1 + e^-x) without overflow for large |x|.
    return np.exp(-np.logaddexp(0.0, -x))


def _gelu(x: Array, approximate: str) -> Array:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


# --- Elementwise families --------------------------------------------------------------------


def _f64(x: Array) -> Array:
    """Float arrays widened to float64 (the oracle's working precision); others unchanged."""
    return x.astype(np.float64) if x.dtype.kind == "f" else x


def _divisor(b: Array) -> Array:
    """`b`, once integer division by it is known to be defined."""
    if np.any(b == 0):
        raise NnjitError("integer division by zero")
    return b


def _int_div(a: Array, b: Array) -> Array:
    # ONNX integer Div truncates toward zero; numpy's floor division rounds down, so step back
    # toward zero wherever the quotient is inexact and negative.
    quotient = np.floor_divide(a, _divisor(b))
    inexact = np.remainder(a, b) != 0
    return quotient + (inexact & ((a < 0) != (b < 0))).astype(quotient.dtype)


def _int_pow(base: Array, exponent: Array) -> Array:
    # Exact for non-negative exponents; a negative exponent follows onnxruntime's
    # `static_cast<T>(std::pow(x, y))`, i.e. the float power truncated toward zero.
    negative = exponent < 0
    result = np.power(base, np.where(negative, 0, exponent))
    if np.any(negative):
        truncated = np.trunc(np.power(base.astype(np.float64), exponent.astype(np.float64)))
        result = np.where(negative, truncated.astype(result.dtype), result)
    return result


_FLOAT_BINARY: dict[type[Operation], Callable[[Array, Array], Array]] = {
    nn.AddOp: np.add, nn.SubOp: np.subtract, nn.MulOp: np.multiply, nn.DivOp: np.divide, nn.PowOp: np.power,
    nn.MaxOp: np.maximum, nn.MinOp: np.minimum, nn.ModOp: np.mod,
}  # fmt: skip
_INT_BINARY: dict[type[Operation], Callable[[Array, Array], Array]] = {
    nn.AddOp: np.add, nn.SubOp: np.subtract, nn.MulOp: np.multiply, nn.DivOp: _int_div, nn.PowOp: _int_pow,
    nn.MaxOp: np.maximum, nn.MinOp: np.minimum, nn.ModOp: lambda a, b: np.remainder(a, _divisor(b)),
}  # fmt: skip
_BOOL_BINARY: dict[type[Operation], Callable[[Array, Array], Array]] = {
    nn.AndOp: np.logical_and, nn.OrOp: np.logical_or, nn.XorOp: np.logical_xor, nn.MaxOp: np.logical_or, nn.MinOp: np.logical_and,
}  # fmt: skip
_COMPARISONS: dict[type[Operation], Callable[[Array, Array], Array]] = {
    nn.EqualOp: np.equal, nn.LessOp: np.less, nn.LessEqualOp: np.less_equal, nn.GreaterOp: np.greater,
    nn.GreaterEqualOp: np.greater_equal,
}  # fmt: skip

_FLOAT_UNARY: dict[type[Operation], Callable[[Array], Array]] = {
    nn.ExpOp: np.exp, nn.LogOp: np.log, nn.SqrtOp: np.sqrt, nn.RsqrtOp: lambda x: 1.0 / np.sqrt(x), nn.TanhOp: np.tanh,
    nn.ErfOp: erf, nn.SigmoidOp: _sigmoid, nn.SiluOp: lambda x: x * _sigmoid(x), nn.ReluOp: lambda x: np.maximum(x, 0.0),
    nn.NegOp: np.negative, nn.ReciprocalOp: np.reciprocal, nn.AbsOp: np.abs, nn.SinOp: np.sin, nn.CosOp: np.cos,
    nn.FloorOp: np.floor, nn.CeilOp: np.ceil, nn.RoundOp: np.rint, nn.SignOp: np.sign,
}  # fmt: skip
_INT_UNARY: dict[type[Operation], Callable[[Array], Array]] = {
    nn.ReluOp: lambda x: np.maximum(x, 0).astype(x.dtype), nn.NegOp: np.negative, nn.AbsOp: np.abs, nn.SignOp: np.sign,
    # Integers are already integral: rounding them changes nothing.
    nn.FloorOp: np.copy, nn.CeilOp: np.copy, nn.RoundOp: np.copy,
}  # fmt: skip
_BOOL_UNARY: dict[type[Operation], Callable[[Array], Array]] = {nn.NotOp: np.logical_not}
_F = TypeVar("_F")


def _pick(op: Operation, dtype: np.dtype[Any], by_kind: Mapping[str, Mapping[type[Operation], _F]]) -> _F:
    """The table row of `op` for operands of `dtype` ("f" float, "i" integer, "b" bool)."""
    kind = "i" if dtype.kind == "u" else dtype.kind
    table = by_kind.get(kind, {})
    if type(op) not in table:
        raise NnjitError(f"{op.name} is not defined on {dtype} tensors")
    return table[type(op)]


def _binary(op: Operation, args: Sequence[Array]) -> Array:
    lhs, rhs = args
    fn = _pick(op, lhs.dtype, {"f": _FLOAT_BINARY, "i": _INT_BINARY, "b": _BOOL_BINARY})
    return fn(_f64(lhs), _f64(rhs))


def _unary(op: Operation, args: Sequence[Array]) -> Array:
    fn = _pick(op, args[0].dtype, {"f": _FLOAT_UNARY, "i": _INT_UNARY, "b": _BOOL_UNARY})
    return fn(_f64(args[0]))


def _clip(op: nn.ClipOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    lo = -math.inf if op.min is None else op.min.value.data
    hi = math.inf if op.max is None else op.max.value.data
    if x.dtype.kind in "iu":
        # Float bounds on an integer tensor clamp to the integers inside [lo, hi].
        info = np.iinfo(x.dtype)
        lo = info.min if lo == -math.inf else max(info.min, math.ceil(lo))
        hi = info.max if hi == math.inf else min(info.max, math.floor(hi))
    # ONNX Clip applies max(x, lo) then min(., hi), so lo > hi gives hi everywhere.
    return np.minimum(np.maximum(x, lo), hi).astype(x.dtype)


def _cast(op: nn.CastOp, args: Sequence[Array]) -> Array:
    (x,) = args
    _, target = _tensor_type(op.result)
    if target == np.bool_:
        return x != 0
    # numpy's float-to-int conversion truncates toward zero, as ONNX Cast does (out-of-range and
    # NaN are undefined in ONNX too).
    return x.astype(target)


# --- Contractions and windows ----------------------------------------------------------------


def _gemm(op: nn.GemmOp, args: Sequence[Array]) -> Array:
    a, b = _f64(args[0]), _f64(args[1])
    a = a.T if op.trans_a is not None else a
    b = b.T if op.trans_b is not None else b
    alpha, beta = op.alpha.value.data, op.beta.value.data
    if a.dtype.kind != "f" and not (alpha.is_integer() and beta.is_integer()):
        raise NnjitError(f"nn.gemm: alpha {alpha} and beta {beta} must be integral on {a.dtype} tensors")
    scale = float if a.dtype.kind == "f" else int  # integer Gemm stays in integer arithmetic
    result = scale(alpha) * (a @ b)
    return result + scale(beta) * _f64(args[2]) if len(args) == 3 else result


def _windows(x: Array, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
             dilations: Sequence[int], fill: float) -> Array:  # fmt: skip
    """Windows of an NCHW tensor as a view `(N, C, out_h, out_w, kernel_h, kernel_w)`."""
    top, left, bottom, right = pads
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True))
    view = sliding_window_view(padded, span, axis=(2, 3))
    return view[:, :, :: strides[0], :: strides[1], :: dilations[0], :: dilations[1]]


def _conv2d(op: nn.Conv2dOp, args: Sequence[Array]) -> Array:
    x, w = _f64(args[0]), _f64(args[1])
    group = op.group.value.data
    n, c = x.shape[:2]
    out_channels, _, kh, kw = w.shape
    win = _windows(x, (kh, kw), op.strides.get_values(), op.pads.get_values(), op.dilations.get_values(), 0)
    out_h, out_w = win.shape[2:4]
    grouped = win.reshape(n, group, c // group, out_h, out_w, kh, kw)
    weights = w.reshape(group, out_channels // group, c // group, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", grouped, weights, optimize=True).reshape(n, out_channels, out_h, out_w)
    if len(args) == 3:
        y = y + _f64(args[2]).reshape(1, out_channels, 1, 1)
    return y


def _max_pool(op: nn.MaxPool2dOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    # Padding never wins: pad with the dtype's lowest value.
    fill = -math.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = _windows(x, op.kernel.get_values(), op.strides.get_values(), op.pads.get_values(), (1, 1), fill)
    return win.max(axis=(-2, -1))


def _avg_pool(op: nn.AvgPool2dOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0]).astype(np.float64)
    kernel, strides, pads = op.kernel.get_values(), op.strides.get_values(), op.pads.get_values()
    sums = _windows(x, kernel, strides, pads, (1, 1), 0).sum(axis=(-2, -1))
    if op.count_include_pad is not None:
        counts = np.full((1, 1, 1, 1), float(kernel[0] * kernel[1]))
    else:
        ones = np.ones((1, 1, *x.shape[2:]))
        counts = _windows(ones, kernel, strides, pads, (1, 1), 0).sum(axis=(-2, -1))
    mean = sums / counts
    return mean if args[0].dtype.kind == "f" else np.trunc(mean).astype(args[0].dtype)


# --- Normalisations and reductions -----------------------------------------------------------


def _axis(op: Operation, value: int) -> int:
    try:
        return shapes.normalize_axis(value, len(_tensor_type(op.operands[0])[0]))
    except shapes.ShapeError as error:
        raise NnjitError(f"{op.name}: {error}") from error


def _softmax(op: nn.SoftmaxOp | nn.LogSoftmaxOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    axis = _axis(op, op.axis.value.data)
    shifted = x - x.max(axis=axis, keepdims=True)  # stable: the largest exponent is 0
    total = np.exp(shifted).sum(axis=axis, keepdims=True)
    return shifted - np.log(total) if isinstance(op, nn.LogSoftmaxOp) else np.exp(shifted) / total


def _cumsum(op: nn.CumsumOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    axis = _axis(op, op.axis.value.data)
    reverse = op.reverse is not None
    values = np.flip(x, axis) if reverse else x
    total = np.cumsum(values, axis=axis, dtype=values.dtype)
    if op.exclusive is not None:
        # Shift by one along the axis so that element i holds the sum of the elements before it.
        head = np.zeros_like(np.take(total, [0], axis=axis))
        total = np.concatenate([head, np.take(total, range(total.shape[axis] - 1), axis=axis)], axis=axis)
    return np.flip(total, axis) if reverse else total


def _layer_norm(op: nn.LayerNormOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    axes = tuple(range(_axis(op, op.axis.value.data), x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    variance = np.square(centered).mean(axis=axes, keepdims=True)  # biased, as ONNX
    y = centered / np.sqrt(variance + op.epsilon.value.data) * _f64(args[1])
    return y + _f64(args[2]) if len(args) == 3 else y


def _rms_norm(op: nn.RmsNormOp, args: Sequence[Array]) -> Array:
    x = _f64(args[0])
    axes = tuple(range(_axis(op, op.axis.value.data), x.ndim))
    mean_square = np.square(x).mean(axis=axes, keepdims=True)
    return x / np.sqrt(mean_square + op.epsilon.value.data) * _f64(args[1])


def _mean(x: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    count = shapes.numel([x.shape[a] for a in axes])
    total = np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)
    if count == 0:
        # The mean of nothing: NaN for floats (ONNX's reference), 0 for integers, without numpy's warning.
        return np.full(total.shape, np.nan if x.dtype.kind == "f" else 0, dtype=x.dtype)
    if x.dtype.kind == "f":
        return np.mean(x, axis=axes, keepdims=keepdims)
    # onnxruntime divides the integer sum by the count in integer arithmetic.
    return _int_div(total, np.array(count, dtype=x.dtype))


def _extreme(
    pick: Callable[..., Array], empty: Callable[[np.dtype[Any]], Any]
) -> Callable[[Array, tuple[int, ...], bool], Array]:
    """max/min with ONNX's identity for an empty reduced extent (-inf/+inf or the type's bounds)."""

    def reduce(x: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
        if x.size == 0 or any(x.shape[a] == 0 for a in axes):
            shape = (
                tuple(1 if i in axes else d for i, d in enumerate(x.shape))
                if keepdims
                else tuple(d for i, d in enumerate(x.shape) if i not in axes)
            )
            return np.full(shape, empty(x.dtype), dtype=x.dtype)
        return pick(x, axis=axes, keepdims=keepdims)

    return reduce


def _lowest(dtype: np.dtype[Any]) -> Any:
    return False if dtype == np.bool_ else -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype[Any]) -> Any:
    return True if dtype == np.bool_ else np.inf if dtype.kind == "f" else np.iinfo(dtype).max


_REDUCTIONS: dict[type[Operation], Callable[[Array, tuple[int, ...], bool], Array]] = {
    nn.ReduceSumOp: lambda x, axes, keep: np.sum(x, axis=axes, keepdims=keep, dtype=x.dtype),
    nn.ReduceMeanOp: _mean,
    nn.ReduceMaxOp: _extreme(np.max, _lowest),
    nn.ReduceMinOp: _extreme(np.min, _highest),
    nn.ReduceProdOp: lambda x, axes, keep: np.prod(x, axis=axes, keepdims=keep, dtype=x.dtype),
}


def _reduce(op: nn.ReduceOp, args: Sequence[Array]) -> Array:
    axes = tuple(sorted({_axis(op, a) for a in op.axes.get_values()}))
    return _REDUCTIONS[type(op)](_f64(args[0]), axes, op.keepdims)


# --- Data movement ---------------------------------------------------------------------------


def _reshape(op: nn.ReshapeOp | nn.ExpandOp, args: Sequence[Array]) -> Array:
    shape, _ = _tensor_type(op.result)
    if isinstance(op, nn.ExpandOp):
        return np.broadcast_to(args[0], shape).copy()  # a copy: broadcast views are read-only
    return args[0].reshape(shape)


def _slice(op: nn.SliceOp, args: Sequence[Array]) -> Array:
    bounds = zip(op.starts.get_values(), op.ends.get_values(), op.steps.get_values(), strict=True)
    return args[0][tuple(slice(start, end, step) for start, end, step in bounds)]


def _gather(op: nn.GatherOp, args: Sequence[Array]) -> Array:
    data, indices = args
    axis = _axis(op, op.axis.value.data)
    size = data.shape[axis]
    if np.any((indices < -size) | (indices >= size)):
        raise NnjitError(f"nn.gather: an index is outside [-{size}, {size}) on axis {axis}")
    return np.take(data, indices.astype(np.int64), axis=axis)  # np.take wraps negative indices


# --- Dispatch --------------------------------------------------------------------------------


_HANDLERS: dict[type[Operation], Handler] = {
    **dict.fromkeys(_FLOAT_BINARY.keys() | _INT_BINARY.keys() | _BOOL_BINARY.keys(), _binary),
    **{op: lambda op, a: _COMPARISONS[type(op)](a[0], a[1]) for op in _COMPARISONS},
    **dict.fromkeys(_FLOAT_UNARY.keys() | _INT_UNARY.keys() | _BOOL_UNARY.keys(), _unary),
    nn.GeluOp: lambda op, a: _gelu(_f64(a[0]), op.approximate.data),
    nn.LeakyReluOp: lambda op, a: np.where(a[0] >= 0, _f64(a[0]), op.alpha.value.data * _f64(a[0])),
    nn.ClipOp: _clip, nn.CastOp: _cast, nn.WhereOp: lambda op, a: np.where(a[0], a[1], a[2]),
    nn.MatmulOp: lambda op, a: np.matmul(_f64(a[0]), _f64(a[1])),
    nn.GemmOp: _gemm, nn.Conv2dOp: _conv2d, nn.MaxPool2dOp: _max_pool, nn.AvgPool2dOp: _avg_pool,
    nn.SoftmaxOp: _softmax, nn.LogSoftmaxOp: _softmax, nn.CumsumOp: _cumsum,
    nn.LayerNormOp: _layer_norm, nn.RmsNormOp: _rms_norm,
    **dict.fromkeys(_REDUCTIONS, _reduce),
    nn.TransposeOp: lambda op, a: np.transpose(a[0], op.perm.get_values()),
    nn.ReshapeOp: _reshape, nn.ExpandOp: _reshape, nn.SliceOp: _slice, nn.GatherOp: _gather,
    nn.ConcatOp: lambda op, a: np.concatenate(list(a), axis=_axis(op, op.axis.value.data)),
}  # fmt: skip
"""One handler per op family; constants are read by `evaluate_op` itself, which has the weights."""


def _describe(shape: Sequence[int], dtype: np.dtype[Any]) -> str:  # one wording for every message
    return f"shape {tuple(shape)} dtype {dtype}"


def evaluate_op(
    op: Operation, operands: Sequence[np.ndarray], weights: Mapping[str, np.ndarray] | None = None
) -> Array:
    """The result of one `nn` op on concrete operands, as an array of exactly the op's result type.

    Raises `NnjitError` for ops the reference does not know, operands that disagree with the op's
    operand types, and (a bug guard) a computed result that disagrees with the result type.
    """
    handler = _HANDLERS.get(type(op))
    if handler is None and not isinstance(op, nn.ConstantOp):
        raise NnjitError(f"the reference executor cannot evaluate '{op.name}'")
    if len(operands) != len(op.operands):
        raise NnjitError(f"{op.name}: takes {len(op.operands)} operands, got {len(operands)}")
    arrays = [np.asarray(a) for a in operands]
    for index, (array, value) in enumerate(zip(arrays, op.operands, strict=True)):
        shape, dtype = _tensor_type(value)
        if array.shape != shape or array.dtype != dtype:
            raise NnjitError(
                f"{op.name}: operand {index} expects {_describe(shape, dtype)}, got {_describe(array.shape, array.dtype)}"
            )
    # IEEE semantics are intended (log(0) = -inf, 0/0 = NaN, integer wrap-around): no warnings.
    with np.errstate(all="ignore"):
        if isinstance(op, nn.ConstantOp):
            result = constant_value(op, weights)
        else:
            assert handler is not None
            result = np.asarray(handler(op, arrays))
        shape, dtype = _tensor_type(op.results[0])
        if result.dtype != dtype and result.dtype.kind == dtype.kind == "f":
            result = result.astype(dtype)  # float work happens in float64; round once at the end
    if result.shape != shape or result.dtype != dtype:
        raise NnjitError(
            f"{op.name}: reference computed {_describe(result.shape, result.dtype)}, "
            f"the result type says {_describe(shape, dtype)}"
        )
    return result


def _io_names(attrs: Sequence[Attribute] | None, count: int, fallback: str) -> list[str]:
    """`nn.name` of each argument or result; `<fallback><i>` where a name is absent."""
    names: list[str] = []
    for index in range(count):
        entry = attrs[index] if attrs is not None and index < len(attrs) else None
        name = entry.data.get("nn.name") if isinstance(entry, DictionaryAttr) else None
        names.append(name.data if isinstance(name, StringAttr) else f"{fallback}{index}")
    return names


def argument_names(main: FuncOp) -> list[str]:
    """The `nn.name` of each argument of `@main`."""
    return _io_names(main.arg_attrs.data if main.arg_attrs else None, len(main.function_type.inputs), "arg")


def result_names(main: FuncOp) -> list[str]:
    """The `nn.name` of each result of `@main`."""
    res_attrs = main.res_attrs.data if main.res_attrs else None
    return _io_names(res_attrs, len(main.function_type.outputs), "result")


def main_function(module: ModuleOp) -> FuncOp:
    """The `func.func @main` of a module."""
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == "main":
            return op
    raise NnjitError("the module has no func.func @main to run")


def bind_inputs(main: FuncOp, inputs: Mapping[str, np.ndarray]) -> dict[SSAValue, Array]:
    """Check `inputs` against `@main`'s arguments (names, shapes, dtypes) and bind them."""
    args = main.body.block.args
    names = argument_names(main)
    expected = {name: _tensor_type(arg) for name, arg in zip(names, args, strict=True)}
    missing = [f"'{n}' ({_describe(*expected[n])})" for n in names if n not in inputs]
    if missing:
        raise NnjitError(f"missing input {', '.join(missing)}")
    extra = sorted(set(inputs) - set(names))
    if extra:
        raise NnjitError(f"unexpected input {', '.join(map(repr, extra))}; @main takes {', '.join(map(repr, names))}")
    env: dict[SSAValue, Array] = {}
    for name, arg in zip(names, args, strict=True):
        array = np.asarray(inputs[name])
        shape, dtype = expected[name]
        if array.shape != shape or array.dtype != dtype:
            raise NnjitError(
                f"input '{name}': expected {_describe(shape, dtype)}, got {_describe(array.shape, array.dtype)}"
            )
        env[arg] = array
    return env


def run_module(
    module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Execute `@main` op by op on `inputs` (keyed by argument `nn.name`); outputs keyed by result `nn.name`.

    Unnamed arguments and results are `arg<i>` / `result<i>`. Only straight-line `nn` code runs; any
    other op raises `NnjitError` naming it. Each intermediate array is dropped right after its last
    use, so peak memory stays near the live set.
    """
    main = main_function(module)
    env = bind_inputs(main, inputs)
    ops = list(main.body.block.ops)
    last_use: dict[SSAValue, int] = {}
    for index, op in enumerate(ops):
        for operand in op.operands:
            last_use[operand] = index
    for index, op in enumerate(ops):
        if isinstance(op, ReturnOp):
            results = [env[value] for value in op.arguments]
            return dict(zip(result_names(main), results, strict=True))
        if (type(op) not in _HANDLERS and not isinstance(op, nn.ConstantOp)) or op.regions:
            raise NnjitError(f"the reference executor cannot run '{op.name}' (only straight-line nn ops)")
        env[op.results[0]] = evaluate_op(op, [env[value] for value in op.operands], weights)
        for value in (*op.operands, *op.results):
            if last_use.get(value, -1) <= index:
                env.pop(value, None)
    raise NnjitError("@main has no func.return")
