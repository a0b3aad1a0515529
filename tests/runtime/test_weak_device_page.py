"""Weak devices in the exported page (issue 8): a WebGPU build planned for a lowered storage binding
limit runs under that limit, a build that needs more than the device allows says so before any
device exists, and the page says its kernels are fp32 whether or not `shader-f16` is there.

The page is real Chromium (WebGPU on SwiftShader); the weak device is forced through the page's URL
(`?max-binding=BYTES&no-f16=1`, app.js), which caps what the page believes of the adapter. The
no-isolation path (single-threaded Wasm and its notice) is
`tests/runtime/test_chromium.py::test_page_without_isolation_says_wasm_is_single_threaded`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnjit
from nnjit.cli import main as nnjit_main
from nnjit.errors import NnjitError
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.chromium import ChromiumBrowser, SitePage

RTOL, ATOL = 1e-3, 1e-4
LIMIT = 12000
"""Bytes a binding: splits four of the zoo GPT-2's weights and holds its largest intermediate (8 KiB)."""
INPUTS = example_inputs("gpt2", 1, 8)
SHAPES = {name: value.shape for name, value in INPUTS.items()}


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return nnjit.compile(zoo_path("gpt2"), SHAPES).run(INPUTS)


def _export(directory: Path, max_binding_bytes: int | None) -> Path:
    return nnjit.export(zoo_path("gpt2"), directory, SHAPES, inputs=INPUTS, title="gpt2", candidates=1,
                        kernel_db=False, max_binding_bytes=max_binding_bytes)  # fmt: skip


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("default"), None)


@pytest.fixture(scope="module")
def lowered_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("lowered"), LIMIT)


def _manifest(site: Path) -> dict[str, Any]:
    return json.loads((site / "model" / "manifest.json").read_text())


def _notice(page: SitePage) -> list[dict[str, Any]]:
    """The lines of the page's notice area, as shown (text and whether each is an error)."""
    return page.evaluate("""() => [...document.querySelectorAll('#notice p')].map((p) => ({
        text: p.textContent, error: p.classList.contains('error'), shown: !p.parentElement.hidden }))""")


def _webgpu_messages(page: SitePage) -> list[str]:
    return [line for line in page.console if "webgpu" in line.lower() or "validation" in line.lower()]


def test_lowered_limit_build_runs_on_a_device_forced_to_that_limit(
    browser: ChromiumBrowser, default_site: Path, lowered_site: Path, expected: dict[str, np.ndarray]
):
    # Which weights must be split, from the default build alone: every distinct weight range that a
    # buffer binds whole and that is larger than the limit.
    over = {
        tuple(b["weight"]) for b in _manifest(default_site)["webgpu"]["buffers"] if b["weight"] and b["bytes"] > LIMIT
    }
    manifest = _manifest(lowered_site)
    needs = manifest["webgpu"]["needs"]
    assert len(over) >= 2 and len(needs["split"]) == len(over)
    assert needs["bindingLimit"] == LIMIT and needs["features"] == []
    assert all(b["bytes"] <= LIMIT for b in manifest["webgpu"]["buffers"])
    assert needs["limits"]["maxStorageBufferBindingSize"] <= LIMIT

    page = browser.open(lowered_site, query=f"max-binding={LIMIT}&no-f16=1")
    device = page.device()
    assert device is not None and device["ok"] and device["limits"]["maxStorageBufferBindingSize"] == LIMIT
    assert "shader-f16" not in device["features"]
    result = page.run("webgpu", INPUTS)
    for key, want in expected.items():
        np.testing.assert_allclose(result.outputs[key], want, rtol=RTOL, atol=ATOL, err_msg=key)
    sample = page.run("webgpu", None)  # the page's own check against the oracle's outputs
    assert sample.diffs and max(sample.diffs.values()) <= ATOL + RTOL * max(np.abs(v).max() for v in expected.values())

    [line] = _notice(page)
    assert line["shown"] and not line["error"]
    found = re.search(r"(\d+) weights split across storage bindings \((\d+) pieces\) to fit a (\d+)-byte binding limit",
                      line["text"])  # fmt: skip
    assert found, line["text"]
    assert int(found[1]) == len(over) and int(found[2]) == sum(s["pieces"] for s in needs["split"])
    assert int(found[3]) == LIMIT
    assert "kernels are fp32 (shader-f16: absent)" in line["text"]
    assert f"forced by the page's ?max-binding={LIMIT}&no-f16=1" in line["text"]
    assert not _webgpu_messages(page)
    page.check()
    page.close()


