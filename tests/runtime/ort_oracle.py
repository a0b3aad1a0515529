"""Test harness: one `nn` op on the numpy reference against the equivalent ONNX graph on onnxruntime.

`check_op("Softmax", [x], lambda v: nn.SoftmaxOp(v, -1), axis=-1)` builds a one-node ONNX model
(inputs `x0, x1, ...`, constant inputs `c0, c1, ...`, output `y`), runs it on onnxruntime's CPU EP,
builds `@main` around the `nn` op made by the builder, runs it with `run_module`, and compares:
floats with `rtol`/`atol` (defaults: the elementwise fp32 tolerances of DESIGN.md), integers and
booleans exactly. `check_graph` does the same for a small ONNX graph when no single ONNX op matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper, numpy_helper
from xdsl.builder import ImplicitBuilder
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, FunctionType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation

from nnjit.runtime.reference import element_type_for, run_module

Array = np.ndarray[Any, Any]
Builder = Callable[..., Operation]

FP32_RTOL, FP32_ATOL = 1e-4, 1e-5
OPSET = 18

# Every property test runs 50 drawn cases; an ORT session per case makes the default deadline
# meaningless on a 2-core machine.
SPEC = settings(max_examples=50, deadline=None)

_SESSION_OPTIONS = ort.SessionOptions()
_SESSION_OPTIONS.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the op as written
_SESSION_OPTIONS.intra_op_num_threads = 1
_SESSION_OPTIONS.log_severity_level = 3


def _name(index: int) -> str:
    return f"x{index}"


def nn_module(build: Builder, inputs: Sequence[Array]) -> ModuleOp:
    """`@main(%x0, %x1, ...)` returning the one op `build(*args)` makes, with `nn.name` attributes."""
    types = [TensorType(element_type_for(a.dtype), list(a.shape)) for a in inputs]
    names = ArrayAttr([DictionaryAttr({"nn.name": StringAttr(_name(i))}) for i in range(len(inputs))])
    main = FuncOp("main", (types, []), arg_attrs=names)
    with ImplicitBuilder(main.body) as args:
        op = build(*args)
        ReturnOp(op)
    main.function_type = FunctionType.from_lists(types, [op.results[0].type])
    main.res_attrs = ArrayAttr([DictionaryAttr({"nn.name": StringAttr("y")})])
    module = ModuleOp([main])
    module.verify()
    return module


def run_nn(build: Builder, inputs: Sequence[Array]) -> Array:
    """The reference executor's result for the op `build` makes."""
    return run_module(nn_module(build, inputs), {_name(i): a for i, a in enumerate(inputs)})["y"]


def run_onnx(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[Array],
    consts: Sequence[npt.ArrayLike | None] = (),
    opset: int = OPSET,
) -> Array:
    """onnxruntime's result `y` of a graph over inputs `x<i>` and initialisers `c<i>` (`None`: absent)."""
    graph = helper.make_graph(
        list(nodes),
        "check",
        [
            helper.make_tensor_value_info(_name(i), helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for i, a in enumerate(inputs)
        ],
        [helper.make_value_info("y", onnx.TypeProto())],
        initializer=[numpy_helper.from_array(np.asarray(c), f"c{i}") for i, c in enumerate(consts) if c is not None],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    session = ort.InferenceSession(model.SerializeToString(), _SESSION_OPTIONS, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["y"], {_name(i): a for i, a in enumerate(inputs)})[0])


def assert_same(got: Array, want: Array, rtol: float = FP32_RTOL, atol: float = FP32_ATOL) -> None:
    """Same dtype and shape; floats within tolerance, everything else exactly equal."""
    assert got.dtype == want.dtype, f"dtype {got.dtype} != onnxruntime's {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape} != onnxruntime's {want.shape}"
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(got, want)


def check_graph(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[Array],
    build: Builder,
    *,
    consts: Sequence[npt.ArrayLike | None] = (),
    opset: int = OPSET,
    rtol: float = FP32_RTOL,
    atol: float = FP32_ATOL,
) -> Array:
    """Compare `build` on the reference with the ONNX graph `nodes` on onnxruntime; returns the result."""
    inputs = [np.asarray(a) for a in inputs]  # numpy arithmetic turns rank-0 arrays into scalars
    got = run_nn(build, inputs)
    assert_same(got, run_onnx(nodes, inputs, consts, opset), rtol, atol)
    return got


def check_op(
    op_type: str,
    inputs: Sequence[Array],
    build: Builder,
    *,
    consts: Sequence[npt.ArrayLike | None] = (),
    opset: int = OPSET,
    rtol: float = FP32_RTOL,
    atol: float = FP32_ATOL,
    **attributes: Any,
) -> Array:
    """`check_graph` for the single ONNX node `op_type(x0.., c0..)`; a `None` const is an omitted input."""
    const_names = ["" if c is None else f"c{i}" for i, c in enumerate(consts)]
    node = helper.make_node(op_type, [_name(i) for i in range(len(inputs))] + const_names, ["y"], **attributes)
    return check_graph([node], inputs, build, consts=consts, opset=opset, rtol=rtol, atol=atol)


def node(op_type: str, inputs: Sequence[str], output: str, **attributes: Any) -> onnx.NodeProto:
    """One ONNX node, for `check_graph`."""
    return helper.make_node(op_type, list(inputs), [output], **attributes)


# --- Strategies ------------------------------------------------------------------------------


def shapes(min_dims: int = 0, max_dims: int = 4, max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Static shapes with every dim at least 1."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcast_shapes(count: int = 2, max_dims: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`count` shapes that broadcast together (size-1 dims and missing leading dims included)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=count, min_dims=0, max_dims=max_dims, max_side=4).map(
        lambda b: b.input_shapes
    )


def floats(
    shape: Sequence[int], lo: float = -3.0, hi: float = 3.0, dtype: Any = np.float32, nonzero: float = 0.0
) -> st.SearchStrategy[Array]:
    """Finite float arrays in `[lo, hi]`, without subnormals; `|x| >= nonzero` when that is positive."""
    kind = np.dtype(dtype).type
    lo, hi = float(kind(lo)), float(kind(hi))  # bounds must be representable in the drawn width
    width = cast(Literal[16, 32, 64], np.dtype(dtype).itemsize * 8)
    elements = st.floats(lo, hi, width=width, allow_subnormal=False)
    if nonzero:
        elements = elements.filter(lambda v: abs(v) >= nonzero)
    return hnp.arrays(dtype, tuple(shape), elements=elements)


def ints(
    shape: Sequence[int], lo: int = -50, hi: int = 50, dtype: Any = np.int64, nonzero: bool = False
) -> st.SearchStrategy[Array]:
    """Integer arrays in `[lo, hi]`, optionally without zeros."""
    elements = st.integers(lo, hi).filter(lambda v: v != 0) if nonzero else st.integers(lo, hi)
    return hnp.arrays(dtype, tuple(shape), elements=elements)


def bools(shape: Sequence[int]) -> st.SearchStrategy[Array]:
    """Boolean arrays."""
    return hnp.arrays(np.bool_, tuple(shape))
