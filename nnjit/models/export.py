"""Shared torch -> ONNX export helpers for the model zoo, the paper-scale models and MiniLM.

The zoo (:mod:`nnjit.models.zoo`, committed tiny fixtures) and the paper-scale models
(:mod:`nnjit.models.paper`, generated into the user cache) are both random-weight
HuggingFace architectures described by a :class:`ModelSpec`; :mod:`nnjit.models.minilm`
exports a pretrained model with its own wrapper but the same :func:`export_onnx`.

Importing this module is cheap (numpy only); torch, transformers, onnx and onnxruntime are
imported lazily by the functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_OPSET",
    "EXTERNAL_DATA_THRESHOLD",
    "InputSpec",
    "ModelSpec",
    "build_hf_model",
    "export_hf_model",
    "export_onnx",
    "models_cache_dir",
    "no_packed_sequences",
    "op_histogram",
    "publish",
    "spec_example_inputs",
    "verify_hf_model",
    "wrap_single_output",
]

#: Opset 17 is the lowest with ``LayerNormalization`` and still has ``ReduceMean``
#: axes as an attribute (opset 18 makes them an input), which is simpler to import.
DEFAULT_OPSET = 17
#: Protobuf cannot serialise a message of 2 GiB or more; models whose initializers come
#: near that are saved with their weights in one external ``<name>.onnx.data`` file.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One graph input: name and numpy dtype name; all inputs are ``[batch, sequence]``."""

    name: str
    dtype: str = "int64"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Static description of a random-weight HuggingFace model, usable without torch installed."""

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


def spec_example_inputs(spec: ModelSpec, batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic example inputs of shape ``(batch, seq)`` for the model ``spec`` describes.

    ``input_ids`` are drawn from the non-special part of the vocabulary. For models
    with an ``attention_mask`` the mask is ones with some trailing zeros (right
    padding) and the padded positions hold the pad token, as a tokenizer would emit.
    """
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be positive, got ({batch}, {seq})")
    if seq > spec.max_seq:
        raise ValueError(f"{spec.name}: seq={seq} exceeds the supported maximum {spec.max_seq}")
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


def models_cache_dir() -> pathlib.Path:
    """Where generated models are cached: ``$NNJIT_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/nnjit/models``.

    Mirrors :func:`nnjit.tuner.database.default_path` (``~/.cache`` when ``XDG_CACHE_HOME`` is unset).
    """
    override = os.environ.get("NNJIT_CACHE_DIR")
    if override:
        return pathlib.Path(override) / "models"
    cache = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(cache) / "nnjit" / "models"


# --------------------------------------------------------------------------- torch side


def build_hf_model(spec: ModelSpec, seed: int = 0, perturb: float = 0.02) -> torch.nn.Module:
    """Build the random-weight torch model for ``spec``, wrapped to return one tensor.

    Every parameter gets ``perturb``-scaled Gaussian noise after initialisation (random init
    often leaves biases/norm weights at exactly 0/1, and a compiler bug that drops a bias or a
    norm scale must not go unnoticed). The wrapper takes the graph inputs positionally and
    returns only ``spec.outputs[0]``, so the exported graph has exactly that single output.
    """
    import torch
    import transformers

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
    if perturb:
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param) * perturb)
    model.to(torch.float32).eval()
    return wrap_single_output(model, spec.input_names, spec.outputs[0])


def wrap_single_output(model: torch.nn.Module, input_names: Sequence[str], output: str) -> torch.nn.Module:
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

    # Evaluation mode for the wrapper too: torch.onnx.export restores the top module's mode
    # recursively afterwards, which would otherwise switch dropout on in the wrapped model.
    return SingleOutput().eval()


@contextlib.contextmanager
def no_packed_sequences() -> Generator[None]:
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


