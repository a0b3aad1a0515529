"""The measuring loop on WebGPU: every candidate checked against the oracle once, wrong and failing
candidates never chosen, identical kernels tuned once, the budget respected, the database used."""

from __future__ import annotations

import math
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tuner_cases import SpyBackend, tiny_model

import nnjit
import nnjit.tuner.measure as measure_module
from nnjit.cli import main as cli_main
from nnjit.dialects.web import Schedule
from nnjit.passes.convert_nn_to_web import DEFAULT_SCHEDULES
from nnjit.runtime.web_reference import run_web_module
from nnjit.tuner.database import KernelDatabase
from nnjit.tuner.harness import OracleCase
from nnjit.tuner.measure import FAILED, OK, WRONG, Timing, WrongResultError, WrongResultWarning
from nnjit.tuner.tune import tune

FAST = Timing(repeats=3, warmup=1)
X = {"x": np.random.default_rng(0).uniform(-1, 1, (8, 16)).astype(np.float32)}


def compiled() -> nnjit.CompiledModel:
    return nnjit.compile(tiny_model(), target="webgpu", kernel_db=False)


def is_default(schedule: Schedule) -> bool:
    return schedule in DEFAULT_SCHEDULES.values()


def assert_runs_like_the_oracle(model: nnjit.CompiledModel) -> None:
    expected = run_web_module(model.module, X, model.weights)
    for name, value in model.run(X).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=1e-4)


def test_every_candidate_is_checked_against_the_oracle_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    checks: list[Any] = []
    real = measure_module.matches

    def counting(actual: np.ndarray, case: OracleCase) -> tuple[bool, float]:
        checks.append(case)
        return real(actual, case)

    monkeypatch.setattr(measure_module, "matches", counting)
    model, spy = compiled(), SpyBackend(limit=5)
    report = tune(model, 300, backend=spy, database=tmp_path / "k.sqlite", timing=FAST, strict=True, progress=False)
    results = [r for k in report.kernels for r in k.results]
    assert len(report.kernels) == 4 and sorted(len(k.names) for k in report.kernels) == [1, 1, 1, 2]
    assert all(k.measured == k.lite_size and k.source == "tuned" for k in report.kernels)
    assert all(r.status == OK and r.samples and math.isfinite(r.median) for r in results)
    assert len(checks) == len(spy.runs) == len(results)  # one oracle check per candidate, no more runs
    assert len(set(spy.runs)) == len(spy.runs)  # ... and each candidate of each kernel measured once
    chosen = {k.names[0]: k.chosen for k in report.kernels}
    for kernel in model.kernels:
        if kernel.sym_name.data in chosen:
            assert kernel.schedule.values == chosen[kernel.sym_name.data]
    assert model.kernels[3].schedule == model.kernels[4].schedule  # the two identical matmuls
    assert_runs_like_the_oracle(model)


def test_a_wrong_candidate_is_a_loud_bug(tmp_path: Path) -> None:
    spy = SpyBackend(limit=3, corrupt=lambda s: not is_default(s))
    with pytest.raises(WrongResultError, match="differs from the oracle"):
        tune(compiled(), 300, backend=spy, database=False, timing=FAST, strict=True, progress=False)
    with pytest.warns(WrongResultWarning, match="rejected candidate"):
        report = tune(compiled(), 300, backend=spy, database=False, timing=FAST, progress=False)
    for kernel in report.kernels:
        assert {r.status for r in kernel.results[1:]} <= {WRONG} and kernel.results[0].status == OK
        assert kernel.chosen is not None and is_default(kernel.chosen)


def test_failing_candidates_score_infinitely_slow() -> None:
    model = compiled()
    spy = SpyBackend(limit=3, fail=lambda s: not is_default(s))
    report = tune(model, 300, backend=spy, database=False, timing=FAST, progress=False)
    failed = [r for k in report.kernels for r in k.results[1:]]
    assert failed and all(r.status == FAILED and math.isinf(r.median) and "rejects" in r.message for r in failed)
    assert all(k.chosen is not None and is_default(k.chosen) for k in report.kernels)
    assert_runs_like_the_oracle(model)


def test_the_budget_stops_the_search(tmp_path: Path) -> None:
    model, path = compiled(), tmp_path / "k.sqlite"
    before = [k.schedule for k in model.kernels]
    report = tune(model, 0.0, database=path, timing=FAST, progress=False)
    assert report.out_of_budget and report.candidates_measured == 0
    assert [k.schedule for k in model.kernels] == before
    slow = SpyBackend(limit=64, delay=0.1)  # a driver taking 0.1 s a pipeline
    report = tune(model, 2.0, backend=slow, database=path, timing=FAST, progress=False)
    assert report.out_of_budget and 0 < report.candidates_measured < sum(k.lite_size for k in report.kernels)
    assert report.wall_seconds < 2.0 + 1.0  # one candidate may finish after the deadline
    with KernelDatabase(path) as db:
        records = db.records()
    assert records and not all(r.complete for r in records)  # best so far kept, marked incomplete


def test_database_round_trip_and_compile_applies_it(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    first = tune(compiled(), 300, backend=SpyBackend(limit=3), database=path, timing=FAST, progress=False)
    spy = SpyBackend(limit=3)
    again = tune(compiled(), 300, backend=spy, database=path, timing=FAST, progress=False)
    assert not spy.runs and all(k.source == "database" for k in again.kernels)
    assert {k.signature: k.chosen for k in first.kernels} == {k.signature: k.chosen for k in again.kernels}
    model = nnjit.compile(tiny_model(), target="webgpu", kernel_db=path)
    assert "web-apply-schedules" in model.stages
    chosen = {name: k.chosen for k in first.kernels for name in k.names}
    assert {k.sym_name.data: k.schedule.values for k in model.kernels} == chosen
    assert_runs_like_the_oracle(model)


def test_report_and_cli(tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file, html_file = tmp_path / "tiny.onnx", tmp_path / "tuning.html"
    onnx_file.write_bytes(tiny_model().SerializeToString())
    code = cli_main(["tune", str(onnx_file), "--budget", "4", "--repeats", "3", "--quiet", "--report", str(html_file)])
    assert code == 0
    table = capsys.readouterr().out
    assert "matmul" in table and "row_reduce" in table and str(cache_dir) in table
    page = html_file.read_text()
    parser = _Tags()
    parser.feed(page)
    assert parser.open == [] and parser.count["svg"] >= 4 and "<script" not in page and "http" not in page
    assert page.count("class='chosen") >= 4 and "lite / full" in page
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = nnjit.compile(onnx_file, target="webgpu")  # the default database: the one just written
    assert "web-apply-schedules" in model.stages and any(not is_default(k.schedule.values) for k in model.kernels)


class _Tags(HTMLParser):
    """Checks that every opened element is closed (void elements aside) and counts elements."""

    VOID = {"meta", "br", "rect", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.count: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count[tag] = self.count.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
        self.open.pop()
