"""Online JIT on the native executors: run at once, tune in the background, swap faster kernels in.

    with compiled.online(budget=30.0, margin=0.03) as session:   # compiled for "webgpu" or "wasm"
        outputs = session.run(inputs)        # answers now, on the schedules the model has (defaults or DB hits)
        print(session.progress())            # kernels done, candidates, swaps (before -> after seconds)
    # closed: the tuned schedules are in the kernel database and on `compiled`'s kernels

A background thread measures the lite space of every kernel with the tuner (`TuningSteps`: the same
order, oracle check and database records as `compiled.tune`), one candidate per *step*. Steps and
runs take turns on the device (`_Turns`): steps follow one another while no run wants it, and when
both do they alternate (a step after each run), so tuning moves on even when the caller runs back
to back, and a run waits for at most one step: the one in progress, or the one whose turn came when
the previous run ended. A step builds one candidate (printing, pipeline or module creation), runs
it once against the oracle and times it; timed runs stop after `Timing.max_seconds` (at least
`min_repeats`; one when the candidate is `cutoff` times slower than the kernel's best), so with
`ONLINE_TIMING` a step is one build plus at most about 6 runs of one kernel.
`progress().longest_step` (the longest a step held the device) bounds `progress().longest_wait`,
up to the interpreter's own pauses (GIL hand-over, garbage collection).

A kernel's schedule is swapped when its best candidate (checked against the oracle) has a median at
least `margin` below the median of the schedule running now, which is measured right after the
default. WebGPU: the swap sets the schedule on the session's kernels in a step; the candidate's
pipeline was built and dispatched when it was measured, so the next run only makes a bind group.
Wasm: the whole program (one module holding every kernel) is printed, assembled and compiled again
off the device, then instantiated (weights copied in) in a step; swaps found meanwhile go together.
Every run before and after a swap computes the same function, within the oracle's tolerance.
`budget` counts seconds of steps (device time spent tuning), not wall time.

Tuning starts after the session's first run (or `FIRST_RUN_GRACE` seconds after `start` without
one), with planning (kernel signatures, lite spaces, database lookups) as its first step. Work of
the tuning thread outside its steps (printing a Wasm program before a swap) shares the Python
interpreter with runs: they go on meanwhile, a little slower.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import threading
import time
import weakref
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.tuner.measure import CandidateResult, Timing, describe

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel
    from nnjit.tuner.tune import KernelTuning, TuningReport, TuningSteps

FIRST_RUN_GRACE = 2.0
"""Seconds tuning waits for the session's first run before it starts anyway (the first answer goes first)."""
ONLINE_TIMING = Timing(repeats=8, warmup=1, min_repeats=3, max_seconds=0.05, cutoff=2.0)
"""Shorter than `tune`'s: a step holds the device while a run may be waiting."""


@dataclass(frozen=True)
class Swap:
    """One kernel signature's schedule replaced: when, its kernels, and its median before and after."""

    kernels: tuple[str, ...]
    template: str
    before: float
    after: float
    schedule: Schedule
    seconds: float
    """Seconds after the session started."""

    def describe(self) -> str:
        """`matmul_0 (+3): 812.4 -> 240.1 us, wg 8x8 tile 8x8x16 ...`."""
        first, *others = self.kernels
        more = f" (+{len(others)})" if others else ""
        return (f"{first}{more}: {self.before * 1e6:.1f} -> {self.after * 1e6:.1f} us, "
                f"{describe(self.schedule)} at {self.seconds:.1f} s")  # fmt: skip


@dataclass(frozen=True)
class Progress:
    """A snapshot of an online session."""

    kernels: int
    """Kernel signatures of the model (0 while the tuner is still planning)."""
    done: int
    """Of those, how many are settled: lite space measured, or a complete database record."""
    candidates: int
    tuning_seconds: float
    budget: float
    swaps: tuple[Swap, ...]
    runs: int
    longest_step: float
    longest_wait: float
    finished: bool
    """Tuning is over: the budget is spent or every lite space is measured (not: stopped by `close`)."""
    error: str = ""

    def describe(self) -> str:
        """One line (plus one per swap)."""
        head = (f"{self.done}/{self.kernels} kernels tuned, {self.candidates} candidates in {self.tuning_seconds:.1f} s "
                f"of {self.budget:g} s, {len(self.swaps)} swaps, {self.runs} runs (longest wait {self.longest_wait * 1e3:.1f} ms, "
                f"longest step {self.longest_step * 1e3:.1f} ms){', finished' if self.finished else ''}"
                f"{f', stopped: {self.error}' if self.error else ''}")  # fmt: skip
        return "\n".join([head, *(f"  {s.describe()}" for s in self.swaps)])


