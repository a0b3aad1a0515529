"""The `nn` dialect: tensor-level operations with value semantics and static shapes.

Every op works on builtin `tensor<...>` values whose shapes are fully static (the frontend specialises
dynamic axes before emitting `nn`). Weights are never inlined as text: a large constant holds a
`dense_resource<handle>` whose bytes live in a `WeightStore` beside the module (see
`nnjit/dialects/weights.py`); small constants (shapes, scalars) are inline `dense<...>` so that passes
can fold and match them.

Textual form, for example::

    %w = nn.constant dense_resource<w0> : tensor<64x64xf32>
    %y = nn.matmul %x, %w : (tensor<1x8x64xf32>, tensor<64x64xf32>) -> tensor<1x8x64xf32>
    %z = nn.gelu %y {approximate = "none"} : tensor<1x8x64xf32>
    %s = nn.reduce_sum %z {axes = array<i64: -1>} : (tensor<1x8x64xf32>) -> tensor<1x8x1xf32>
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, HasCanonicalizationPatternsTrait, Pure
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects import shapes

TensorValue = SSAValue
FLOAT_TYPES = "f16, f32, f64"


def tensor_shape(value: SSAValue | Operation) -> tuple[int, ...]:
    """Static shape of a tensor-typed value."""
    value_type = SSAValue.get(value).type
    assert isinstance(value_type, TensorType)
    return tuple(value_type.get_shape())


def element_type(value: SSAValue | Operation) -> Attribute:
    """Element type of a tensor-typed value."""
    value_type = SSAValue.get(value).type
    assert isinstance(value_type, TensorType)
    return value_type.get_element_type()


def tensor_of(shape: Sequence[int], element: Attribute) -> TensorType[Attribute]:
    """A static `tensor<shape x element>`."""
    return TensorType(element, list(shape))


def i64_array(values: Sequence[int]) -> DenseArrayBase[IntegerType]:
    """An `array<i64: ...>` property."""
    return DenseArrayBase.from_list(i64, list(values))


def _check(rule_result: tuple[int, ...], op: Operation, result: SSAValue) -> None:
    """Raise a `VerifyException` when a result type disagrees with its shape rule."""
    if tensor_shape(result) != rule_result:
        raise VerifyException(
            f"{op.name}: result type {result.type} does not match the inferred shape {rule_result}"
        )


class NNCanonicalization(HasCanonicalizationPatternsTrait):
    """Folds and identities of an nn op, run by the stock `canonicalize` pass.

    The patterns live in `nnjit/passes/canonicalization_patterns.py`; each op class gets only those
    rooted at it (plus constant folding), every pattern object made once.
    """

    def get_patterns(self, op: type[Operation]) -> tuple[RewritePattern, ...]:
        from nnjit.passes.canonicalization_patterns import patterns_for

        return patterns_for(op)

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from nnjit.passes.canonicalization_patterns import PATTERNS

        return PATTERNS


class _ShapeRuleOp(IRDLOperation, ABC):
    """Base of ops whose result shape follows from operands and properties by one rule."""

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure(), NNCanonicalization())

    def inferred_shape(self) -> tuple[int, ...]:
        """The result shape the op's rule gives; overridden per family."""
        raise NotImplementedError

    def verify_(self) -> None:
        try:
            _check(self.inferred_shape(), self, self.results[0])
        except shapes.ShapeError as error:
            raise VerifyException(f"{self.name}: {error}") from error


