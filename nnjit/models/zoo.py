"""Tiny random-weight transformer models exported to ONNX as compiler fixtures.

The zoo holds five small (2-layer) HuggingFace architectures built from their
``transformers`` *config classes* with random weights (no hub downloads), exported
with ``torch.onnx.export`` and committed under ``tests/fixtures/zoo/``:

========  ==========================  ==========================  ====================
name      architecture                inputs                      output
========  ==========================  ==========================  ====================
bart      BartModel (enc-dec)         input_ids                   last_hidden_state
t5        T5EncoderModel              input_ids                   last_hidden_state
gpt2      GPT2LMHeadModel             input_ids                   logits
roberta   RobertaModel                input_ids, attention_mask   last_hidden_state
llama     LlamaForCausalLM (GQA)      input_ids                   logits
========  ==========================  ==========================  ====================

Every graph has dynamic ``batch`` and ``sequence`` axes so the compiler can
specialise shapes at compile time.

Importing this module is cheap: :data:`ZOO_MODELS`, :func:`example_inputs` and
:func:`zoo_path` only need numpy, while torch/transformers/onnx/onnxruntime are
imported lazily by the export and verification helpers.

Regenerate the fixtures (and check them against torch in onnxruntime) with::

    python -m nnjit.models.zoo --verify
    python -m nnjit.models.zoo --out /tmp/zoo --only llama gpt2
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnjit.models.export import (
    DEFAULT_OPSET,
    InputSpec,
    ModelSpec,
    build_hf_model,
    export_hf_model,
    op_histogram,
    spec_example_inputs,
    verify_hf_model,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_SEED",
    "VERIFY_SHAPES",
    "ZOO_DIR",
    "ZOO_MODELS",
    "InputSpec",
    "ModelSpec",
    "ZooModelSpec",
    "build_model",
    "example_inputs",
    "export_model",
    "main",
    "op_histogram",
    "verify_model",
    "zoo_path",
]

#: Seed for the random weights and the example inputs; fixtures are reproducible.
DEFAULT_SEED = 0
#: Two distinct (batch, seq) shapes: one shape cannot catch shapes baked into a graph.
VERIFY_SHAPES: tuple[tuple[int, int], ...] = ((1, 8), (2, 16))
#: Shape used for tracing; deliberately different from both verification shapes.
TRACE_SHAPE: tuple[int, int] = (2, 5)
VERIFY_RTOL = 1e-4
VERIFY_ATOL = 1e-5

ZOO_DIR = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "zoo"


#: Zoo models are described by the shared :class:`ModelSpec`.
ZooModelSpec = ModelSpec

_IDS = InputSpec("input_ids")
_MASK = InputSpec("attention_mask")

ZOO_MODELS: dict[str, ZooModelSpec] = {
    "bart": ZooModelSpec(
        name="bart",
        architecture="BartModel",
        inputs=(_IDS,),
        outputs=("last_hidden_state",),
        vocab_size=256,
        min_token_id=4,
        pad_token_id=1,
        max_seq=64,
        config={
            "vocab_size": 256,
            "d_model": 32,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "max_position_embeddings": 64,
            "activation_function": "gelu",
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "use_cache": False,
        },
    ),
    "t5": ZooModelSpec(
        name="t5",
        architecture="T5EncoderModel",
        inputs=(_IDS,),
        outputs=("last_hidden_state",),
        vocab_size=256,
        min_token_id=2,
        pad_token_id=0,
        # Relative position buckets impose no hard limit; this only bounds examples.
        max_seq=64,
        config={
            "vocab_size": 256,
            "d_model": 32,
            "d_kv": 8,
            "d_ff": 64,
            "num_layers": 2,
            "num_heads": 4,
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "feed_forward_proj": "relu",
            "pad_token_id": 0,
            "eos_token_id": 1,
            "use_cache": False,
        },
    ),
    "gpt2": ZooModelSpec(
        name="gpt2",
        architecture="GPT2LMHeadModel",
        inputs=(_IDS,),
        outputs=("logits",),
        vocab_size=256,
        min_token_id=0,
        pad_token_id=0,
        max_seq=64,
        config={
            "vocab_size": 256,
            "n_positions": 64,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_inner": 64,
            "activation_function": "gelu_new",
            "bos_token_id": 0,
            "eos_token_id": 0,
            "use_cache": False,
        },
    ),
    "roberta": ZooModelSpec(
        name="roberta",
        architecture="RobertaModel",
        inputs=(_IDS, _MASK),
        outputs=("last_hidden_state",),
        vocab_size=256,
        min_token_id=4,
        pad_token_id=1,
        # Positions start at pad_token_id + 1, so two slots of the table are never used.
        max_seq=62,
        config={
            "vocab_size": 256,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "hidden_act": "gelu",
            "max_position_embeddings": 64,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "use_cache": False,
        },
    ),
    "llama": ZooModelSpec(
        name="llama",
        architecture="LlamaForCausalLM",
        inputs=(_IDS,),
        outputs=("logits",),
        vocab_size=256,
        min_token_id=3,
        pad_token_id=0,
        max_seq=64,
        config={
            "vocab_size": 256,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "hidden_act": "silu",
            "max_position_embeddings": 64,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "use_cache": False,
        },
    ),
}


def zoo_path(name: str) -> pathlib.Path:
    """Path of the committed ONNX fixture for zoo model ``name``."""
    _spec(name)
    return ZOO_DIR / f"{name}.onnx"


def example_inputs(name: str, batch: int, seq: int, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Deterministic example inputs of shape ``(batch, seq)`` for zoo model ``name``.

    ``input_ids`` are drawn from the non-special part of the vocabulary. For models
    with an ``attention_mask`` the mask is ones with some trailing zeros (right
    padding) and the padded positions hold the pad token, as a tokenizer would emit.
    """
    return spec_example_inputs(_spec(name), batch, seq, seed)


