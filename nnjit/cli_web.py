"""`nnjit export` and `nnjit serve`: a model as a static site, and a server that can host it.

    nnjit export model.onnx --shape input_ids=1x16 -o dist/      # page + JS runtime + bundle
    nnjit export minilm.onnx --shape input_ids=4x32 --shape attention_mask=4x32 --shape token_type_ids=4x32 \
        --app sentence-similarity --tokenizer tokenizer.json -o dist/      # a task page in front
    nnjit export model.onnx --shape input_ids=1x16 --max-binding-bytes 20000 -o dist/   # for a weak device
    nnjit serve dist/ --port 8000                                # http://127.0.0.1:8000/ with COOP/COEP

The page (`nnjit/runtime/web/index.html`) picks a backend, runs the model on its sample inputs,
shows the latency, the outputs and their difference from the oracle, and tunes on the device.
Inputs: `--input NAME=FILE.npy` (the rest drawn by `nnjit.compiler.sample_inputs`), or a zoo
model's example inputs for the committed fixtures. `--app` puts a task page in front of it
(`nnjit.runtime.apps`; the generic page moves to `model.html`). `--max-binding-bytes N` compiles the
WebGPU build for a device whose storage bindings hold at most N bytes (weights split across bindings;
docs/browser.md, "Weak devices").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from nnjit.errors import NnjitError


def _zoo_inputs(model: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
    """The zoo's example inputs when `model` is one of its fixtures and has (batch, seq) shapes."""
    from nnjit.models.zoo import ZOO_MODELS, example_inputs, zoo_path

    for name in ZOO_MODELS:
        if zoo_path(name).resolve() == model.resolve() and "input_ids" in shapes and len(shapes["input_ids"]) == 2:
            batch, seq = shapes["input_ids"]
            return example_inputs(name, batch, seq)
    return None


def command_export(args: argparse.Namespace) -> None:
    """Compile for each backend and write the site."""
    from nnjit.cli import _load_inputs, _shapes
    from nnjit.compiler import compile, export, sample_inputs
    from nnjit.runtime.apps import APPS, add_app, parse_tokenizer

    if args.max_binding_bytes is not None:
        from nnjit.compiler import target_pipeline

        try:  # a nonsense limit fails before the long part
            target_pipeline("webgpu", args.max_binding_bytes)
        except NnjitError as error:
            raise NnjitError(f"--max-binding-bytes: {error}") from None
    if APPS[args.app].needs_tokenizer and not args.tokenizer:
        raise NnjitError(f"the {args.app} page needs the model's tokenizer: --tokenizer tokenizer.json")
    tokenizer = _read_text(args.tokenizer, "tokenizer") if args.tokenizer else None
    if tokenizer is not None:
        parse_tokenizer(tokenizer)  # before the long part
    examples = _read_text(args.examples, "examples").splitlines() if args.examples else None
    model = Path(args.model)
    shapes = _shapes(args.shape)
    given = _load_inputs(args.input)
    inputs = _zoo_inputs(model, shapes) if not given else None
    if inputs is None:
        inputs = sample_inputs(compile(model, shapes), args.seed) | given
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    out = export(model, args.output, shapes, backends, inputs, args.title or model.stem, args.candidates,
                 max_binding_bytes=args.max_binding_bytes)  # fmt: skip
    add_app(out, args.app, tokenizer, examples)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {out}/ ({len(files)} files, {size / 1e6:.2f} MB): serve it with `nnjit serve {out}`")


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise NnjitError(f"cannot read the {what} file {path}: {error.strerror}") from None


def command_serve(args: argparse.Namespace) -> None:
    """Serve a site until interrupted."""
    from nnjit.runtime.serve import SiteServer

    root = Path(args.directory)
    if not (root / "index.html").is_file():
        raise NnjitError(f"{root} has no index.html (write one with `nnjit export`)")
    try:
        server = SiteServer({"/": root}, port=args.port, isolate=not args.no_isolation, verbose=True)
    except OSError as error:
        raise NnjitError(f"cannot serve on 127.0.0.1:{args.port}: {error.strerror}") from None
    print(f"serving {root} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def add_web_parsers(commands: Any) -> None:
    """Register `export` and `serve` on the `nnjit` sub-command parser."""
    from nnjit.runtime.apps import APPS

    exporter = commands.add_parser("export", help="write a static site that runs the model in the browser")
    exporter.add_argument("model", help="ONNX model file")
    exporter.add_argument("--shape", action="append", metavar="NAME=DIMS", help="input shape, e.g. input_ids=1x16")
    exporter.add_argument("-o", "--output", required=True, help="output folder")
    exporter.add_argument("--backends", default="webgpu,wasm", help="comma-separated: webgpu, wasm")
    exporter.add_argument("--candidates", type=int, default=8, help="tuning variants per kernel (default 8)")
    exporter.add_argument(
        "--max-binding-bytes", type=int, metavar="N",
        help="compile WebGPU for a device whose storage bindings hold at most N bytes (default 134217728): "
        "larger weights are split across bindings",
    )  # fmt: skip
    exporter.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="sample input for the page")
    exporter.add_argument("--seed", type=int, default=0, help="seed of the drawn sample inputs")
    exporter.add_argument("--title", help="title shown on the page (default: the model's file name)")
    exporter.add_argument(
        "--app", default="model", choices=list(APPS), help="the front page (default: model, the generic page)"
    )
    exporter.add_argument("--tokenizer", metavar="TOKENIZER.JSON", help="the model's tokenizer (sentence-similarity)")
    exporter.add_argument("--examples", metavar="FILE", help="sentences the app page starts with, one per line")
    exporter.set_defaults(handler=command_export)
    server = commands.add_parser("serve", help="serve an exported site on 127.0.0.1 (COOP/COEP headers)")
    server.add_argument("directory", help="the folder `nnjit export` wrote")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--no-isolation", action="store_true", help="omit COOP/COEP (Wasm then runs single-threaded)")
    server.set_defaults(handler=command_serve)
