"""`convert-nn-to-web`: partition `@main` into fusion groups and outline each as a `web.kernel`.

Grouping, in two sweeps over `@main` (a whole-function analysis, so a hand-written walk):

1. Forward: each anchor op (matmul, softmax, norms, reductions, cumsum, conv, pool) opens a group.
   An elementwise op whose operand is a group's single-use root, and whose result has that root's
   shape, joins the group as its new root (an epilogue: bias, activation, residual add); so does a
   reshape, which keeps every element's flat position. Any view may extend an elementwise group the
   same way. Anything else opens an elementwise group.
2. Backward: an elementwise group whose root has one use is inlined into its consumer's group (a
   prologue: its ops become index arithmetic on the consumer's reads). Into a matmul's operands only
   views and casts are inlined, since tiles read each operand element many times.

Each group becomes `web.kernel @<anchor>_<n>` with a default schedule of its template for the
target (`{target=webgpu|wasm}`; the tuner replaces schedules later) and a `web.dispatch` at the
root's place. A lone reshape of a stored value stays in `@main`: it is a free alias of the same
buffer.

On WebGPU a kernel's storage bindings are limited (`maxStorageBuffersPerShaderStage`, 8 by default,
the output included), so neither sweep grows a group past `max-bindings`, counting a weight larger
than one binding (`max-binding-bytes`, default the module's `#web.limits`) once per piece that
`web-split-bindings` will cut it into: RoBERTa-base's 154 MB word embedding would otherwise pull
its gather, the position and type embeddings and the LayerNorm into one kernel of 11 bindings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, FunctionType, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DispatchOp, KernelOp, Schedule, YieldOp, module_limits
from nnjit.passes.web_plan_buffers import storage_bytes
from nnjit.passes.web_split_bindings import piece_bounds, weight_source

ELEMENTWISE = (nn.ElementwiseBinaryOp, nn.ElementwiseUnaryOp, nn.WhereOp, nn.CastOp)
VIEWS = (nn.ReshapeOp, nn.TransposeOp, nn.SliceOp, nn.ExpandOp, nn.GatherOp, nn.ConcatOp)
CHEAP_PROLOGUE = (nn.ReshapeOp, nn.TransposeOp, nn.SliceOp, nn.ExpandOp, nn.CastOp)

ANCHOR_TEMPLATES: dict[type[Operation], str] = {
    nn.MatmulOp: "matmul",
    nn.SoftmaxOp: "row_reduce",
    nn.LogSoftmaxOp: "row_reduce",
    nn.LayerNormOp: "row_reduce",
    nn.RmsNormOp: "row_reduce",
    nn.CumsumOp: "scan",
    nn.Conv2dOp: "conv2d",
    nn.MaxPool2dOp: "pool",
    nn.AvgPool2dOp: "pool",
}

DEFAULT_SCHEDULES: dict[str, Schedule] = {
    "elementwise": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
    # 16x16 threads of 4x4 accumulators (vec4 along n), A/B tiles staged in workgroup memory, each
    # k-step of 8 printed straight-line: the best of the sampled space on an H100 (18.8 TFLOP/s at
    # 4096^3), and within WebGPU's default limits (256 invocations, 4 KiB of the 16 KiB storage).
    "matmul": Schedule((16, 16, 1), (64, 64, 8), (4, 4), 4, 8, True),
    "row_reduce": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
    "reduce": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
    "scan": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
    "conv2d": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
    "pool": Schedule((64, 1, 1), (0, 0, 0), (1, 1), 1, 1, False),
}
"""The schedule each template starts with before tuning: valid on every WebGPU device."""

WASM_DEFAULT_SCHEDULES: dict[str, Schedule] = {
    "elementwise": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 2, False),
    # register block 8 x 8 (16 f32x4 accumulators), cache block 64 x 64 x 256, K unrolled by 4, B
    # read in place: the fastest measured on the zoo's matmul shapes in wasmtime and V8
    # (docs/benchmarks/matmul-wasm.md); the tuner replaces it per kernel.
    "matmul": Schedule((1, 1, 1), (64, 64, 256), (8, 8), 4, 4, False),
    "row_reduce": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 2, False),
    "reduce": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 1, False),
    "scan": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 1, False),
    "conv2d": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 1, False),
    "pool": Schedule((1, 1, 1), (0, 0, 0), (1, 1), 4, 1, False),
}
"""The schedule each template starts with on `web.target = "wasm"`: one thread, f32x4."""

TARGET_DEFAULTS: dict[str, dict[str, Schedule]] = {"webgpu": DEFAULT_SCHEDULES, "wasm": WASM_DEFAULT_SCHEDULES}
"""Default schedules by `web.target`."""


def anchor_template(op: Operation) -> str | None:
    """The kernel template an anchor op opens, or None for injective ops."""
    if isinstance(op, nn.ReduceOp):
        rank = len(nn.tensor_shape(op.input))
        axes = sorted(a % rank for a in op.axes.get_values())
        return "row_reduce" if axes == list(range(rank - len(axes), rank)) else "reduce"
    return ANCHOR_TEMPLATES.get(type(op))


def is_splat_constant(value: SSAValue) -> bool:
    """An inline constant with one repeated value: cloned into kernels and printed as a literal."""
    owner = value.owner
    return (
        isinstance(owner, nn.ConstantOp)
        and isinstance(owner.value, DenseIntOrFPElementsAttr)
        and len(set(owner.value.get_values())) <= 1
    )


@dataclass(eq=False)
class Group:
    """A fusion group: ops in program order, the one whose value it writes, its template."""

    ops: list[Operation]
    template: str
    anchor: Operation | None = None
    merged: bool = field(default=False)

    @property
    def root(self) -> Operation:
        """The op whose result the kernel writes."""
        return self.ops[-1]


def _single_use(op: Operation) -> Operation | None:
    """The only user of `op`'s only result, if it has exactly one use."""
    uses = list(op.results[0].uses)
    return uses[0].operation if len(uses) == 1 else None