# ----------------------------------------------------------------------------------------------
# Constants


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A constant tensor: inline `dense<...>` for small values, `dense_resource<handle>` for weights.

    `%c = nn.constant dense<[1, 2]> : tensor<2xi64>`
    """

    name = "nn.constant"
    value = prop_def(base(DenseIntOrFPElementsAttr) | base(DenseResourceAttr))
    result = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: DenseIntOrFPElementsAttr | DenseResourceAttr):
        super().__init__(properties={"value": value}, result_types=[value.get_type()])

    def verify_(self) -> None:
        if self.value.get_type() != self.result.type:
            raise VerifyException(
                f"nn.constant: value type {self.value.get_type()} differs from result {self.result.type}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr | DenseResourceAttr):
            parser.raise_error("nn.constant expects a dense or dense_resource attribute")
        op = cls(value)
        attributes = parser.parse_optional_attr_dict()
        op.attributes.update(attributes)
        return op


# ----------------------------------------------------------------------------------------------
# Elementwise


class ElementwiseBinaryOp(_ShapeRuleOp, ABC):
    """Binary elementwise op with numpy broadcasting; operands share an element type."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        shape = shapes.broadcast(tensor_shape(lhs), tensor_shape(rhs))
        super().__init__(operands=[lhs, rhs], result_types=[tensor_of(shape, self.result_element(lhs))])

    @classmethod
    def result_element(cls, lhs: SSAValue | Operation) -> Attribute:
        """Element type of the result: the operands' own, except for comparisons."""
        return element_type(lhs)

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.broadcast(tensor_shape(self.lhs), tensor_shape(self.rhs))

    def verify_(self) -> None:
        if element_type(self.lhs) != element_type(self.rhs):
            raise VerifyException(
                f"{self.name}: operand element types differ: {self.lhs.type} and {self.rhs.type}"
            )
        if element_type(self.result) != self.result_element(self.lhs):
            raise VerifyException(f"{self.name}: result element type of {self.result.type} is wrong")
        super().verify_()


class ComparisonOp(ElementwiseBinaryOp, ABC):
    """Elementwise comparison producing `i1`."""

    @classmethod
    def result_element(cls, lhs: SSAValue | Operation) -> Attribute:
        return i1


@irdl_op_definition
class AddOp(ElementwiseBinaryOp):
    """Elementwise `lhs + rhs` with broadcasting."""

    name = "nn.add"


@irdl_op_definition
class SubOp(ElementwiseBinaryOp):
    """Elementwise `lhs - rhs` with broadcasting."""

    name = "nn.sub"


@irdl_op_definition
class MulOp(ElementwiseBinaryOp):
    """Elementwise `lhs * rhs` with broadcasting."""

    name = "nn.mul"


@irdl_op_definition
class DivOp(ElementwiseBinaryOp):
    """Elementwise `lhs / rhs`; integer division truncates toward zero, as in ONNX."""

    name = "nn.div"


@irdl_op_definition
class PowOp(ElementwiseBinaryOp):
    """Elementwise `lhs ** rhs` with broadcasting."""

    name = "nn.pow"


@irdl_op_definition
class MaxOp(ElementwiseBinaryOp):
    """Elementwise maximum with broadcasting."""

    name = "nn.max"


@irdl_op_definition
class MinOp(ElementwiseBinaryOp):
    """Elementwise minimum with broadcasting."""

    name = "nn.min"


@irdl_op_definition
class ModOp(ElementwiseBinaryOp):
    """Elementwise remainder with the sign of the divisor (ONNX Mod, fmod=0)."""

    name = "nn.mod"


@irdl_op_definition
class AndOp(ElementwiseBinaryOp):
    """Elementwise logical and of `i1` tensors."""

    name = "nn.and"


@irdl_op_definition
class OrOp(ElementwiseBinaryOp):
    """Elementwise logical or of `i1` tensors."""

    name = "nn.or"


@irdl_op_definition
class XorOp(ElementwiseBinaryOp):
    """Elementwise logical xor of `i1` tensors."""

    name = "nn.xor"


@irdl_op_definition
class EqualOp(ComparisonOp):
    """Elementwise `lhs == rhs`, giving `i1`."""

    name = "nn.equal"


@irdl_op_definition
class LessOp(ComparisonOp):
    """Elementwise `lhs < rhs`, giving `i1`."""

    name = "nn.less"


@irdl_op_definition
class LessEqualOp(ComparisonOp):
    """Elementwise `lhs <= rhs`, giving `i1`."""

    name = "nn.less_equal"


@irdl_op_definition
class GreaterOp(ComparisonOp):
    """Elementwise `lhs > rhs`, giving `i1`."""

    name = "nn.greater"


@irdl_op_definition
class GreaterEqualOp(ComparisonOp):
    """Elementwise `lhs >= rhs`, giving `i1`."""

    name = "nn.greater_equal"


