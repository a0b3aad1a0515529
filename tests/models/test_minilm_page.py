"""The pretrained all-MiniLM-L6-v2 in Chromium: the sentence-similarity page, and the corpus through
the chromium executors, against onnxruntime on the same ONNX file.

The page is what `nnjit export --app sentence-similarity` writes (`nnjit/runtime/apps.py`), served
by `SiteServer` (COOP/COEP, strict CSP) and driven like a visitor: type sentences, pick a backend,
press Compare, read the heat map. A console error, an exception or a dialog in a page fails the test.

The corpus: Chromium Wasm embeds all 100 sentences, padded to the longest (one compiled shape, one
export). WebGPU is Chromium's SwiftShader here, a software GPU that takes 25-50 s for one MiniLM run
of [20, 16] on two cores, so the suite embeds every fifth sentence in length order (20 sentences,
3 to 33 tokens; short and long ones in separate runs, padded to 16 tokens and to their longest)
and `NNJIT_MINILM_FULL_CORPUS=1` embeds all 100 (about 5 minutes). The same WGSL kernels embed all
100 on wgpu in tests/models/test_minilm.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest

import nnjit
from nnjit.cli import main as nnjit_main
from nnjit.errors import NnjitError
from nnjit.models.export import models_cache_dir
from nnjit.models.minilm import (
    INPUT_NAMES,
    OUTPUT_NAME,
    export_similarity_site,
    load_sentences,
    minilm_onnx,
    tokenize,
    tokenizer_json,
)
from nnjit.runtime.apps import WEB_ROOT, add_app
from nnjit.runtime.chromium import BrowserPage, shared_browser
from nnjit.runtime.serve import SiteServer

# Captured before tests/conftest.py points NNJIT_CACHE_DIR elsewhere (as in test_minilm.py).
MODEL_CACHE = models_cache_dir()
BATCH, SEQUENCE = 2, 16  # the page's compiled shape: three sentences take two runs, the last one padded
SCORE_ATOL = 1e-3  # the heat map shows three decimals
VALUE_ATOL = 1e-4
COSINE_MIN = 0.9999
CORPUS_BATCH, CORPUS_SHORT = 20, 16
# every CORPUS_STRIDE-th sentence by length on Chromium WebGPU unless the full corpus is asked for
CORPUS_STRIDE = 1 if os.environ.get("NNJIT_MINILM_FULL_CORPUS") == "1" else 5
WAIT = "() => document.body.dataset.state !== 'running'"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return minilm_onnx(MODEL_CACHE, progress=False)


@pytest.fixture(scope="module")
def session(model_path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])


def reference_similarity(session: onnxruntime.InferenceSession, sentences: list[str]) -> np.ndarray:
    """onnxruntime's cosine similarities of `sentences`, each truncated to the page's SEQUENCE tokens."""
    embeddings = np.asarray(session.run([OUTPUT_NAME], tokenize(sentences, max_length=SEQUENCE))[0])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings @ embeddings.T


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The page as the CLI exports it, for [BATCH, SEQUENCE] on both backends."""
    folder = tmp_path_factory.mktemp("minilm-page")
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_text(tokenizer_json(), encoding="utf-8")
    shapes = [f"--shape={name}={BATCH}x{SEQUENCE}" for name in INPUT_NAMES]
    args = ["export", str(model_path), *shapes, "--app", "sentence-similarity", "--tokenizer", str(tokenizer),
            "--candidates", "1", "-o", str(folder / "site")]  # fmt: skip
    assert nnjit_main(args) == 0
    return folder / "site"


@pytest.fixture(scope="module")
def page(site: Path) -> Generator[BrowserPage]:
    with SiteServer({"/": site}) as server:
        opened = shared_browser().open_url(server.url, ready="() => document.body.dataset.state !== 'loading'")
        yield opened
        opened.close()


def compare(page: BrowserPage, backend: str, sentences: list[str]) -> dict[str, Any]:
    """Type `sentences`, pick `backend`, press Compare; what the page then shows."""
    page.page.fill("#sentences", "\n".join(sentences))
    page.page.select_option("#backend", backend)
    page.page.click("#compare")
    page.page.wait_for_function(WAIT)
    return page.evaluate("""() => ({
        state: document.body.dataset.state,
        status: document.getElementById('status').textContent,
        scores: [...document.querySelectorAll('#heatmap tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
        values: [...document.querySelectorAll('#heatmap tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.dataset.value))),
        labels: [...document.querySelectorAll('#heatmap tbody th')].map((th) => th.textContent),
        latency: [...document.querySelector('#latency tbody tr').querySelectorAll('td')].map((td) => td.textContent),
        images: document.images.length,
        pwned: window.pwned === undefined ? null : window.pwned,
    })""")  # fmt: skip


