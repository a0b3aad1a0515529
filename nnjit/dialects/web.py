"""The `web` dialect: kernels with explicit schedules, and the host plan that dispatches them.

A `web.kernel` is an isolated symbol whose body is a small fusion group of `nn` ops on tensors: one
anchor (a matmul, a row reduction, a convolution, ...) or none (a pure elementwise/data-movement
group), plus the elementwise and view ops fused around it. View ops inside a body (reshape,
transpose, slice, expand, gather, concat) are index arithmetic in the printed code, never copies.
Its `template` names the code shape a printer emits, and its `#web.schedule` says how: workgroup
shape, tiles, per-thread tile, vector width, unroll, use of workgroup memory. The tuner changes
only schedules; printers print exactly what they say.

    web.kernel @matmul_0(%a: tensor<8x64xf32>, %b: tensor<64x64xf32>, %c: tensor<64xf32>) -> tensor<8x64xf32>
        attributes {template = "matmul",
                    schedule = #web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 8], thread = [4, 4],
                                             vector = 1, unroll = 1, shared = true>} {
      %m = nn.matmul %a, %b : (tensor<8x64xf32>, tensor<64x64xf32>) -> tensor<8x64xf32>
      %y = nn.add %m, %c : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
      web.yield %y : tensor<8x64xf32>
    }
    func.func @main(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
      ...
      %r = web.dispatch @matmul_0(%x, %w, %bias) {slot = 0 : i64} : (...) -> tensor<8x64xf32>
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    FunctionType,
    IntAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    SymbolNameConstraint,
    SymbolRefAttr,
    TensorType,
)
from xdsl.dialects.utils import parse_func_op_like, print_func_op_like
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    opt_prop_def,
    param_def,
    prop_def,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    SymbolOpInterface,
    SymbolTable,
    SymbolUserOpInterface,
)
from xdsl.utils.exceptions import VerifyException

TEMPLATES = ("elementwise", "matmul", "row_reduce", "reduce", "scan", "conv2d", "pool")
"""Code shapes a printer knows; each `web.kernel` names one."""


def _parse_keyword_ints(parser: AttrParser, names: Sequence[str]) -> dict[str, list[int]]:
    """Parse `<name = 1, name = [1, 2], ...>` in the given order."""
    values: dict[str, list[int]] = {}

    def parse_int() -> int:
        if parser.parse_optional_keyword("true"):
            return 1
        if parser.parse_optional_keyword("false"):
            return 0
        return parser.parse_integer()

    with parser.in_angle_brackets():
        for index, name in enumerate(names):
            if index:
                parser.parse_punctuation(",")
            parser.parse_keyword(name)
            parser.parse_punctuation("=")
            if parser.parse_optional_punctuation("[") is not None:
                items = [parse_int()]
                while parser.parse_optional_punctuation(",") is not None:
                    items.append(parse_int())
                parser.parse_punctuation("]")
                values[name] = items
            else:
                values[name] = [parse_int()]
    return values


def _ints(values: Sequence[int]) -> ArrayAttr[IntAttr]:
    return ArrayAttr([IntAttr(v) for v in values])


@irdl_attr_definition
class ScheduleAttr(ParametrizedAttribute):
    """How a kernel runs: the knobs of its template's lite space.

    `#web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 8], thread = [4, 4], vector = 4, unroll = 1,
    shared = true>`. `tile` and `thread` matter to tiled templates (matmul); `unroll` is the number of
    output elements per thread in elementwise kernels and the K unroll in matmul.
    """

    name = "web.schedule"
    workgroup: ArrayAttr[IntAttr] = param_def()
    tile: ArrayAttr[IntAttr] = param_def()
    thread: ArrayAttr[IntAttr] = param_def()
    vector: IntAttr = param_def()
    unroll: IntAttr = param_def()
    shared: IntAttr = param_def()

    FIELDS: ClassVar[tuple[str, ...]] = ("workgroup", "tile", "thread", "vector", "unroll", "shared")

    def __init__(
        self,
        workgroup: Sequence[int] = (64, 1, 1),
        tile: Sequence[int] = (0, 0, 0),
        thread: Sequence[int] = (1, 1),
        vector: int = 1,
        unroll: int = 1,
        shared: bool = False,
    ):
        super().__init__(_ints(workgroup), _ints(tile), _ints(thread), IntAttr(vector), IntAttr(unroll), IntAttr(int(shared)))

    @property
    def values(self) -> Schedule:
        """The schedule as plain Python values."""
        return Schedule(
            tuple(v.data for v in self.workgroup.data),  # pyright: ignore[reportArgumentType]
            tuple(v.data for v in self.tile.data),  # pyright: ignore[reportArgumentType]
            tuple(v.data for v in self.thread.data),  # pyright: ignore[reportArgumentType]
            self.vector.data,
            self.unroll.data,
            bool(self.shared.data),
        )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        fields = _parse_keyword_ints(parser, cls.FIELDS)
        return ScheduleAttr(
            fields["workgroup"], fields["tile"], fields["thread"], fields["vector"][0], fields["unroll"][0], bool(fields["shared"][0])
        ).parameters

    def print_parameters(self, printer: Printer) -> None:
        s = self.values
        printer.print_string(
            f"<workgroup = {list(s.workgroup)}, tile = {list(s.tile)}, thread = {list(s.thread)}, "
            f"vector = {s.vector}, unroll = {s.unroll}, shared = {'true' if s.shared else 'false'}>"
        )

    def verify(self) -> None:
        s = self.values
        if len(s.workgroup) != 3 or len(s.tile) != 3 or len(s.thread) != 2:
            raise VerifyException("#web.schedule needs workgroup [x, y, z], tile [m, n, k] and thread [m, n]")
        if min(s.workgroup) < 1 or min(s.thread) < 1 or s.unroll < 1 or s.vector not in (1, 2, 4):
            raise VerifyException(f"#web.schedule has a non-positive size or a vector width other than 1, 2, 4: {s}")


@dataclass(frozen=True)
class Schedule:
    """Plain values of a `#web.schedule`."""

    workgroup: tuple[int, int, int]
    tile: tuple[int, int, int]
    thread: tuple[int, int]
    vector: int
    unroll: int
    shared: bool

    @property
    def invocations(self) -> int:
        """Threads per workgroup."""
        x, y, z = self.workgroup
        return x * y * z

    def to_attr(self) -> ScheduleAttr:
        """Back to the IR attribute."""
        return ScheduleAttr(self.workgroup, self.tile, self.thread, self.vector, self.unroll, self.shared)


@irdl_attr_definition
class LimitsAttr(ParametrizedAttribute):
    """The device limits schedules must respect (WebGPU adapter limits; defaults are the spec's).

    `#web.limits<invocations = 256, workgroup = [256, 256, 64], storage = 16384, binding = 134217728>`
    """

    name = "web.limits"
    invocations: IntAttr = param_def()
    workgroup: ArrayAttr[IntAttr] = param_def()
    storage: IntAttr = param_def()
    binding: IntAttr = param_def()

    FIELDS: ClassVar[tuple[str, ...]] = ("invocations", "workgroup", "storage", "binding")

    def __init__(
        self,
        invocations: int = 256,
        workgroup: Sequence[int] = (256, 256, 64),
        storage: int = 16384,
        binding: int = 134217728,
    ):
        super().__init__(IntAttr(invocations), _ints(workgroup), IntAttr(storage), IntAttr(binding))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        fields = _parse_keyword_ints(parser, cls.FIELDS)
        return LimitsAttr(fields["invocations"][0], fields["workgroup"], fields["storage"][0], fields["binding"][0]).parameters

    def print_parameters(self, printer: Printer) -> None:
        workgroup = [v.data for v in self.workgroup.data]
        printer.print_string(
            f"<invocations = {self.invocations.data}, workgroup = {workgroup}, "
            f"storage = {self.storage.data}, binding = {self.binding.data}>"
        )


DEFAULT_LIMITS = LimitsAttr()


def module_limits(op: Operation) -> LimitsAttr:
    """The `web.limits` of the module enclosing `op`, or WebGPU's default limits."""
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, ModuleOp):
        parent = parent.parent_op()
    limits = parent.attributes.get("web.limits") if parent is not None else None
    return limits if isinstance(limits, LimitsAttr) else DEFAULT_LIMITS