class ElementwiseUnaryOp(IRDLOperation, ABC):
    """Unary elementwise op; the result has the operand's type."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure(), NNCanonicalization())
    assembly_format = "$input attr-dict `:` type($result)"

    def __init__(self, input: SSAValue | Operation, properties: dict[str, Attribute] | None = None):
        super().__init__(operands=[input], result_types=[SSAValue.get(input).type], properties=properties or {})


@irdl_op_definition
class ExpOp(ElementwiseUnaryOp):
    """Elementwise `e ** x`."""

    name = "nn.exp"


@irdl_op_definition
class LogOp(ElementwiseUnaryOp):
    """Elementwise natural logarithm."""

    name = "nn.log"


@irdl_op_definition
class SqrtOp(ElementwiseUnaryOp):
    """Elementwise square root."""

    name = "nn.sqrt"


@irdl_op_definition
class RsqrtOp(ElementwiseUnaryOp):
    """Elementwise `1 / sqrt(x)`."""

    name = "nn.rsqrt"


@irdl_op_definition
class TanhOp(ElementwiseUnaryOp):
    """Elementwise hyperbolic tangent."""

    name = "nn.tanh"


@irdl_op_definition
class ErfOp(ElementwiseUnaryOp):
    """Elementwise Gauss error function."""

    name = "nn.erf"


@irdl_op_definition
class SigmoidOp(ElementwiseUnaryOp):
    """Elementwise `1 / (1 + e ** -x)`."""

    name = "nn.sigmoid"


@irdl_op_definition
class SiluOp(ElementwiseUnaryOp):
    """Elementwise `x * sigmoid(x)` (SiLU, swish)."""

    name = "nn.silu"


@irdl_op_definition
class ReluOp(ElementwiseUnaryOp):
    """Elementwise `max(x, 0)`."""

    name = "nn.relu"


@irdl_op_definition
class NegOp(ElementwiseUnaryOp):
    """Elementwise `-x`."""

    name = "nn.neg"


@irdl_op_definition
class ReciprocalOp(ElementwiseUnaryOp):
    """Elementwise `1 / x`."""

    name = "nn.reciprocal"


@irdl_op_definition
class AbsOp(ElementwiseUnaryOp):
    """Elementwise absolute value."""

    name = "nn.abs"


@irdl_op_definition
class SinOp(ElementwiseUnaryOp):
    """Elementwise sine."""

    name = "nn.sin"


@irdl_op_definition
class CosOp(ElementwiseUnaryOp):
    """Elementwise cosine."""

    name = "nn.cos"


@irdl_op_definition
class FloorOp(ElementwiseUnaryOp):
    """Elementwise floor."""

    name = "nn.floor"


@irdl_op_definition
class CeilOp(ElementwiseUnaryOp):
    """Elementwise ceiling."""

    name = "nn.ceil"


@irdl_op_definition
class RoundOp(ElementwiseUnaryOp):
    """Elementwise rounding, halves to even."""

    name = "nn.round"


@irdl_op_definition
class SignOp(ElementwiseUnaryOp):
    """Elementwise sign: -1, 0 or 1."""

    name = "nn.sign"


@irdl_op_definition
class NotOp(ElementwiseUnaryOp):
    """Elementwise logical not of an `i1` tensor."""

    name = "nn.not"


@irdl_op_definition
class GeluOp(ElementwiseUnaryOp):
    """GELU, exact (`approximate = "none"`, erf form) or the tanh approximation.

    `%y = nn.gelu %x {approximate = "tanh"} : tensor<2x8xf32>`
    """

    name = "nn.gelu"
    approximate = prop_def(StringAttr, default_value=StringAttr("none"))

    def __init__(self, input: SSAValue | Operation, approximate: str = "none"):
        super().__init__(input, {"approximate": StringAttr(approximate)})

    def verify_(self) -> None:
        if self.approximate.data not in ("none", "tanh"):
            raise VerifyException(f'nn.gelu: approximate must be "none" or "tanh", got "{self.approximate.data}"')


@irdl_op_definition
class LeakyReluOp(ElementwiseUnaryOp):
    """`x if x >= 0 else alpha * x`."""

    name = "nn.leaky_relu"
    alpha = prop_def(FloatAttr)

    def __init__(self, input: SSAValue | Operation, alpha: float):
        super().__init__(input, {"alpha": FloatAttr(alpha, f32)})


@irdl_op_definition
class ClipOp(ElementwiseUnaryOp):
    """Clamp to `[min, max]`; an absent bound is unbounded."""

    name = "nn.clip"
    min = opt_prop_def(FloatAttr)
    max = opt_prop_def(FloatAttr)

    def __init__(self, input: SSAValue | Operation, min: float | None, max: float | None):
        properties: dict[str, Attribute] = {}
        if min is not None:
            properties["min"] = FloatAttr(min, f32)
        if max is not None:
            properties["max"] = FloatAttr(max, f32)
        super().__init__(input, properties)


@irdl_op_definition
class WhereOp(_ShapeRuleOp):
    """`condition ? on_true : on_false`, all three broadcast together."""

    name = "nn.where"
    condition = operand_def(TensorType)
    on_true = operand_def(TensorType)
    on_false = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$condition `,` $on_true `,` $on_false attr-dict `:` functional-type(operands, results)"

    def __init__(self, condition: SSAValue | Operation, on_true: SSAValue | Operation, on_false: SSAValue | Operation):
        shape = shapes.broadcast(tensor_shape(condition), tensor_shape(on_true), tensor_shape(on_false))
        super().__init__(
            operands=[condition, on_true, on_false], result_types=[tensor_of(shape, element_type(on_true))]
        )

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.broadcast(
            tensor_shape(self.condition), tensor_shape(self.on_true), tensor_shape(self.on_false)
        )

    def verify_(self) -> None:
        if element_type(self.condition) != i1:
            raise VerifyException(f"nn.where: condition must be i1, got {self.condition.type}")
        if element_type(self.on_true) != element_type(self.on_false):
            raise VerifyException(f"nn.where: branch types differ: {self.on_true.type} and {self.on_false.type}")
        super().verify_()


@irdl_op_definition
class CastOp(IRDLOperation):
    """Convert the element type, keeping the shape (float to int truncates toward zero)."""

    name = "nn.cast"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), NNCanonicalization())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, to: Attribute):
        super().__init__(operands=[input], result_types=[tensor_of(tensor_shape(input), to)])

    def verify_(self) -> None:
        if tensor_shape(self.input) != tensor_shape(self.result):
            raise VerifyException(f"nn.cast: shape changes from {self.input.type} to {self.result.type}")


# ----------------------------------------------------------------------------------------------
# Contractions


@irdl_op_definition
class MatmulOp(_ShapeRuleOp):
    """`numpy.matmul`: batched with broadcasting batch dims; 1-D operands promoted then dropped."""

    name = "nn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation):
        shape = shapes.matmul(tensor_shape(lhs), tensor_shape(rhs))
        super().__init__(operands=[lhs, rhs], result_types=[tensor_of(shape, element_type(lhs))])

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.matmul(tensor_shape(self.lhs), tensor_shape(self.rhs))


@irdl_op_definition
class GemmOp(_ShapeRuleOp):
    """ONNX Gemm: `alpha * op(a) @ op(b) + beta * c`, 2-D, `c` optional and broadcast."""

    name = "nn.gemm"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    c = opt_operand_def(TensorType)
    result = result_def(TensorType)
    alpha = prop_def(FloatAttr, default_value=FloatAttr(1.0, f32))
    beta = prop_def(FloatAttr, default_value=FloatAttr(1.0, f32))
    trans_a = opt_prop_def(UnitAttr)
    trans_b = opt_prop_def(UnitAttr)
    assembly_format = "$a `,` $b (`,` $c^)? attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        a: SSAValue | Operation,
        b: SSAValue | Operation,
        c: SSAValue | Operation | None = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        trans_a: bool = False,
        trans_b: bool = False,
    ):
        shape = shapes.gemm(tensor_shape(a), tensor_shape(b), trans_a, trans_b)
        properties: dict[str, Attribute] = {"alpha": FloatAttr(alpha, f32), "beta": FloatAttr(beta, f32)}
        if trans_a:
            properties["trans_a"] = UnitAttr()
        if trans_b:
            properties["trans_b"] = UnitAttr()
        super().__init__(
            operands=[a, b, [c] if c is not None else []],
            result_types=[tensor_of(shape, element_type(a))],
            properties=properties,
        )

    def inferred_shape(self) -> tuple[int, ...]:
        shape = shapes.gemm(
            tensor_shape(self.a), tensor_shape(self.b), self.trans_a is not None, self.trans_b is not None
        )
        if self.c is not None and shapes.broadcast(tensor_shape(self.c), shape) != shape:
            raise shapes.ShapeError(f"bias {self.c.type} does not broadcast to {shape}")
        return shape


@irdl_op_definition
class Conv2dOp(_ShapeRuleOp):
    """NCHW 2-D convolution with OIHW weight, optional bias, pads `[top, left, bottom, right]`."""

    name = "nn.conv2d"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    group = prop_def(IntegerAttr[I64])
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        input: SSAValue | Operation,
        weight: SSAValue | Operation,
        bias: SSAValue | Operation | None,
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int],
        group: int,
    ):
        shape = shapes.conv2d(tensor_shape(input), tensor_shape(weight), strides, pads, dilations, group)
        super().__init__(
            operands=[input, weight, [bias] if bias is not None else []],
            result_types=[tensor_of(shape, element_type(input))],
            properties={
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                "dilations": i64_array(dilations),
                "group": IntegerAttr(group, i64),
            },
        )

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.conv2d(
            tensor_shape(self.input),
            tensor_shape(self.weight),
            self.strides.get_values(),
            self.pads.get_values(),
            self.dilations.get_values(),
            self.group.value.data,
        )


class Pool2dOp(_ShapeRuleOp, ABC):
    """NCHW window pooling with pads `[top, left, bottom, right]`."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    kernel = prop_def(DenseArrayBase[I64])
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        input: SSAValue | Operation,
        kernel: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        extra: dict[str, Attribute] | None = None,
    ):
        shape = shapes.pool2d(tensor_shape(input), kernel, strides, pads)
        super().__init__(
            operands=[input],
            result_types=[tensor_of(shape, element_type(input))],
            properties={
                "kernel": i64_array(kernel),
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                **(extra or {}),
            },
        )

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.pool2d(
            tensor_shape(self.input), self.kernel.get_values(), self.strides.get_values(), self.pads.get_values()
        )


