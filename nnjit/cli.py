"""`nnjit`: import, run and inspect models from the command line.

    nnjit import model.onnx --shape input_ids=1x16 -o m.mlir     # m.mlir + m.weights.npz
    nnjit run model.onnx --shape input_ids=1x16 --check           # run, compare with onnxruntime
    nnjit tune model.onnx --shape input_ids=1x16 --target webgpu --budget 30 --report tuning.html
    nnjit ops                                                     # the ONNX ops nnjit converts
    nnjit export model.onnx --shape input_ids=1x16 -o dist/      # a static site (cli_web.py)
    nnjit serve dist/                                             # serve it on 127.0.0.1 with COOP/COEP
    nnjit kernel-db serve --port 8765                             # the kernel-db service (cli_kerneldb.py)

Bad input (missing file, malformed model, unsupported op, wrong shape) prints one line,
`nnjit: error: ...`, and exits with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnjit.errors import NnjitError

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel


def parse_shape_option(text: str) -> tuple[str, tuple[int, ...]]:
    """`name=1x16` -> ("name", (1, 16)); `name=` is a scalar."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise NnjitError(f"--shape expects NAME=DIMxDIM..., got '{text}'")
    try:
        shape = tuple(int(d) for d in dims.split("x")) if dims else ()
    except ValueError:
        raise NnjitError(f"--shape expects integer dims separated by 'x', got '{text}'") from None
    return name, shape


