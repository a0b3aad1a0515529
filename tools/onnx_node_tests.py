"""Run the ONNX backend node tests through nnjit and report, per op, what passes.

    python tools/onnx_node_tests.py                      # every node test, a per-op table, totals
    python tools/onnx_node_tests.py --op Softmax --op Gemm --verbose
    python tools/onnx_node_tests.py --markdown docs/onnx-node-tests.md

Where the cases come from: onnx wheels that ship `onnx/backend/test/data/node/` (a folder per test:
`model.onnx` and `test_data_set_*/{input,output}_*.pb`) are read from there, with the runner's default
tolerances (rtol 1e-3, atol 1e-7). The onnx 1.23 wheel ships only the generators, so the same cases
are produced in memory by `onnx.backend.test.case.node.collect_testcases(None)`, which also carries
each case's own rtol/atol.

What nnjit *claims*: a test is claimed when every node's op type has a converter for the model's
default-domain opset (`find_converter`), every graph input, output and initializer is a tensor of an
element type nnjit supports (`ELEMENT_TYPES`), and no node has a subgraph attribute. Everything else is
"not claimed", bucketed by reason. A claimed test whose import raises an `OnnxImportError` saying
"not supported" (a variant of the op nnjit deliberately leaves out) is moved to "not claimed
(unsupported variant)"; any other error, crash or wrong answer is a failure.

A claimed test is compiled with `nnjit.compile(model, shapes)` (the target's real pass pipeline),
each data set is run, and every output is compared with the expected one as the ONNX backend runner
does: same shape, same dtype, then `assert_allclose(rtol, atol)` for floats (NaN equals NaN) and exact
equality for integers and booleans. nnjit specialises on input shapes, and the node tests feed
shape-like operands (Reshape's shape, Slice bounds, reduction axes, ...) as graph inputs: when import
says such a value "must be a constant after shape specialisation" and names the model inputs it is
computed from, those inputs become initializers holding the data set's values and the model is compiled
again (`compile_specialised`). Tests in `KNOWN_DEVIATIONS` that miss the case's rtol for a documented
numerical reason, but meet the rtol given there, count as "known deviation", neither passed nor failed.

Attribution: a single-node test counts for its node's op type. A multi-node test named
`<base>_expanded` (the op's function body, expanded) counts for the op type of `<base>`, the op the name
names; any other multi-node test counts in a "composite" row. The exit code is 1 when a claimed test
fails.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

import nnjit
from nnjit.errors import OnnxImportError
from nnjit.frontend import ops  # noqa: F401  (registers the converters)
from nnjit.frontend.onnx import ELEMENT_TYPES
from nnjit.frontend.registry import CONVERTERS, find_converter

DATA_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
COMPOSITE = "composite"
PASSED, FAILED, NOT_CLAIMED, DEVIATION = "passed", "failed", "not claimed", "known deviation"
# Reasons a test is not claimed; the first two are the only ones allowed for an op nnjit converts.
DTYPE, VARIANT = "dtype", "unsupported variant"
NON_TENSOR, SUBGRAPH, NO_OP, OPSET = "sequence/map/optional", "subgraph", "unsupported op", "opset not served"
REASONS = (NO_OP, OPSET, DTYPE, NON_TENSOR, SUBGRAPH, VARIANT)

DataSet = tuple[list[np.ndarray], list[np.ndarray]]

_FP16_ATTENTION = (
    2**-9,
    "exact per-op float16 rounding (nnjit's oracle) of the Attention function body against the generator's "
    "numpy float16: relative error to a float64 evaluation is 6.9e-4 for nnjit and 8.7e-4 for the expected "
    "values, in opposite directions; within 2 float16 ulps (rtol 2^-9), not within the test's 1e-3",
)
KNOWN_DEVIATIONS: dict[str, tuple[float, str]] = {
    "test_attention_4d_causal_fp16": _FP16_ATTENTION,
    "test_attention_4d_causal_fp16_expanded": _FP16_ATTENTION,
}
"""Tests whose outputs miss the case's rtol for a documented numerical reason; each must still meet its own
rtol, is counted as a known deviation (neither passed nor failed), and the pytest suite pins this set."""


@dataclass
class NodeCase:
    """One node test: its model, its (inputs, outputs) data sets and its tolerances."""

    name: str
    model: onnx.ModelProto
    data_sets: list[DataSet]
    rtol: float = 1e-3
    atol: float = 1e-7


@dataclass
class Outcome:
    """What happened to one test: the row it counts in, its status, and why (reason or failure)."""

    name: str
    op: str
    status: str
    detail: str = ""
    missing_ops: list[str] = field(default_factory=list[str])
    specialised: list[str] = field(default_factory=list[str])
    seconds: float = 0.0
    single_node: bool = False


# --- Loading ----------------------------------------------------------------------------------


def _read_tensor(path: Path) -> np.ndarray:
    proto = onnx.TensorProto()
    proto.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(proto)


def _load_from_data_dir(root: Path) -> list[NodeCase]:
    cases: list[NodeCase] = []
    for folder in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        model = onnx.load(str(folder / "model.onnx"))
        tensor_io = all(v.type.HasField("tensor_type") for v in [*model.graph.input, *model.graph.output])
        data_sets: list[DataSet] = []
        for data in sorted(folder.glob("test_data_set_*")) if tensor_io else []:
            inputs = [_read_tensor(p) for p in sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem[6:]))]
            outputs = [_read_tensor(p) for p in sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem[7:]))]
            data_sets.append((inputs, outputs))
        cases.append(NodeCase(folder.name, model, data_sets))
    return cases


def _arrays(values: Sequence[Any]) -> list[Any]:
    """Data-set values as arrays (some generators store `TensorProto`s); sequences are kept as they are."""
    return [numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for v in values]


def load_cases() -> tuple[list[NodeCase], str]:
    """Every node test, and a line saying where they came from."""
    if DATA_DIR.is_dir():
        return _load_from_data_dir(DATA_DIR), f"data files in {DATA_DIR}"
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators compute expected values with numpy warnings
        collected = [c for c in collect_testcases(None) if c.kind == "node"]
    cases = [
        NodeCase(c.name, c.model, [(_arrays(i), _arrays(o)) for i, o in c.data_sets or []], c.rtol, c.atol)
        for c in collected
    ]
    return sorted(cases, key=lambda c: c.name), "onnx.backend.test.case.node.collect_testcases(None)"


# --- Claiming ---------------------------------------------------------------------------------


def model_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain opset."""
    return next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), 1)