def test_build_over_the_device_limit_is_a_clear_error_and_wasm_still_runs(
    browser: ChromiumBrowser, default_site: Path, expected: dict[str, np.ndarray]
):
    needed = _manifest(default_site)["webgpu"]["needs"]["limits"]["maxStorageBufferBindingSize"]
    assert needed > LIMIT
    page = browser.open(default_site, query=f"max-binding={LIMIT}")
    stated = (
        f"this build needs {needed} bytes in one storage binding (maxStorageBufferBindingSize), and this device "
        f"allows {LIMIT} (forced by the page's ?max-binding={LIMIT}): export it for this device with "
        f"`nnjit export --max-binding-bytes {LIMIT}`"
    )
    [line] = _notice(page)
    assert line["shown"] and line["error"] and stated in line["text"], line["text"]
    device = page.device()
    assert device is not None and not device["ok"] and stated in device["error"]
    state = page.evaluate("""() => ({ backend: document.getElementById('backend').value,
        webgpu: document.querySelector('#backend option[value=webgpu]').disabled })""")
    assert state == {"backend": "wasm", "webgpu": True}
    with pytest.raises(NnjitError, match=re.escape(stated)):
        page.run("webgpu", INPUTS)  # refused before a device exists: no WebGPU validation error
    assert not _webgpu_messages(page)
    result = page.run("wasm", INPUTS)
    for key, want in expected.items():
        np.testing.assert_allclose(result.outputs[key], want, rtol=RTOL, atol=ATOL, err_msg=key)
    page.check()
    page.close()


def test_unforced_page_says_kernels_are_fp32_and_whether_the_adapter_has_f16(
    browser: ChromiumBrowser, default_site: Path
):
    page = browser.open(default_site)
    has_f16 = page.evaluate("async () => (await navigator.gpu.requestAdapter()).features.has('shader-f16')")
    [line] = _notice(page)
    assert not line["error"] and "forced" not in line["text"]
    assert "no weight split (planned for a 134217728-byte binding limit)" in line["text"]
    assert f"kernels are fp32 (shader-f16: {'available, not used' if has_f16 else 'absent'})" in line["text"]
    page.check()
    page.close()


def test_export_option_splits_weights_and_bad_limits_are_clean_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    common = ["export", str(zoo_path("gpt2")), "--shape", "input_ids=1x8", "--candidates", "1"]
    assert (
        nnjit_main([*common, "--backends", "webgpu", "--max-binding-bytes", str(LIMIT), "-o", str(tmp_path / "s")]) == 0
    )
    needs = _manifest(tmp_path / "s")["webgpu"]["needs"]
    assert needs["bindingLimit"] == LIMIT and len(needs["split"]) > 0
    assert all(s["bytes"] > LIMIT and s["pieces"] >= 2 for s in needs["split"])
    capsys.readouterr()
    for value, message in [
        ("0", "--max-binding-bytes: the storage binding limit must be a whole number of bytes, at least 4; got 0"),
        ("-5", "at least 4; got -5"),
        ("6000", r"splitting its weights over 6000 bytes a binding needs \d+ storage bindings, more than the 8"),
    ]:
        assert nnjit_main([*common, "--max-binding-bytes", value, "-o", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nnjit: error: ") and re.search(message, err) and "Traceback" not in err, err
    assert nnjit_main([*common, "--backends", "wasm", "--max-binding-bytes", "12000", "-o", str(tmp_path / "w")]) == 2
    assert "applies to the webgpu backend" in capsys.readouterr().err
    with pytest.raises(NnjitError, match="has no storage bindings"):
        nnjit.compile(zoo_path("gpt2"), SHAPES, "wasm", max_binding_bytes=LIMIT)
