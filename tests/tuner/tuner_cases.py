"""Test helpers for the tuner: kernels from `nn` op builders, tiny ONNX models, a spying backend.

`make_kernel([a_type, b_type], lambda a, b: nn.MatmulOp(a, b), "matmul")` is a `web.kernel` (not in
a module) whose body is what the builder makes; `tiny_model()` is a small ONNX graph that lowers to
a handful of kernels (two identical matmuls among them); `SpyBackend` wraps the WebGPU backend,
truncates lite spaces and counts every run and oracle comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from xdsl.builder import ImplicitBuilder
from xdsl.dialects.builtin import FunctionType, TensorType, f32
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnjit.dialects.web import KernelOp, Schedule, YieldOp
from nnjit.passes.convert_nn_to_web import TARGET_DEFAULTS
from nnjit.tuner.backend import Build, Device
from nnjit.tuner.backend_webgpu import WebGPUBackend
from nnjit.tuner.lite import LiteSpace

Array = np.ndarray[Any, Any]


def tensor(shape: Sequence[int], element: Attribute = f32) -> TensorType[Any]:
    return TensorType(element, list(shape))


def make_kernel(types: Sequence[TensorType[Any]], body: Callable[..., Operation | SSAValue], template: str,
                name: str = "k", target: str = "webgpu") -> KernelOp:  # fmt: skip
    """A kernel of `template` computing `body(*args)` under the template's default schedule on `target`."""
    block = Block(arg_types=types)
    with ImplicitBuilder(block):
        root = SSAValue.get(body(*block.args))
        YieldOp(root)
    function = FunctionType.from_lists(list(types), [root.type])
    return KernelOp(name, function, Region(block), template, TARGET_DEFAULTS[target][template].to_attr())


def tiny_model(m: int = 8, k: int = 16, n: int = 32, seed: int = 0) -> onnx.ModelProto:
    """x[m,k] -> y = softmax(LayerNorm(relu(x W1 + b1))), p = tanh(x W2), q = tanh(x W3).

    Lowers to five kernels with four signatures: the two tanh matmuls differ only in their weights.
    """
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="bias"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("LayerNormalization", ["r", "g", "b"], ["ln"], name="ln", axis=-1),
        helper.make_node("Softmax", ["ln"], ["y"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["x", "w2"], ["pm"], name="mm2"),
        helper.make_node("Tanh", ["pm"], ["p"], name="tanh2"),
        helper.make_node("MatMul", ["x", "w3"], ["qm"], name="mm3"),
        helper.make_node("Tanh", ["qm"], ["q"], name="tanh3"),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [m, n]) for name in ("y", "p", "q")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])], outputs,
        initializer=[weight("w1", k, n), weight("b1", n), weight("g", n), weight("b", n), weight("w2", k, n),
                     weight("w3", k, n)],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@dataclass
class SpyBackend:
    """The WebGPU backend with lite spaces cut to `limit` candidates, recording every run.

    `corrupt(schedule)`: when true, `run` returns a wrong output for that schedule (a fake bug);
    `fail(schedule)`: when true, `build` raises (a candidate the device rejects).
    """

    limit: int = 4
    delay: float = 0.0
    """Seconds each build sleeps (a slow driver)."""
    corrupt: Callable[[Schedule], bool] = lambda s: False
    fail: Callable[[Schedule], bool] = lambda s: False
    inner: WebGPUBackend = field(default_factory=WebGPUBackend)
    runs: list[tuple[str, Schedule]] = field(default_factory=list[tuple[str, Schedule]])
    """(tuned kernel's name, schedule) of every run."""
    name: str = "webgpu"
    _kernels: dict[int, str] = field(default_factory=dict[int, str])

    def device(self) -> Device:
        return self.inner.device()

    def module_attributes(self) -> dict[str, Attribute]:
        return self.inner.module_attributes()

    def lite_space(self, kernel: KernelOp) -> LiteSpace:
        space = self.inner.lite_space(kernel)
        return LiteSpace(space.problem, space.candidates[: self.limit], space.full_size)

    def build(self, kernel: KernelOp, schedule: Schedule) -> Build:
        if self.fail(schedule):
            raise RuntimeError("the device rejects this shader (test)")
        time.sleep(self.delay)
        build = self.inner.build(kernel, schedule)
        self._kernels[id(build)] = kernel.sym_name.data
        return build

    def run(self, build: Build, arguments: Sequence[Array]) -> Array:
        self.runs.append((self._kernels[id(build)], build.kernel.schedule.values))
        output = self.inner.run(build, arguments)
        return output + 1 if self.corrupt(build.kernel.schedule.values) else output

    def time(self, build: Build, arguments: Sequence[Array], repeats: int, warmup: int) -> list[float]:
        return self.inner.time(build, arguments, repeats, warmup)
