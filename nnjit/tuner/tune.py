"""Just-in-time tuning of a compiled model: measure each kernel's lite space on the device, keep the best.

    compiled = nnjit.compile("gpt2.onnx", {"input_ids": (1, 16)}, target="webgpu")
    report = nnjit.tune(compiled, budget=30)      # or compiled.tune(budget=30)
    print(report.table()); report.write_html("tuning.html")

Kernels with the same signature (`signature.kernel_signature`) are tuned once. A signature with a
complete record in the kernel database for this device, backend and nnjit version is not measured
again (unless `retune`). The others: first each one's default schedule is measured, then candidates
are taken round-robin over the kernels, the kernels whose defaults cost most in the model (median x
occurrences) first, until every lite space is measured or the `budget` (seconds of wall time, from
the call) is spent; every candidate's output is checked against the oracle once (`measure`). The
best schedule of each kernel (lowest median; the default when nothing beat it) is written to the
database (complete or not) and set on every kernel of the model with that signature.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xdsl.dialects.builtin import ModuleOp, StringAttr

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.tuner.backend import Backend, Device, get_backend
from nnjit.tuner.database import KernelDatabase, Record
from nnjit.tuner.harness import OracleCase, oracle_case
from nnjit.tuner.measure import CandidateResult, Timing, describe, measure
from nnjit.tuner.problem import Problem
from nnjit.tuner.signature import kernel_signature

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel

DEFAULT_BUDGET = 30.0
"""Seconds of tuning per model unless told otherwise."""


@dataclass
class KernelTuning:
    """The search of one kernel signature: where it occurs, its space, every candidate's result."""

    signature: str
    template: str
    names: list[str]
    problem: Problem
    lite_size: int
    full_size: int
    default: Schedule
    results: list[CandidateResult] = field(default_factory=list[CandidateResult])
    source: str = "tuned"
    """`tuned` (measured now), `database` (a complete record was found) or `untimed` (budget ran out first)."""
    chosen: Schedule | None = None

    @property
    def default_result(self) -> CandidateResult | None:
        """The default schedule's measurement, if it was measured."""
        return next((r for r in self.results if r.schedule == self.default), None)

    @property
    def best(self) -> CandidateResult | None:
        """The fastest candidate that ran and matched the oracle."""
        ok = [r for r in self.results if r.ok]
        return min(ok, key=lambda r: r.median) if ok else None

    @property
    def default_median(self) -> float:
        """Seconds of the default schedule (inf when not measured)."""
        result = self.default_result
        return result.median if result is not None else math.inf

    @property
    def best_median(self) -> float:
        """Seconds of the chosen schedule (inf when nothing was measured)."""
        best = self.best
        return best.median if best is not None else math.inf

    @property
    def speedup(self) -> float:
        """Default over best latency (1 when either is unknown)."""
        if math.isinf(self.default_median) or math.isinf(self.best_median):
            return 1.0
        return self.default_median / self.best_median

    @property
    def measured(self) -> int:
        """Candidates measured (all outcomes)."""
        return len(self.results)