@irdl_op_definition
class MaxPool2dOp(Pool2dOp):
    """Max over each window; padding never wins."""

    name = "nn.max_pool2d"


@irdl_op_definition
class AvgPool2dOp(Pool2dOp):
    """Mean over each window; `count_include_pad` counts padded cells in the divisor."""

    name = "nn.avg_pool2d"
    count_include_pad = opt_prop_def(UnitAttr)


# ----------------------------------------------------------------------------------------------
# Normalisations and reductions


class AxisOp(_ShapeRuleOp, ABC):
    """An op along one axis that keeps its operand's type (softmax, cumsum)."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    axis = prop_def(IntegerAttr[I64])
    assembly_format = "$input attr-dict `:` type($result)"

    def __init__(self, input: SSAValue | Operation, axis: int, extra: dict[str, Attribute] | None = None):
        super().__init__(
            operands=[input],
            result_types=[SSAValue.get(input).type],
            properties={"axis": IntegerAttr(axis, i64), **(extra or {})},
        )

    def inferred_shape(self) -> tuple[int, ...]:
        shapes.normalize_axis(self.axis.value.data, len(tensor_shape(self.input)))
        return tensor_shape(self.input)


@irdl_op_definition
class SoftmaxOp(AxisOp):
    """`exp(x - max) / sum(exp(x - max))` along `axis`.

    `%p = nn.softmax %s {axis = -1 : i64} : tensor<1x4x8x8xf32>`
    """

    name = "nn.softmax"


@irdl_op_definition
class LogSoftmaxOp(AxisOp):
    """`log(softmax(x))` along `axis`, computed stably."""

    name = "nn.log_softmax"


@irdl_op_definition
class CumsumOp(AxisOp):
    """Running sum along `axis`; `exclusive` starts from zero, `reverse` runs backwards."""

    name = "nn.cumsum"
    exclusive = opt_prop_def(UnitAttr)
    reverse = opt_prop_def(UnitAttr)


class NormOp(_ShapeRuleOp, ABC):
    """Normalisation over the trailing dims from `axis` on, then an affine map by `scale` (and `bias`)."""

    axis = prop_def(IntegerAttr[I64])
    epsilon = prop_def(FloatAttr)

    def inferred_shape(self) -> tuple[int, ...]:
        shape = tensor_shape(self.operands[0])
        axis = shapes.normalize_axis(self.axis.value.data, len(shape))
        for operand in self.operands[1:]:
            if shapes.broadcast(tensor_shape(operand), shape[axis:]) != shape[axis:]:
                raise shapes.ShapeError(f"{operand.type} does not broadcast to the normalised dims {shape[axis:]}")
        return shape


@irdl_op_definition
class LayerNormOp(NormOp):
    """`(x - mean) / sqrt(var + epsilon) * scale + bias` over dims `axis..`; bias optional.

    `%y = nn.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-05 : f32}
        : (tensor<1x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x8x64xf32>`
    """

    name = "nn.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        input: SSAValue | Operation,
        scale: SSAValue | Operation,
        bias: SSAValue | Operation | None,
        axis: int,
        epsilon: float,
    ):
        super().__init__(
            operands=[input, scale, [bias] if bias is not None else []],
            result_types=[SSAValue.get(input).type],
            properties={"axis": IntegerAttr(axis, i64), "epsilon": FloatAttr(epsilon, f32)},
        )


@irdl_op_definition
class RmsNormOp(NormOp):
    """`x / sqrt(mean(x ** 2) + epsilon) * scale` over dims `axis..` (T5, Llama)."""

    name = "nn.rms_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input `,` $scale attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue | Operation, scale: SSAValue | Operation, axis: int, epsilon: float):
        super().__init__(
            operands=[input, scale],
            result_types=[SSAValue.get(input).type],
            properties={"axis": IntegerAttr(axis, i64), "epsilon": FloatAttr(epsilon, f32)},
        )


class ReduceOp(_ShapeRuleOp, ABC):
    """Reduction over `axes`; whether reduced dims are kept shows in the result type."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    axes = prop_def(DenseArrayBase[I64])
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue | Operation, axes: Sequence[int], keepdims: bool):
        shape = shapes.reduce(tensor_shape(input), axes, keepdims)
        super().__init__(
            operands=[input],
            result_types=[tensor_of(shape, element_type(input))],
            properties={"axes": i64_array(axes)},
        )

    @property
    def keepdims(self) -> bool:
        """Whether the reduced dims stay as size 1 (rank is kept)."""
        return len(tensor_shape(self.result)) == len(tensor_shape(self.input))

    def inferred_shape(self) -> tuple[int, ...]:
        axes = self.axes.get_values()
        if not axes:
            raise shapes.ShapeError("a reduction needs at least one axis")
        kept = shapes.reduce(tensor_shape(self.input), axes, True)
        dropped = shapes.reduce(tensor_shape(self.input), axes, False)
        return kept if tensor_shape(self.result) == kept else dropped


