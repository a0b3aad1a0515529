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
import contextlib
import dataclasses
import pathlib
import sys
import time
from collections import Counter
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_SEED",
    "VERIFY_SHAPES",
    "ZOO_DIR",
    "ZOO_MODELS",
    "InputSpec",
    "ZooModelSpec",
    "build_model",
    "example_inputs",
    "export_model",
    "main",
    "op_histogram",
    "verify_model",
    "zoo_path",
]

#: Opset 17 is the lowest with ``LayerNormalization`` and still has ``ReduceMean``
#: axes as an attribute (opset 18 makes them an input), which is simpler to import.
DEFAULT_OPSET = 17
#: Seed for the random weights and the example inputs; fixtures are reproducible.
DEFAULT_SEED = 0
#: Two distinct (batch, seq) shapes: one shape cannot catch shapes baked into a graph.
VERIFY_SHAPES: tuple[tuple[int, int], ...] = ((1, 8), (2, 16))
#: Shape used for tracing; deliberately different from both verification shapes.
TRACE_SHAPE: tuple[int, int] = (2, 5)
VERIFY_RTOL = 1e-4
VERIFY_ATOL = 1e-5

ZOO_DIR = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "zoo"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One graph input: name and numpy dtype name; all inputs are ``[batch, sequence]``."""

    name: str
    dtype: str = "int64"


@dataclasses.dataclass(frozen=True)
class ZooModelSpec:
    """Static description of a zoo model, usable without torch installed."""

    name: str
    architecture: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    vocab_size: int
    #: Smallest token id drawn for examples; lower ids are special (pad/bos/eos).
    min_token_id: int
    #: Token written where ``attention_mask`` is 0 (only used with a mask input).
    pad_token_id: int
    #: Maximum sequence length supported by the position embeddings.
    max_seq: int
    #: Hyper-parameters passed to the transformers config class.
    config: dict[str, Any]

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the graph inputs, in positional order."""
        return tuple(i.name for i in self.inputs)


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
    spec = _spec(name)
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be positive, got ({batch}, {seq})")
    if seq > spec.max_seq:
        raise ValueError(f"{name}: seq={seq} exceeds the supported maximum {spec.max_seq}")
    rng = np.random.default_rng(seed)
    ids = rng.integers(spec.min_token_id, spec.vocab_size, size=(batch, seq), dtype=np.int64)
    result: dict[str, np.ndarray] = {"input_ids": ids}
    if "attention_mask" in spec.input_names:
        # Pad at most half of each row so no row is fully masked (softmax over nothing),
        # and force padding on row 0 so even batch=1 exercises the mask.
        pads = rng.integers(0, seq // 2 + 1, size=batch)
        if seq > 1:
            pads[0] = max(int(pads[0]), 1)
        mask = np.ones((batch, seq), dtype=np.int64)
        for row, pad in enumerate(pads):
            if pad:
                mask[row, seq - pad :] = 0
                ids[row, seq - pad :] = spec.pad_token_id
        result["attention_mask"] = mask
    return {i.name: result[i.name].astype(i.dtype) for i in spec.inputs}


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
    import torch
    import transformers

    spec = _spec(name)
    # Typed loosely: each config class only fits its own model class.
    classes: dict[str, tuple[Any, Any]] = {
        "BartModel": (transformers.BartConfig, transformers.BartModel),
        "T5EncoderModel": (transformers.T5Config, transformers.T5EncoderModel),
        "GPT2LMHeadModel": (transformers.GPT2Config, transformers.GPT2LMHeadModel),
        "RobertaModel": (transformers.RobertaConfig, transformers.RobertaModel),
        "LlamaForCausalLM": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    }
    config_cls, model_cls = classes[spec.architecture]
    # Eager attention exports as plain MatMul/Softmax instead of SDPA.
    config = config_cls(**spec.config, attn_implementation="eager")
    torch.manual_seed(seed)
    model: torch.nn.Module = model_cls(config)
    # Random init often leaves biases/norm weights at exactly 0/1; perturb every
    # parameter so a compiler bug that drops a bias or norm scale cannot go unnoticed.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    model.to(torch.float32).eval()
    return _wrap_single_output(model, spec.input_names, spec.outputs[0])


def _wrap_single_output(model: torch.nn.Module, input_names: Sequence[str], output: str) -> torch.nn.Module:
    """Adapt ``model`` to take positional inputs and return one named output tensor."""
    # The adapter subclasses torch.nn.Module, so it is defined here rather than at
    # module level to keep torch out of module import.
    import torch

    class SingleOutput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(input_names, args, strict=True))
            return getattr(self.model(**kwargs, return_dict=True), output)

    return SingleOutput()


