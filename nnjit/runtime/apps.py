"""Apps: task pages that an exported site opens with, instead of the generic model page.

    nnjit export model.onnx --shape input_ids=4x32 --shape attention_mask=4x32 --shape token_type_ids=4x32 \\
        --app sentence-similarity --tokenizer tokenizer.json -o dist/
    add_app(site, "sentence-similarity", tokenizer=Path("tokenizer.json").read_text())   # the same, from Python

The generic page (`index.html`, `app.js`) runs a model on its sample inputs. An app is a page for
one task that turns what a visitor types into the model's inputs and its outputs into an answer; it
becomes the site's `index.html`, and the generic page stays next to it as `model.html` (self-check,
latency, tuning; both pages share the origin, so schedules tuned there are this device's for both).
Each app is one row of `APPS`: its page files (in `nnjit/runtime/web/`) and a function that checks
the model's manifest and writes the page's `app.json` (what to feed and what to read, as data).

sentence-similarity (`similarity.html`, `similarity.js`): sentences, one per line, are tokenized in
the page by `wordpiece.js` with the model's `tokenizer.json` (copied to `model/tokenizer.json`),
padded or truncated to the compiled sequence length and embedded `batch` sentences a run; the page
shows their cosine similarities as a heat map and the latency. Inputs must be named as the
tokenizer's outputs (`input_ids`, and optionally `attention_mask`, `token_type_ids`), all
`[batch, sequence]`; the embedding is the first float output of shape `[batch, hidden]`, else
`[batch, sequence, hidden]` averaged over the attention mask in the page (mean pooling).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnjit.errors import NnjitError

WEB_ROOT = Path(__file__).with_name("web")
"""The pages (as in `nnjit.runtime.bundle`, which this module does not import: the CLI builds its parser from `APPS`)."""

TOKENIZER_FIELDS = ("input_ids", "attention_mask", "token_type_ids")
"""The tensors `wordpiece.js` produces for a batch, by name."""
EXAMPLES = (
    "A man is playing a guitar on stage.",
    "Someone performs a song with a guitar in front of an audience.",
    "The stock market fell sharply this morning.",
    "Share prices dropped steeply at the opening.",
    "A cat is sleeping on the windowsill.",
)
"""The sentences the similarity page starts with (two paraphrase pairs and an unrelated one)."""
MAX_SENTENCES = 32
"""The most sentences the similarity page compares at once (its heat map has one row for each)."""


@dataclass(frozen=True)
class App:
    """A task page: its files in `nnjit/runtime/web/` (the first becomes `index.html`) and its configuration."""

    files: tuple[str, ...]
    configure: Callable[[dict[str, Any], Path, dict[str, Any]], dict[str, Any]]
    """(manifest, site, options) -> the page's `app.json`; raises `NnjitError` for a model it cannot serve."""
    needs_tokenizer: bool = False