def _value_types(model: onnx.ModelProto) -> Iterable[onnx.TypeProto]:
    graph = model.graph
    yield from (v.type for v in [*graph.input, *graph.output])


def unclaimed_reason(model: onnx.ModelProto) -> tuple[str | None, list[str]]:
    """Why nnjit does not claim a model (None when it does), and the op types it lacks converters for."""
    graph = model.graph
    if any(not t.HasField("tensor_type") for t in _value_types(model)):
        return NON_TENSOR, []
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        return SUBGRAPH, []
    opset = model_opset(model)
    lacking = sorted({n.op_type for n in graph.node if find_converter(n.op_type, n.domain, opset) is None})
    if lacking:
        converted = [op for op in lacking if op in CONVERTERS]
        return (OPSET, converted) if converted else (NO_OP, lacking)
    element_types = [t.tensor_type.elem_type for t in _value_types(model)]
    element_types += [t.data_type for t in graph.initializer]
    if any(e not in ELEMENT_TYPES for e in element_types):
        return DTYPE, []
    return None, []


def row_of(case: NodeCase, single_node_ops: dict[str, str]) -> str:
    """The op a test counts for: its node's op type, the op its `_expanded` name names, or composite."""
    if len(case.model.graph.node) == 1:
        return case.model.graph.node[0].op_type
    base = re.sub(r"_expanded(_ver\d+)?$", "", case.name)
    return single_node_ops.get(base, COMPOSITE) if base != case.name else COMPOSITE


# --- Running ----------------------------------------------------------------------------------