class _Turns:
    """The device, taken in turns by runs and tuning steps: when both want it they alternate, so a run
    waits for at most the one step in progress or next in line, and tuning moves on between runs even
    when the caller runs back to back."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._runs_waiting = 0
        self._step_waiting = False
        self._step_next = False
        """Set when a run ends: a waiting step goes before the next run."""
        self.step_seconds = 0.0
        """Seconds steps held the device, in all."""
        self.longest_step = 0.0
        """The longest a step held the device (what a run may wait for)."""

    @contextlib.contextmanager
    def run(self) -> Generator[float]:
        """Hold the device for a run; yields the seconds waited for it."""
        started = time.perf_counter()
        with self._condition:
            self._runs_waiting += 1
            while self._busy or (self._step_waiting and self._step_next):
                self._condition.wait()
            self._runs_waiting -= 1
            self._busy = True
        try:
            yield time.perf_counter() - started
        finally:
            self._release(step_next=True)

    @contextlib.contextmanager
    def step(self, stop: threading.Event) -> Generator[bool]:
        """Hold the device for a step (its turn: no run waiting, or a run just ended); yields False when
        `stop` was set meanwhile."""
        with self._condition:
            self._step_waiting = True
            while (self._busy or (self._runs_waiting and not self._step_next)) and not stop.is_set():
                self._condition.wait(0.1)
            self._step_waiting = False
            if stop.is_set():
                self._condition.notify_all()
                yield False
                return
            self._busy, self._step_next = True, False
        started = time.perf_counter()
        try:
            yield True
        finally:
            held = time.perf_counter() - started
            self.step_seconds += held
            self.longest_step = max(self.longest_step, held)
            self._release(step_next=False)

    def _release(self, step_next: bool) -> None:
        with self._condition:
            self._busy, self._step_next = False, step_next
            self._condition.notify_all()


class _WebGPUSwapper:
    """Swaps by setting schedules on the running module's kernels (pipelines are cached by WGSL text).

    It runs a clone of the compiled module (with the device's limits), so `compiled` is left alone.
    """

    def __init__(self, module: ModuleOp, attributes: Mapping[str, Attribute]):
        from nnjit.runtime.webgpu import shared_executor

        self.executor = shared_executor()
        self.module = module.clone()
        self.module.attributes.update(attributes)
        for original, clone in zip(_kernels(module), _kernels(self.module), strict=True):
            self.executor.remember_shader(clone, self.executor.shader(original))  # printed once per schedule

    def run(self, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.executor.run(self.module, inputs, weights)

    def prepare(self, changes: Mapping[str, Schedule], weights: Mapping[str, np.ndarray]) -> Any:
        return changes

    def commit(self, prepared: Any) -> None:
        for kernel in _kernels(self.module):
            if kernel.sym_name.data in prepared:
                previous = kernel.schedule
                kernel.schedule = prepared[kernel.sym_name.data].to_attr()
                try:
                    kernel.verify()
                    self.executor.pipeline(kernel)
                except Exception:
                    kernel.schedule = previous
                    raise

    def adopt(self, module: ModuleOp, weights: Mapping[str, np.ndarray]) -> None:
        """`module` now has the running schedules (pipelines are found by WGSL text: nothing to hand over)."""


class _WasmSwapper:
    """Swaps by building the whole program again (off the device) and instantiating it (in a step).

    It starts on the compiled module itself (and the program a run of `compiled` built, if any: it is
    only ever replaced, never edited); each swap runs a new clone.
    """

    def __init__(self, module: ModuleOp, attributes: Mapping[str, Attribute]):
        from nnjit.runtime.wasm import shared_wasmtime

        self.executor = shared_wasmtime()
        self.module = module

    def run(self, inputs: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.executor.run(self.module, inputs, weights)

    def prepare(self, changes: Mapping[str, Schedule], weights: Mapping[str, np.ndarray]) -> Any:
        shadow = self.module.clone()
        for kernel in _kernels(shadow):
            if kernel.sym_name.data in changes:
                kernel.schedule = changes[kernel.sym_name.data].to_attr()
        shadow.verify()
        program = self.executor.programs.build(shadow, weights)
        return shadow, program, self.executor.compile(program), weights

    def commit(self, prepared: Any) -> None:
        shadow, program, compiled, weights = prepared
        self.executor.programs.remember(shadow, weights, self.executor.instantiate(program, compiled=compiled))
        self.module = shadow

    def adopt(self, module: ModuleOp, weights: Mapping[str, np.ndarray]) -> None:
        """`module` now has the running schedules: it runs the running program instead of building its own."""
        loaded = self.executor.programs.lookup(self.module, weights)
        if loaded is not None and module is not self.module:
            self.executor.programs.remember(module, weights, loaded)


SWAPPERS: dict[str, Callable[[ModuleOp, Mapping[str, Attribute]], _WebGPUSwapper | _WasmSwapper]] = {
    "webgpu": _WebGPUSwapper,
    "wasm": _WasmSwapper,
}
"""How each target runs a session's module and swaps kernels in."""


def _kernels(module: ModuleOp) -> list[KernelOp]:
    return [op for op in module.body.block.ops if isinstance(op, KernelOp)]


@dataclass
class _State:
    """What the tuning thread publishes (read under the GIL by `progress`)."""

    steps: TuningSteps | None = None
    candidates: int = 0
    tuning_seconds: float = 0.0
    swaps: list[Swap] = field(default_factory=list[Swap])
    finished: bool = False
    error: str = ""
    report: TuningReport | None = None


class OnlineSession:
    """A compiled model that runs at once while its kernels are tuned in the background (module docstring).

    `database`: the kernel database (as for `tune`: a path, None for the default, False for none);
    `timing`: how candidates are timed (`ONLINE_TIMING`); `strict`: stop tuning on a candidate that
    differs from the oracle; `seed`: the tuner's random inputs; `start=False` leaves tuning to `start()`.
    """

    def __init__(self, compiled: CompiledModel, budget: float = 30.0, margin: float = 0.03, *,
                 database: Any = None, timing: Timing | None = None, strict: bool = False, seed: int = 0,
                 retune: bool = False, start: bool = True):  # fmt: skip
        if compiled.target not in SWAPPERS:
            raise NnjitError(f"online sessions run on {' and '.join(SWAPPERS)}, not '{compiled.target}'")
        from nnjit.tuner.backend import get_backend

        self.compiled, self.budget, self.margin = compiled, budget, margin
        self.backend = get_backend(compiled.target)
        if compiled.cache is not None and compiled.target == "webgpu":
            # The clone the session runs copies the compiled kernels' WGSL (`_WebGPUSwapper`): from the compile
            # cache when it has them. The cache keeps the compiled module's code (the clone's `web.limits`
            # would give it a key of its own), so sessions and plain runs share one entry.
            compiled.cache.before_run("webgpu", compiled.module, compiled.weights)
        self._swapper = SWAPPERS[compiled.target](compiled.module, self.backend.module_attributes())
        self._tuning_module = compiled.module.clone()
        self._options: dict[str, Any] = {"database": database, "timing": timing or ONLINE_TIMING, "strict": strict,
                                         "seed": seed, "retune": retune}  # fmt: skip
        self._turns = _Turns()
        self._stop = threading.Event()
        self._state = _State()
        self._runs = 0
        self._longest_wait = 0.0
        self._first_run = True
        self._ran = threading.Event()
        self._started = time.perf_counter()
        self._thread: threading.Thread | None = None
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))
        if start:
            self.start()

    # --- the caller's side ---

    @property
    def module(self) -> ModuleOp:
        """The module runs use now (its kernels carry the swapped-in schedules)."""
        return self._swapper.module

    def start(self) -> None:
        """Start tuning in the background (done by the constructor unless `start=False`)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._tune, name="nnjit-online", daemon=True)
            self._thread.start()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on the current schedules; waits at most for the one tuning step in progress."""
        cache, weights = self.compiled.cache, self.compiled.weights
        with self._turns.run() as waited:
            self._longest_wait = max(self._longest_wait, waited)
            self._runs += 1
            first, self._first_run = self._first_run, False
            code = self.compiled.module if self.compiled.target == "webgpu" else self.module  # see __init__
            if first and cache is not None and code is self.module:
                cache.before_run(self.compiled.target, code, weights)
            outputs = self._swapper.run(inputs, weights)
            if first and cache is not None:
                cache.after_run(self.compiled.target, code, weights)
        self._ran.set()
        return outputs

    def progress(self) -> Progress:
        """Where tuning stands."""
        state = self._state
        steps = state.steps
        kernels = len(steps.report.kernels) if steps is not None else 0
        done = steps.kernels_done if steps is not None else 0
        return Progress(kernels, done, state.candidates, state.tuning_seconds, self.budget, tuple(state.swaps),
                        self._runs, self._turns.longest_step, self._longest_wait, state.finished, state.error)  # fmt: skip

    def wait(self, timeout: float | None = None) -> bool:
        """Block until tuning is over (budget spent, every space measured, closed, or stopped by an error:
        `progress().error`); False on timeout or when tuning never started."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def report(self) -> TuningReport | None:
        """The tuner's report once tuning has finished (as `compiled.tune` returns it)."""
        return self._state.report

    def close(self) -> None:
        """Stop tuning after the step in progress, store what was learned, set the schedules on `compiled`."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        chosen = {k.sym_name.data: k.schedule for k in _kernels(self.module)}
        target = self.compiled.module
        for kernel in _kernels(target):
            if kernel.sym_name.data in chosen and kernel.schedule != chosen[kernel.sym_name.data]:
                kernel.schedule = chosen[kernel.sym_name.data]
        if self._state.swaps:
            target.attributes.update(self.backend.module_attributes())
            target.verify()
            self._swapper.adopt(target, self.compiled.weights)

    def __enter__(self) -> OnlineSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- the tuning thread ---

    def _tune(self) -> None:
        from nnjit.tuner.signature import kernel_signature
        from nnjit.tuner.tune import TuningSteps

        state = self._state
        try:
            self._ran.wait(FIRST_RUN_GRACE)
            with self._turns.step(self._stop) as granted:  # planning (signatures, lite spaces) is a step too
                if not granted:
                    return
                first = {kernel_signature(k).digest: k.schedule.values for k in _kernels(self._tuning_module)}
                steps = TuningSteps(self._tuning_module, self.backend, first=first, **self._options)
            state.steps = steps
            decisions = _Decisions(self.margin, {s.entry.signature: s.kernel.schedule.values for s in steps.searches})
            try:
                while state.tuning_seconds < self.budget and not self._stop.is_set():
                    with self._turns.step(self._stop) as granted:
                        if not granted:
                            break
                        measured = steps.step()
                    state.tuning_seconds = self._turns.step_seconds
                    if measured is None:
                        break
                    state.candidates += 1
                    decisions.consider(*measured)
                    if decisions.due():
                        self._commit(decisions)
                if not self._stop.is_set():
                    self._commit(decisions)
            finally:
                report = state.report = steps.finish()
                report.budget, report.wall_seconds = self.budget, state.tuning_seconds
                report.out_of_budget = state.tuning_seconds >= self.budget
            state.finished = not self._stop.is_set() or steps.kernels_done == len(steps.report.kernels)
        except Exception as error:  # tuning is best effort: runs go on with the schedules they have
            state.error = f"{type(error).__name__}: {error}"

    def _commit(self, decisions: _Decisions) -> None:
        """Swap every pending decision in at once (prepared off the device, committed in one step)."""
        if not decisions.pending:
            return
        started = time.perf_counter()
        changes = {name: best.schedule for entry, best in decisions.pending.values() for name in entry.names}
        prepared = self._swapper.prepare(changes, self.compiled.weights)
        with self._turns.step(self._stop) as granted:
            if not granted:
                return
            self._swapper.commit(prepared)
        self._state.tuning_seconds = self._turns.step_seconds
        now = time.perf_counter()
        for entry, best in decisions.pending.values():
            self._state.swaps.append(Swap(tuple(entry.names), entry.template, decisions.baseline[entry.signature],
                                          best.median, best.schedule, now - self._started))  # fmt: skip
        decisions.committed(now - started)


class _Decisions:
    """Which kernels to swap: the running schedule's median (baseline) per signature, and the pending swaps.

    A swap is due once the last one is at least twice its own cost ago (WebGPU's cost nothing, so they
    go at once; a Wasm program is printed again for each, so swaps found meanwhile go together).
    """

    def __init__(self, margin: float, running: dict[str, Schedule]):
        self.margin = margin
        self.running = running
        self.baseline: dict[str, float] = {}
        self.pending: dict[str, tuple[KernelTuning, CandidateResult]] = {}
        self._last = -math.inf
        self._cost = 0.0

    def consider(self, entry: KernelTuning, result: CandidateResult) -> None:
        """Note a measured candidate: a baseline, or (when the kernel's best beats it by the margin) a swap."""
        signature = entry.signature
        if result.ok and result.schedule == self.running[signature]:
            self.baseline[signature] = result.median
        best = entry.best
        if signature not in self.baseline or best is None or best.schedule == self.running[signature]:
            return
        if math.isfinite(best.median) and best.median < (1.0 - self.margin) * self.baseline[signature]:
            self.pending[signature] = (entry, best)

    def due(self) -> bool:
        """Whether to swap the pending decisions in now."""
        return bool(self.pending) and time.perf_counter() - self._last >= 2 * self._cost

    def committed(self, cost: float) -> None:
        """The pending decisions are running now; `cost`: seconds it took."""
        for signature, (_, best) in self.pending.items():
            self.running[signature], self.baseline[signature] = best.schedule, best.median
        self.pending.clear()
        self._last, self._cost = time.perf_counter(), cost


def _close_at_exit(session: weakref.ref[OnlineSession]) -> None:
    alive = session()
    if alive is not None:
        alive.close()
