"""The ONNX backend node tests that nnjit claims all pass, and what it claims never silently shrinks.

The suite is run once per module by `tools/onnx_node_tests.py` (two worker processes, ~15 s). Per op of
`CLAIMED_AT_LEAST`: every claimed test passes, at least that many tests are still claimed, and its own
(single-node) tests are only left out for their element types or a variant the converter rejects as
"not supported". The variants rejected and the known numerical deviations are pinned by name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nnjit.frontend.registry import CONVERTERS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# Claimed tests per op when this file was last updated; raise a number when a converter claims more.
CLAIMED_AT_LEAST: dict[str, int] = {
    "Abs": 1, "Acosh": 2, "Add": 4, "And": 8, "ArgMax": 16, "ArgMin": 16, "Asinh": 2, "Atanh": 2, "Attention": 176,
    "AveragePool": 20, "BatchNormalization": 4, "BlackmanWindow": 4, "Cast": 12, "CastLike": 6,
    "CausalConvWithState": 26, "Ceil": 2, "Celu": 4, "CenterCropPad": 12, "Clip": 22, "Compress": 4, "Concat": 12,
    "Constant": 1, "ConstantOfShape": 3, "Conv": 6, "ConvTranspose": 10, "Cos": 2, "Cosh": 2, "CumSum": 9,
    "DepthToSpace": 4, "DequantizeLinear": 3, "Div": 6, "Dropout": 8, "DynamicQuantizeLinear": 6, "Einsum": 6,
    "Elu": 6, "Equal": 4, "Erf": 1, "Exp": 2, "Expand": 2, "EyeLike": 3, "Flatten": 9, "FlexAttention": 11,
    "Floor": 2, "Gather": 4, "GatherElements": 3, "GatherND": 3, "Gelu": 8, "Gemm": 11, "GlobalAveragePool": 2,
    "GlobalMaxPool": 2, "Greater": 4, "GreaterOrEqual": 8, "GroupNormalization": 4, "HammingWindow": 4,
    "HannWindow": 4, "Hardmax": 7, "HardSigmoid": 6, "HardSwish": 2, "Identity": 3, "InstanceNormalization": 2,
    "IsInf": 4, "IsNaN": 2, "LayerNormalization": 57, "LeakyRelu": 6, "Less": 4, "LessOrEqual": 8, "Log": 2,
    "LogSoftmax": 21, "LpNormalization": 6, "LpPool": 8, "LRN": 2, "MatMul": 7, "Max": 10, "MaxPool": 19, "Mean": 3,
    "MeanVarianceNormalization": 3, "Min": 10, "Mish": 2, "Mod": 15, "Mul": 5, "Neg": 2,
    "NegativeLogLikelihoodLoss": 36, "Not": 3, "OneHot": 5, "Or": 8, "Pad": 6, "Pow": 10, "PRelu": 4,
    "QuantizeLinear": 3, "Range": 3, "Reciprocal": 2, "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 10,
    "ReduceLogSumExp": 18, "ReduceMax": 11, "ReduceMean": 8, "ReduceMin": 10, "ReduceProd": 9, "ReduceSum": 12,
    "ReduceSumSquare": 18, "Relu": 2, "Reshape": 10, "Resize": 39, "RMSNormalization": 38, "RotaryEmbedding": 16,
    "Round": 1, "Scatter": 2, "ScatterElements": 7, "ScatterND": 7, "Selu": 6, "Shape": 11, "Shrink": 4,
    "Sigmoid": 2, "Sign": 1, "Sin": 2, "Sinh": 2, "Size": 2, "Slice": 8, "Softmax": 21,
    "SoftmaxCrossEntropyLoss": 68, "Softplus": 4, "Softsign": 4, "SpaceToDepth": 8, "Split": 16, "Sqrt": 2,
    "Squeeze": 2, "Sub": 5, "Sum": 3, "SwiGLU": 6, "Swish": 2, "Tan": 2, "Tanh": 2, "ThresholdedRelu": 6, "Tile": 2,
    "Transpose": 7, "Trilu": 18, "Unsqueeze": 7, "Upsample": 1, "Where": 2, "Xor": 8,
}  # fmt: skip

# Tests whose converter rejects the variant with "... is not supported".
UNSUPPORTED_VARIANTS: set[str] = {
    "test_convtranspose_3d",
    "test_training_dropout",
    "test_training_dropout_default",
    "test_training_dropout_default_mask",
    "test_training_dropout_mask",
}


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onnx_node_tests", ROOT / "tools" / "onnx_node_tests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and worker processes look the module up by name
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


@pytest.fixture(scope="module")
def outcomes() -> list:
    cases, _ = runner.load_cases()
    return runner.run_all(cases, workers=2)


def _listing(outcomes: list) -> str:
    return "\n".join(f"{o.name} [{o.op}]: {o.detail}" for o in outcomes)


@pytest.mark.parametrize("op", sorted(CLAIMED_AT_LEAST))
def test_claimed_tests_of_op_pass(outcomes: list, op: str):
    mine = [o for o in outcomes if o.op == op]
    failed = [o for o in mine if o.status == runner.FAILED]
    assert not failed, f"{len(failed)} claimed {op} node test(s) fail:\n{_listing(failed)}"
    claimed = [o for o in mine if o.status != runner.NOT_CLAIMED]
    assert len(claimed) >= CLAIMED_AT_LEAST[op], (
        f"{op}: {len(claimed)} node tests claimed, {CLAIMED_AT_LEAST[op]} before; now left out:\n"
        + _listing([o for o in mine if o.status == runner.NOT_CLAIMED])
    )


def test_no_claimed_node_test_fails(outcomes: list):
    failed = [o for o in outcomes if o.status == runner.FAILED]
    assert not failed, f"{len(failed)} claimed node test(s) fail:\n{_listing(failed)}"


def test_converted_ops_leave_out_tests_only_for_dtype_or_variant(outcomes: list):
    allowed = {runner.DTYPE, runner.VARIANT, runner.NON_TENSOR}
    wrong = [
        o
        for o in outcomes
        if o.status == runner.NOT_CLAIMED
        and (
            runner.bucket(o) == runner.OPSET
            or any(op in CONVERTERS for op in o.missing_ops)
            or (o.single_node and o.op in CONVERTERS and runner.bucket(o) not in allowed)
        )
    ]
    assert not wrong, "node tests of converted ops left out for other reasons:\n" + _listing(wrong)


def test_rejected_variants_are_pinned(outcomes: list):
    rejected = {o.name for o in outcomes if o.status == runner.NOT_CLAIMED and runner.bucket(o) == runner.VARIANT}
    newly = sorted(rejected - UNSUPPORTED_VARIANTS)
    assert not newly, "converters newly reject as not supported:\n" + _listing([o for o in outcomes if o.name in newly])
    assert not UNSUPPORTED_VARIANTS - rejected, (
        f"now claimed, drop from UNSUPPORTED_VARIANTS: {sorted(UNSUPPORTED_VARIANTS - rejected)}"
    )


def test_known_deviations_are_pinned(outcomes: list):
    deviating = {o.name for o in outcomes if o.status == runner.DEVIATION}
    expected = set(runner.KNOWN_DEVIATIONS)
    assert deviating == expected, (
        f"KNOWN_DEVIATIONS in tools/onnx_node_tests.py is out of date: new {sorted(deviating - expected)}, "
        f"no longer deviating {sorted(expected - deviating)}"
    )