@irdl_op_definition
class ReduceSumOp(ReduceOp):
    """Sum over `axes`."""

    name = "nn.reduce_sum"


@irdl_op_definition
class ReduceMeanOp(ReduceOp):
    """Arithmetic mean over `axes`."""

    name = "nn.reduce_mean"


@irdl_op_definition
class ReduceMaxOp(ReduceOp):
    """Maximum over `axes`."""

    name = "nn.reduce_max"


@irdl_op_definition
class ReduceMinOp(ReduceOp):
    """Minimum over `axes`."""

    name = "nn.reduce_min"


@irdl_op_definition
class ReduceProdOp(ReduceOp):
    """Product over `axes`."""

    name = "nn.reduce_prod"


# ----------------------------------------------------------------------------------------------
# Data movement


@irdl_op_definition
class TransposeOp(_ShapeRuleOp):
    """Permute dimensions: result dim `i` is input dim `perm[i]`."""

    name = "nn.transpose"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    perm = prop_def(DenseArrayBase[I64])
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue | Operation, perm: Sequence[int]):
        shape = shapes.transpose(tensor_shape(input), perm)
        super().__init__(
            operands=[input],
            result_types=[tensor_of(shape, element_type(input))],
            properties={"perm": i64_array(perm)},
        )

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.transpose(tensor_shape(self.input), self.perm.get_values())


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Reinterpret the row-major elements under the result's shape."""

    name = "nn.reshape"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), NNCanonicalization())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, shape: Sequence[int]):
        super().__init__(operands=[input], result_types=[tensor_of(shape, element_type(input))])

    def verify_(self) -> None:
        if element_type(self.input) != element_type(self.result):
            raise VerifyException(f"nn.reshape: element type changes from {self.input.type} to {self.result.type}")
        if shapes.numel(tensor_shape(self.input)) != shapes.numel(tensor_shape(self.result)):
            raise VerifyException(f"nn.reshape: {self.input.type} and {self.result.type} differ in size")


