"""The table of ONNX op converters and the context each converter works in.

A converter is a function named after its ONNX op type, registered with `@onnx_op`, that takes a
`NodeContext` and the node's ONNX attributes as keyword arguments (with the ONNX defaults), and
returns the node's output values. Opset ranges are explicit: `@onnx_op("Softmax", since=13)`
serves models whose default-domain opset is 13 or newer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.ir import Operation, SSAValue

from nnjit.dialects.nn import tensor_shape
from nnjit.errors import OnnxImportError

if TYPE_CHECKING:
    from nnjit.frontend.onnx import GraphBuilder

Outputs = SSAValue | Sequence[SSAValue]
Converter = Callable[..., Outputs]


@dataclass(frozen=True)
class ConverterEntry:
    """One converter and the opset range (inclusive) of the default domain it serves."""

    op_type: str
    since: int
    until: int | None
    convert: Converter

    def serves(self, opset: int) -> bool:
        """Whether this converter handles models of `opset`."""
        return self.since <= opset and (self.until is None or opset <= self.until)


CONVERTERS: dict[str, list[ConverterEntry]] = {}


def onnx_op(op_type: str, since: int = 1, until: int | None = None) -> Callable[[Converter], Converter]:
    """Register a converter for `op_type` in the default ONNX domain for opsets `since..until`."""

    def register(convert: Converter) -> Converter:
        CONVERTERS.setdefault(op_type, []).append(ConverterEntry(op_type, since, until, convert))
        return convert

    return register


def load_converters() -> None:
    """Import every converter family so that `CONVERTERS` is complete."""
    import nnjit.frontend.ops

    assert nnjit.frontend.ops.__all__


def find_converter(op_type: str, domain: str, opset: int) -> ConverterEntry | None:
    """The converter for a node, or None when nnjit does not support it."""
    if domain not in ("", "ai.onnx"):
        return None
    return next((e for e in CONVERTERS.get(op_type, []) if e.serves(opset)), None)


def attribute_value(attribute: onnx.AttributeProto) -> Any:
    """An ONNX attribute as a plain Python value (strings decoded, tensors as numpy arrays)."""
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", errors="replace") for v in value]
    return value


class NodeContext:
    """What a converter sees of one ONNX node: its inputs as IR values, constants, and an emitter."""

    def __init__(self, node: onnx.NodeProto, opset: int, graph: GraphBuilder):
        self.node = node
        self.opset = opset
        self._graph = graph

    @property
    def num_inputs(self) -> int:
        """Number of inputs, counting empty (omitted) optional ones before the last given one."""
        return len(self.node.input)

    def has_input(self, index: int) -> bool:
        """Whether optional input `index` is given."""
        return index < len(self.node.input) and self.node.input[index] != ""

    def input(self, index: int) -> SSAValue:
        """Input `index` as an IR value; a missing required input is an import error."""
        if not self.has_input(index):
            raise self.error(f"input {index} is required but missing")
        return self._graph.value(self.node.input[index])

    def optional_input(self, index: int) -> SSAValue | None:
        """Input `index`, or None when omitted."""
        return self.input(index) if self.has_input(index) else None

    def inputs(self) -> list[SSAValue]:
        """All given inputs in order."""
        return [self.input(i) for i in range(self.num_inputs) if self.has_input(i)]

    def const(self, index: int) -> np.ndarray:
        """The compile-time value of input `index` (after shape specialisation and folding)."""
        value = self._graph.known_value(self.input(index))
        if value is None:
            inputs = ", ".join(f"'{name}'" for name in self._graph.input_dependencies(self.input(index)))
            raise self.error(
                f"input {index} ('{self.node.input[index]}') must be a constant after shape specialisation"
                + (f"; it is computed from the values of model input(s) {inputs}" if inputs else "")
            )
        return value

    def optional_const(self, index: int) -> np.ndarray | None:
        """The compile-time value of optional input `index`, or None when omitted."""
        return self.const(index) if self.has_input(index) else None

    def known(self, value: SSAValue) -> np.ndarray | None:
        """The compile-time value of an IR value, if it has one."""
        return self._graph.known_value(value)

    def shape(self, index: int) -> tuple[int, ...]:
        """The static shape of input `index`."""
        return tensor_shape(self.input(index))

    def emit(self, op: Operation) -> SSAValue:
        """Add `op` (folded to a constant when all its operands are known) and return its result."""
        return self._graph.emit(op, self.node)

    def constant(self, array: np.ndarray, hint: str = "const") -> SSAValue:
        """A constant value: inline when small, in the weight store otherwise."""
        return self._graph.constant(np.asarray(array), hint)

    def convert_body(self, nodes: Sequence[onnx.NodeProto], opset: int) -> dict[str, SSAValue]:
        """Convert `nodes` (a function body, its values already named into this graph) with the converters
        of `opset`, binding and returning their outputs by name; a body op without a converter makes this
        node's variant unsupported."""
        bound: dict[str, SSAValue] = {}
        for inner in nodes:
            entry = find_converter(inner.op_type, inner.domain, opset)
            if entry is None:
                raise self.error(f"its function body uses {inner.op_type} (opset {opset}), which is not supported")
            outputs = call_converter(entry, NodeContext(inner, opset, self._graph))
            for name, output in zip(inner.output, outputs, strict=False):
                if name:
                    self._graph.bind(name, output)
                    bound[name] = output
        return bound

    def error(self, reason: str) -> OnnxImportError:
        """An import error naming this node, its op type and the opset."""
        return OnnxImportError(
            f"node '{self.node.name or '<unnamed>'}' ({self.node.op_type}, opset {self.opset}): {reason}"
        )


def call_converter(entry: ConverterEntry, context: NodeContext) -> list[SSAValue]:
    """Run a converter with the node's attributes as keyword arguments."""
    attributes = {a.name: attribute_value(a) for a in context.node.attribute}
    accepted = inspect.signature(entry.convert).parameters
    unknown = sorted(set(attributes) - set(accepted))
    if unknown:
        raise context.error(f"unsupported attribute(s) {', '.join(unknown)}")
    outputs = entry.convert(context, **attributes)
    return [outputs] if isinstance(outputs, SSAValue) else list(outputs)