def compare(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when `got` matches `expected` as the ONNX runner requires, else what differs."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if expected.dtype.kind in "fc":
        with np.errstate(all="ignore"):
            close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = got == expected
    if np.all(close):
        return None
    where = tuple(int(i) for i in np.argwhere(~close)[0])
    return (
        f"{int(np.size(close) - np.count_nonzero(close))}/{np.size(close)} elements differ "
        f"(rtol {rtol}, atol {atol}); at {where} expected {expected[where]!r}, got {got[where]!r}"
    )


CONSTANT_NEEDED = re.compile(
    r"must be a constant after shape specialisation; it is computed from the values of model input\(s\) (.*)"
)


def _frozen(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """`model` with the graph inputs in `values` turned into initializers holding those values."""
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    kept = [v for v in frozen.graph.input if v.name not in values]
    del frozen.graph.input[:]
    frozen.graph.input.extend(kept)
    frozen.graph.initializer.extend(numpy_helper.from_array(np.asarray(a), name) for name, a in values.items())
    return frozen


def compile_specialised(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[Any, list[str]]:
    """Compile for the feeds' shapes, also specialising on the values of inputs the importer needs as constants.

    Shape-like inputs (a Reshape's shape, Slice bounds, reduction axes, Range bounds...) must be known at
    compile time; when import says so, the model inputs it names (those the value is computed from) become
    initializers holding the data set's values and the model is compiled again. Returns the compiled model
    and those inputs.
    """
    values: dict[str, np.ndarray] = {}
    while True:
        current = _frozen(model, values) if values else model
        try:
            shapes = {n: a.shape for n, a in feeds.items() if n not in values}
            return nnjit.compile(current, shapes), sorted(values)
        except OnnxImportError as error:
            match = CONSTANT_NEEDED.search(str(error))
            needed = set(re.findall(r"'([^']*)'", match.group(1))) - set(values) if match else set()
            if not needed:
                raise
            values.update({n: feeds[n] for n in needed})


def run_case(case: NodeCase, row: str) -> Outcome:
    """Claim, compile, run and compare one test."""
    started = time.perf_counter()
    reason, missing = unclaimed_reason(case.model)
    if reason is not None:
        return Outcome(case.name, row, NOT_CLAIMED, reason, missing)
    initializers = {t.name for t in case.model.graph.initializer}
    input_names = [v.name for v in case.model.graph.input if v.name not in initializers]
    output_names = [v.name for v in case.model.graph.output]
    specialised: list[str] = []
    try:
        for number, (inputs, outputs) in enumerate(case.data_sets):
            feeds = dict(zip(input_names, (np.asarray(a) for a in inputs), strict=True))
            try:
                compiled, specialised = compile_specialised(case.model, feeds)
            except OnnxImportError as error:
                if "not supported" in str(error):
                    variant = DTYPE if "element type" in str(error) else VARIANT
                    return Outcome(case.name, row, NOT_CLAIMED, f"{variant}: {error}")
                raise
            results = compiled.run({n: a for n, a in feeds.items() if n not in specialised})
            for name, expected in zip(output_names, outputs, strict=True):
                problem = compare(np.asarray(expected), results[name], case.rtol, case.atol)
                if problem and case.name in KNOWN_DEVIATIONS:
                    rtol, why = KNOWN_DEVIATIONS[case.name]
                    if compare(np.asarray(expected), results[name], rtol, case.atol) is None:
                        return Outcome(case.name, row, DEVIATION, f"{problem}; {why}", specialised=specialised)
                if problem:
                    return Outcome(
                        case.name,
                        row,
                        FAILED,
                        f"data set {number}, output '{name}': {problem}",
                        specialised=specialised,
                    )
    except Exception as error:
        detail = f"{type(error).__name__}: {error}".splitlines()[0][:400]
        return Outcome(case.name, row, FAILED, detail, specialised=specialised, seconds=time.perf_counter() - started)
    return Outcome(case.name, row, PASSED, specialised=specialised, seconds=time.perf_counter() - started)


def _run_job(job: tuple[NodeCase, str]) -> Outcome:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = run_case(*job)
    outcome.single_node = len(job[0].model.graph.node) == 1
    return outcome


def run_all(
    cases: Sequence[NodeCase],
    only_ops: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
) -> list[Outcome]:
    """Run every case (or only those counting for `only_ops`), in `workers` processes."""
    single = {c.name: c.model.graph.node[0].op_type for c in cases if len(c.model.graph.node) == 1}
    jobs = [(case, row_of(case, single)) for case in cases]
    if only_ops:
        jobs = [job for job in jobs if job[1] in only_ops]
    outcomes: list[Outcome] = []
    if workers <= 1 or len(jobs) < 50:
        results: Iterable[Outcome] = map(_run_job, jobs)
        for outcome in results:
            outcomes.append(outcome)
            if progress:
                progress(len(outcomes), len(jobs))
        return outcomes
    with get_context("fork").Pool(workers) as pool:
        for outcome in pool.imap(_run_job, jobs, chunksize=8):
            outcomes.append(outcome)
            if progress:
                progress(len(outcomes), len(jobs))
    return outcomes


# --- Reporting --------------------------------------------------------------------------------


def bucket(outcome: Outcome) -> str:
    """The not-claimed reason without its detail."""
    return outcome.detail.split(":")[0]


def _reasons(outcomes: Iterable[Outcome]) -> str:
    counts = Counter(bucket(o) for o in outcomes if o.status == NOT_CLAIMED)
    return ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))


Row = tuple[str, int, int, int, int, str]


def table_rows(outcomes: Sequence[Outcome]) -> list[Row]:
    """`(op, passed, failed, known deviations, not claimed, reasons)` per row, ops sorted, composite last."""
    by_op: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_op.setdefault(outcome.op, []).append(outcome)
    rows: list[Row] = []
    for op in sorted(by_op, key=lambda o: (o == COMPOSITE, o.lower())):
        counts = Counter(o.status for o in by_op[op])
        rows.append((op, counts[PASSED], counts[FAILED], counts[DEVIATION], counts[NOT_CLAIMED], _reasons(by_op[op])))
    return rows


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line of totals."""
    counts = Counter(o.status for o in outcomes)
    claimed = counts[PASSED] + counts[FAILED] + counts[DEVIATION]
    specialised = sum(1 for o in outcomes if o.specialised and o.status != NOT_CLAIMED)
    return (
        f"{len(outcomes)} tests: claimed {claimed} (passed {counts[PASSED]}, failed {counts[FAILED]}, "
        f"known deviation {counts[DEVIATION]}), not claimed {counts[NOT_CLAIMED]} ({_reasons(outcomes)}); "
        f"{specialised} claimed tests specialised on input values"
    )


def render_text(outcomes: Sequence[Outcome], verbose: bool) -> str:
    """The per-op table, totals and the list of failures, for a terminal."""
    rows = table_rows(outcomes)
    width = max([len(r[0]) for r in rows] + [8])
    lines = [f"{'op':<{width}}  passed  failed  deviation  not claimed  (reasons)"]
    for op, passed, failed, deviation, unclaimed, reasons in rows:
        lines.append(f"{op:<{width}}  {passed:>6}  {failed:>6}  {deviation:>9}  {unclaimed:>11}  {reasons}")
    lines.append("\n" + summary(outcomes))
    for title, status in (("known deviations", DEVIATION), ("failures", FAILED)):
        listed = [o for o in outcomes if o.status == status]
        if listed:
            lines += [f"\n{title}:"] + [f"  {o.name} [{o.op}]: {o.detail}" for o in listed]
    if verbose:
        lines.append("\nnot claimed:")
        lines += [
            f"  {o.name} [{o.op}]: {o.detail} {' '.join(o.missing_ops)}" for o in outcomes if o.status == NOT_CLAIMED
        ]
        lines.append("\nspecialised on input values:")
        lines += [f"  {o.name}: {', '.join(o.specialised)}" for o in outcomes if o.specialised]
        slowest = sorted(outcomes, key=lambda o: -o.seconds)[:10]
        lines.append("\nslowest: " + ", ".join(f"{o.name} {o.seconds:.2f}s" for o in slowest))
    return "\n".join(lines)


MARKDOWN_RULES = """\
## How the tests are run

* **Source.** `{source}`. The onnx 1.23 wheel ships the node-test generators but not
  `onnx/backend/test/data/node/`; `tools/onnx_node_tests.py` reads that folder when an onnx version ships
  it (with the runner's default rtol 1e-3, atol 1e-7), and otherwise builds the same cases (models and
  input/output arrays, with each case's own rtol/atol) in memory with `collect_testcases`.
* **Claimed.** A test is claimed when every node's op type has an nnjit converter for the model's
  opset, every graph input/output/initializer is a tensor of an element type nnjit supports (f32, f16,
  f64, i64, i32, i8, ui8, bool), and no node has a subgraph attribute.
* **Not claimed**, by reason: *unsupported op* (an op type without any converter), *dtype* (another
  element type, or an import error saying an element type is not supported), *sequence/map/optional*
  (non-tensor inputs or outputs), *subgraph* (If/Loop/Scan bodies), *unsupported variant* (the
  converter rejected an attribute mode, an optional output or, for an op converted through its ONNX
  function body, a body op nnjit lacks, with an `OnnxImportError` saying "not supported"; listed at
  the end). *opset not served* would mean a converted op lacks a converter for
  the test's opset; the pytest suite fails if it ever appears.
* **Passed / failed.** Claimed tests are compiled with `nnjit.compile(model, shapes_of_inputs)` for the
  `reference` target (its full pass pipeline) and run on each data set. Outputs must have the expected
  shape and dtype, then match with `assert_allclose` semantics at the case's rtol/atol (NaN equals NaN)
  for floats, exactly for integers and booleans. Any other error, crash or mismatch is a failure.
* **Specialised on input values.** nnjit is a JIT that specialises on input shapes, so shape-like
  operands (a Reshape's shape, Slice bounds, reduction axes, Range bounds, Split sizes, Compress's
  condition, ...) must be known at compile time, and so must the indices of ScatterND/ScatterElements
  (their converters precompute the write maps). The node tests pass them as graph inputs; when the
  importer reports that such a value "must be a constant after shape specialisation" and names the
  model inputs it is computed from, the runner turns those inputs into initializers holding the data
  set's values and compiles again (the table at the end lists them). Data operands (Clip bounds,
  BatchNormalization statistics, Trilu's k, Pad's value, ...) are never specialised: their converters
  take them at run time.
* **Known deviation.** A test listed in `KNOWN_DEVIATIONS` with a documented numerical reason, whose
  outputs miss the case's rtol but meet the looser rtol given there. It counts neither as passed nor as
  failed; the pytest suite pins the list.
* **Rows.** A single-node test counts for its node's op type. A `<base>_expanded` test (the op's
  function body as several nodes) counts for the op type of `<base>`, the op its name names: such an
  op can pass through its expansion even when nnjit has no converter for it. Other multi-node tests
  count as *composite*.
