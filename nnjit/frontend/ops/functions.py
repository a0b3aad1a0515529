"""ONNX ops that ONNX defines as functions of other ops, converted by expanding their function body.

ONNX gives these ops (Attention, RotaryEmbedding, the losses, the window functions, ...) a function
body, some of them built for the node's attributes and input types. `expand_function` asks onnx for the
body that serves the model's opset, renames its values into the graph under a prefix of its own,
substitutes the node's attributes (or the schema's defaults) for the body's attribute references, and
converts the body node by node with the converters of the body's opset. An op is then supported exactly
when the ops of its body are; a later pass may recognise the pattern and fuse it back into one kernel.

The converters below only name the op and its attributes (with the ONNX defaults), as every converter
does; the body reads the attributes from the node itself.
"""

from __future__ import annotations

from typing import Any

import onnx
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.frontend.onnx import ELEMENT_TYPES
from nnjit.frontend.registry import NodeContext, Outputs, onnx_op

_ONNX_ELEMENT_TYPES = {element: code for code, element in ELEMENT_TYPES.items()}


def _type_proto(node: NodeContext, index: int) -> onnx.TypeProto:
    if not node.has_input(index):
        return onnx.TypeProto()
    value = node.input(index)
    element = _ONNX_ELEMENT_TYPES[nn.element_type(value)]
    return onnx.helper.make_tensor_type_proto(element, list(nn.tensor_shape(value)))


def function_body(node: NodeContext) -> onnx.FunctionProto:
    """The function body ONNX defines for this node at the model's opset."""
    # The onnx type stubs lack the function accessors of OpSchema, hence Any.
    schema: Any = onnx.defs.get_schema(node.node.op_type, node.opset, "")
    body = onnx.FunctionProto()
    plain = [v for v in schema.function_opset_versions if v <= node.opset]
    dependent = [v for v in schema.context_dependent_function_opset_versions if v <= node.opset]
    if plain and (not dependent or max(plain) >= max(dependent)):
        body.ParseFromString(schema.get_function_with_opset_version(max(plain)))
    elif dependent:
        types = [_type_proto(node, i).SerializeToString() for i in range(node.num_inputs)]
        serialized = node.node.SerializeToString()
        body.ParseFromString(schema.get_context_dependent_function_with_opset_version(max(dependent), serialized, types))
    else:
        raise node.error(f"ONNX defines no function body of {node.node.op_type} up to opset {node.opset}")
    return body


def _renamed(
    inner: onnx.NodeProto, names: dict[str, str], prefix: str, attributes: dict[str, onnx.AttributeProto]
) -> onnx.NodeProto:
    """A body node with its values renamed into the graph and its attribute references resolved."""
    renamed = onnx.NodeProto()
    renamed.CopyFrom(inner)
    del renamed.input[:], renamed.output[:], renamed.attribute[:]
    renamed.input.extend(names.get(n, prefix + n) if n else "" for n in inner.input)
    renamed.output.extend(names.get(n, prefix + n) if n else "" for n in inner.output)
    renamed.name = prefix + (inner.name or inner.op_type)
    for attribute in inner.attribute:
        if not attribute.ref_attr_name:
            renamed.attribute.append(attribute)
        elif attribute.ref_attr_name in attributes:
            resolved = onnx.AttributeProto()
            resolved.CopyFrom(attributes[attribute.ref_attr_name])
            resolved.name = attribute.name
            renamed.attribute.append(resolved)
    return renamed


