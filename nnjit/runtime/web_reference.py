"""The numpy oracle for `web` modules: runs the host plan of `@main`, each kernel body op by op.

It checks the lowering itself: a `web` module must compute what its `nn` module computes, whatever
the fusion and whatever the schedules (schedules do not change semantics, so they are ignored here).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import ReturnOp
from xdsl.ir import SSAValue

from nnjit.dialects import nn
from nnjit.dialects.web import DispatchOp, KernelOp, YieldOp
from nnjit.errors import NnjitError
from nnjit.runtime.reference import bind_inputs, constant_value, evaluate_op, main_function, result_names


def run_kernel(kernel: KernelOp, arguments: list[np.ndarray]) -> np.ndarray:
    """Evaluate a kernel body on numpy arguments."""
    values: dict[SSAValue, np.ndarray] = dict(zip(kernel.body.block.args, arguments, strict=True))
    for op in kernel.body.block.ops:
        if isinstance(op, YieldOp):
            return values[op.values[0]]
        if isinstance(op, nn.ConstantOp):
            values[op.result] = constant_value(op)
            continue
        values[op.results[0]] = evaluate_op(op, [values[o] for o in op.operands])
    raise NnjitError(f"web.kernel @{kernel.sym_name.data} has no web.yield")


def run_web_module(
    module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Run `@main` of a lowered module; inputs and outputs keyed by `nn.name` like `run_module`."""
    kernels = {op.sym_name.data: op for op in module.body.block.ops if isinstance(op, KernelOp)}
    main = main_function(module)
    values: dict[SSAValue, np.ndarray] = bind_inputs(main, inputs)
    for op in main.body.block.ops:
        if isinstance(op, nn.ConstantOp):
            values[op.result] = constant_value(op, weights)
        elif isinstance(op, DispatchOp):
            values[op.outputs[0]] = run_kernel(kernels[op.kernel.root_reference.data], [values[a] for a in op.args])
        elif isinstance(op, nn.ReshapeOp | nn.SliceOp):
            values[op.result] = evaluate_op(op, [values[op.input]])
        elif isinstance(op, ReturnOp):
            return {name: values[v] for name, v in zip(result_names(main), op.arguments, strict=True)}
        else:
            raise NnjitError(f"{op.name} cannot appear in the host plan of a web module")
    raise NnjitError("@main has no func.return")
