"""The pretrained all-MiniLM-L6-v2 end to end: nnjit's sentence embeddings match onnxruntime's.

The corpus (`nnjit/models/data/sentences.txt`, 100 sentences) is sorted by token count and cut
into 4 batches of 25; the first three are padded to the longest of them (15 tokens) and the last
to its own longest (33): two static shapes, so each target compiles the model twice, and 1,950
positions for 1,367 tokens. The export is cached in the user's model cache (a missing package or
torch is a failure, never a skip).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

import nnjit
from nnjit.models.export import models_cache_dir
from nnjit.models.minilm import (
    HIDDEN_SIZE,
    INPUT_NAMES,
    OUTPUT_NAME,
    PARAPHRASE_PAIRS,
    UNRELATED_PAIRS,
    load_sentences,
    minilm_onnx,
    minilm_path,
    tokenize,
)

# Captured at collection, before tests/conftest.py points NNJIT_CACHE_DIR at a throwaway folder
# (that folder is for the kernel database); the export is deterministic, so caching it is safe.
MODEL_CACHE = models_cache_dir()
BATCH = 25
COSINE_MIN = 0.9999
# WebGPU runs on Mesa lavapipe here (a software rasteriser): about two thirds of this file's time.
TARGETS = ["reference", pytest.param("webgpu", marks=pytest.mark.slow), "wasm"]

Batches = list[tuple[np.ndarray, dict[str, np.ndarray]]]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def model_path() -> pathlib.Path:
    return minilm_onnx(MODEL_CACHE, progress=False)


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return load_sentences()


@pytest.fixture(scope="module")
def batches(sentences: list[str]) -> Batches:
    """(corpus rows, inputs) per batch: sorted by length so that padding stays small."""
    lengths = tokenize(sentences)["attention_mask"].sum(1)
    order = np.argsort(lengths, kind="stable")
    short = int(lengths[order[: 3 * BATCH]].max())
    result: Batches = []
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        pad_to = short if start < 3 * BATCH else None
        result.append((rows, tokenize([sentences[i] for i in rows], pad_to=pad_to)))
    return result


@pytest.fixture(scope="module")
def expected(model_path: pathlib.Path, batches: Batches) -> np.ndarray:
    """onnxruntime's embeddings of the corpus, in corpus order."""
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    result = np.zeros((sum(len(rows) for rows, _ in batches), HIDDEN_SIZE), dtype=np.float32)
    for rows, feeds in batches:
        result[rows] = session.run([OUTPUT_NAME], feeds)[0]
    return result


@pytest.fixture(scope="module", params=TARGETS)
def embedded(request: pytest.FixtureRequest, model_path: pathlib.Path, batches: Batches) -> tuple[str, np.ndarray]:
    """nnjit's embeddings of the corpus on one target, compiling once per distinct batch shape."""
    target: str = request.param
    compiled: dict[tuple[int, ...], nnjit.CompiledModel] = {}
    result = np.zeros((sum(len(rows) for rows, _ in batches), HIDDEN_SIZE), dtype=np.float32)
    for rows, feeds in batches:
        shape = feeds["input_ids"].shape
        if shape not in compiled:
            compiled[shape] = nnjit.compile(model_path, {k: v.shape for k, v in feeds.items()}, target=target)
        result[rows] = compiled[shape].run(feeds)[OUTPUT_NAME]
    assert len(compiled) == 2, sorted(compiled)
    return target, result


def test_corpus_shape(sentences: list[str], batches: Batches) -> None:
    assert len(sentences) == 100 and len(set(sentences)) == 100
    assert sorted(np.concatenate([rows for rows, _ in batches]).tolist()) == list(range(100))
    assert {feeds["input_ids"].shape for _, feeds in batches} == {(25, 15), (25, 33)}


def test_tokenize() -> None:
    out = tokenize(["Hello, world!", "Yes."])
    assert list(out) == list(INPUT_NAMES)
    assert all(v.dtype == np.int64 and v.shape == (2, 6) for v in out.values())
    assert out["input_ids"].tolist() == [[101, 7592, 1010, 2088, 999, 102], [101, 2748, 1012, 102, 0, 0]]
    assert out["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 1, 0, 0]]
    assert not out["token_type_ids"].any()
    long = tokenize(["word " * 400], max_length=256, pad_to=300)
    assert long["attention_mask"].sum() == 256 and long["input_ids"][0, 255] == 102
    with pytest.raises(ValueError, match="shorter than the longest"):
        tokenize(["Hello, world!"], pad_to=3)


def test_export_is_cached_and_padding_is_masked(
    model_path: pathlib.Path, sentences: list[str], expected: np.ndarray
) -> None:
    """A second call reuses the file; every sentence alone (no padding) embeds as in its padded batch."""
    assert minilm_onnx(MODEL_CACHE, progress=False) == model_path == minilm_path(MODEL_CACHE)
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    alone = np.concatenate([session.run([OUTPUT_NAME], tokenize([s]))[0] for s in sentences])
    assert cosine(alone, expected).min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, rtol=1e-5)


def test_cli_prints_the_cached_path(model_path: pathlib.Path) -> None:
    cmd = [sys.executable, "-m", "nnjit.models.minilm", "--cache-dir", str(MODEL_CACHE)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert result.stdout == f"{model_path}\n"


def test_embeddings_match_onnxruntime(
    embedded: tuple[str, np.ndarray], expected: np.ndarray, sentences: list[str]
) -> None:
    target, got = embedded
    similarity = cosine(got, expected)
    worst = int(np.argmin(similarity))
    print(f"\nMiniLM {target}: minimum cosine similarity to onnxruntime {similarity.min():.8f}")
    assert similarity.min() >= COSINE_MIN, f"{target}: sentence {worst + 1} {sentences[worst]!r}: {similarity[worst]}"


def test_paraphrases_rank_above_unrelated_pairs(embedded: tuple[str, np.ndarray]) -> None:
    """Each paraphrase's partner is its nearest neighbour, and every paraphrase pair is closer than any unrelated pair."""
    target, got = embedded
    similarity = got @ got.T
    np.fill_diagonal(similarity, -np.inf)
    for a, b in PARAPHRASE_PAIRS:
        assert int(np.argmax(similarity[a])) == b and int(np.argmax(similarity[b])) == a, (target, a, b)
    paraphrase = min(similarity[a, b] for a, b in PARAPHRASE_PAIRS)
    unrelated = max(similarity[a, b] for a, b in UNRELATED_PAIRS)
    assert paraphrase > unrelated + 0.1, (target, paraphrase, unrelated)