def expand_function(node: NodeContext) -> list[SSAValue]:
    """Convert the node as its ONNX function body; its outputs in the node's output order."""
    body = function_body(node)
    schema = onnx.defs.get_schema(node.node.op_type, node.opset, "")
    attributes = {name: a.default_value for name, a in schema.attributes.items() if a.default_value.name}
    attributes.update({a.name: a for a in node.node.attribute})
    given = list(node.node.input)
    names = {inner: given[i] if i < len(given) else "" for i, inner in enumerate(body.input)}
    names.update({inner: outer for inner, outer in zip(body.output, node.node.output, strict=False) if outer})
    prefix = f"{node.node.op_type}/{next(n for n in node.node.output if n)}/"
    opset = next((o.version for o in body.opset_import if o.domain in ("", "ai.onnx")), node.opset)
    bound = node.convert_body([_renamed(inner, names, prefix, attributes) for inner in body.node], opset)
    outputs = [bound.get(names.get(inner, prefix + inner)) for inner in body.output[: len(node.node.output)]]
    # An output the node does not ask for may not be computed; its slot is skipped by the importer.
    first = next(o for o in outputs if o is not None)
    return [first if o is None else o for o in outputs]


@onnx_op("Attention", since=23)
def Attention(
    node: NodeContext,
    is_causal: int = 0,
    kv_num_heads: int | None = None,
    q_num_heads: int | None = None,
    qk_matmul_output_mode: int = 0,
    scale: float | None = None,
    softcap: float = 0.0,
    softmax_precision: int | None = None,
    left_window_size: int = -1,
    right_window_size: int = -1,
) -> Outputs:
    """Scaled dot-product attention (masks, causal windows, grouped heads, KV cache), as its function body."""
    return expand_function(node)


@onnx_op("RotaryEmbedding", since=23)
def RotaryEmbedding(
    node: NodeContext, interleaved: int = 0, num_heads: int | None = None, rotary_embedding_dim: int = 0
) -> Outputs:
    """Rotary position embedding, as its function body."""
    return expand_function(node)


@onnx_op("NegativeLogLikelihoodLoss", since=12)
def NegativeLogLikelihoodLoss(node: NodeContext, ignore_index: int | None = None, reduction: str = "mean") -> Outputs:
    """The negative log-likelihood loss, as its function body."""
    return expand_function(node)


@onnx_op("SoftmaxCrossEntropyLoss", since=12)
def SoftmaxCrossEntropyLoss(node: NodeContext, ignore_index: int | None = None, reduction: str = "mean") -> Outputs:
    """Softmax cross-entropy (and optionally the log-probabilities), as its function body."""
    return expand_function(node)


@onnx_op("SwiGLU", since=28)
def SwiGLU(node: NodeContext, alpha: float = 1.0) -> Outputs:
    """SiLU-gated linear unit, as its function body."""
    return expand_function(node)


@onnx_op("CausalConvWithState", since=27)
def CausalConvWithState(node: NodeContext, activation: str = "none") -> Outputs:
    """Causal 1-D depthwise convolution with a carried state, as its function body."""
    return expand_function(node)


@onnx_op("CenterCropPad", since=18)
def CenterCropPad(node: NodeContext, axes: list[int] | None = None) -> Outputs:
    """Crop or pad each axis around its centre to a constant shape, as its function body."""
    return expand_function(node)


@onnx_op("BlackmanWindow", since=17)
def BlackmanWindow(node: NodeContext, output_datatype: int = 1, periodic: int = 1) -> Outputs:
    """A Blackman window of a constant size, as its function body."""
    return expand_function(node)


@onnx_op("HammingWindow", since=17)
def HammingWindow(node: NodeContext, output_datatype: int = 1, periodic: int = 1) -> Outputs:
    """A Hamming window of a constant size, as its function body."""
    return expand_function(node)


@onnx_op("HannWindow", since=17)
def HannWindow(node: NodeContext, output_datatype: int = 1, periodic: int = 1) -> Outputs:
    """A Hann window of a constant size, as its function body."""
    return expand_function(node)


@onnx_op("DynamicQuantizeLinear", since=11)
def DynamicQuantizeLinear(node: NodeContext) -> Outputs:
    """uint8 quantization with a scale and zero point computed from the input's range, as its function body."""
    return expand_function(node)