@contextlib.contextmanager
def _no_packed_sequences() -> Generator[None]:
    """Disable transformers' packed-sequence detection while tracing.

    When no attention mask is given, causal LMs (gpt2, llama) inspect
    ``position_ids`` for several sequences packed into one row. Eagerly this is
    skipped because the ids are a plain ``arange``, but under tracing it cannot be
    decided, so the data-dependent ``torch.diff``/``cumsum`` mask logic would be
    traced (and ``aten::diff`` has no ONNX symbolic). Our position ids are always
    ``arange(seq)``, so "no packing" is the exact answer.
    """
    from unittest import mock

    from transformers import masking_utils

    with mock.patch.object(masking_utils, "find_packed_sequence_indices", return_value=None):
        yield


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
    import warnings

    import onnx
    import torch

    spec = _spec(name)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    model = build_model(name, seed)
    trace = example_inputs(name, *TRACE_SHAPE, seed=seed)
    args = tuple(torch.from_numpy(trace[n]) for n in spec.input_names)
    axes = {0: "batch", 1: "sequence"}
    dynamic_axes = dict.fromkeys((*spec.input_names, *spec.outputs), axes)
    with warnings.catch_warnings(), torch.no_grad(), _no_packed_sequences():
        # The legacy exporter is deprecated (but supported) and tracing HF models is
        # noisy; the two-shape verification is what guards against bad traces.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            str(path),
            dynamo=False,
            export_params=True,
            opset_version=opset,
            do_constant_folding=True,
            input_names=list(spec.input_names),
            output_names=list(spec.outputs),
            dynamic_axes=dynamic_axes,
        )
    proto = onnx.load(str(path))
    # Record provenance so a stray fixture can be traced back to this script.
    proto.producer_name = "nnjit.models.zoo"
    proto.doc_string = f"nnjit zoo model {name}: random-weight {spec.architecture}, seed={seed}"
    onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


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
    import onnxruntime as ort
    import torch

    spec = _spec(name)
    path = pathlib.Path(path) if path is not None else zoo_path(name)
    model = build_model(name, seed)
    opts = ort.SessionOptions()
    # Optimisations could fuse ops and change numerics slightly; check the graph as-is.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, seq in shapes:
        feeds = example_inputs(name, batch, seq, seed=seed + batch * 1000 + seq)
        got = cast("np.ndarray", session.run(list(spec.outputs), feeds)[0])
        with torch.no_grad():
            want = model(*(torch.from_numpy(feeds[n]) for n in spec.input_names)).numpy()
        # strict=True also rejects shape/dtype mismatches instead of broadcasting.
        np.testing.assert_allclose(
            got,
            want,
            strict=True,
            rtol=VERIFY_RTOL,
            atol=VERIFY_ATOL,
            err_msg=f"{name} at {(batch, seq)}",
        )
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def op_histogram(path: pathlib.Path | str) -> Counter[str]:
    """Count ONNX op types in the main graph of ``path`` (zoo graphs have no subgraphs)."""
    import onnx

    proto = onnx.load(str(path))
    return Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in proto.graph.node)


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