def test_site_layout(site: Path) -> None:
    config = json.loads((site / "app.json").read_text())
    assert config["batch"] == BATCH and config["sequence"] == SEQUENCE and config["pooling"] == "none"
    assert config["output"] == OUTPUT_NAME and config["examples"][0] == "A man is playing a guitar on stage."
    assert (site / "model" / "tokenizer.json").read_text() == tokenizer_json()
    assert (site / "model.html").read_text() == (WEB_ROOT / "index.html").read_text()  # the generic page, kept
    assert "similarity.js" in (site / "index.html").read_text() and (site / "wordpiece.js").is_file()


def test_two_sentences_on_webgpu(page: BrowserPage, session: onnxruntime.InferenceSession) -> None:
    sentences = ["A man is playing a guitar on stage.", "Someone performs a song with a guitar."]
    shown = compare(page, "webgpu", sentences)
    assert shown["state"] == "done", shown["status"]
    assert "WebGPU" in shown["status"] and shown["latency"][0] == "webgpu" and shown["latency"][3] == "1 \u00d7 [2, 16]"
    want = reference_similarity(session, sentences)
    score = float(shown["scores"][0][1])
    print(f"\nMiniLM page, WebGPU: similarity {score} (onnxruntime {want[0, 1]:.6f}); latency row {shown['latency']}")
    assert abs(score - want[0, 1]) <= SCORE_ATOL
    np.testing.assert_allclose(np.array(shown["values"]), want, rtol=0, atol=VALUE_ATOL)
    assert shown["scores"][0][0] == shown["scores"][1][1] == "1.000"


def test_three_sentences_on_wasm_truncated_and_shown_as_text(
    page: BrowserPage, session: onnxruntime.InferenceSession
) -> None:
    """Two runs (the second padded with a blank row), a sentence past 16 tokens, markup that stays text."""
    hostile = '<img src=x onerror="window.pwned=1;alert(1)"> is text here, and this sentence runs past sixteen tokens'
    sentences = ["A man is playing a guitar on stage.", "Someone performs a song with a guitar.", hostile]
    shown = compare(page, "wasm", sentences)
    assert shown["state"] == "done", shown["status"]
    assert shown["latency"][0] == "wasm" and shown["latency"][3] == "2 \u00d7 [2, 16]"
    want = reference_similarity(session, sentences)
    got = np.array([[float(text) for text in row] for row in shown["scores"]])
    print(f"\nMiniLM page, Wasm: {got.tolist()}; latency row {shown['latency']}")
    np.testing.assert_allclose(got, want, rtol=0, atol=SCORE_ATOL)
    np.testing.assert_allclose(np.array(shown["values"]), want, rtol=0, atol=VALUE_ATOL)
    assert shown["labels"][2] == f"3. {hostile} (truncated to {SEQUENCE} tokens)"
    assert shown["images"] == 0 and shown["pwned"] is None
    page.check()


def test_page_errors_are_shown(page: BrowserPage) -> None:
    shown = compare(page, "wasm", ["Only one sentence."])
    assert shown["state"] == "error" and "at least two sentences" in shown["status"]


def test_minilm_export_helper(tmp_path: Path) -> None:
    """`python -m nnjit.models.minilm --export` writes the page; its examples rank as the corpus says."""
    site = export_similarity_site(tmp_path / "site", 4, 24, backends=("wasm",), candidates=1, cache_dir=MODEL_CACHE)
    config = json.loads((site / "app.json").read_text())
    corpus = load_sentences()
    assert config["examples"] == [corpus[i] for i in (0, 1, 2, 3, 20, 21)]
    with SiteServer({"/": site}) as server:
        page = shared_browser().open_url(server.url, ready="() => document.body.dataset.state !== 'loading'")
        assert page.evaluate("() => document.getElementById('backend').value") == "wasm"  # no WebGPU build
        result = page.evaluate("(s) => window.nnjitSimilarity.compare('wasm', s)", config["examples"])
        page.close()
    similarity = np.array(result["matrix"])
    assert result["runs"] == 2 and similarity[0, 1] > 0.5 and similarity[2, 3] > 0.5 and similarity[4, 5] < 0.3


def _spec(name: str, shape: list[int], dtype: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype, "storage": "f32" if dtype == "float32" else "i32"}


