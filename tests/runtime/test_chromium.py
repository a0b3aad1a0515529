"""The exported page in real Chromium (Playwright): every zoo model on WebGPU (Dawn; SwiftShader here)
and on Wasm, equal to the oracle; in-page tuning within its budget; hostile names stay text.

A console error, an uncaught exception or an opened dialog in the page fails the test (`SitePage`
raises `NnjitError` for each). Chromium is Debian's (`apt-get install chromium`); if it cannot start
the tests fail, they are never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nnjit
from nnjit.errors import NnjitError
from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path
from nnjit.runtime.bundle import export_site
from nnjit.runtime.chromium import ChromiumBrowser, SitePage

# Oracle vs browser backends: the tolerances of ORT Web's own WebGPU / Wasm tests are 1e-3 / 1e-4;
# ours are at least as tight.
RTOL, ATOL = 1e-3, 1e-4
BATCH, SEQ = 1, 7


def _site(tmp: Path, name: str) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    inputs = example_inputs(name, BATCH, SEQ)
    shapes = {k: v.shape for k, v in inputs.items()}
    expected = nnjit.compile(zoo_path(name), shapes).run(inputs)
    builds = {t: nnjit.compile(zoo_path(name), shapes, t, kernel_db=False) for t in ("webgpu", "wasm")}
    site = export_site(tmp / name, **builds, sample=inputs, expected=expected, title=name, candidates=4)
    return site, inputs, expected


@pytest.mark.parametrize("name", sorted(ZOO_MODELS))
def test_zoo_model_in_chromium_equals_the_oracle(browser: ChromiumBrowser, tmp_path: Path, name: str):
    site, inputs, expected = _site(tmp_path, name)
    page = browser.open(site)
    for backend in ("webgpu", "wasm"):
        result = page.run(backend, inputs, repeats=2)
        for key, want in expected.items():
            np.testing.assert_allclose(
                result.outputs[key], want, rtol=RTOL, atol=ATOL, err_msg=f"{name} {backend} {key}"
            )
            assert result.outputs[key].dtype == want.dtype
        sample = page.run(backend, None)  # the page's own sample and self-check against the oracle
        assert sample.diffs and max(sample.diffs.values()) <= ATOL + RTOL * max(
            np.abs(v).max() for v in expected.values()
        )
    page.check()
    page.close()


def test_in_page_tuning_keeps_outputs_and_is_remembered(browser: ChromiumBrowser, tmp_path: Path):
    site, inputs, expected = _site(tmp_path, "gpt2")
    page = browser.open(site)
    budget = 4.0
    report = page.tune("webgpu", budget)
    assert report["rows"], "no kernel had variants to tune"
    slowest_candidate = (
        3.0  # one variant's pipeline creation on SwiftShader; the tuner checks the clock between variants
    )
    assert report["seconds"] <= budget + slowest_candidate
    assert sum(row["measured"] for row in report["rows"]) >= len(report["rows"])
    assert all(row["bestMs"] <= row["defaultMs"] for row in report["rows"])
    tuned = page.run("webgpu", inputs)
    for key, want in expected.items():
        np.testing.assert_allclose(tuned.outputs[key], want, rtol=RTOL, atol=ATOL)
    wasm_report = page.tune("wasm", budget)
    assert wasm_report["seconds"] <= budget + slowest_candidate
    # A reload starts with the schedules kept in IndexedDB, and computes the same outputs.
    page.reload()
    result = page.run("webgpu", inputs)
    assert result.stored == len(report["rows"])
    for key, want in expected.items():
        np.testing.assert_allclose(result.outputs[key], want, rtol=RTOL, atol=ATOL)
    page.close()


def test_python_api_runs_in_chromium():
    inputs = example_inputs("llama", 1, 5)
    shapes = {k: v.shape for k, v in inputs.items()}
    expected = nnjit.compile(zoo_path("llama"), shapes).run(inputs)
    for target in ("webgpu", "wasm"):
        compiled = nnjit.compile(zoo_path("llama"), shapes, target, kernel_db=False)
        outputs = compiled.run(inputs, executor=f"chromium-{target}")
        for key, want in expected.items():
            np.testing.assert_allclose(outputs[key], want, rtol=RTOL, atol=ATOL)
    timed, seconds = compiled.run_timed(inputs, executor="chromium-wasm", repeats=3)
    assert len(seconds) == 3 and all(0 < s < 10 for s in seconds)
    np.testing.assert_allclose(timed["logits"], expected["logits"], rtol=RTOL, atol=ATOL)
    with pytest.raises(NnjitError, match="compiled for 'wasm'"):
        compiled.run(inputs, executor="chromium-webgpu")


HOSTILE = '</title><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def _hostile_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info(HOSTILE + "in", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("`${alert(1)}`" + HOSTILE, TensorProto.FLOAT, [2, 8])
    w = helper.make_tensor("w';alert(1)//", TensorProto.FLOAT, [8, 8], np.eye(8, dtype=np.float32).ravel())
    nodes = [
        helper.make_node("MatMul", [x.name, w.name], ["*/ fn main() {} /*"], name="<script>alert('node')</script>"),
        helper.make_node("Relu", ["*/ fn main() {} /*"], [y.name], name='");alert(1);("'),
    ]
    graph = helper.make_graph(nodes, HOSTILE, [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=HOSTILE)


def test_hostile_names_cannot_inject_script(browser: ChromiumBrowser, tmp_path: Path):
    model = _hostile_model()
    inputs = {HOSTILE + "in": np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)}
    expected = nnjit.compile(model).run(inputs)
    builds = {t: nnjit.compile(model, None, t, kernel_db=False) for t in ("webgpu", "wasm")}
    site = export_site(tmp_path / "hostile", **builds, sample=inputs, expected=expected, title=HOSTILE)
    generated = [p.read_text() for p in site.rglob("*.wgsl")]
    generated += [p.read_bytes().decode("latin-1") for p in site.rglob("*.wasm")]
    for text in generated:
        assert "alert" not in text and "script" not in text and "fn main() {}" not in text and "pwned" not in text
    manifest = json.loads((site / "model" / "manifest.json").read_text())
    assert manifest["title"] == HOSTILE  # kept as data, shown as text
    page: SitePage = browser.open(site)
    for backend in ("webgpu", "wasm"):
        result = page.run(backend, None)
        np.testing.assert_allclose(
            result.outputs["`${alert(1)}`" + HOSTILE], np.maximum(inputs[HOSTILE + "in"], 0), rtol=RTOL, atol=ATOL
        )
    state = page.evaluate("""() => ({
        pwned: window.pwned === undefined ? null : window.pwned,
        scripts: [...document.scripts].map((s) => s.src.split('/').pop()),
        images: document.images.length,
        title: document.getElementById('title').textContent,
        cells: [...document.querySelectorAll('#outputs td')].map((td) => td.textContent)[0],
    })""")
    assert state["pwned"] is None
    assert state["scripts"] == ["app.js"] and state["images"] == 0
    assert state["title"] == HOSTILE
    assert state["cells"] == "`${alert(1)}`" + HOSTILE
    page.check()
    page.close()


def test_page_without_isolation_says_wasm_is_single_threaded(browser: ChromiumBrowser, tmp_path: Path):
    site, inputs, expected = _site(tmp_path, "roberta")
    page = browser.open(site, isolate=False)
    result = page.run("wasm", inputs, threads=2)
    assert result.threads == 1
    assert "not cross-origin isolated" in result.message
    notice = page.evaluate("() => document.getElementById('notice').textContent")
    assert "not cross-origin isolated" in notice
    for key, want in expected.items():
        np.testing.assert_allclose(result.outputs[key], want, rtol=RTOL, atol=ATOL)
    page.close()
