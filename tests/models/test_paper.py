"""Paper-scale model metadata, and the export path on small stand-ins (the real exports are never run here)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import onnxruntime
import pytest

import nnjit
from nnjit.models import export
from nnjit.models.paper import PAPER_MODELS, Progress, export_paper_model, main, paper_models, paper_torch_model

# A one-layer, 32-wide GPT-2 at the paper's 10 tokens: exports in about a second.
TINY_GPT2 = {"n_layer": 1, "n_embd": 32, "n_head": 4, "n_inner": 64, "vocab_size": 256, "n_positions": 64}


def test_configurations_have_the_paper_dimensions() -> None:
    transformers = pytest.importorskip("transformers")
    gpt2 = transformers.GPT2Config(**PAPER_MODELS["gpt2"].model.config)
    assert (gpt2.n_layer, gpt2.n_embd, gpt2.n_head, gpt2.vocab_size) == (12, 768, 12, 50257)
    bart = transformers.BartConfig(**PAPER_MODELS["bart"].model.config)
    assert (bart.d_model, bart.encoder_layers, bart.decoder_layers, bart.encoder_ffn_dim) == (768, 6, 6, 3072)
    roberta = transformers.RobertaConfig(**PAPER_MODELS["roberta"].model.config)
    assert (roberta.hidden_size, roberta.num_hidden_layers, roberta.vocab_size) == (768, 12, 50265)
    assert roberta.max_position_embeddings == 514
    t5 = transformers.T5Config(**PAPER_MODELS["t5-encoder"].model.config)
    assert (t5.d_model, t5.num_layers, t5.num_heads, t5.d_ff, t5.vocab_size) == (512, 6, 8, 2048, 32128)
    llama = transformers.LlamaConfig(**PAPER_MODELS["llama2-2layer"].model.config)
    assert (llama.hidden_size, llama.intermediate_size, llama.vocab_size) == (4096, 11008, 32000)
    assert (llama.num_attention_heads, llama.num_key_value_heads, llama.num_hidden_layers) == (32, 32, 2)
    assert {name: (s.batch, s.seq) for name, s in PAPER_MODELS.items()} == {
        "gpt2": (1, 10), "bart": (1, 384), "roberta": (1, 384), "t5-encoder": (1, 256), "llama2-2layer": (1, 128),
    }  # fmt: skip


def test_metadata_without_exporting(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = paper_models(tmp_path)
    assert [m.name for m in models] == list(PAPER_MODELS)
    for model in models:
        inputs = model.example_inputs()
        assert {k: v.shape for k, v in inputs.items()} == model.shapes
        assert all(
            v.dtype == np.int64 and v.min() >= 0 and v.max() < model.spec.model.vocab_size for v in inputs.values()
        )
        assert model.path.parent == tmp_path and not model.exists
    assert "attention_mask" in paper_models(tmp_path, ["roberta"])[0].shapes
    assert main(["--only", "gpt2", "--list", "--cache", str(tmp_path)]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["name"] == "gpt2" and record["shapes"] == {"input_ids": [1, 10]} and record["exists"] is False
    assert record["path"] == str(models[0].path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyError, match="unknown paper model"):
        paper_models(tmp_path, ["gpt3"])


def test_small_stand_in_exports_verifies_and_compiles(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export path end to end, weights in an external file (as for llama2-2layer past 2 GiB)."""
    pytest.importorskip("torch")
    monkeypatch.setattr(export, "EXTERNAL_DATA_THRESHOLD", 0)
    (model,) = paper_models(tmp_path, ["gpt2"], overrides={"gpt2": TINY_GPT2})
    assert model.path != paper_models(tmp_path, ["gpt2"])[0].path  # the configuration keys the file name
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    path = export_paper_model(model, progress=Progress(Sink()))  # pyright: ignore[reportArgumentType]
    assert path == model.path and model.exists
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".data"]
    stages = [line.split()[1] for line in "".join(lines).splitlines() if not line.endswith("...")]
    assert stages == ["build", "export", "verify"], lines
    inputs = model.example_inputs()
    want = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    got = nnjit.compile(path, model.shapes).run(inputs)["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert export_paper_model(model) == path  # cached: nothing is rebuilt
    # The torch module a benchmark runs next to nnjit holds the exported weights (seeded alike).
    import torch

    with torch.no_grad():
        again = paper_torch_model(model)(*(torch.from_numpy(inputs[n]) for n in model.spec.model.input_names))
    np.testing.assert_allclose(again.numpy(), want, rtol=1e-4, atol=1e-5)
