"""ONNX to `nn`: load, specialise dynamic axes, fold shape arithmetic, convert node by node.

This is a JIT: the shapes of the inputs are known when it runs, so every dynamic axis is replaced by
its value before conversion, and every value that then depends only on shapes and constants
(Shape/Gather/Concat/ConstantOfShape/Range chains, masks, position ids) is computed here with the
oracle's own op semantics and becomes a constant. What remains is the model's real dataflow.

    imported = import_onnx("model.onnx", {"input_ids": (1, 16)})
    print(imported.module)        # the nn IR, weights as dense_resource handles
    imported.weights              # the WeightStore behind those handles
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from xdsl.builder import Builder
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    DictionaryAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    Signedness,
    StringAttr,
    TensorType,
    UnknownLoc,
    f16,
    f32,
    f64,
    i1,
    i8,
    i32,
    i64,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.rewriter import InsertPoint

from nnjit.dialects.nn import ConstantOp, tensor_of, tensor_shape
from nnjit.errors import NnjitError, OnnxImportError
from nnjit.frontend.registry import NodeContext, call_converter, find_converter, load_converters
from nnjit.weights import WeightStore

INLINE_LIMIT = 256
"""Constants up to this many elements are printed inline so passes can match and fold them."""

ELEMENT_TYPES: dict[int, Attribute] = {
    onnx.TensorProto.FLOAT: f32,
    onnx.TensorProto.FLOAT16: f16,
    onnx.TensorProto.DOUBLE: f64,
    onnx.TensorProto.INT64: i64,
    onnx.TensorProto.INT32: i32,
    onnx.TensorProto.INT8: i8,
    onnx.TensorProto.UINT8: IntegerType(8, Signedness.UNSIGNED),
    onnx.TensorProto.BOOL: i1,
}


def element_type_of(onnx_type: int) -> Attribute:
    """The xDSL element type of an ONNX tensor element type."""
    try:
        return ELEMENT_TYPES[onnx_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(onnx_type) if onnx_type in onnx.TensorProto.DataType.values() else onnx_type
        raise NnjitError(f"element type {name} is not supported") from None


@dataclass
class ImportedModel:
    """The result of importing: the `nn` module, its weights, and the model's I/O names."""

    module: ModuleOp
    weights: WeightStore
    input_names: list[str] = field(default_factory=list[str])
    output_names: list[str] = field(default_factory=list[str])


def load_model(source: str | os.PathLike[str] | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Read an ONNX model from a path, bytes or a proto, with one-line errors for bad input."""
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, bytes):
        data, where = source, "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise NnjitError(f"model file {path} does not exist")
        data, where = path.read_bytes(), str(path)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeWarning) as error:
        raise NnjitError(f"{where} is not a valid ONNX model (protobuf decode failed: {error})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise NnjitError(f"{where} is not a valid ONNX model (it has no graph nodes)")
    if isinstance(source, str | os.PathLike) and any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
    ):
        onnx.load_external_data_for_model(model, str(Path(source).parent))
    return model


def default_opset(model: onnx.ModelProto) -> int:
    """The opset of the default ONNX domain."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise NnjitError("the model imports no opset of the default ONNX domain")


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value_info.type.tensor_type.shape.dim
    ]


def specialise_input(value_info: onnx.ValueInfoProto, given: Sequence[int] | None) -> tuple[int, ...]:
    """The static shape of a graph input: its fixed dims checked against, and dynamic dims taken from, `given`."""
    declared = _dims(value_info)
    pretty = "x".join(str(d) for d in declared) or "scalar"
    if given is None:
        if all(isinstance(d, int) for d in declared):
            return tuple(int(d) for d in declared)
        raise NnjitError(
            f"input '{value_info.name}' has dynamic shape {pretty}: give its shape, e.g. --shape {value_info.name}="
            + "x".join(str(d) if isinstance(d, int) else "N" for d in declared)
        )
    given = tuple(int(d) for d in given)
    if len(given) != len(declared) or any(
        isinstance(d, int) and d != g for d, g in zip(declared, given, strict=False)
    ):
        raise NnjitError(
            f"input '{value_info.name}' expects shape {pretty} but was given {'x'.join(map(str, given)) or 'scalar'}"
        )
    if any(g < 0 for g in given):
        raise NnjitError(f"input '{value_info.name}' was given a negative dimension: {given}")
    return given