TARGETS = ("webgpu", "wasm")
"""Code targets; the module attribute `web.target` names one (`webgpu` when absent)."""


def module_target(op: Operation) -> str:
    """The `web.target` of the module enclosing `op` (`webgpu` when absent)."""
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, ModuleOp):
        parent = parent.parent_op()
    target = parent.attributes.get("web.target") if parent is not None else None
    return target.data if isinstance(target, StringAttr) else "webgpu"


def workgroup_storage_bytes(template: str, schedule: Schedule) -> int:
    """Workgroup memory a kernel of `template` uses under `schedule` (f32 words)."""
    if template == "matmul" and schedule.shared:
        m, n, k = schedule.tile
        return (m * k + k * n) * 4
    if template == "row_reduce":
        return schedule.invocations * 2 * 4
    return 0


@irdl_op_definition
class KernelOp(IRDLOperation):
    """One compute kernel: an isolated fusion group of `nn` ops, its template and schedule."""

    name = "web.kernel"
    body = region_def("single_block")
    sym_name = prop_def(SymbolNameConstraint())
    function_type = prop_def(FunctionType)
    template = prop_def(StringAttr)
    schedule = prop_def(ScheduleAttr)
    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface())

    def __init__(
        self, name: str, function_type: FunctionType, body: Region, template: str, schedule: ScheduleAttr
    ):
        super().__init__(
            regions=[body],
            properties={
                "sym_name": StringAttr(name),
                "function_type": function_type,
                "template": StringAttr(template),
                "schedule": schedule,
            },
        )

    @property
    def root(self) -> SSAValue:
        """The value the kernel writes (the operand of its `web.yield`)."""
        terminator = self.body.block.last_op
        assert isinstance(terminator, YieldOp)
        return terminator.values[0]

    def verify_(self) -> None:
        if self.template.data not in TEMPLATES:
            raise VerifyException(f"web.kernel @{self.sym_name.data}: unknown template '{self.template.data}'")
        if tuple(self.body.block.arg_types) != self.function_type.inputs.data:
            raise VerifyException(f"web.kernel @{self.sym_name.data}: block arguments differ from the function type")
        schedule = self.schedule.values
        target = module_target(self)
        if target not in TARGETS:
            raise VerifyException(f"web.kernel @{self.sym_name.data}: unknown web.target '{target}'")
        if target == "wasm":
            self._verify_wasm(schedule)
        else:
            self._verify_webgpu(schedule)

    def _verify_webgpu(self, schedule: Schedule) -> None:
        """Workgroups within the adapter's limits; a matmul tile is exactly workgroup times thread tile."""
        limits = module_limits(self)
        max_sizes = [v.data for v in limits.workgroup.data]
        if schedule.invocations > limits.invocations.data or any(
            s > m for s, m in zip(schedule.workgroup, max_sizes, strict=True)
        ):
            raise VerifyException(
                f"web.kernel @{self.sym_name.data}: workgroup {list(schedule.workgroup)} exceeds the device limits "
                f"({limits.invocations.data} invocations, sizes {max_sizes})"
            )
        storage = workgroup_storage_bytes(self.template.data, schedule)
        if storage > limits.storage.data:
            raise VerifyException(
                f"web.kernel @{self.sym_name.data}: needs {storage} bytes of workgroup storage, the device has "
                f"{limits.storage.data}"
            )
        if self.template.data == "matmul":
            m, n, k = schedule.tile
            if (m, n) != (schedule.workgroup[1] * schedule.thread[0], schedule.workgroup[0] * schedule.thread[1]) or k < 1:
                raise VerifyException(
                    f"web.kernel @{self.sym_name.data}: matmul tile {list(schedule.tile)} must equal workgroup "
                    f"[y, x] {list(schedule.workgroup[1::-1])} times thread tile {list(schedule.thread)}, with k >= 1"
                )

    def _verify_wasm(self, schedule: Schedule) -> None:
        """One thread per kernel call; a matmul's register block (thread tile) divides its cache tile."""
        if schedule.workgroup != (1, 1, 1):
            raise VerifyException(f"web.kernel @{self.sym_name.data}: wasm kernels run one thread per call, workgroup must be [1, 1, 1]")
        if self.template.data == "matmul":
            m, n, k = schedule.tile
            tm, tn = schedule.thread
            if m % tm or n % tn or k < 1 or tn % schedule.vector:
                raise VerifyException(
                    f"web.kernel @{self.sym_name.data}: wasm matmul tile {list(schedule.tile)} must be a multiple of "
                    f"the register block {list(schedule.thread)} whose n is a multiple of vector {schedule.vector}"
                )

    @classmethod
    def parse(cls, parser: Parser) -> KernelOp:
        name, inputs, outputs, region, extra, _, _ = parse_func_op_like(
            parser, reserved_attr_names=("sym_name", "function_type")
        )
        attributes = dict(extra.data) if extra is not None else {}
        template, schedule = attributes.pop("template", None), attributes.pop("schedule", None)
        if not isinstance(template, StringAttr) or not isinstance(schedule, ScheduleAttr):
            parser.raise_error("web.kernel needs `template` and `schedule` in its attributes")
        op = cls(name, FunctionType.from_lists(inputs, outputs), region, template.data, schedule)
        op.attributes |= attributes
        return op

    def print(self, printer: Printer) -> None:
        print_func_op_like(
            printer,
            self.sym_name,
            self.function_type,
            self.body,
            {**self.attributes, "template": self.template, "schedule": self.schedule},
            reserved_attr_names=("sym_name", "function_type"),
        )


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Ends a `web.kernel` body with the value the kernel writes."""

    name = "web.yield"
    values = var_operand_def(TensorType)
    traits = traits_def(IsTerminator(), HasParent(KernelOp))
    assembly_format = "$values attr-dict `:` type($values)"

    def __init__(self, *values: SSAValue | Operation):
        super().__init__(operands=[list(values)])


class _DispatchSymbolUse(SymbolUserOpInterface):
    def verify(self, op: Operation) -> None:
        assert isinstance(op, DispatchOp)
        kernel = SymbolTable.lookup_symbol(op, op.kernel)
        if not isinstance(kernel, KernelOp):
            raise VerifyException(f"web.dispatch: '{op.kernel}' is not a web.kernel")
        called = FunctionType.from_lists([a.type for a in op.args], [r.type for r in op.results])
        if called != kernel.function_type:
            raise VerifyException(f"web.dispatch: types {called} differ from @{kernel.sym_name.data}'s {kernel.function_type}")


@irdl_op_definition
class DispatchOp(IRDLOperation):
    """Run a kernel on buffers; `slot` (from buffer planning) says which storage its result uses."""

    name = "web.dispatch"
    kernel = prop_def(SymbolRefAttr)
    args = var_operand_def(TensorType)
    outputs = var_result_def(TensorType)
    slot = opt_prop_def(IntegerAttr[I64])
    traits = traits_def(_DispatchSymbolUse())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$kernel `(` $args `)` attr-dict `:` functional-type($args, $outputs)"

    def __init__(self, kernel: str, args: Sequence[SSAValue | Operation], result_types: Sequence[Attribute]):
        super().__init__(operands=[list(args)], result_types=[list(result_types)], properties={"kernel": SymbolRefAttr(kernel)})


WEB = Dialect("web", [KernelOp, YieldOp, DispatchOp], [ScheduleAttr, LimitsAttr])

__all__ = [
    "DEFAULT_LIMITS",
    "TARGETS",
    "TEMPLATES",
    "WEB",
    "DispatchOp",
    "KernelOp",
    "LimitsAttr",
    "Schedule",
    "ScheduleAttr",
    "YieldOp",
    "module_limits",
    "module_target",
]
