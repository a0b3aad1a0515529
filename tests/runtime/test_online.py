"""Online JIT on wgpu (lavapipe) and wasmtime: runs answer at once and always equal the oracle while
kernels are tuned in the background, faster schedules are swapped in, no run waits for more than one
tuning step, and what was learned reaches the kernel database and the compiled model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import nnjit
from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.online import OnlineSession
from nnjit.tuner.database import KernelDatabase

SHAPES = {"input_ids": (1, 8)}
SLACK = 0.25
"""Seconds a run may wait beyond the longest step: the interpreter's own pauses (GIL hand-over, garbage
collection of the tuner's IR) on a shared two-core machine."""
SLOW_WASM_MATMUL = Schedule((1, 1, 1), (4, 4, 64), (1, 1), 1, 1, False)
"""A valid but slow Wasm matmul schedule: scalar, a 1x1 register block, no unrolling."""


def ids() -> dict[str, np.ndarray]:
    return example_inputs("gpt2", *SHAPES["input_ids"])


@pytest.fixture(scope="module")
def oracle() -> np.ndarray:
    return nnjit.compile(zoo_path("gpt2"), SHAPES).run(ids())["logits"]


def run_session(compiled: nnjit.CompiledModel, oracle: np.ndarray, db: Path, budget: float) -> OnlineSession:
    """Run back to back until tuning is over, checking every output against the oracle."""
    inputs, deadline = ids(), time.perf_counter() + 60
    with compiled.online(budget=budget, margin=0.03, database=db) as session:
        started = time.perf_counter()
        first = session.run(inputs)["logits"]
        assert time.perf_counter() - started < 5  # no tuning before the first answer
        np.testing.assert_allclose(first, oracle, rtol=1e-3, atol=1e-4)
        while not session.wait(0.0) and time.perf_counter() < deadline:
            np.testing.assert_allclose(session.run(inputs)["logits"], oracle, rtol=1e-3, atol=1e-4)
        progress = session.progress()
    assert not progress.error and progress.finished, progress.describe()
    assert progress.runs > 10 and progress.candidates > 10
    assert progress.longest_wait <= progress.longest_step + SLACK, progress.describe()
    assert 0 < progress.done <= progress.kernels
    return session


def check_learned(session: OnlineSession, compiled: nnjit.CompiledModel, db: Path, oracle: np.ndarray) -> None:
    """Swaps happened and made kernels faster; the schedules are on `compiled` and in the database."""
    swaps = session.progress().swaps
    assert swaps and all(s.after < (1 - 0.03) * s.before for s in swaps), session.progress().describe()
    running = {k.sym_name.data: k.schedule for k in session.module.ops if isinstance(k, KernelOp)}
    assert {k.sym_name.data: k.schedule for k in compiled.kernels} == running
    last = {name: s.schedule for s in swaps for name in s.kernels}
    assert all(running[name].values == schedule for name, schedule in last.items())
    report = session.report
    assert report is not None and report.candidates_measured == session.progress().candidates
    with KernelDatabase(db) as database:  # a record per kernel with a measured candidate, as `tune` stores
        assert len(database.records()) == sum(k.best is not None for k in report.kernels) > 0
    np.testing.assert_allclose(compiled.run(ids())["logits"], oracle, rtol=1e-3, atol=1e-4)


def test_webgpu_session_swaps_pipelines_and_stays_exact(tmp_path: Path, oracle: np.ndarray) -> None:
    compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target="webgpu", kernel_db=False, cache=False)
    db = tmp_path / "kernels.sqlite"
    session = run_session(compiled, oracle, db, budget=4.0)
    check_learned(session, compiled, db, oracle)
    again = nnjit.compile(zoo_path("gpt2"), SHAPES, target="webgpu", kernel_db=db, cache=False)
    assert "web-apply-schedules" in again.stages
    assert any(k.schedule != d.schedule for k, d in zip(again.kernels, compiled_defaults(), strict=True))


