"""Paper-scale random-weight models (the nnJIT paper's workloads), generated into the user cache.

The zoo's tiny fixtures are committed; these full-size configurations are hundreds of MB to GB, so
they are exported on demand into :func:`nnjit.models.export.models_cache_dir` ``/paper`` (never into
the repository), with the zoo's export code (:mod:`nnjit.models.export`):

==============  =================================  ==========================  ==========  ======
name            architecture                       configuration               parameters  shape
==============  =================================  ==========================  ==========  ======
gpt2            GPT2LMHeadModel                    GPT2Config defaults (small)  124 M      1x10
bart            BartModel (encoder-decoder)        BART-base: d_model 768, 6+6  139 M      1x384
roberta         RobertaModel                       RoBERTa-base                 125 M      1x384
t5-encoder      T5EncoderModel                     T5Config defaults (small)    35 M       1x256
llama2-2layer   LlamaForCausalLM                   Llama 2 7B, 2 of 32 layers   667 M      1x128
==============  =================================  ==========================  ==========  ======

Llama 2 7B's layers (hidden 4096, MLP 11008, 32 heads, 32 key-value heads, vocabulary 32,000) cut
to 2 layers: 2.7 GB of fp32 weights, over protobuf's 2 GiB limit, so the weights go to one external
``<file>.data`` beside the graph. It runs at 128 tokens: a prefill of a typical prompt, where the
projections are (128 x 4096) x (4096 x 11008) matmuls, large enough to load a GPU, while the float64
oracle and onnxruntime verification stay within a few GB of memory.

Each model is exported once (dynamic ``batch`` and ``sequence`` axes, opset 17, traced at 2x5),
checked against torch in onnxruntime at its paper shape, then moved into place atomically. File names
carry a hash of the configuration, seed and opset, so a changed configuration never reuses a stale
file. Importing this module is cheap; :func:`paper_models` needs neither torch nor the files.

    python -m nnjit.models.paper                      # all five, with a progress display
    python -m nnjit.models.paper --only gpt2 t5-encoder --cache /tmp/paper
    python -m nnjit.models.paper --only gpt2 --list   # metadata only, no export
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import pathlib
import sys
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from nnjit.models.export import (
    DEFAULT_OPSET,
    InputSpec,
    ModelSpec,
    build_hf_model,
    export_onnx,
    models_cache_dir,
    publish,
    spec_example_inputs,
    verify_hf_model,
)

__all__ = [
    "PAPER_GEMMS",
    "PAPER_MODELS",
    "PaperModel",
    "PaperSpec",
    "Progress",
    "export_paper_model",
    "main",
    "paper_gemm_shapes",
    "paper_models",
    "paper_torch_model",
]

SEED = 0
#: Traced shape: differs from every paper shape, so a shape baked into a graph fails verification.
TRACE_SHAPE = (2, 5)
#: Bump when the export changes in a way the configuration does not show: it keys the file names.
EXPORT_VERSION = 1
#: onnxruntime vs torch at the paper shape; fp32 sums over thousands of terms differ by more than
#: the zoo's 1e-4 / 1e-5.
VERIFY_RTOL, VERIFY_ATOL = 1e-3, 1e-4


@dataclasses.dataclass(frozen=True)
class PaperSpec:
    """A paper workload: the model and the (batch, seq) it is measured at."""

    model: ModelSpec
    batch: int
    seq: int
    description: str


_IDS = InputSpec("input_ids")
_MASK = InputSpec("attention_mask")

PAPER_MODELS: dict[str, PaperSpec] = {
    "gpt2": PaperSpec(
        ModelSpec(
            name="gpt2",
            architecture="GPT2LMHeadModel",
            inputs=(_IDS,),
            outputs=("logits",),
            vocab_size=50257,
            min_token_id=0,
            pad_token_id=50256,
            max_seq=1024,
            # GPT2Config defaults: GPT-2 small (12 layers, 768 wide, 12 heads, gelu_new, tied head).
            config={"use_cache": False},
        ),
        batch=1,
        seq=10,
        description="GPT-2 small (124M), GPT2Config defaults",
    ),
    "bart": PaperSpec(
        ModelSpec(
            name="bart",
            architecture="BartModel",
            inputs=(_IDS,),
            outputs=("last_hidden_state",),
            vocab_size=50265,
            min_token_id=4,
            pad_token_id=1,
            max_seq=1024,
            # BartConfig defaults are BART-large's widths; BART-base's are these.
            config={
                "d_model": 768,
                "encoder_layers": 6,
                "decoder_layers": 6,
                "encoder_attention_heads": 12,
                "decoder_attention_heads": 12,
                "encoder_ffn_dim": 3072,
                "decoder_ffn_dim": 3072,
                "use_cache": False,
            },
        ),
        batch=1,
        seq=384,
        description="BART-base (d_model 768, 6+6 layers), BartConfig defaults otherwise",
    ),
    "roberta": PaperSpec(
        ModelSpec(
            name="roberta",
            architecture="RobertaModel",
            inputs=(_IDS, _MASK),
            outputs=("last_hidden_state",),
            vocab_size=50265,
            min_token_id=4,
            pad_token_id=1,
            # Positions start at pad_token_id + 1 = 2.
            max_seq=512,
            # RobertaConfig defaults are BERT-base's; roberta-base differs in these.
            config={
                "vocab_size": 50265,
                "max_position_embeddings": 514,
                "type_vocab_size": 1,
                "layer_norm_eps": 1e-5,
                "pad_token_id": 1,
                "bos_token_id": 0,
                "eos_token_id": 2,
                "use_cache": False,
            },
        ),
        batch=1,
        seq=384,
        description="RoBERTa-base (125M)",
    ),
    "t5-encoder": PaperSpec(
        ModelSpec(
            name="t5-encoder",
            architecture="T5EncoderModel",
            inputs=(_IDS,),
            outputs=("last_hidden_state",),
            vocab_size=32128,
            min_token_id=2,
            pad_token_id=0,
            # Relative position buckets impose no hard limit; this only bounds examples.
            max_seq=512,
            # T5Config defaults: t5-small (6 layers, 512 wide, 8 heads, d_ff 2048, ReLU).
            config={"use_cache": False},
        ),
        batch=1,
        seq=256,
        description="T5-small encoder, T5Config defaults",
    ),
    "llama2-2layer": PaperSpec(
        ModelSpec(
            name="llama2-2layer",
            architecture="LlamaForCausalLM",
            inputs=(_IDS,),
            outputs=("logits",),
            vocab_size=32000,
            min_token_id=3,
            pad_token_id=0,
            max_seq=4096,
            config={
                "vocab_size": 32000,
                "hidden_size": 4096,
                "intermediate_size": 11008,
                "num_hidden_layers": 2,
                "num_attention_heads": 32,
                "num_key_value_heads": 32,
                "hidden_act": "silu",
                "max_position_embeddings": 4096,
                "rms_norm_eps": 1e-5,
                "tie_word_embeddings": False,
                "pad_token_id": 0,
                "bos_token_id": 1,
                "eos_token_id": 2,
                "use_cache": False,
            },
        ),
        batch=1,
        seq=128,
        description="Llama 2 7B layer shapes, 2 of 32 layers",
    ),
}

PAPER_GEMMS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "gpt2": (("attn.c_attn", 768, 2304), ("attn.c_proj", 768, 768), ("mlp.c_fc", 768, 3072),
             ("mlp.c_proj", 3072, 768), ("lm_head", 768, 50257)),
    "bart": (("self_attn.q/k/v/out_proj", 768, 768), ("fc1", 768, 3072), ("fc2", 3072, 768)),
    "roberta": (("attention.query/key/value/output", 768, 768), ("intermediate", 768, 3072),
                ("output", 3072, 768)),
    "t5-encoder": (("SelfAttention.q/k/v/o", 512, 512), ("DenseReluDense.wi", 512, 2048),
                   ("DenseReluDense.wo", 2048, 512)),
    "llama2-2layer": (("self_attn.q/k/v/o_proj", 4096, 4096), ("mlp.gate/up_proj", 4096, 11008),
                      ("mlp.down_proj", 11008, 4096), ("lm_head", 4096, 32000)),
}  # fmt: skip
"""The weight matmuls of each paper model as (layer, K, N); M is the model's batch x seq. Widths are the
configurations' (PAPER_MODELS, transformers' defaults where a configuration leaves them)."""


def paper_gemm_shapes(only: Sequence[str] | None = None) -> list[tuple[str, int, int, int]]:
    """(label, M, K, N) of every distinct weight matmul of the paper models, at their paper shapes."""
    shapes: list[tuple[str, int, int, int]] = []
    for name in only or PAPER_GEMMS:
        spec = PAPER_MODELS[name]
        for layer, k, n in PAPER_GEMMS[name]:
            shapes.append((f"{name} {layer}", spec.batch * spec.seq, k, n))
    return shapes


@dataclasses.dataclass(frozen=True)
class PaperModel:
    """A paper model's metadata: where its export lives (or will), and how it is run."""

    name: str
    spec: PaperSpec
    path: pathlib.Path

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """The input shapes of the paper workload, for ``nnjit.compile``."""
        return {n: (self.spec.batch, self.spec.seq) for n in self.spec.model.input_names}

    @property
    def exists(self) -> bool:
        """Whether the export is in the cache."""
        return self.path.exists()

    def example_inputs(self, seed: int = SEED) -> dict[str, np.ndarray]:
        """Deterministic inputs of the paper shape (token ids, and a right-padded mask where there is one)."""
        return spec_example_inputs(self.spec.model, self.spec.batch, self.spec.seq, seed)