def _may_inline(producer: Group, consumer: Group, user: Operation) -> bool:
    if consumer.template == "matmul" and user is consumer.anchor:
        return all(isinstance(op, CHEAP_PROLOGUE) for op in producer.ops)
    return True


@dataclass(frozen=True)
class BindingBudget:
    """How many storage bindings a kernel may take, and the bytes of one (weights beyond are cut)."""

    max_bindings: int
    max_bytes: int

    def fits(self, ops: Sequence[Operation]) -> bool:
        """Whether a kernel of `ops` takes at most `max_bindings` bindings: its output, and each outside
        value once (splat constants are literals), a weight over `max_bytes` once per piece."""
        inside, seen, count = set(ops), set[SSAValue](), 1
        for op in ops:
            for operand in op.operands:
                if operand.owner in inside or operand in seen or is_splat_constant(operand):
                    continue
                seen.add(operand)
                count += self._pieces(operand)
        return count <= self.max_bindings

    def _pieces(self, value: SSAValue) -> int:
        size = storage_bytes(value)
        if size <= self.max_bytes or weight_source(value) is None:
            return 1
        shape = nn.tensor_shape(value)
        return len(piece_bounds(shape, size // max(1, shapes.numel(shape)), self.max_bytes)[1])


def partition(function: FuncOp, budget: BindingBudget | None = None) -> list[Group]:
    """Fusion groups of `@main`, in program order of their roots (within `budget` when given)."""

    def fits(ops: Sequence[Operation]) -> bool:
        return budget is None or budget.fits(ops)

    group_of: dict[Operation, Group] = {}
    groups: list[Group] = []
    order = {op: index for index, op in enumerate(function.body.block.ops)}
    for op in function.body.block.ops:
        if isinstance(op, nn.ConstantOp | ReturnOp):
            continue
        template = anchor_template(op)
        if template is not None:
            groups.append(group := Group([op], template, op))
            group_of[op] = group
            continue
        if not isinstance(op, ELEMENTWISE + VIEWS):
            raise ValueError(f"convert-nn-to-web: no kernel template for {op.name}")
        joined = None
        for operand in op.operands:
            producer = operand.owner
            if not isinstance(producer, Operation):
                continue
            group = group_of.get(producer)
            if group is None or group.root is not producer or _single_use(producer) is not op:
                continue
            same_shape = nn.tensor_shape(op.results[0]) == nn.tensor_shape(producer.results[0])
            # Reshapes keep every element's flat position, so they can sit in any epilogue.
            if (
                group.template == "elementwise"
                or isinstance(op, nn.ReshapeOp)
                or (isinstance(op, ELEMENTWISE) and same_shape)
            ) and fits([*group.ops, op]):
                joined = group
                break
        if joined is None:
            groups.append(joined := Group([], "elementwise"))
        joined.ops.append(op)
        group_of[op] = joined

    for producer in reversed(groups):
        if producer.template != "elementwise":
            continue
        user = _single_use(producer.root)
        consumer = group_of.get(user) if user is not None else None
        if user is None or consumer is None or consumer is producer or not _may_inline(producer, consumer, user):
            continue
        if not fits(producer.ops + consumer.ops):
            continue
        consumer.ops = sorted(producer.ops + consumer.ops, key=order.__getitem__)
        for op in producer.ops:
            group_of[op] = consumer
        producer.merged = True
    return [g for g in groups if not g.merged]


def _is_alias(group: Group) -> bool:
    """A lone reshape of a value that is stored anyway: no kernel, the buffer is reused."""
    return len(group.ops) == 1 and isinstance(group.root, nn.ReshapeOp)


def outline(group: Group, name: str, module: ModuleOp, function: FuncOp,
            schedules: dict[str, Schedule] = DEFAULT_SCHEDULES) -> None:  # fmt: skip
    """Move a group's ops into a new `web.kernel` and dispatch it where its root was."""
    inside = set(group.ops)
    external: list[SSAValue] = []
    splats: list[SSAValue] = []
    for op in group.ops:
        for operand in op.operands:
            if operand.owner in inside or operand in external or operand in splats:
                continue
            (splats if is_splat_constant(operand) else external).append(operand)
    block = Block(arg_types=[v.type for v in external])
    mapping: dict[SSAValue, SSAValue] = dict(zip(external, block.args, strict=True))
    for value in splats:
        assert isinstance(value.owner, Operation)
        block.add_op(constant := value.owner.clone())
        mapping[value] = constant.results[0]
    for op in group.ops:
        block.add_op(clone := op.clone(value_mapper=mapping))
        mapping.update(zip(op.results, clone.results, strict=True))
    root = group.root.results[0]
    block.add_op(YieldOp(mapping[root]))
    kernel = KernelOp(
        name,
        FunctionType.from_lists([v.type for v in external], [root.type]),
        Region(block),
        group.template,
        schedules[group.template].to_attr(),
    )
    Rewriter.insert_op(kernel, InsertPoint.before(function))
    dispatch = DispatchOp(name, external, [root.type])
    Rewriter.insert_op(dispatch, InsertPoint.before(group.root))
    root.replace_all_uses_with(dispatch.outputs[0])
    for op in reversed(group.ops):
        Rewriter.erase_op(op)
    for value in splats:
        if not value.uses and isinstance(value.owner, Operation):
            Rewriter.erase_op(value.owner)


def kernel_name(group: Group, counters: dict[str, int]) -> str:
    """`<anchor op>_<n>`, or `fused_<n>` for elementwise groups."""
    base = group.anchor.name.removeprefix("nn.") if group.anchor is not None else "fused"
    count = counters[base] = counters.get(base, -1) + 1
    return f"{base}_{count}"


def convert_function(module: ModuleOp, function: FuncOp, names: Sequence[str] = (),
                     schedules: dict[str, Schedule] = DEFAULT_SCHEDULES, budget: BindingBudget | None = None) -> None:  # fmt: skip
    """Outline every fusion group of `function` into kernels with `schedules` as their defaults."""
    counters: dict[str, int] = {}
    for group in partition(function, budget):
        if _is_alias(group):
            continue
        outline(group, kernel_name(group, counters), module, function, schedules)


@dataclass(frozen=True)
class ConvertNnToWebPass(ModulePass):
    """Lower `@main`'s `nn` ops into fused `web.kernel`s and `web.dispatch`es (see module docstring).

    `{target=wasm}` marks the module `web.target = "wasm"` (kernels then verify under Wasm rules) and
    starts every kernel from the Wasm default schedules. On WebGPU, groups stay within `max-bindings`
    storage bindings, weights counted in pieces of `max-binding-bytes` (0: the module's `#web.limits`).
    """

    name = "convert-nn-to-web"

    target: str = "webgpu"
    max_bindings: int = 8
    max_binding_bytes: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in TARGET_DEFAULTS:
            known = ", ".join(TARGET_DEFAULTS)
            raise PassFailedException(f"convert-nn-to-web: unknown target '{self.target}'; known: {known}")
        if self.target != "webgpu":
            op.attributes["web.target"] = StringAttr(self.target)
        budget = None
        if self.target == "webgpu":
            budget = BindingBudget(self.max_bindings, self.max_binding_bytes or module_limits(op).binding.data)
        for function in [f for f in op.body.block.ops if isinstance(f, FuncOp)]:
            convert_function(op, function, schedules=TARGET_DEFAULTS[self.target], budget=budget)