def compiled_defaults() -> list[KernelOp]:
    return nnjit.compile(zoo_path("gpt2"), SHAPES, target="webgpu", kernel_db=False, cache=False).kernels


def test_wasm_session_from_a_slow_schedule_swaps_modules(tmp_path: Path, oracle: np.ndarray) -> None:
    compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target="wasm", kernel_db=False, cache=False)
    for kernel in compiled.kernels:
        if kernel.template.data == "matmul":
            kernel.schedule = SLOW_WASM_MATMUL.to_attr()
    compiled.module.verify()
    np.testing.assert_allclose(compiled.run(ids())["logits"], oracle, rtol=1e-3, atol=1e-4)
    db = tmp_path / "kernels.sqlite"
    session = run_session(compiled, oracle, db, budget=3.0)
    check_learned(session, compiled, db, oracle)
    matmuls = {k.sym_name.data for k in compiled.kernels if k.template.data == "matmul"}
    swapped = {name for s in session.progress().swaps for name in s.kernels}
    assert matmuls & swapped  # the slow schedule lost to a candidate


def test_a_run_waits_for_one_step_at_most(oracle: np.ndarray) -> None:
    """Tuning steps and runs alternate: runs back to back still let tuning move, and wait one step at most."""
    compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target="webgpu", kernel_db=False, cache=False)
    inputs = ids()
    with compiled.online(budget=2.0, database=False, start=False) as session:
        session.run(inputs)
        assert session.progress().candidates == 0 and session.progress().kernels == 0
        session.start()
        runs = 0
        while not session.wait(0.0):
            session.run(inputs)
            runs += 1
        progress = session.progress()
    assert progress.candidates > 5 and runs > 5
    assert 0 < progress.longest_wait <= progress.longest_step + SLACK, progress.describe()
    assert "kernels tuned" in progress.describe()


def test_close_stops_tuning_and_keeps_running_schedules(oracle: np.ndarray) -> None:
    compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target="webgpu", kernel_db=False, cache=False)
    session = compiled.online(budget=300.0, database=False)
    np.testing.assert_allclose(session.run(ids())["logits"], oracle, rtol=1e-3, atol=1e-4)
    session.close()
    assert session.wait(0.0) and not session.progress().finished  # stopped early, budget left
    session.close()  # twice is fine
    np.testing.assert_allclose(session.run(ids())["logits"], oracle, rtol=1e-3, atol=1e-4)
    with pytest.raises(NnjitError, match="online sessions run on webgpu and wasm"):
        nnjit.compile(zoo_path("gpt2"), SHAPES).online()


@pytest.mark.parametrize("target", ["webgpu", "wasm"])
@pytest.mark.parametrize("writer", ["plain", "session"])
def test_sessions_and_plain_runs_share_the_compile_caches_code(tmp_path: Path, target: str, writer: str) -> None:
    """A session on a cached compile starts from the code a plain run wrote, and the reverse: one code
    entry (WebGPU's session runs a clone carrying the device's `web.limits`: it must not get a code key
    of its own, nor print the WGSL the cache holds)."""
    cache = tmp_path / "artifacts"

    def first_run(how: str) -> tuple[nnjit.CompiledModel, np.ndarray]:
        compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target=target, kernel_db=False, cache=cache)
        if how == "plain":
            return compiled, compiled.run(ids())["logits"]
        with compiled.online(budget=0.0, database=False, start=False) as session:
            return compiled, session.run(ids())["logits"]

    cold, expected = first_run(writer)
    assert cold.cache is not None and not cold.cache.hit and cold.cache.code_hit is False
    warm, outputs = first_run("session" if writer == "plain" else "plain")
    assert warm.cache is not None and warm.cache.hit and warm.cache.code_hit
    assert warm.cache.cache.stats.code_misses == 0 and len(list(cache.glob("*/*/code/*/meta.json"))) == 1
    np.testing.assert_array_equal(outputs, expected)