@irdl_op_definition
class ExpandOp(IRDLOperation):
    """Broadcast the input to the result's shape."""

    name = "nn.expand"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), NNCanonicalization())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, shape: Sequence[int]):
        super().__init__(operands=[input], result_types=[tensor_of(shape, element_type(input))])

    def verify_(self) -> None:
        target = tensor_shape(self.result)
        try:
            ok = shapes.broadcast(tensor_shape(self.input), target) == target
        except shapes.ShapeError:
            ok = False
        if not ok or element_type(self.input) != element_type(self.result):
            raise VerifyException(f"nn.expand: {self.input.type} does not broadcast to {self.result.type}")


@irdl_op_definition
class ConcatOp(_ShapeRuleOp):
    """Join tensors along `axis`."""

    name = "nn.concat"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    assembly_format = "$inputs attr-dict `:` functional-type(operands, results)"

    def __init__(self, inputs: Sequence[SSAValue | Operation], axis: int):
        shape = shapes.concat([tensor_shape(i) for i in inputs], axis)
        super().__init__(
            operands=[list(inputs)],
            result_types=[tensor_of(shape, element_type(inputs[0]))],
            properties={"axis": IntegerAttr(axis, i64)},
        )

    def inferred_shape(self) -> tuple[int, ...]:
        if not self.inputs:
            raise shapes.ShapeError("concat needs at least one input")
        return shapes.concat([tensor_shape(i) for i in self.inputs], self.axis.value.data)