@dataclass
class TuningReport:
    """The outcome of one `tune` call (`table()` for text, `html()` / `write_html()` for the page)."""

    model: str
    device: Device
    budget: float
    kernels: list[KernelTuning]
    wall_seconds: float = 0.0
    out_of_budget: bool = False
    database: str = ""

    @property
    def candidates_measured(self) -> int:
        """Candidates measured in this call, over all kernels."""
        return sum(k.measured for k in self.kernels if k.source == "tuned")

    def model_seconds(self, tuned: bool) -> float:
        """Sum over kernels of (occurrences x median): default schedules, or the chosen ones."""
        total = 0.0
        for k in self.kernels:
            seconds = k.best_median if tuned else k.default_median
            total += len(k.names) * (0.0 if math.isinf(seconds) else seconds)
        return total

    def table(self) -> str:
        """A plain-text table: one line per kernel signature, then totals."""
        lines = [f"{'kernel':<22} {'template':<11} {'problem':<18} {'n':>2} {'lite/full':>11} {'meas':>4} "
                 f"{'default us':>10} {'best us':>9} {'speedup':>7}  chosen"]  # fmt: skip
        for k in self.kernels:
            chosen = describe(k.chosen) if k.chosen is not None else "-"
            lines.append(
                f"{k.names[0][:22]:<22} {k.template:<11} {k.problem.describe()[:18]:<18} {len(k.names):>2} "
                f"{f'{k.lite_size}/{k.full_size}':>11} {k.measured:>4} {_us(k.default_median):>10} "
                f"{_us(k.best_median):>9} {k.speedup:>6.2f}x  {chosen}{'' if k.source == 'tuned' else f' ({k.source})'}"
            )
        default, tuned = self.model_seconds(False), self.model_seconds(True)
        lines.append(
            f"{self.device.name} ({self.device.backend}): {self.candidates_measured} candidates in "
            f"{self.wall_seconds:.1f} s (budget {self.budget:g} s{', exhausted' if self.out_of_budget else ''}); "
            f"sum of kernel medians {_us(default)} us -> {_us(tuned)} us"
            + (f"; kernel database {self.database}" if self.database else "")
        )
        return "\n".join(lines)

    def html(self) -> str:
        """A self-contained HTML page of the search (`nnjit.tuner.report`)."""
        from nnjit.tuner.report import render_html

        return render_html(self)

    def write_html(self, path: str | Path) -> Path:
        """Write `html()` to `path`."""
        target = Path(path)
        target.write_text(self.html())
        return target


def _us(seconds: float) -> str:
    return "-" if math.isinf(seconds) else f"{seconds * 1e6:.1f}"


@dataclass
class _Search:
    entry: KernelTuning
    kernel: KernelOp
    queue: list[Schedule]
    case: OracleCase | None = None
    stored: bool = False

    @property
    def weight(self) -> float:
        return self.entry.default_median * len(self.entry.names)