def _spec(name: str) -> ZooModelSpec:
    try:
        return ZOO_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; expected one of {sorted(ZOO_MODELS)}") from None


# --------------------------------------------------------------------------- torch side


def build_model(name: str, seed: int = DEFAULT_SEED) -> torch.nn.Module:
    """Build the random-weight torch model for ``name``, wrapped to return one tensor.

    The wrapper takes the graph inputs positionally and returns only the output
    named in the spec, so the exported graph has exactly that single output.
    """
    return build_hf_model(_spec(name), seed)


def export_model(
    name: str,
    out_dir: pathlib.Path | str = ZOO_DIR,
    opset: int = DEFAULT_OPSET,
    seed: int = DEFAULT_SEED,
) -> pathlib.Path:
    """Export zoo model ``name`` to ``out_dir/<name>.onnx`` and return the path.

    Uses the classic TorchScript exporter (``dynamo=False``) because it emits the
    decomposed op patterns (erf-GELU, RMSNorm as Pow/ReduceMean/..., etc.) that the
    compiler's pattern matchers target.
    """
    spec = _spec(name)
    return export_hf_model(
        spec,
        pathlib.Path(out_dir) / f"{name}.onnx",
        trace_shape=TRACE_SHAPE,
        opset=opset,
        seed=seed,
        # Record provenance so a stray fixture can be traced back to this script.
        producer="nnjit.models.zoo",
        doc_string=f"nnjit zoo model {name}: random-weight {spec.architecture}, seed={seed}",
    )


def verify_model(
    name: str,
    path: pathlib.Path | str | None = None,
    shapes: Sequence[tuple[int, int]] = VERIFY_SHAPES,
    seed: int = DEFAULT_SEED,
) -> float:
    """Check the ONNX file against the torch model in onnxruntime at several shapes.

    Raises ``AssertionError`` on mismatch beyond ``rtol=1e-4, atol=1e-5``; returns
    the largest absolute difference seen.
    """
    path = pathlib.Path(path) if path is not None else zoo_path(name)
    return verify_hf_model(_spec(name), path, shapes, seed, rtol=VERIFY_RTOL, atol=VERIFY_ATOL)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m nnjit.models.zoo", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=ZOO_DIR, help="output directory")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(ZOO_MODELS),
        metavar="NAME",
        help="models to export",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="compare onnxruntime against torch at two shapes",
    )
    parser.add_argument("--ops", action="store_true", help="print the op-type histogram per model")
    args = parser.parse_args(argv)

    for name in args.only or list(ZOO_MODELS):
        start = time.perf_counter()
        path = export_model(name, args.out, opset=args.opset, seed=args.seed)
        line = f"{name:8s} {path.stat().st_size / 1024:8.1f} KiB"
        if args.verify:
            worst = verify_model(name, path, seed=args.seed)
            line += f"  verified {list(VERIFY_SHAPES)} max|diff|={worst:.2e}"
        print(f"{line}  {time.perf_counter() - start:5.1f}s  -> {path}", flush=True)
        if args.ops:
            hist = op_histogram(path)
            print(
                "    " + ", ".join(f"{op}:{n}" for op, n in sorted(hist.items())),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