def export_onnx(
    model: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: pathlib.Path | str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    *,
    opset: int = DEFAULT_OPSET,
    producer: str = "nnjit.models",
    doc_string: str = "",
) -> pathlib.Path:
    """Trace ``model`` on ``args`` with ``torch.onnx.export`` into ``path``, stamp and check it.

    Uses the classic TorchScript exporter (``dynamo=False``) because it emits the
    decomposed op patterns (erf-GELU, RMSNorm as Pow/ReduceMean/..., etc.) that the
    compiler's pattern matchers target. ``producer`` and ``doc_string`` record provenance in
    the file. Graphs whose weights approach 2 GiB keep them in one external file
    ``<path>.data`` beside ``path``. Writes ``path`` in place; see :func:`publish` for
    atomic replacement.
    """
    import warnings

    import onnx
    import torch

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as scratch:
        # torch writes one file per tensor next to the graph when it exceeds 2 GiB;
        # exporting into a scratch folder keeps those away from `path`'s folder.
        raw = pathlib.Path(scratch) / path.name
        with warnings.catch_warnings(), torch.no_grad(), no_packed_sequences():
            # The legacy exporter is deprecated (but supported) and tracing HF models is
            # noisy; verification against torch is what guards against bad traces.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                str(raw),
                dynamo=False,
                export_params=True,
                opset_version=opset,
                do_constant_folding=True,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
            )
        proto = onnx.load(str(raw))
        proto.producer_name = producer
        proto.doc_string = doc_string
        data = path.with_name(path.name + ".data")
        data.unlink(missing_ok=True)
        if sum(t.ByteSize() for t in proto.graph.initializer) > EXTERNAL_DATA_THRESHOLD:
            onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
        else:
            onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def export_hf_model(
    spec: ModelSpec,
    path: pathlib.Path | str,
    *,
    trace_shape: tuple[int, int],
    opset: int = DEFAULT_OPSET,
    seed: int = 0,
    producer: str = "nnjit.models",
    doc_string: str = "",
) -> pathlib.Path:
    """Build the random-weight model of ``spec`` and export it to ``path`` (dynamic batch and sequence).

    The trace uses example inputs of ``trace_shape``; pick one that differs from the shapes the
    model is verified at, so a shape baked into the graph cannot go unnoticed.
    """
    import torch

    model = build_hf_model(spec, seed)
    trace = spec_example_inputs(spec, *trace_shape, seed=seed)
    args = tuple(torch.from_numpy(trace[n]) for n in spec.input_names)
    axes = {0: "batch", 1: "sequence"}
    dynamic_axes = dict.fromkeys((*spec.input_names, *spec.outputs), axes)
    return export_onnx(
        model,
        args,
        path,
        spec.input_names,
        spec.outputs,
        dynamic_axes,
        opset=opset,
        producer=producer,
        doc_string=doc_string,
    )


def verify_hf_model(
    spec: ModelSpec,
    path: pathlib.Path | str,
    shapes: Sequence[tuple[int, int]],
    seed: int = 0,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    model: torch.nn.Module | None = None,
) -> float:
    """Check the ONNX file against the torch model in onnxruntime at several shapes.

    Raises ``AssertionError`` on a mismatch beyond ``rtol``/``atol``; returns the largest
    absolute difference seen. ``model`` (from :func:`build_hf_model` with the same seed) saves
    rebuilding it.
    """
    import onnxruntime as ort
    import torch

    model = model if model is not None else build_hf_model(spec, seed)
    opts = ort.SessionOptions()
    # Optimisations could fuse ops and change numerics slightly; check the graph as-is.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, seq in shapes:
        feeds = spec_example_inputs(spec, batch, seq, seed=seed + batch * 1000 + seq)
        got = cast("np.ndarray", session.run(list(spec.outputs), feeds)[0])
        with torch.no_grad():
            want = model(*(torch.from_numpy(feeds[n]) for n in spec.input_names)).numpy()
        # strict=True also rejects shape/dtype mismatches instead of broadcasting.
        np.testing.assert_allclose(
            got,
            want,
            strict=True,
            rtol=rtol,
            atol=atol,
            err_msg=f"{spec.name} at {(batch, seq)}",
        )
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def op_histogram(path: pathlib.Path | str) -> Counter[str]:
    """Count ONNX op types in the main graph of ``path`` (the graphs here have no subgraphs)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in proto.graph.node)


@contextlib.contextmanager
def publish(path: pathlib.Path | str) -> Generator[pathlib.Path]:
    """Write a model atomically: yields a path in a private scratch folder beside ``path``.

    Whatever the block writes there (the graph and an optional ``<name>.data``) is moved into
    ``path``'s folder when the block succeeds, the graph last, each with an atomic rename, so
    a reader that sees ``path`` sees a complete model. On error nothing is moved.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = scratch / path.name
        yield staged
        for extra in sorted(scratch.iterdir()):
            if extra != staged:
                shutil.copymode(staged, extra)  # onnx writes external data private (0600)
                os.replace(extra, path.parent / extra.name)
        os.replace(staged, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
