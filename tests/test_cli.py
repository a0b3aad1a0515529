"""The `nnjit` and `nnjit-opt` command lines, run as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from nnjit.context import parse_module
from nnjit.models.zoo import zoo_path
from nnjit.runtime.reference import run_module
from nnjit.weights import WeightStore


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)


def test_import_writes_ir_and_weights_that_run(tmp_path: Path):
    out = tmp_path / "gpt2.mlir"
    result = run("nnjit", "import", str(zoo_path("gpt2")), "--shape", "input_ids=1x8", "-o", str(out))
    assert result.returncode == 0, result.stderr
    module = parse_module(out.read_text())
    weights = WeightStore.load(WeightStore.path_beside(out))
    ids = np.arange(8, dtype=np.int64).reshape(1, 8)
    assert run_module(module, {"input_ids": ids}, weights)["logits"].shape == (1, 8, 256)


def test_nnjit_opt_runs_passes_and_prints_between_them(tmp_path: Path):
    out = tmp_path / "bart.mlir"
    assert run("nnjit", "import", str(zoo_path("bart")), "--shape", "input_ids=1x8", "-o", str(out)).returncode == 0
    result = run("nnjit-opt", str(out), "-p", "canonicalize,nn-recognize-patterns", "--print-between-passes")
    assert result.returncode == 0, result.stderr
    assert "IR after canonicalize:" in result.stdout
    before, after = result.stdout.split("IR after canonicalize:")[1], result.stdout.rsplit("\n\n\n", 1)[-1]
    assert "nn.erf" in before and "nn.erf" not in after and "nn.gelu" in after


def test_stock_xdsl_opt_sees_nnjit(tmp_path: Path):
    source = tmp_path / "m.mlir"
    source.write_text(
        "func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
        "  %s = nn.sigmoid %x : tensor<4xf32>\n"
        "  %y = nn.mul %x, %s : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
        "  func.return %y : tensor<4xf32>\n}\n"
    )
    result = run("xdsl-opt", str(source), "-p", "nn-recognize-patterns")
    assert result.returncode == 0, result.stderr
    assert "nn.silu %x" in result.stdout


def test_run_checks_against_onnxruntime():
    result = run("nnjit", "run", str(zoo_path("t5")), "--shape", "input_ids=2x8", "--check")
    assert result.returncode == 0, result.stderr
    assert "check last_hidden_state vs onnxruntime" in result.stdout and "OK" in result.stdout


def test_run_on_webgpu_checks_against_onnxruntime():
    result = run("nnjit", "run", str(zoo_path("gpt2")), "--shape", "input_ids=1x8", "--target", "webgpu", "--check", "--rtol", "1e-3", "--atol", "1e-4")
    assert result.returncode == 0, result.stderr
    assert "run (webgpu)" in result.stdout and "check logits vs onnxruntime" in result.stdout and "OK" in result.stdout


def test_ops_lists_converters_with_opsets():
    result = run("nnjit", "ops")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "Softmax" in lines and "1-12" in lines["Softmax"] and "13-" in lines["Softmax"]


def test_printed_ir_of_a_100_mb_model_stays_small(tmp_path: Path):
    """Weights live beside the IR, never in it."""
    count = 25_000_000  # 100 MB of float32
    weight = helper.make_tensor("w", TensorProto.FLOAT, [count], np.ones(count, np.float32).tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [count])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [count])],
        initializer=[weight],
    )
    model = tmp_path / "big.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    result = run(sys.executable, "-m", "nnjit.cli", "import", str(model))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) < 2_000, result.stdout
    assert "dense_resource<w>" in result.stdout