def _with_overrides(spec: PaperSpec, overrides: Mapping[str, Any] | None) -> PaperSpec:
    if not overrides:
        return spec
    config = {**spec.model.config, **overrides}
    vocab = int(config.get("vocab_size", spec.model.vocab_size))
    model = dataclasses.replace(spec.model, config=config, vocab_size=vocab)
    return dataclasses.replace(spec, model=model)


def _key(spec: PaperSpec) -> str:
    identity = {
        "architecture": spec.model.architecture,
        "config": spec.model.config,
        "seed": SEED,
        "opset": DEFAULT_OPSET,
        "export": EXPORT_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]


def paper_models(
    cache_dir: pathlib.Path | str | None = None,
    only: Sequence[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[PaperModel]:
    """Metadata of the paper models (all, or those named in ``only``), with their cache paths.

    ``cache_dir`` defaults to ``models_cache_dir() / "paper"``; ``overrides`` maps a model name to
    config entries that replace the paper's (tests use it for small stand-ins; the hash in the
    file name changes with them). Nothing is exported.
    """
    folder = pathlib.Path(cache_dir) if cache_dir is not None else models_cache_dir() / "paper"
    names = list(only) if only else list(PAPER_MODELS)
    unknown = [n for n in names if n not in PAPER_MODELS]
    if unknown:
        raise KeyError(f"unknown paper model {unknown[0]!r}; expected one of {list(PAPER_MODELS)}")
    result: list[PaperModel] = []
    for name in names:
        spec = _with_overrides(PAPER_MODELS[name], (overrides or {}).get(name))
        result.append(PaperModel(name, spec, folder / f"{name}-{_key(spec)}.onnx"))
    return result


class Progress:
    """A one-line-per-stage progress display on ``stream``, ticking while a stage runs on a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()

    @contextlib.contextmanager
    def stage(self, label: str, stage: str) -> Generator[list[str]]:
        """Report ``stage`` of ``label`` while the block runs; strings appended to the yielded list end its line."""
        notes: list[str] = []
        started = time.perf_counter()
        head = f"{label:24s} {stage:7s}"
        done = threading.Event()
        ticker: threading.Thread | None = None
        if self.live:

            def tick() -> None:
                while not done.wait(0.5):
                    self.stream.write(f"\r{head} {time.perf_counter() - started:6.1f}s ...")
                    self.stream.flush()

            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
        elif self.enabled:
            self.stream.write(f"{head} ...\n")
            self.stream.flush()
        try:
            yield notes
        except BaseException:
            notes.append("FAILED")
            raise
        finally:
            done.set()
            if ticker is not None:
                ticker.join()
            if self.enabled:
                line = f"{head} {time.perf_counter() - started:6.1f}s  {'  '.join(notes)}"
                self.stream.write(("\r" if self.live else "") + line + "\n")
                self.stream.flush()


def paper_torch_model(model: PaperModel) -> Any:
    """The random-weight torch module that :func:`export_paper_model` exports for ``model`` (fp32, eval).

    Seeded as the export is, so it holds the same weights as the ONNX file; it takes the graph inputs
    positionally and returns the graph's one output (``benchmarks/paper_native.py`` runs it on CUDA).
    """
    return build_hf_model(model.spec.model, SEED)


def export_paper_model(
    model: PaperModel,
    *,
    force: bool = False,
    verify: bool = True,
    progress: Progress | None = None,
    label: str | None = None,
    torch_model: Any = None,
) -> pathlib.Path:
    """Export ``model`` (from :func:`paper_models`) into its cache path unless it is there; return the path.

    Stages: build (random weights), export (``torch.onnx.export``, weights external past 2 GiB),
    verify (onnxruntime vs torch at the paper shape). The files appear atomically once all pass.
    ``torch_model`` (from :func:`paper_torch_model`, on the CPU) saves building the weights again.
    """
    if model.exists and not force:
        return model.path
    progress = progress if progress is not None else Progress(enabled=False)
    label = label or model.name
    spec = model.spec.model
    with progress.stage(label, "build") as notes:
        if torch_model is None:
            torch_model = paper_torch_model(model)
        count = sum(p.numel() for p in torch_model.parameters())
        notes.append(f"{count / 1e6:.1f}M parameters")
    with publish(model.path) as staged:
        with progress.stage(label, "export") as notes:
            _export(model, torch_model, staged)
            size = sum(f.stat().st_size for f in staged.parent.iterdir() if f.is_file())
            notes.append(f"{size / 2**20:.0f} MiB")
        if verify:
            with progress.stage(label, "verify") as notes:
                worst = verify_hf_model(
                    spec,
                    staged,
                    [(model.spec.batch, model.spec.seq)],
                    SEED,
                    rtol=VERIFY_RTOL,
                    atol=VERIFY_ATOL,
                    model=torch_model,
                )
                notes.append(f"max |onnxruntime - torch| = {worst:.1e} at {model.spec.batch}x{model.spec.seq}")
    return model.path


def _export(model: PaperModel, torch_model: Any, path: pathlib.Path) -> None:
    import torch

    spec = model.spec.model
    trace = spec_example_inputs(spec, *TRACE_SHAPE, seed=SEED)
    args = tuple(torch.from_numpy(trace[n]) for n in spec.input_names)
    axes = {0: "batch", 1: "sequence"}
    export_onnx(
        torch_model,
        args,
        path,
        spec.input_names,
        spec.outputs,
        dict.fromkeys((*spec.input_names, *spec.outputs), axes),
        opset=DEFAULT_OPSET,
        producer="nnjit.models.paper",
        doc_string=f"nnjit paper model {model.name}: random-weight {spec.architecture} "
        f"({model.spec.description}), seed={SEED}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m nnjit.models.paper", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(PAPER_MODELS), metavar="NAME", help="models to generate")
    parser.add_argument("--cache", type=pathlib.Path, default=None, help="output folder (default: the user cache)")
    parser.add_argument("--force", action="store_true", help="export again even if cached")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-torch check")
    parser.add_argument("--list", action="store_true", help="print the models' metadata as JSON lines; export nothing")
    args: Any = parser.parse_args(argv)
    models = paper_models(args.cache, args.only)
    if args.list:
        for model in models:
            record = {
                "name": model.name,
                "architecture": model.spec.model.architecture,
                "description": model.spec.description,
                "path": str(model.path),
                "exists": model.exists,
                "shapes": model.shapes,
                "outputs": list(model.spec.model.outputs),
                "config": model.spec.model.config,
            }
            print(json.dumps(record))
        return 0
    progress = Progress()
    for index, model in enumerate(models, 1):
        label = f"[{index}/{len(models)}] {model.name}"
        started = time.perf_counter()
        if model.exists and not args.force:
            print(f"{label:24s} cached  {model.path}", file=sys.stderr, flush=True)
        else:
            export_paper_model(model, force=args.force, verify=not args.no_verify, progress=progress, label=label)
            print(
                f"{label:24s} done    {time.perf_counter() - started:6.1f}s  {model.path}", file=sys.stderr, flush=True
            )
        print(model.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
