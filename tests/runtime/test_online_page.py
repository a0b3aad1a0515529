"""Online JIT in the exported page (real Chromium; WebGPU = SwiftShader here, and Wasm): a zoo model
answers at once, tunes between inferences and swaps faster kernels in, every inference equal to the
oracle, no inference held up by more than one tuning step; a reload reads the bundle from the Cache
API and the tuned schedules from IndexedDB, with the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnjit
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.bundle import export_site
from nnjit.runtime.chromium import ChromiumBrowser, OnlineRun

RTOL, ATOL = 1e-3, 1e-4
MODEL, SEQ = "gpt2", 7
SCHEDULING_SLACK_MS = 50.0
"""What an inference may wait beyond the tuning step in progress: the event loop handing over."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    inputs = example_inputs(MODEL, 1, SEQ)
    shapes = {k: v.shape for k, v in inputs.items()}
    expected = nnjit.compile(zoo_path(MODEL), shapes).run(inputs)
    builds = {t: nnjit.compile(zoo_path(MODEL), shapes, t, kernel_db=False) for t in ("webgpu", "wasm")}
    folder = tmp_path_factory.mktemp("online") / MODEL
    return export_site(folder, **builds, sample=inputs, expected=expected, title=MODEL, candidates=3), inputs, expected


def _check_outputs(outputs: dict[str, np.ndarray], expected: dict[str, np.ndarray], what: str) -> None:
    for key, want in expected.items():
        np.testing.assert_allclose(outputs[key], want, rtol=RTOL, atol=ATOL, err_msg=f"{what} {key}")


def _check_online(run: OnlineRun, expected: dict[str, np.ndarray], backend: str, first_ms: float) -> None:
    assert len(run.inferences) >= 3
    for index, inference in enumerate(run.inferences):
        _check_outputs(inference.outputs, expected, f"{backend} inference {index}")
    status = run.status
    assert status["error"] is None
    assert status["steps"] >= 1 and status["measured"] >= 1
    assert any(i.steps_before >= 1 for i in run.inferences[1:]), "no tuning step ran between two inferences"
    # An inference waits for the step in progress at most, never for tuning as a whole.
    longest_wait = max(i.wait_ms for i in run.inferences)
    assert longest_wait <= status["maxStepMs"] + SCHEDULING_SLACK_MS
    for swap in run.swaps:  # each swap made the kernel faster, after the first inference had its answer
        assert swap["toMs"] < swap["fromMs"] and swap["t"] > first_ms
    times = [i.t for i in run.inferences]
    assert times == sorted(times) and times[0] >= run.started


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_online_jit_serves_at_once_tunes_between_runs_and_reloads_from_cache(
    browser: ChromiumBrowser, site: tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]], backend: str
):
    folder, inputs, expected = site
    # A fresh context: an empty Cache API and IndexedDB (a first visit). The page runs the sample on load.
    page = browser.open(folder, context=browser.new_context(), query=f"backend={backend}&autorun=1")
    cold = page.ttfi()["first"][backend]
    assert cold["cache"]["cached"] and not cold["cache"]["fromCache"] and cold["stored"] == 0
    assert 0 < cold["atMs"] < 60_000

    run = page.run_online(backend, 4.0 if backend == "webgpu" else 1.5, inputs)
    _check_online(run, expected, backend, cold["atMs"])
    if backend == "webgpu":  # the default matmul schedule wastes most of its threads on 7 rows
        assert run.swaps, "no variant beat a default on SwiftShader"
    status = page.online_status(backend, wait_seconds=5.0)
    assert status is not None
    kept = status["tuned"] + (1 if backend == "wasm" else 0)  # Wasm also keeps its thread choice
    assert kept >= 1
    if status["complete"]:  # more inferences use the tuned kernels; nothing is tuned again
        again = page.run_online(backend, 0.3, inputs)
        assert again.status["steps"] == status["steps"] and not again.status["running"]
        _check_outputs(again.inferences[-1].outputs, expected, f"{backend} after tuning")

    page.reload()  # a returning visitor: bundle files from the Cache API, schedules from IndexedDB
    warm = page.ttfi()["first"][backend]
    assert warm["cache"]["fromCache"] and warm["cache"]["misses"] == 0 and warm["cache"]["hits"] >= 3
    assert warm["stored"] >= kept
    _check_outputs(page.run(backend, inputs).outputs, expected, f"{backend} after reload")
    page.check()
    page.close()