def _fake_site(folder: Path, inputs: list[tuple[str, list[int], str]], outputs: list[tuple[str, list[int]]]) -> Path:
    """A site folder with the generic page and a manifest of these inputs and (float) outputs, nothing compiled."""
    (folder / "model").mkdir(parents=True)
    (folder / "index.html").write_bytes((WEB_ROOT / "index.html").read_bytes())
    specs = {"inputs": [_spec(*i) for i in inputs], "outputs": [_spec(n, s, "float32") for n, s in outputs]}
    manifest = {"title": "t", **specs}
    (folder / "model" / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_add_app_checks_the_model_and_the_tokenizer(tmp_path: Path) -> None:
    ids, mask = ("input_ids", [1, 8], "int64"), ("attention_mask", [1, 8], "int64")
    tokenizer = tokenizer_json()
    with pytest.raises(NnjitError, match="float output of shape"):
        add_app(_fake_site(tmp_path / "a", [ids], [("logits", [1, 8, 256])]), "sentence-similarity", tokenizer)
    with pytest.raises(NnjitError, match="this model's inputs are 'pixel_values'"):
        add_app(_fake_site(tmp_path / "b", [("pixel_values", [1, 8], "int64")], [("y", [1, 4])]), "sentence-similarity", tokenizer)  # fmt: skip
    with pytest.raises(NnjitError, match="one \\[batch, sequence\\] shape"):
        add_app(_fake_site(tmp_path / "c", [ids, ("attention_mask", [1, 9], "int64")], [("y", [1, 4])]), "sentence-similarity", tokenizer)  # fmt: skip
    with pytest.raises(NnjitError, match="model is 'BPE'"):
        add_app(_fake_site(tmp_path / "d", [ids], [("y", [1, 4])]), "sentence-similarity", '{"model": {"type": "BPE"}}')
    with pytest.raises(NnjitError, match="needs the model's tokenizer"):
        add_app(_fake_site(tmp_path / "e", [ids], [("y", [1, 4])]), "sentence-similarity")
    with pytest.raises(NnjitError, match="unknown app 'chat'"):
        add_app(tmp_path / "e", "chat")
    assert add_app(tmp_path / "e", "model") == tmp_path / "e"  # the generic page alone: nothing to add
    site = add_app(_fake_site(tmp_path / "f", [ids, mask], [("hidden", [1, 8, 16])]), "sentence-similarity",
                   tokenizer, ["  one  ", "", "two"])  # fmt: skip
    config = json.loads((site / "app.json").read_text())
    assert config["pooling"] == "mean" and config["output"] == "hidden" and config["examples"] == ["one", "two"]
    with pytest.raises(NnjitError, match="already opens with an app page"):
        add_app(site, "sentence-similarity", tokenizer)
    assert nnjit_main(["export", "m.onnx", "-o", str(tmp_path / "g"), "--app", "sentence-similarity"]) == 2


def _corpus_batches(sentences: list[str], target: str) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Sorted by token count, CORPUS_BATCH a run. Wasm: all, padded to the longest. WebGPU: every
    CORPUS_STRIDE-th, sentences of at most CORPUS_SHORT tokens padded to it, the rest to their longest."""
    lengths = tokenize(sentences)["attention_mask"].sum(1)
    order = np.argsort(lengths, kind="stable")
    if target == "webgpu":
        order = order[::CORPUS_STRIDE]
        groups = [order[lengths[order] <= CORPUS_SHORT], order[lengths[order] > CORPUS_SHORT]]
    else:
        groups = [order]
    batches = []
    for group in groups:
        pad = CORPUS_SHORT if target == "webgpu" and lengths[group].max() <= CORPUS_SHORT else int(lengths[group].max())
        for start in range(0, len(group), CORPUS_BATCH):
            rows = group[start : start + CORPUS_BATCH]
            batches.append((rows, tokenize([sentences[i] for i in rows], pad_to=pad)))
    return batches


@pytest.mark.slow
@pytest.mark.parametrize("target", ["webgpu", "wasm"])
def test_corpus_in_chromium(target: str, model_path: Path, session: onnxruntime.InferenceSession) -> None:
    """Every corpus sentence embedded in Chromium points where onnxruntime's embedding does."""
    sentences = load_sentences()
    expected = np.asarray(session.run([OUTPUT_NAME], tokenize(sentences))[0])
    got = np.zeros_like(expected)
    compiled: dict[tuple[int, ...], nnjit.CompiledModel] = {}
    batches = _corpus_batches(sentences, target)
    for rows, feeds in batches:
        shape = feeds["input_ids"].shape
        if shape not in compiled:
            compiled[shape] = nnjit.compile(model_path, {k: v.shape for k, v in feeds.items()}, target=target)
        got[rows] = compiled[shape].run(feeds, executor=f"chromium-{target}")[OUTPUT_NAME]
    embedded = np.sort(np.concatenate([rows for rows, _ in batches]))
    assert len(embedded) == (20 if target == "webgpu" and CORPUS_STRIDE == 5 else len(sentences))
    assert len(set(embedded.tolist())) == len(embedded)
    got, want = got[embedded], expected[embedded]
    similarity = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    worst = int(embedded[np.argmin(similarity)])
    print(f"\nMiniLM chromium-{target}, {len(embedded)} sentences in {sorted(compiled)}: "
          f"minimum cosine to onnxruntime {similarity.min():.8f}")  # fmt: skip
    assert similarity.min() >= COSINE_MIN, f"sentence {worst + 1} {sentences[worst]!r}: {similarity.min()}"
