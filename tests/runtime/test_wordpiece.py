"""The browser WordPiece tokenizer (nnjit/runtime/web/wordpiece.js) gives the `tokenizers` package's ids.

It runs in Node (one process for the module, JSON lines on stdin/stdout) against MiniLM's
tokenizer.json: every Unicode code point through normalisation and pre-tokenisation, the MiniLM
corpus as a padded batch, and hypothesis-drawn text (any Unicode, punctuation, special tokens
written in the text, words longer than the 100-character WordPiece limit, the empty string).
"""

from __future__ import annotations

import functools
import json
import pathlib
import shutil
import subprocess
from collections.abc import Generator
from typing import Any

import pytest
import tokenizers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnjit.models.minilm import load_sentences, tokenize, tokenizer_json

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORDPIECE = ROOT / "nnjit" / "runtime" / "web" / "wordpiece.js"
NODE = shutil.which("node") or "/usr/bin/node"

# Requests: {op, ...} -> one JSON line back. Errors come back as {error}.
SERVER = """
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [modulePath, configPath] = process.argv.slice(1);
const wp = await import(pathToFileURL(modulePath).href);
const tokenizer = wp.WordPieceTokenizer.fromJSON(readFileSync(configPath, "utf8"));
const ops = {
  normalize: (r) => ({ text: wp.normalize(r.text, tokenizer.normalizeOptions) }),
  pretokenize: (r) => ({ words: wp.preTokenize(r.text) }),
  encode: (r) => tokenizer.encode(r.text, { maxLength: r.maxLength }),
  batch: (r) => tokenizer.encodeBatch(r.texts, { maxLength: r.maxLength, padTo: r.padTo ?? null }),
};
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  let reply;
  try {
    const request = JSON.parse(line);
    reply = ops[request.op](request);
  } catch (error) {
    reply = { error: String(error) };
  }
  process.stdout.write(JSON.stringify(reply) + "\\n");
}
"""


class Node:
    """A Node process serving the tokenizer, one JSON request per line."""

    def __init__(self, config: pathlib.Path):
        self.process = subprocess.Popen(
            [NODE, "--input-type=module", "-e", SERVER, "--", str(WORDPIECE), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(self, op: str, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the Node tokenizer exited (status {self.process.poll()})"
        reply: dict[str, Any] = json.loads(line)
        assert "error" not in reply, reply["error"]
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Generator[Node]:
    config = tmp_path_factory.mktemp("wordpiece") / "tokenizer.json"
    config.write_text(tokenizer_json(), encoding="utf-8")
    server = Node(config)
    yield server
    server.close()


@functools.cache
def reference() -> tokenizers.Tokenizer:
    """The `tokenizers` package's tokenizer (not a fixture: hypothesis would print it with each example)."""
    tokenizer = tokenizers.Tokenizer.from_str(tokenizer_json())
    tokenizer.no_padding()
    return tokenizer


def rust_encode(text: str, max_length: int) -> tuple[list[int], list[str]]:
    tokenizer = reference()
    tokenizer.enable_truncation(max_length)
    encoding = tokenizer.encode(text)
    return encoding.ids, encoding.tokens


def sweep_points() -> list[int]:
    """Every code point of planes 0-3 and 14 (where everything is assigned), every 251st elsewhere."""
    dense = [*range(0xD800), *range(0xE000, 0x40000), *range(0xE0000, 0xE1000)]
    return sorted({*dense, *range(0x40000, 0x110000, 251)})


def test_every_code_point(node: Node) -> None:
    """Each code point between two letters normalises and splits as in `tokenizers`; BMP ones tokenize alike."""
    rust = reference()
    assert rust.normalizer is not None and rust.pre_tokenizer is not None
    text = "".join(f"a{chr(cp)}b " for cp in sweep_points())
    normalized = rust.normalizer.normalize_str(text)
    got = node("normalize", text=text)["text"]
    if got != normalized:
        at = next(i for i, (a, b) in enumerate(zip(got, normalized, strict=False)) if a != b)
        pytest.fail(
            f"normalize differs at {at}: js {got[at - 8 : at + 8]!r}, tokenizers {normalized[at - 8 : at + 8]!r}"
        )
    words = [w for w, _ in rust.pre_tokenizer.pre_tokenize_str(normalized)]
    assert node("pretokenize", text=normalized)["words"] == words
    bmp = "".join(f"a{chr(cp)}b " for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF)
    assert node("encode", text=bmp, maxLength=10**9)["ids"] == rust_encode(bmp, 10**9)[0]


def test_corpus_batch(node: Node) -> None:
    sentences = load_sentences()
    want = tokenize(sentences)
    got = node("batch", texts=sentences, maxLength=256)
    assert got["shape"] == list(want["input_ids"].shape)
    for name, array in want.items():
        assert got[name] == array.ravel().tolist(), name
    assert got["tokens"][0][0] == "[CLS]" and got["tokens"][0][-1] == "[SEP]"
    short = tokenize(sentences[:7], max_length=8, pad_to=12)
    got = node("batch", texts=sentences[:7], maxLength=8, padTo=12)
    assert got["shape"] == [7, 12] and got["input_ids"] == short["input_ids"].ravel().tolist()
    assert got["attention_mask"] == short["attention_mask"].ravel().tolist()


def test_errors(node: Node) -> None:
    assert node("encode", text="", maxLength=512)["ids"] == [101, 102]
    with pytest.raises(AssertionError, match="padTo=2 is shorter"):
        node("batch", texts=["Hello, world!"], maxLength=512, padTo=2)
    with pytest.raises(AssertionError, match="non-empty array"):
        node("batch", texts=[], maxLength=512)


SPECIAL = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[cls]", "[CLS", "##", "##ing"]
TRICKY = ["café", "\uff21\uff42\uff43", "ﬁ", "İ", "ß", "ΣΑΣ", "e\u0301", "\u0301", "\t", "\n", "\u3000", "\u200b", "東京", "😀", "\u00ad"]  # fmt: skip
# Words near and past WordPiece's 100-character limit.
LONG = st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "é", "x1", "東", "-"]), st.integers(90, 130))
PIECES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="ascii"), max_size=12),
    st.text(alphabet=st.characters(categories=["P", "S", "Z", "M", "Cc", "Cf", "Co", "Cn"]), max_size=6),
    st.sampled_from(SPECIAL + TRICKY),
    LONG,
)
TEXTS = st.lists(PIECES, max_size=8).flatmap(lambda parts: st.sampled_from([" ".join(parts), "".join(parts)]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, max_length=st.one_of(st.just(512), st.integers(2, 40)))
def test_generated_text(node: Node, text: str, max_length: int) -> None:
    got = node("encode", text=text, maxLength=max_length)
    ids, tokens = rust_encode(text, max_length)
    assert (got["ids"], got["tokens"]) == (ids, tokens)