def _shapes(options: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    return dict(parse_shape_option(o) for o in options or [])


def example_inputs(compiled: CompiledModel, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every model input: floats in [-1, 1), integers in [0, 100), booleans."""
    from nnjit.compiler import sample_inputs

    return sample_inputs(compiled, seed, int_high=100)


def _load_inputs(options: Sequence[str] | None) -> dict[str, np.ndarray]:
    inputs: dict[str, np.ndarray] = {}
    for option in options or []:
        name, sep, path = option.partition("=")
        if not sep:
            raise NnjitError(f"--input expects NAME=FILE.npy, got '{option}'")
        if not Path(path).is_file():
            raise NnjitError(f"input file {path} does not exist")
        inputs[name] = np.load(path, allow_pickle=False)
    return inputs


def command_import(args: argparse.Namespace) -> None:
    """Import (and optionally transform) a model; print or save its IR."""
    from nnjit.compiler import compile

    compiled = compile(args.model, _shapes(args.shape), pipeline=args.passes or "")
    if args.output:
        path = compiled.save(args.output)
        print(f"wrote {path} and {path.with_suffix('.weights.npz')} ({len(compiled.weights)} weights)", file=sys.stderr)
    else:
        sys.stdout.write(compiled.ir_at(list(compiled.stages)[-1], debuginfo=args.print_debuginfo))


def command_run(args: argparse.Namespace) -> None:
    """Compile and run a model, print output summaries and timings, optionally check against onnxruntime."""
    from nnjit.compiler import compile

    compiled = compile(args.model, _shapes(args.shape), target=args.target)
    inputs = example_inputs(compiled, args.seed) | _load_inputs(args.input)
    started = time.perf_counter()
    outputs = compiled.run(inputs, executor=args.executor)
    run_seconds = time.perf_counter() - started
    for stage, seconds in compiled.stage_seconds.items():
        print(f"  {stage:<28} {seconds * 1e3:9.1f} ms")
    print(f"  {'run (' + (args.executor or args.target) + ')':<28} {run_seconds * 1e3:9.1f} ms")
    for name, value in outputs.items():
        print(f"{name}: {value.dtype}{list(value.shape)} mean={value.mean():.6g} std={value.std():.6g}")
    if args.check:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
        expected = [np.asarray(value) for value in session.run(None, inputs)]
        for name, reference in zip(compiled.output_names, expected, strict=True):
            got = outputs[name]
            error = float(np.max(np.abs(got.astype(np.float64) - reference))) if got.size else 0.0
            ok = np.allclose(got, reference, rtol=args.rtol, atol=args.atol)
            print(f"check {name} vs onnxruntime: max |diff| = {error:.3g} -> {'OK' if ok else 'MISMATCH'}")
            if not ok:
                raise NnjitError(f"output '{name}' differs from onnxruntime (max |diff| {error:.3g})")


def command_tune(args: argparse.Namespace) -> None:
    """Tune a model's kernels on the target's device; store the best schedules in the kernel database."""
    from nnjit.compiler import compile
    from nnjit.tuner.measure import Timing
    from nnjit.tuner.tune import tune

    compiled = compile(args.model, _shapes(args.shape), target=args.target, kernel_db=False)
    report = tune(
        compiled, args.budget, database=args.db, timing=Timing(repeats=args.repeats), retune=args.retune,
        progress=not args.quiet, name=Path(args.model).name, service=args.service,
    )  # fmt: skip
    print(report.table())
    if args.report:
        print(f"wrote {report.write_html(args.report)}", file=sys.stderr)


def command_ops(args: argparse.Namespace) -> None:
    """List every ONNX op type nnjit converts, with the opsets each converter serves."""
    from nnjit.frontend.registry import CONVERTERS, load_converters

    load_converters()

    for op_type in sorted(CONVERTERS):
        ranges = ", ".join(f"{e.since}-{e.until or ''}" for e in CONVERTERS[op_type])
        print(f"{op_type:<24} opsets {ranges}")


def build_parser() -> argparse.ArgumentParser:
    """The `nnjit` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="nnjit", description="Just-in-time compiler for in-browser inference")
    commands = parser.add_subparsers(dest="command", required=True)

    importer = commands.add_parser("import", help="import an ONNX model to nn IR")
    importer.add_argument("model")
    importer.add_argument("--shape", action="append", metavar="NAME=DIMS", help="e.g. input_ids=1x16")
    importer.add_argument("-o", "--output", help="write IR here and weights beside it")
    importer.add_argument("-p", "--passes", help="pass pipeline to run after import, e.g. canonicalize")
    importer.add_argument("--print-debuginfo", action="store_true", help="print ONNX node names as locations")
    importer.set_defaults(handler=command_import)

    runner = commands.add_parser("run", help="compile and run a model")
    runner.add_argument("model")
    runner.add_argument("--shape", action="append", metavar="NAME=DIMS")
    runner.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    runner.add_argument("--target", default="reference", help="reference, webgpu or wasm")
    runner.add_argument("--executor", help="run on another executor of the target, e.g. node for wasm (V8)")
    runner.add_argument("--seed", type=int, default=0)
    runner.add_argument("--check", action="store_true", help="compare with onnxruntime")
    runner.add_argument("--rtol", type=float, default=1e-4)
    runner.add_argument("--atol", type=float, default=1e-5)
    runner.set_defaults(handler=command_run)

    tuner = commands.add_parser("tune", help="tune a model's kernels on the device, into the kernel database")
    tuner.add_argument("model")
    tuner.add_argument("--shape", action="append", metavar="NAME=DIMS")
    tuner.add_argument("--target", default="webgpu", help="webgpu or wasm")
    tuner.add_argument("--budget", type=float, default=30.0, help="seconds of tuning (default 30)")
    tuner.add_argument("--repeats", type=int, default=16, help="timed runs per candidate, at most")
    tuner.add_argument("--db", help="kernel database file (default: $NNJIT_CACHE_DIR or the user cache)")
    tuner.add_argument("--retune", action="store_true", help="measure kernels the database already has")
    tuner.add_argument("--report", metavar="FILE.html", help="write an HTML report of the search")
    tuner.add_argument("--quiet", action="store_true", help="no progress bar")
    tuner.add_argument("--service", metavar="URL", help="kernel-db service to share schedules with (docs/kernel-db.md)")
    tuner.set_defaults(handler=command_tune)

    lister = commands.add_parser("ops", help="list supported ONNX ops")
    lister.set_defaults(handler=command_ops)

    from nnjit.cli_kerneldb import add_kernel_db_parser
    from nnjit.cli_web import add_web_parsers

    add_kernel_db_parser(commands)
    add_web_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nnjit` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except NnjitError as error:
        message = " ".join(str(error).split())
        print(f"nnjit: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
