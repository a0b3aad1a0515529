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

With `service` (a kernel-db service URL, docs/kernel-db.md), the signatures left to measure are
looked up there first and what comes back is vetted (`nnjit.kerneldb.shared`). A kernel with vetted
schedules measured on this device (by anyone) measures only its default and those (at most
`SHARED_TRIES`): the fastest is adopted when it beats the default here (source `shared`, no search),
else the kernel is searched as usual. Other devices' schedules (hints) join the search's front. What
was measured is uploaded afterwards.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
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
SHARED_TRIES = 3
"""Schedules the kernel-db service offers from this device that are measured per kernel, at most."""


@dataclass
class SharedOffer:
    """A schedule the kernel-db service offered for a kernel, and what became of it.

    `origin`: `device` (measured on this device's fingerprint) or `hint` (another device). `status`:
    `rejected` (failed vetting, `reason` says why), `default` (it is the default), `vetted` (not
    measured yet), then `adopted`, `slower`, `wrong` or `failed` (a device offer after its trial),
    `measured` or `chosen` (a hint measured in the search), `unmeasured` (the budget ran out).
    """

    origin: str
    status: str
    schedule: Schedule | None = None
    reason: str = ""


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
    """`tuned` (searched now), `shared` (a kernel-db offer adopted after measuring it and the default, no
    search), `database` (a complete record was found) or `untimed` (budget ran out first)."""
    chosen: Schedule | None = None
    shared: list[SharedOffer] = field(default_factory=list[SharedOffer])
    """What the kernel-db service offered (empty without a service)."""

    @property
    def shared_summary(self) -> str:
        """`offers: 1 adopted, 2 rejected` (empty when nothing was offered)."""
        counts: dict[str, int] = {}
        for offer in self.shared:
            counts[offer.status] = counts.get(offer.status, 0) + 1
        return f"offers: {', '.join(f'{n} {s}' for s, n in counts.items())}" if counts else ""

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
    service: str = ""
    """The kernel-db service used, if any."""
    service_note: str = ""
    """What happened there: the lookup and the upload, one line."""

    @property
    def candidates_measured(self) -> int:
        """Candidates measured in this call, over all kernels."""
        return sum(k.measured for k in self.kernels if k.source in ("tuned", "shared"))

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
            notes = "; ".join(n for n in ("" if k.source == "tuned" else k.source, k.shared_summary) if n)
            lines.append(
                f"{k.names[0][:22]:<22} {k.template:<11} {k.problem.describe()[:18]:<18} {len(k.names):>2} "
                f"{f'{k.lite_size}/{k.full_size}':>11} {k.measured:>4} {_us(k.default_median):>10} "
                f"{_us(k.best_median):>9} {k.speedup:>6.2f}x  {chosen}{f' ({notes})' if notes else ''}"
            )
        default, tuned = self.model_seconds(False), self.model_seconds(True)
        lines.append(
            f"{self.device.name} ({self.device.backend}): {self.candidates_measured} candidates in "
            f"{self.wall_seconds:.1f} s (budget {self.budget:g} s{', exhausted' if self.out_of_budget else ''}); "
            f"sum of kernel medians {_us(default)} us -> {_us(tuned)} us"
            + (f"; kernel database {self.database}" if self.database else "")
            + (f"; kernel-db service {self.service}: {self.service_note}" if self.service else "")
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
    shared: list[Schedule] = field(default_factory=list[Schedule])
    """Offers from this device on trial (measured after the default, before any search)."""
    rest: list[Schedule] = field(default_factory=list[Schedule])
    """The search's candidates, held back while `shared` is on trial."""

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

    def grow(self, more: int) -> None:
        if self.bar is not None:
            self.bar.total += more

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
    service: str | None = None,
) -> TuningReport:
    """Tune every kernel of a compiled model (or lowered module) on its target's device; see the module docstring.

    `database`: a path or open `KernelDatabase`, None for the default cache file, False for none.
    `strict`: raise `WrongResultError` on a candidate that differs from the oracle (else warn and skip it).
    `service`: a kernel-db service URL to take offers from and upload measurements to (module docstring).
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
        upload_to = None
        if service:
            from nnjit.kerneldb.shared import fetch_offers

            offers, report.service_note = fetch_offers(
                service, backend, device, {s.entry.signature: s.kernel for s in searches}
            )
            report.service, upload_to = service, (service if offers is not None else None)
            _offer(searches, offers or {})
        tuner = _Tuner(backend, device, db, timing or Timing(), retune, strict, seed, started + budget, report)
        tuner.run(searches, progress)
    finally:
        if db is not None and not isinstance(database, KernelDatabase):
            db.close()
    if report.service:
        from nnjit.kerneldb.shared import upload_results

        uploaded = upload_results(upload_to, backend, device, report.kernels) if upload_to else "upload skipped"
        report.service_note += f"; {uploaded}"
    _apply(module, backend, report.kernels)
    report.kernels.sort(key=lambda k: -len(k.names) * (0 if math.isinf(k.best_median) else k.best_median))
    report.wall_seconds = time.perf_counter() - started
    return report


class TuningSteps:
    """`tune`, one candidate at a time, for callers that interleave tuning with other work (online sessions).

        steps = TuningSteps(module, get_backend("webgpu"), database=None, first={signature: schedule})
        while (measured := steps.step()) is not None:
            kernel, result = measured        # the kernel's search so far and the candidate just measured
        report = steps.finish()              # records stored as `tune` stores them

    The order is `tune`'s (every kernel's default, then round-robin, costliest kernels first) and there
    is no budget: the caller stops calling `step`. `first` maps kernel signatures to a schedule measured
    right after the default, lite space or not (an online session's running schedule, its baseline). Unlike `tune`,
    `finish` leaves the module's schedules alone. Use it from one thread (SQLite connections are).
    """

    def __init__(
        self,
        module: ModuleOp,
        backend: Backend,
        *,
        database: str | Path | KernelDatabase | bool | None = None,
        timing: Timing | None = None,
        retune: bool = False,
        strict: bool = False,
        seed: int = 0,
        name: str = "",
        first: Mapping[str, Schedule] | None = None,
    ):
        device = backend.device()
        self._own_db = not isinstance(database, KernelDatabase)
        self.db = _database(database)
        if self.db is not None:
            self.db.add_device(device.fingerprint, backend.name, device.description, device.limits)
        self.searches, cached = _plan(module, backend, device, self.db, retune)
        for search in self.searches:
            wanted = (first or {}).get(search.entry.signature)
            if wanted is not None and wanted != search.queue[0]:
                if wanted in search.queue:
                    search.queue.remove(wanted)
                search.queue.insert(1, wanted)
        self.report = TuningReport(name, device, math.inf, [s.entry for s in self.searches] + cached)
        self.report.database = str(self.db.path) if self.db is not None else ""
        self._tuner = _Tuner(backend, device, self.db, timing or Timing(), retune, strict, seed, math.inf, self.report)
        self._order = self._next_search()
        self._bar = _Progress(0, False)
        self._finished = False

    def _next_search(self) -> Iterator[_Search]:
        for search in self.searches:
            if search.queue:
                yield search
        order = sorted(self.searches, key=lambda s: -min(s.weight, 1e9))
        while any(s.queue for s in order):
            for search in order:
                if search.queue:
                    yield search

    def step(self) -> tuple[KernelTuning, CandidateResult] | None:
        """Measure the next candidate; None when every lite space is measured."""
        search = next(self._order, None)
        if search is None or self._finished:
            return None
        self._tuner.step(search, self._bar)
        return search.entry, search.entry.results[-1]

    @property
    def kernels_done(self) -> int:
        """Kernel signatures whose lite space is fully measured (or that came complete from the database)."""
        measured = sum(1 for s in self.searches if not s.queue and not s.rest)
        return measured + len(self.report.kernels) - len(self.searches)

    def finish(self) -> TuningReport:
        """Store every kernel's best so far (incomplete where its space was not measured), close the database."""
        if not self._finished:
            self._finished = True
            try:
                for search in self.searches:
                    if not search.stored:
                        self._tuner.finish(search)
            finally:
                if self.db is not None and self._own_db:
                    self.db.close()
            self.report.kernels.sort(key=lambda k: -len(k.names) * (0 if math.isinf(k.best_median) else k.best_median))
        return self.report


def _database(database: str | Path | KernelDatabase | bool | None) -> KernelDatabase | None:
    if database is False:
        return None
    if isinstance(database, KernelDatabase):
        return database
    if database is None or database is True:
        return KernelDatabase()
    return KernelDatabase(database)


def _offer(searches: Sequence[_Search], offers: dict[str, list[SharedOffer]]) -> None:
    """Put vetted offers into the queues: this device's on trial after the default, hints at the search's front."""
    for search in searches:
        entry = search.entry
        entry.shared = offers.get(entry.signature, [])
        default, lite = search.queue[0], search.queue[1:]
        for offer in entry.shared:
            if offer.status == "vetted" and offer.schedule == default:
                offer.status = "default"
        vetted = [o for o in entry.shared if o.status == "vetted" and o.schedule is not None]
        trial = [o.schedule for o in vetted if o.origin == "device" and o.schedule is not None][:SHARED_TRIES]
        hints = [
            o.schedule for o in vetted if o.origin == "hint" and o.schedule is not None and o.schedule not in trial
        ]
        rest = [*hints, *(s for s in lite if s not in trial and s not in hints)]
        if trial:
            search.queue, search.shared, search.rest = [default, *trial], trial, rest
        else:
            search.queue = [default, *rest]


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
        if not search.queue and not (search.shared and self.settle(search, bar)):
            self.finish(search)

    def settle(self, search: _Search, bar: _Progress) -> bool:
        """After a trial of offers: adopt the fastest when it beat the default, else search (True: search goes on)."""
        entry, trial = search.entry, search.shared
        search.shared = []
        best = entry.best
        adopted = best is not None and best.schedule in trial and best.median < entry.default_median
        results = {r.schedule: r for r in entry.results}
        for offer in entry.shared:
            result = results.get(offer.schedule) if offer.schedule is not None else None
            if offer.status != "vetted" or offer.schedule not in trial or result is None:
                continue
            if not result.ok:
                offer.status, offer.reason = result.status, result.message
            elif adopted and best is not None and offer.schedule == best.schedule:
                offer.status = "adopted"
            else:
                offer.status = "slower"
                offer.reason = f"{_us(result.median)} us here, default {_us(entry.default_median)} us"
        if adopted:
            entry.source, search.rest = "shared", []
            return False
        search.queue, search.rest = search.rest, []
        bar.grow(len(search.queue))
        return bool(search.queue)

    def finish(self, search: _Search) -> None:
        """Choose the best schedule of one kernel and write its record (complete when nothing is left)."""
        search.stored = True
        entry, best = search.entry, search.entry.best
        results = {r.schedule: r for r in entry.results}
        for offer in (o for o in entry.shared if o.status == "vetted"):  # hints, or a trial the budget cut short
            result = results.get(offer.schedule) if offer.schedule is not None else None
            if result is None:
                offer.status = "unmeasured"
            elif not result.ok:
                offer.status, offer.reason = result.status, result.message
            else:
                offer.status = "chosen" if best is not None and offer.schedule == best.schedule else "measured"
        if best is None:
            entry.source = "untimed" if not entry.results else entry.source
            return
        entry.chosen = best.schedule
        if self.db is not None:
            record = Record(
                self.device.fingerprint, self.backend.name, entry.signature, entry.template, best.schedule,
                best.median, entry.default_median, entry.lite_size, entry.full_size,
                [r.to_json() for r in entry.results], complete=not search.queue and not search.rest,
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
