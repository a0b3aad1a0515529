"""Measuring one candidate schedule of one kernel: build it, check it against the oracle, time it.

    result = measure(backend, kernel, schedule, case, Timing(repeats=16, warmup=2))
    result.median          # seconds; inf when the candidate failed to build or run, or was wrong

The protocol (docs/tuning.md): build (printing + pipeline/module creation, timed as compile cost);
one run whose output must match the oracle's (`harness.matches`): a candidate that changes results
is a bug, reported loudly (`WrongResultWarning`, or `WrongResultError` with `strict`) and never
chosen; then `warmup` untimed runs and up to `repeats` timed runs (device timestamps where the
backend has them), fewer when one run is slow (`Timing.max_seconds` a candidate) and just one when
the first timed run is already `Timing.cutoff` times slower than the best so far; the score is the
median. A candidate that fails anywhere scores as infinitely slow.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from nnjit.dialects.web import KernelOp, Schedule
from nnjit.errors import NnjitError
from nnjit.tuner.backend import Backend
from nnjit.tuner.database import schedule_from_json, schedule_to_json
from nnjit.tuner.harness import OracleCase, matches

OK, FAILED, WRONG = "ok", "failed", "wrong"


class WrongResultError(NnjitError):
    """A candidate schedule computed something other than the oracle: a compiler bug."""


class WrongResultWarning(UserWarning):
    """A candidate schedule computed something other than the oracle and was rejected."""


@dataclass(frozen=True)
class Timing:
    """How candidates are timed."""

    repeats: int = 16
    warmup: int = 2
    min_repeats: int = 3
    max_seconds: float = 0.5
    """Timed runs of one candidate stop once they would take longer than this (never below `min_repeats`)."""
    cutoff: float = 4.0
    """A candidate whose first timed run is this many times slower than the best median stops there."""


@dataclass
class CandidateResult:
    """One candidate's outcome: status, latency samples and median, compile cost, oracle error."""

    schedule: Schedule
    status: str
    median: float = math.inf
    samples: list[float] = field(default_factory=list[float])
    print_seconds: float = 0.0
    compile_seconds: float = 0.0
    first_run_seconds: float = 0.0
    error: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether it ran and matched the oracle."""
        return self.status == OK

    def to_json(self) -> dict[str, Any]:
        """A JSON object (the database keeps every candidate's)."""
        return {
            "schedule": schedule_to_json(self.schedule), "status": self.status,
            "median": self.median if math.isfinite(self.median) else None, "samples": self.samples,
            "print_seconds": self.print_seconds, "compile_seconds": self.compile_seconds,
            "first_run_seconds": self.first_run_seconds,
            "error": self.error if math.isfinite(self.error) else None, "message": self.message,
        }  # fmt: skip

    @staticmethod
    def from_json(data: dict[str, Any]) -> CandidateResult:
        """The inverse of `to_json`."""
        median, error = data.get("median"), data.get("error")
        return CandidateResult(
            schedule_from_json(data["schedule"]), data["status"], math.inf if median is None else float(median),
            [float(s) for s in data.get("samples", [])], float(data.get("print_seconds", 0.0)),
            float(data.get("compile_seconds", 0.0)), float(data.get("first_run_seconds", 0.0)),
            math.inf if error is None else float(error), str(data.get("message", "")),
        )  # fmt: skip


def describe(schedule: Schedule) -> str:
    """A compact form: `wg 16x16 tile 64x64x8 thr 4x4 v4 u8 shared`."""
    s = schedule
    parts = [f"wg {'x'.join(str(v) for v in s.workgroup if v > 1) or '1'}"]
    if any(s.tile):
        parts.append(f"tile {s.tile[0]}x{s.tile[1]}x{s.tile[2]} thr {s.thread[0]}x{s.thread[1]}")
    parts.append(f"v{s.vector} u{s.unroll}{' shared' if s.shared else ''}")
    return " ".join(parts)


def measure(
    backend: Backend,
    kernel: KernelOp,
    schedule: Schedule,
    case: OracleCase,
    timing: Timing | None = None,
    best: float = math.inf,
    strict: bool = False,
) -> CandidateResult:
    """Build, check and time one candidate (see the module docstring); `best` is the best median so far."""
    timing = timing or Timing()
    try:
        build = backend.build(kernel, schedule)
    except Exception as error:  # any build failure scores as infinitely slow
        return CandidateResult(schedule, FAILED, message=f"build: {_one_line(error)}")
    result = CandidateResult(schedule, OK, print_seconds=build.print_seconds, compile_seconds=build.compile_seconds)
    try:
        started = time.perf_counter()
        output = backend.run(build, case.arguments)
        result.first_run_seconds = time.perf_counter() - started
    except Exception as error:
        result.status, result.message = FAILED, f"run: {_one_line(error)}"
        return result
    ok, result.error = matches(output, case)
    if not ok:
        result.status = WRONG
        result.message = (
            f"web.kernel @{kernel.sym_name.data} ({kernel.template.data}) under {describe(schedule)} differs from "
            f"the oracle: max |diff| {result.error:.3g} (rtol {case.rtol:g}, atol {case.atol:g})"
        )
        if strict:
            raise WrongResultError(result.message)
        warnings.warn(f"rejected candidate: {result.message}", WrongResultWarning, stacklevel=2)
        return result
    try:
        samples = backend.time(build, case.arguments, repeats=1, warmup=timing.warmup)
        per_run = max(samples[0], 1e-9)
        if samples[0] <= timing.cutoff * best:
            more = min(timing.repeats, max(timing.min_repeats, int(timing.max_seconds / per_run))) - 1
            if more > 0:
                samples += backend.time(build, case.arguments, repeats=more, warmup=0)
    except Exception as error:
        result.status, result.message = FAILED, f"timing: {_one_line(error)}"
        return result
    result.samples = samples
    result.median = statistics.median(samples)
    return result


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