"""


def render_markdown(outcomes: Sequence[Outcome], source: str) -> str:
    """The report for docs/: date, versions, rules, totals and the per-op table."""
    import onnxruntime

    lines = [
        "# ONNX backend node tests through nnjit",
        "",
        f"Generated by `python tools/onnx_node_tests.py --markdown docs/onnx-node-tests.md` on "
        f"{datetime.date.today().isoformat()} with onnx {onnx.__version__} and onnxruntime {onnxruntime.__version__} "
        "(onnxruntime is installed but not used: the expected outputs come with the tests).",
        "",
        f"**{summary(outcomes)}.**",
        "",
        MARKDOWN_RULES.format(source=source),
        "## Per op",
        "",
        "| op | passed | failed | known deviation | not claimed | not claimed, by reason |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {op} | {p} | {f} | {d} | {u} | {r} |" for op, p, f, d, u, r in table_rows(outcomes)]
    for title, status in (("Known deviations", DEVIATION), ("Failures", FAILED)):
        listed = [o for o in outcomes if o.status == status]
        if listed:
            lines += ["", f"## {title}", ""] + [f"* `{o.name}` ({o.op}): {o.detail}" for o in listed]
    specialised: dict[str, Counter[str]] = {}
    for o in outcomes:
        if o.specialised and o.status != NOT_CLAIMED:
            specialised.setdefault(o.op, Counter())[", ".join(o.specialised)] += 1
    if specialised:
        lines += ["", "## Inputs specialised on their values", "", "| op | inputs (tests) |", "|---|---|"]
        lines += [
            f"| {op} | " + "; ".join(f"{names} ({n})" for names, n in sorted(counts.items())) + " |"
            for op, counts in sorted(specialised.items())
        ]
    variants = [o for o in outcomes if o.status == NOT_CLAIMED and bucket(o) in (VARIANT, DTYPE) and ":" in o.detail]
    if variants:
        lines += ["", "## Variants the converters reject", ""]
        lines += [f"* `{o.name}`: {o.detail.split(': ', 1)[1]}" for o in variants]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--markdown", type=Path, help="also write the report as Markdown to this file")
    parser.add_argument("--op", action="append", default=[], help="only tests counting for this op (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="list not-claimed tests and the slowest ones")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cases, source = load_cases()
    print(f"{len(cases)} node tests from {source}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total} tests, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    outcomes = run_all(cases, args.op, progress, args.workers)
    print(render_text(outcomes, args.verbose))
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(render_markdown(outcomes, source))
    return 1 if any(o.status == FAILED for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