class _Progress:
    """tqdm when installed and wanted, else nothing."""

    def __init__(self, total: int, enabled: bool):
        self.bar: Any = None
        if enabled and total:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc="tuning", unit="cand", file=sys.stderr, leave=False)

    def step(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def tune(
    model: CompiledModel | ModuleOp,
    budget: float = DEFAULT_BUDGET,
    *,
    target: str | None = None,
    backend: Backend | None = None,
    database: str | Path | KernelDatabase | bool | None = None,
    timing: Timing | None = None,
    retune: bool = False,
    strict: bool = False,
    progress: bool = True,
    seed: int = 0,
    name: str = "",
) -> TuningReport:
    """Tune every kernel of a compiled model (or lowered module) on its target's device; see the module docstring.

    `database`: a path or open `KernelDatabase`, None for the default cache file, False for none.
    `strict`: raise `WrongResultError` on a candidate that differs from the oracle (else warn and skip it).
    The chosen schedules are set on the model's kernels; the report describes the search.
    """
    started = time.perf_counter()
    module = model if isinstance(model, ModuleOp) else model.module
    if target is None:
        declared = module.attributes.get("web.target")
        if not isinstance(model, ModuleOp):
            target = model.target
        else:
            target = declared.data if isinstance(declared, StringAttr) else "webgpu"
    backend = backend if backend is not None else get_backend(target)
    device = backend.device()
    db = _database(database)
    try:
        if db is not None:
            db.add_device(device.fingerprint, backend.name, device.description, device.limits)
        searches, cached = _plan(module, backend, device, db, retune)
        report = TuningReport(name, device, budget, [s.entry for s in searches] + cached)
        report.database = str(db.path) if db is not None else ""
        tuner = _Tuner(backend, device, db, timing or Timing(), retune, strict, seed, started + budget, report)
        tuner.run(searches, progress)
    finally:
        if db is not None and not isinstance(database, KernelDatabase):
            db.close()
    _apply(module, backend, report.kernels)
    report.kernels.sort(key=lambda k: -len(k.names) * (0 if math.isinf(k.best_median) else k.best_median))
    report.wall_seconds = time.perf_counter() - started
    return report


def _database(database: str | Path | KernelDatabase | bool | None) -> KernelDatabase | None:
    if database is False:
        return None
    if isinstance(database, KernelDatabase):
        return database
    if database is None or database is True:
        return KernelDatabase()
    return KernelDatabase(database)


def _plan(
    module: ModuleOp, backend: Backend, device: Device, db: KernelDatabase | None, retune: bool
) -> tuple[list[_Search], list[KernelTuning]]:
    groups: dict[str, list[KernelOp]] = {}
    for kernel in module.body.block.ops:
        if isinstance(kernel, KernelOp):
            groups.setdefault(kernel_signature(kernel).digest, []).append(kernel)
    if not groups:
        raise NnjitError("nothing to tune: the module has no web.kernel (compile for a web target first)")
    searches: list[_Search] = []
    cached: list[KernelTuning] = []
    for digest, kernels in groups.items():
        space = backend.lite_space(kernels[0])
        template = kernels[0].template.data
        names = [k.sym_name.data for k in kernels]
        entry = KernelTuning(digest, template, names, space.problem, space.size, space.full_size, space.default)
        record = db.lookup(device.fingerprint, backend.name, digest) if db is not None and not retune else None
        if record is not None and record.complete:
            entry.source, entry.chosen = "database", record.schedule
            entry.results = [CandidateResult.from_json(c) for c in record.candidates]
            cached.append(entry)
            continue
        searches.append(_Search(entry, kernels[0], list(space.candidates)))
    return searches, cached


@dataclass
class _Tuner:
    """The measuring loop of one `tune` call (state shared by its steps)."""

    backend: Backend
    device: Device
    db: KernelDatabase | None
    timing: Timing
    retune: bool
    strict: bool
    seed: int
    deadline: float
    report: TuningReport

    def within_budget(self) -> bool:
        if time.perf_counter() < self.deadline:
            return True
        self.report.out_of_budget = True
        return False

    def run(self, searches: Sequence[_Search], progress: bool) -> None:
        """Defaults first (a baseline, and the order of the rest), then round-robin by weight."""
        bar = _Progress(sum(len(s.queue) for s in searches), progress)
        try:
            for search in searches:
                if not self.within_budget():
                    break
                self.step(search, bar)
            order = sorted(searches, key=lambda s: -min(s.weight, 1e9))
            while self.within_budget() and any(s.queue for s in order):
                for search in order:
                    if search.queue and self.within_budget():
                        self.step(search, bar)
        finally:
            bar.close()
            for search in searches:
                if not search.stored:
                    self.finish(search)

    def step(self, search: _Search, bar: _Progress) -> None:
        """Measure the next candidate of one kernel; store its record once its space is measured."""
        if search.case is None:
            search.case = oracle_case(search.kernel, self.seed)
        schedule = search.queue.pop(0)
        best = search.entry.best_median
        result = measure(self.backend, search.kernel, schedule, search.case, self.timing, best, self.strict)
        search.entry.results.append(result)
        bar.step(search.entry.names[0])
        if not search.queue:
            self.finish(search)

    def finish(self, search: _Search) -> None:
        """Choose the best schedule of one kernel and write its record (complete when nothing is left)."""
        search.stored = True
        entry, best = search.entry, search.entry.best
        if best is None:
            entry.source = "untimed" if not entry.results else entry.source
            return
        entry.chosen = best.schedule
        if self.db is not None:
            record = Record(
                self.device.fingerprint, self.backend.name, entry.signature, entry.template, best.schedule,
                best.median, entry.default_median, entry.lite_size, entry.full_size,
                [r.to_json() for r in entry.results], complete=not search.queue,
            )  # fmt: skip
            self.db.store(record, replace=self.retune)


def _apply(module: ModuleOp, backend: Backend, entries: Sequence[KernelTuning]) -> None:
    chosen = {name: e.chosen for e in entries if e.chosen is not None for name in e.names}
    if not chosen:
        return
    module.attributes.update(backend.module_attributes())
    for kernel in module.body.block.ops:
        if isinstance(kernel, KernelOp) and kernel.sym_name.data in chosen:
            kernel.schedule = chosen[kernel.sym_name.data].to_attr()
    module.verify()
