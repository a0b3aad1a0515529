"""`web-split-bindings`: give every weight larger than one storage binding to its kernel in pieces.

    nnjit-opt m.mlir -p 'web-split-bindings{max-bytes=134217728 max-bindings=8}'

WebGPU caps one storage binding at `maxStorageBufferBindingSize` (128 MiB by default and on many
phones) and a buffer at `maxBufferSize` (256 MiB), while GPT-2's token embedding alone is 147 MiB
and one Llama-7B projection 172 MiB. For each `web.dispatch` argument that is a weight (an
`nn.constant`, possibly through reshapes) larger than `max-bytes` (default: the module's
`#web.limits` binding, WebGPU's default when it has none):

* `@main` cuts it into `nn.slice`s along its leading axis, each at most `max-bytes` (a flat
  reshape first when one row is already too large). The host plans turn a leading-axis slice of a
  weight into a byte range of it, so every piece is its own buffer and the whole never exists.
* the kernel takes the pieces as separate arguments and joins them with `nn.concat` at the top of
  its body. `nn.concat` in a body is index arithmetic (a select between loads), so the printed
  kernel reads the right piece for each element and nothing is copied.

Intermediates and inputs are left alone: whether they fit is a property of the device, which the
executors check with a clear error. Wasm modules are unaffected (one linear memory has no binding
limit). A kernel that would need more than `max-bindings` storage bindings (WebGPU's default
`maxStorageBuffersPerShaderStage` is 8, the output included) is a clear `NnjitError`.

The module records what was planned in `web.split_bindings`, `{max_bytes = N : i64, weights =
array<i64: bytes...>, pieces = array<i64: count...>}` (one entry per split weight), so that a bundle
can tell the page the binding limit it was built for and what was split to fit it.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, FunctionType, IntegerAttr, ModuleOp, i64
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from nnjit.dialects import nn, shapes
from nnjit.dialects.web import DispatchOp, KernelOp, module_limits, module_target
from nnjit.errors import NnjitError
from nnjit.passes.web_plan_buffers import storage_bytes

SPLIT_ATTRIBUTE = "web.split_bindings"
"""The module attribute that records the binding limit planned for and the weights split to fit it."""


def weight_source(value: SSAValue) -> nn.ConstantOp | None:
    """The `nn.constant` a host value is a view of (through reshapes and leading-axis slices), if any."""
    owner = value.owner
    while isinstance(owner, nn.ReshapeOp | nn.SliceOp):
        owner = owner.input.owner
    return owner if isinstance(owner, nn.ConstantOp) else None


def piece_bounds(
    shape: tuple[int, ...], element_bytes: int, max_bytes: int
) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
    """The shape to cut (the tensor's own, or flat when one row exceeds `max_bytes`) and the
    `[start, end)` ranges of its leading axis, each at most `max_bytes`."""
    row_bytes = shapes.numel(shape[1:]) * element_bytes
    cut_shape = shape if shape and row_bytes <= max_bytes else (shapes.numel(shape),)
    row_bytes = shapes.numel(cut_shape[1:]) * element_bytes
    rows = max(1, max_bytes // row_bytes)
    return cut_shape, [(start, min(start + rows, cut_shape[0])) for start in range(0, cut_shape[0], rows)]


def oversized_weights(module: ModuleOp, max_bytes: int) -> dict[nn.ConstantOp, tuple[int, int]]:
    """Each weight that some dispatch takes as an argument larger than `max_bytes`, with the bytes of
    that argument and the pieces it is cut into (the largest over its uses)."""
    found: dict[nn.ConstantOp, tuple[int, int]] = {}
    for dispatch in module.walk():
        if not isinstance(dispatch, DispatchOp):
            continue
        for arg in dispatch.args:
            source, nbytes = weight_source(arg), storage_bytes(arg)
            if source is None or nbytes <= max_bytes:
                continue
            shape = nn.tensor_shape(arg)
            pieces = len(piece_bounds(shape, nbytes // max(1, shapes.numel(shape)), max_bytes)[1])
            known = found.get(source, (0, 0))
            found[source] = (max(known[0], nbytes), max(known[1], pieces))
    return found


@dataclass(frozen=True)
class SplitLargeWeightArguments(RewritePattern):
    """Split each oversized weight argument of one dispatch and of the kernel it calls."""

    max_bytes: int
    max_bindings: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DispatchOp, rewriter: PatternRewriter) -> None:
        oversized = [i for i, a in enumerate(op.args) if storage_bytes(a) > self.max_bytes and weight_source(a)]
        if not oversized:
            return
        module = op.get_toplevel_object()
        kernel = next(
            (k for k in module.walk() if isinstance(k, KernelOp) and k.sym_name.data == op.kernel.root_reference.data),
            None,
        )
        if kernel is None:
            raise NnjitError(f"web.dispatch {op.kernel}: no such web.kernel")
        name = f"web.kernel @{kernel.sym_name.data}"
        element_bytes = [storage_bytes(a) // max(1, shapes.numel(nn.tensor_shape(a))) for a in op.args]
        cuts = {i: piece_bounds(nn.tensor_shape(op.args[i]), element_bytes[i], self.max_bytes) for i in oversized}
        bindings = len(op.args) + 1 + sum(len(bounds) - 1 for _, bounds in cuts.values())
        if bindings > self.max_bindings:
            raise NnjitError(
                f"{name}: splitting its weights over {self.max_bytes} bytes a binding needs {bindings} storage "
                f"bindings, more than the {self.max_bindings} a shader stage may have"
            )
        new_args: list[SSAValue] = []
        block = kernel.body.block
        old_block_args = list(block.args)
        for index, arg in enumerate(op.args):
            if index not in oversized:
                new_args.append(arg)
                continue
            shape = nn.tensor_shape(arg)
            cut_shape, bounds = cuts[index]
            whole = arg
            if cut_shape != shape:
                flat = nn.ReshapeOp(arg, cut_shape)
                rewriter.insert(flat, InsertPoint.before(op))
                whole = flat.result
            rest = list(cut_shape[1:])
            for start, end in bounds:
                piece = nn.SliceOp(whole, [start, *[0] * len(rest)], [end, *rest], [1] * len(cut_shape))
                rewriter.insert(piece, InsertPoint.before(op))
                new_args.append(piece.result)
            self._join_in_body(
                kernel, old_block_args[index], cut_shape, [end - start for start, end in bounds], rewriter
            )
        kernel.function_type = FunctionType.from_lists(list(block.arg_types), list(kernel.function_type.outputs))
        replacement = DispatchOp(kernel.sym_name.data, new_args, [r.type for r in op.results])
        replacement.properties |= {k: v for k, v in op.properties.items() if k != "kernel"}
        replacement.attributes |= op.attributes
        rewriter.replace(op, replacement)

    @staticmethod
    def _join_in_body(
        kernel: KernelOp, old: SSAValue, cut_shape: tuple[int, ...], rows: list[int], rewriter: PatternRewriter
    ) -> None:
        """Replace kernel argument `old` by pieces of `rows` leading rows, concatenated (and reshaped back)."""
        block = kernel.body.block
        element = nn.element_type(old)
        position = block.args.index(old)  # pyright: ignore[reportArgumentType]
        pieces = [
            rewriter.insert_block_argument(block, position + i, nn.tensor_of((count, *cut_shape[1:]), element))
            for i, count in enumerate(rows)
        ]
        joined = nn.ConcatOp(pieces, 0)
        ops: list[nn.ConcatOp | nn.ReshapeOp] = [joined]
        if cut_shape != nn.tensor_shape(old):
            ops.append(nn.ReshapeOp(joined.result, nn.tensor_shape(old)))
        first = block.first_op
        assert first is not None
        rewriter.insert(ops, InsertPoint.before(first))
        rewriter.replace_all_uses_with(old, ops[-1].results[0])
        rewriter.erase_block_argument(old)  # pyright: ignore[reportArgumentType]


@dataclass(frozen=True)
class SplitBindingsPass(ModulePass):
    """Split weights larger than one WebGPU storage binding across bindings (see the module docstring)."""

    name = "web-split-bindings"

    max_bytes: int = 0
    """Largest binding in bytes; 0 takes the module's `#web.limits` binding."""
    max_bindings: int = 8
    """Storage bindings a kernel may have, its output included."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        kernels = [k for k in op.body.block.ops if isinstance(k, KernelOp)]
        if not kernels or module_target(kernels[0]) != "webgpu":
            return
        max_bytes = self.max_bytes or module_limits(kernels[0]).binding.data
        if max_bytes < 4:
            raise NnjitError(f"web-split-bindings: max-bytes must be at least 4, got {max_bytes}")
        # Summarised before the rewrite, which replaces every oversized argument by its pieces.
        split = list(oversized_weights(op, max_bytes).values())
        PatternRewriteWalker(
            SplitLargeWeightArguments(max_bytes, self.max_bindings), apply_recursively=False
        ).rewrite_module(op)
        op.attributes[SPLIT_ATTRIBUTE] = DictionaryAttr({
            "max_bytes": IntegerAttr(max_bytes, i64),
            "weights": DenseArrayBase.from_list(i64, [nbytes for nbytes, _ in split]),
            "pieces": DenseArrayBase.from_list(i64, [pieces for _, pieces in split]),
        })  # fmt: skip