def parse_tokenizer(text: str) -> dict[str, Any]:
    """Parse a tokenizer.json and check that `wordpiece.js` can run it."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise NnjitError(f"the tokenizer is not JSON: {error}") from None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        kind = model.get("type") if isinstance(model, dict) else None
        raise NnjitError(
            f"the page tokenizes with WordPiece (BERT's tokenizer.json); this tokenizer's model is {kind!r}"
        )
    normalizer = config.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "BertNormalizer":
        raise NnjitError(f"the page normalises text as BERT does; this tokenizer has a {normalizer.get('type')!r}")
    missing = [t for t in ("[CLS]", "[SEP]", model.get("unk_token", "[UNK]")) if t not in model["vocab"]]
    if missing:
        raise NnjitError(f"the tokenizer's vocabulary has no {', '.join(missing)}")
    return config


def _similarity(manifest: dict[str, Any], site: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Check a sentence-embedding model's inputs and outputs; copy the tokenizer; the page's configuration."""
    inputs: list[dict[str, Any]] = manifest["inputs"]
    names = [spec["name"] for spec in inputs]
    unknown = [name for name in names if name not in TOKENIZER_FIELDS]
    if unknown or "input_ids" not in names:
        raise NnjitError(f"the sentence-similarity page feeds {', '.join(TOKENIZER_FIELDS)}; this model's inputs "
                         f"are {', '.join(map(repr, names))}")  # fmt: skip
    shape = inputs[names.index("input_ids")]["shape"]
    odd = [spec["name"] for spec in inputs if spec["shape"] != shape or spec["storage"] == "f32"]
    if len(shape) != 2 or shape[1] < 2 or odd:
        given = ", ".join(f"{spec['name']} {spec['shape']} {spec['dtype']}" for spec in inputs)
        raise NnjitError(f"the sentence-similarity page needs integer inputs of one [batch, sequence] shape "
                         f"(sequence >= 2); got {given}")  # fmt: skip
    batch, sequence = shape
    floats = [spec for spec in manifest["outputs"] if spec["storage"] == "f32" and spec["shape"][0] == batch]
    pooled = [spec for spec in floats if len(spec["shape"]) == 2]
    tokens = [spec for spec in floats if spec["shape"][:2] == [batch, sequence] and len(spec["shape"]) == 3]
    if not pooled and not (tokens and "attention_mask" in names):
        raise NnjitError(f"the sentence-similarity page needs a float output of shape [{batch}, hidden], or "
                         f"[{batch}, {sequence}, hidden] and an attention_mask input to average it")  # fmt: skip
    output = (pooled or tokens)[0]
    parse_tokenizer(options["tokenizer"])
    (site / "model" / "tokenizer.json").write_text(options["tokenizer"], encoding="utf-8")
    given = [line.strip() for line in options.get("examples") or [] if line.strip()]
    examples = (given or list(EXAMPLES))[:MAX_SENTENCES]
    return {
        "app": "sentence-similarity",
        "title": manifest["title"],
        "tokenizer": "model/tokenizer.json",
        "batch": batch,
        "sequence": sequence,
        "output": output["name"],
        "pooling": "none" if len(output["shape"]) == 2 else "mean",
        "maxSentences": MAX_SENTENCES,
        "examples": examples,
    }


APPS: dict[str, App] = {
    "model": App((), lambda manifest, site, options: {}),
    "sentence-similarity": App(
        ("similarity.html", "similarity.js", "similarity.css", "wordpiece.js"), _similarity, needs_tokenizer=True
    ),
}
"""Every app by name; "model" is the generic page alone."""


def add_app(site: str | Path, app: str, tokenizer: str | None = None, examples: Sequence[str] | None = None) -> Path:
    """Make `app` the front page of an exported `site` (`nnjit.export` or `export_site` wrote it).

    `tokenizer`: the text of a HuggingFace tokenizer.json, for apps that tokenize; `examples`: the
    sentences the page starts with. The generic page moves to `model.html`. Returns the site.
    """
    if app not in APPS:
        raise NnjitError(f"unknown app '{app}'; available: {', '.join(APPS)}")
    spec = APPS[app]
    root = Path(site)
    manifest_path = root / "model" / "manifest.json"
    if not manifest_path.is_file() or not (root / "index.html").is_file():
        raise NnjitError(f"{root} is not an exported site (no index.html and model/manifest.json)")
    if not spec.files:
        return root
    if spec.needs_tokenizer and tokenizer is None:
        raise NnjitError(f"the {app} page needs the model's tokenizer (--tokenizer tokenizer.json)")
    if (root / "index.html").read_bytes() != (WEB_ROOT / "index.html").read_bytes():
        raise NnjitError(f"{root} already opens with an app page (export it again to choose another)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    config = spec.configure(manifest, root, {"tokenizer": tokenizer, "examples": examples})
    (root / "index.html").replace(root / "model.html")
    for number, name in enumerate(spec.files):
        shutil.copyfile(WEB_ROOT / name, root / ("index.html" if number == 0 else name))
    (root / "app.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return root
