"""Kernel signatures: equal exactly when two kernels compute the same function on the same shapes."""

from __future__ import annotations

from tuner_cases import make_kernel, tensor
from xdsl.dialects.builtin import i64

from nnjit.dialects import nn
from nnjit.dialects.web import Schedule
from nnjit.tuner.signature import kernel_signature


def matmul_relu(m: int = 8, name: str = "k") -> str:
    kernel = make_kernel([tensor([m, 16]), tensor([16, 32])], lambda a, b: nn.ReluOp(nn.MatmulOp(a, b)), "matmul", name)
    return kernel_signature(kernel).digest


def test_name_schedule_and_value_names_do_not_matter() -> None:
    kernel = make_kernel([tensor([8, 16]), tensor([16, 32])], lambda a, b: nn.ReluOp(nn.MatmulOp(a, b)), "matmul")
    before = kernel_signature(kernel)
    kernel.schedule = Schedule((8, 4, 1), (8, 16, 8), (2, 2), 2, 8, False).to_attr()
    kernel.body.block.args[0].name_hint = "lhs"
    kernel.sym_name = type(kernel.sym_name)("other")
    after = kernel_signature(kernel)
    assert before == after and before.digest.startswith("matmul:")
    assert matmul_relu(name="a") == matmul_relu(name="b")


def test_shapes_ops_dtypes_and_epilogues_matter() -> None:
    base = matmul_relu()
    assert matmul_relu(m=9) != base
    tanh = make_kernel([tensor([8, 16]), tensor([16, 32])], lambda a, b: nn.TanhOp(nn.MatmulOp(a, b)), "matmul")
    plain = make_kernel([tensor([8, 16]), tensor([16, 32])], lambda a, b: nn.MatmulOp(a, b), "matmul")
    ints = make_kernel([tensor([8, 16], i64), tensor([16, 32], i64)], lambda a, b: nn.MatmulOp(a, b), "matmul")
    digests = {base, kernel_signature(tanh).digest, kernel_signature(plain).digest, kernel_signature(ints).digest}
    assert len(digests) == 4
