"""The compile cache on wgpu (lavapipe) and wasmtime: a second compile of a model is a hit that runs
the same, code comes from the cache on the first run, and damaged entries are rebuilt, not trusted."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import nnjit
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.artifact_cache import ArtifactCache, CacheWarning, default_root
from nnjit.runtime.wasm import shared_wasmtime

SHAPES = {"input_ids": (1, 8)}


def ids() -> dict[str, np.ndarray]:
    return example_inputs("gpt2", *SHAPES["input_ids"])


def compile_gpt2(target: str, cache: ArtifactCache | Path | bool) -> nnjit.CompiledModel:
    return nnjit.compile(zoo_path("gpt2"), SHAPES, target=target, kernel_db=False, cache=cache)


@pytest.mark.parametrize("target", ["webgpu", "wasm"])
def test_second_compile_is_a_hit_that_runs_the_same(tmp_path: Path, target: str) -> None:
    cache = ArtifactCache(tmp_path)
    cold = compile_gpt2(target, cache)
    assert cold.cache is not None and not cold.cache.hit
    expected = cold.run(ids())["logits"]
    assert cold.cache.code_hit is False  # code written after this first run
    warm = compile_gpt2(target, cache)
    assert warm.cache is not None and warm.cache.hit and cache.stats.hits == 1 and cache.stats.misses == 1
    assert list(warm.stages) == list(cold.stages)
    assert warm.ir == cold.ir and warm.ir_at("import") == cold.ir_at("import")  # earlier stages parse on demand
    assert set(warm.weights) == set(cold.weights)
    np.testing.assert_array_equal(warm.run(ids())["logits"], expected)
    assert warm.cache.code_hit and cache.stats.code_hits == 1
    if target == "wasm":  # the cached program is the whole program, its WAT text included
        cold_text = shared_wasmtime().program(cold.module, cold.weights).text
        assert shared_wasmtime().program(warm.module, warm.weights).text == cold_text and "(module" in cold_text
    else:
        assert warm.wgsl == cold.wgsl
    other = nnjit.compile(zoo_path("gpt2"), {"input_ids": (1, 4)}, target=target, kernel_db=False, cache=cache)
    assert other.cache is not None and not other.cache.hit  # shapes are part of the key


def test_a_new_process_loads_the_entry(tmp_path: Path) -> None:
    """What another process wrote (IR, WGSL, serialized wasmtime module) is used: the cross-process case."""
    script = (
        "import sys, numpy as np, nnjit\n"
        "from nnjit.models.zoo import zoo_path, example_inputs\n"
        "out = {}\n"
        "for t in ('webgpu', 'wasm'):\n"
        "    c = nnjit.compile(zoo_path('gpt2'), {'input_ids': (1, 8)}, target=t, kernel_db=False, cache=sys.argv[1])\n"
        "    y = c.run(example_inputs('gpt2', 1, 8))['logits']\n"
        "    np.save(sys.argv[1] + f'/{t}.npy', y)\n"
        "    print(t, c.cache.hit, c.cache.code_hit)\n"
    )  # fmt: skip
    lines = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[2], timeout=120, check=True)  # fmt: skip
        lines.append(done.stdout.split("\n"))
    assert lines[0][:2] == ["webgpu False False", "wasm False False"], lines
    assert lines[1][:2] == ["webgpu True True", "wasm True True"], lines
    assert list((tmp_path).glob("*/*/code/*/program.cwasm"))
    for target in ("webgpu", "wasm"):
        local = compile_gpt2(target, tmp_path).run(ids())["logits"]
        np.testing.assert_array_equal(np.load(tmp_path / f"{target}.npy"), local)


def damage_stage(entry: Path) -> None:
    stage = entry / "stage-2.mlir"
    stage.write_bytes(stage.read_bytes().replace(b"nn.", b"nx.", 1))


def damage_weights(entry: Path) -> None:
    weights = entry / "weights.npz"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def damage_meta(entry: Path) -> None:
    (entry / "meta.json").write_text("{not json")


def damage_final_ir(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    last = entry / meta["stages"][-1][1]
    text = last.read_text().replace("web.dispatch", "web.dispatchh", 1)
    last.write_text(text)
    meta["checksums"][last.name] = hashlib.sha256(text.encode()).hexdigest()  # the checksum agrees
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [damage_stage, damage_weights, damage_meta, damage_final_ir])
def test_a_damaged_entry_is_rebuilt(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    cache = ArtifactCache(tmp_path)
    expected = compile_gpt2("webgpu", cache).run(ids())["logits"]
    (entry,) = cache.entries()
    damage(entry)
    with pytest.warns(CacheWarning, match="unusable"):
        rebuilt = compile_gpt2("webgpu", cache)
    assert rebuilt.cache is not None and not rebuilt.cache.hit and cache.stats.rebuilt == 1
    np.testing.assert_array_equal(rebuilt.run(ids())["logits"], expected)
    again = compile_gpt2("webgpu", cache)
    assert again.cache is not None and again.cache.hit  # written afresh


def test_damaged_code_is_rebuilt(tmp_path: Path) -> None:
    """A serialized wasmtime module is checked before wasmtime sees it (deserializing trusts its bytes)."""
    cache = ArtifactCache(tmp_path)
    expected = compile_gpt2("wasm", cache).run(ids())["logits"]
    (cwasm,) = tmp_path.glob("*/*/code/*/program.cwasm")
    data = bytearray(cwasm.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cwasm.write_bytes(bytes(data))
    warm = compile_gpt2("wasm", cache)
    with pytest.warns(CacheWarning, match="checksum mismatch"):
        np.testing.assert_array_equal(warm.run(ids())["logits"], expected)
    assert warm.cache is not None and warm.cache.hit and warm.cache.code_hit is False
    third = compile_gpt2("wasm", cache)
    np.testing.assert_array_equal(third.run(ids())["logits"], expected)
    assert third.cache is not None and third.cache.code_hit


def test_off_defaults_and_eviction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert compile_gpt2("webgpu", False).cache is None
    assert nnjit.compile(zoo_path("gpt2"), SHAPES).cache is None  # the reference target is not cached
    monkeypatch.setenv("NNJIT_CACHE_DIR", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / "artifacts"
    compiled = nnjit.compile(zoo_path("gpt2"), SHAPES, target="wasm", kernel_db=False)
    assert compiled.cache is not None and compiled.cache.cache.root == default_root()
    small = ArtifactCache(tmp_path / "small", max_bytes=1)
    compile_gpt2("wasm", small)
    assert small.entries() == []  # over the limit: the least recently used entry goes


def test_models_with_external_weights_are_not_cached(tmp_path: Path) -> None:
    """Their weight files are not part of the key, so a changed weight file must not hit a stale entry."""
    import onnx

    model = onnx.load(str(zoo_path("gpt2")))
    onnx.save_model(model, str(tmp_path / "gpt2.onnx"), save_as_external_data=True, location="gpt2.data",
                    size_threshold=0)  # fmt: skip
    cache = ArtifactCache(tmp_path / "cache")
    for _ in range(2):
        compiled = nnjit.compile(tmp_path / "gpt2.onnx", SHAPES, target="wasm", kernel_db=False, cache=cache)
        assert compiled.cache is None
    assert cache.entries() == []