class GraphBuilder:
    """Builds the body of `@main` while converting nodes; knows which values are compile-time constants."""

    def __init__(self, block: Block, weights: WeightStore):
        self._builder = Builder(InsertPoint.at_end(block))
        self._weights = weights
        self._values: dict[str, SSAValue] = {}
        self._known: dict[SSAValue, np.ndarray] = {}

    def bind(self, name: str, value: SSAValue) -> None:
        """Give an ONNX value name its IR value."""
        self._values[name] = value

    def value(self, name: str) -> SSAValue:
        """The IR value of an ONNX value name."""
        try:
            return self._values[name]
        except KeyError:
            raise NnjitError(f"value '{name}' is used before it is defined (graph not topologically sorted?)") from None

    def input_dependencies(self, value: SSAValue) -> list[str]:
        """The names of the graph inputs whose values `value` is computed from (not just their shapes)."""
        arguments: dict[SSAValue, str] = {v: name for name, v in self._values.items() if isinstance(v, BlockArgument)}
        found: set[str] = set()
        pending, seen = [value], set[SSAValue]()
        while pending:
            current = pending.pop()
            if current in seen or current in self._known:
                continue
            seen.add(current)
            if current in arguments:
                found.add(arguments[current])
            elif isinstance(current, OpResult):
                pending.extend(current.op.operands)
        return sorted(found)

    def known_value(self, value: SSAValue) -> np.ndarray | None:
        """The compile-time array of a value, or None when it depends on model inputs."""
        return self._known.get(value)

    def constant(self, array: np.ndarray, hint: str) -> SSAValue:
        """A constant op for `array`: inline when small, a weight-store resource otherwise."""
        from nnjit.runtime.reference import dense_attr, element_type_for

        if array.size <= INLINE_LIMIT:
            attr: DenseIntOrFPElementsAttr | DenseResourceAttr = dense_attr(array)
        else:
            handle = self._weights.add(hint, array)
            attr = DenseResourceAttr.from_params(handle, tensor_of(array.shape, element_type_for(array.dtype)))
        op = self._builder.insert(ConstantOp(attr))
        self._known[op.result] = array
        return op.result

    def emit(self, op: Operation, node: onnx.NodeProto) -> SSAValue:
        """Insert `op`, or fold it when every operand is a compile-time constant."""
        from nnjit.runtime.reference import evaluate_op

        operands = [self._known.get(o) for o in op.operands]
        if all(v is not None for v in operands):
            array = evaluate_op(op, [v for v in operands if v is not None])
            op.erase(safe_erase=False)
            return self.constant(array, node.name or node.op_type)
        op.location = NameLoc(StringAttr(node.name or node.op_type), UnknownLoc())
        self._builder.insert(op)
        return op.results[0]


