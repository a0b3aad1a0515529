"""Bad input gives one clear line naming what is wrong, from the library and from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nnjit
from nnjit.compiler import print_module
from nnjit.context import parse_module
from nnjit.errors import NnjitError, OnnxImportError
from nnjit.models.zoo import zoo_path


def one_node_model(op_type: str = "Relu", node_name: str = "n0", input_name: str = "x", dims=("batch", 4), **attrs) -> onnx.ModelProto:
    node = helper.make_node(op_type, [input_name], ["y"], name=node_name, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnjit.cli", *args], capture_output=True, text=True, timeout=120)


def test_missing_file(tmp_path: Path):
    with pytest.raises(NnjitError, match="does not exist"):
        nnjit.compile(tmp_path / "nope.onnx")
    result = run_cli("import", str(tmp_path / "nope.onnx"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_protobuf(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12\xff\xff garbage that is not a model")
    with pytest.raises(NnjitError, match="not a valid ONNX model"):
        nnjit.compile(bad)
    result = run_cli("import", str(bad))
    assert result.returncode == 2 and "not a valid ONNX model" in result.stderr and "Traceback" not in result.stderr


def test_unsupported_ops_are_listed_together():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="fine"),
        helper.make_node("NonMaxSuppression", ["a"], ["b"], name="nms_1"),
        helper.make_node("RoiAlign", ["b"], ["y"], name="roi_2"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError) as info:
        nnjit.compile(model)
    message = str(info.value)
    assert "2 unsupported node(s)" in message
    assert "'nms_1' (NonMaxSuppression, opset 17)" in message
    assert "'roi_2' (RoiAlign, opset 17)" in message
    assert "fine" not in message


def test_wrong_input_shape():
    with pytest.raises(NnjitError, match=r"input 'x' expects shape batchx4 but was given 2x5"):
        nnjit.compile(one_node_model(), {"x": (2, 5)})
    with pytest.raises(NnjitError, match=r"input 'x' has dynamic shape batchx4: give its shape"):
        nnjit.compile(one_node_model())
    with pytest.raises(NnjitError, match="unknown input"):
        nnjit.compile(one_node_model(), {"x": (2, 4), "z": (1,)})
    result = run_cli("import", str(zoo_path("gpt2")), "--shape", "input_ids=1x2x3")
    assert result.returncode == 2 and "input 'input_ids' expects shape" in result.stderr


def test_bad_shape_option():
    result = run_cli("import", str(zoo_path("gpt2")), "--shape", "input_ids=1xq")
    assert result.returncode == 2 and "integer dims" in result.stderr


def test_node_error_names_node_op_and_opset():
    model = one_node_model("Reshape", node_name="reshape_7")
    model.graph.node[0].input.append("shape")
    model.graph.initializer.append(helper.make_tensor("shape", TensorProto.INT64, [2], [3, 3]))
    with pytest.raises(OnnxImportError, match=r"node 'reshape_7' \(Reshape, opset 17\): cannot reshape"):
        nnjit.compile(model, {"x": (2, 4)})


HOSTILE = ['a"b', "line\nbreak", "%0 = nn.exp", "}", "<script>alert(1)</script>", "loc(\"x\")"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_round_trip_safely(name: str):
    """Hostile node, input and weight names are escaped in IR, sanitised in handles, and still run."""
    x_name = f"in{name}"
    mul = helper.make_node("Mul", [x_name, f"w{name}"], ["t"], name=name)
    relu = helper.make_node("Relu", ["t"], [f"out{name}"], name=f"relu{name}")
    weight = helper.make_tensor(f"w{name}", TensorProto.FLOAT, [300], np.linspace(-1, 1, 300).tolist())
    graph = helper.make_graph(
        [mul, relu],
        "g",
        [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, [300])],
        [helper.make_tensor_value_info(f"out{name}", TensorProto.FLOAT, [300])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compiled = nnjit.compile(model)
    text = compiled.ir_at("import", debuginfo=True)
    reparsed = print_module(parse_module(text), debuginfo=True)
    assert reparsed == text
    for handle in compiled.weights:
        assert handle.replace("_", "").isalnum(), handle
    x = np.linspace(-2, 2, 300, dtype=np.float32)
    (out,) = compiled.run({x_name: x}).values()
    np.testing.assert_allclose(out, np.maximum(x * np.linspace(-1, 1, 300, dtype=np.float32), 0), rtol=1e-6)