@irdl_op_definition
class SliceOp(_ShapeRuleOp):
    """Static strided slice: one `start`, `end`, `step` per dim, with Python slice semantics."""

    name = "nn.slice"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    starts = prop_def(DenseArrayBase[I64])
    ends = prop_def(DenseArrayBase[I64])
    steps = prop_def(DenseArrayBase[I64])
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(
        self, input: SSAValue | Operation, starts: Sequence[int], ends: Sequence[int], steps: Sequence[int]
    ):
        shape = shapes.slice_(tensor_shape(input), starts, ends, steps)
        super().__init__(
            operands=[input],
            result_types=[tensor_of(shape, element_type(input))],
            properties={"starts": i64_array(starts), "ends": i64_array(ends), "steps": i64_array(steps)},
        )

    def inferred_shape(self) -> tuple[int, ...]:
        return shapes.slice_(
            tensor_shape(self.input), self.starts.get_values(), self.ends.get_values(), self.steps.get_values()
        )


@irdl_op_definition
class GatherOp(_ShapeRuleOp):
    """`take(data, indices, axis)`; negative indices count from the end (ONNX Gather)."""

    name = "nn.gather"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    assembly_format = "$data `,` $indices attr-dict `:` functional-type(operands, results)"

    def __init__(self, data: SSAValue | Operation, indices: SSAValue | Operation, axis: int):
        shape = shapes.gather(tensor_shape(data), tensor_shape(indices), axis)
        super().__init__(
            operands=[data, indices],
            result_types=[tensor_of(shape, element_type(data))],
            properties={"axis": IntegerAttr(axis, i64)},
        )

    def inferred_shape(self) -> tuple[int, ...]:
        if not isinstance(element_type(self.indices), IntegerType):
            raise shapes.ShapeError(f"indices must be integers, got {self.indices.type}")
        return shapes.gather(tensor_shape(self.data), tensor_shape(self.indices), self.axis.value.data)


NN = Dialect(
    "nn",
    [
        ConstantOp,
        AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, ModOp, AndOp, OrOp, XorOp,
        EqualOp, LessOp, LessEqualOp, GreaterOp, GreaterEqualOp,
        ExpOp, LogOp, SqrtOp, RsqrtOp, TanhOp, ErfOp, SigmoidOp, SiluOp, ReluOp, NegOp, ReciprocalOp,
        AbsOp, SinOp, CosOp, FloorOp, CeilOp, RoundOp, SignOp, NotOp, GeluOp, LeakyReluOp, ClipOp,
        WhereOp, CastOp,
        MatmulOp, GemmOp, Conv2dOp, MaxPool2dOp, AvgPool2dOp,
        SoftmaxOp, LogSoftmaxOp, CumsumOp, LayerNormOp, RmsNormOp,
        ReduceSumOp, ReduceMeanOp, ReduceMaxOp, ReduceMinOp, ReduceProdOp,
        TransposeOp, ReshapeOp, ExpandOp, ConcatOp, SliceOp, GatherOp,
    ],
    [],
)