def onnx_inferred_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Static shapes ONNX's own shape inference gives every value once the inputs are specialised.

    The importer derives result types itself (from the `nn` ops' shape rules); this independent
    answer is a cross-check that catches a converter that gets a shape wrong. Large floating-point
    weights go to shape inference as typed graph inputs without their data: only their shapes matter,
    and a model over protobuf's 2 GiB (weights in an external file) could not be serialized for it.
    """
    specialised = _without_large_weights(model)
    for value_info in specialised.graph.input:
        if value_info.name in input_shapes:
            dims = value_info.type.tensor_type.shape.dim
            for dim, size in zip(dims, input_shapes[value_info.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    try:
        inferred = onnx.shape_inference.infer_shapes(specialised, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        raise NnjitError(f"ONNX shape inference rejects the model: {' '.join(str(error).split())}") from None
    shapes: dict[str, tuple[int, ...]] = {}
    for value_info in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor_type = value_info.type.tensor_type
        if tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in tensor_type.shape.dim):
            shapes[value_info.name] = tuple(d.dim_value for d in tensor_type.shape.dim)
    return shapes


#: Floating-point initializers with more elements than this reach ONNX shape inference as typed inputs.
_SHAPE_ONLY_ELEMENTS = 4096
_FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
)


def _without_large_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose large float initializers are graph inputs of their type and shape, without data.

    Shape inference (and its data propagation, which follows integer shape tensors) reads no float
    weight's values; the copy never holds them, so its size is the graph's, not the weights'.
    """
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    source, graph = model.graph, light.graph
    graph.name = source.name
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    graph.sparse_initializer.extend(source.sparse_initializer)
    listed = {v.name for v in source.input}
    for tensor in source.initializer:
        if tensor.data_type in _FLOAT_TYPES and int(np.prod(tensor.dims)) > _SHAPE_ONLY_ELEMENTS:
            if tensor.name not in listed:
                graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
        else:
            graph.initializer.append(tensor)
    return light


def _unsupported_nodes(graph: onnx.GraphProto, opset: int) -> list[str]:
    return [
        f"'{n.name or '<unnamed>'}' ({n.domain + '.' if n.domain else ''}{n.op_type}, opset {opset})"
        for n in graph.node
        if find_converter(n.op_type, n.domain, opset) is None
    ]


def import_onnx(
    source: str | os.PathLike[str] | bytes | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> ImportedModel:
    """Import an ONNX model into the `nn` dialect, specialised to `input_shapes`."""
    load_converters()
    model = load_model(source)
    opset = default_opset(model)
    graph = model.graph
    unsupported = _unsupported_nodes(graph, opset)
    if unsupported:
        raise OnnxImportError(f"{len(unsupported)} unsupported node(s): " + ", ".join(unsupported))

    input_shapes = dict(input_shapes or {})
    initializer_names = {t.name for t in graph.initializer}
    graph_inputs = [v for v in graph.input if v.name not in initializer_names]
    unknown = sorted(set(input_shapes) - {v.name for v in graph_inputs})
    if unknown:
        raise NnjitError(
            f"shape given for unknown input(s) {', '.join(unknown)}; the model's inputs are "
            + ", ".join(v.name for v in graph_inputs)
        )
    arg_types: list[Attribute] = []
    static_shapes: dict[str, tuple[int, ...]] = {}
    for value_info in graph_inputs:
        shape = specialise_input(value_info, input_shapes.get(value_info.name))
        static_shapes[value_info.name] = shape
        arg_types.append(TensorType(element_type_of(value_info.type.tensor_type.elem_type), list(shape)))
    expected_shapes = onnx_inferred_shapes(model, static_shapes)

    block = Block(arg_types=arg_types)
    weights = WeightStore()
    builder = GraphBuilder(block, weights)
    for value_info, argument in zip(graph_inputs, block.args, strict=True):
        builder.bind(value_info.name, argument)
    for tensor in graph.initializer:
        builder.bind(tensor.name, builder.constant(numpy_helper.to_array(tensor), tensor.name))

    for node in graph.node:
        context = NodeContext(node, opset, builder)
        entry = find_converter(node.op_type, node.domain, opset)
        assert entry is not None
        try:
            outputs = call_converter(entry, context)
        except OnnxImportError:
            raise
        except (NnjitError, ValueError, TypeError) as error:
            raise context.error(str(error)) from None
        for name, output in zip(node.output, outputs, strict=False):
            if not name:
                continue
            ours, theirs = tensor_shape(output), expected_shapes.get(name)
            if theirs is not None and ours != theirs:
                raise context.error(
                    f"output '{name}' has shape {ours} but ONNX shape inference says {theirs} (a converter bug)"
                )
            builder.bind(name, output)

    results = [builder.value(v.name) for v in graph.output]
    block.add_op(ReturnOp(*results))
    function = FuncOp(
        "main",
        (arg_types, [r.type for r in results]),
        Region(block),
        arg_attrs=_name_attrs([v.name for v in graph_inputs]),
        res_attrs=_name_attrs([v.name for v in graph.output]),
    )
    module = ModuleOp([function])
    module.verify()
    return ImportedModel(module, weights, [v.name for v in graph_inputs], [v.name for v in graph.output])


def _name_attrs(names: Sequence[str]) -> ArrayAttr[DictionaryAttr]:
    return ArrayAttr([DictionaryAttr({"nn.name": StringAttr(name)}) for name in names])
