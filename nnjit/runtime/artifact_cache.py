"""The compile cache: what `nnjit.compile` produced, on disk, so that compiling the same model again starts at once.

    compiled = nnjit.compile("model.onnx", shapes, target="webgpu")          # cache=None: the default folder
    compiled.cache.hit                    # True when the lowered IR came from the cache
    compiled.run(inputs); compiled.cache.code_hit   # True when the WGSL / Wasm module came from it too
    nnjit.compile(..., cache="/some/dir") / nnjit.compile(..., cache=False)

Two levels, both keyed by hashes:

* **IR** (one folder per key): the lowered module after the target's pass pipeline, as text, every
  earlier stage's text (parsed only when `ir_at` asks for it), the weights (`.npz`) and the
  input / output names. Key: sha256 of the model's bytes, the shapes, the target, the pipeline
  spec, nnjit's source (a digest of its Python files) and the nnjit, xDSL and onnx versions. Tuned
  schedules are applied after loading (`web-apply-schedules` runs on every compile, cached or
  not), so the database stays the truth.
* **Code** (a folder per code key under the IR folder): for `webgpu` each kernel's WGSL and grid,
  for `wasm` the assembled binary, its host plan and wasmtime's compiled module
  (`Module.serialize`, loaded with `Module.deserialize`: no Cranelift on the second run). Key: the
  kernels' templates and schedules (the tuned schedules), the module's `web.limits`, and for
  wasmtime its version, SIMD mode and the CPU; written after the first run of that state.

Root: `cache` given to `nnjit.compile`, else `$NNJIT_CACHE_DIR/artifacts`, else
`$XDG_CACHE_HOME/nnjit/artifacts` (`~/.cache/nnjit/artifacts`). Entries are written to a temporary
folder and renamed into place (a concurrent writer of the same key loses the rename and drops its
copy). Every file but the weights carries a sha256 in `meta.json` that is checked before use; the
weights archive checks itself (zip CRC). An entry that fails any check (missing file, bad checksum,
bad JSON, unparsable IR, a serialized module wasmtime refuses) is removed with a `CacheWarning` and
rebuilt. Past `max_bytes` (default 2 GiB, `$NNJIT_CACHE_MAX_BYTES`) the least recently used
entries are removed after each write.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
from xdsl.dialects.builtin import ModuleOp

from nnjit.dialects.web import KernelOp
from nnjit.errors import NnjitError
from nnjit.weights import WeightStore

if TYPE_CHECKING:
    from nnjit.compiler import CompiledModel

FORMAT = 3
"""The layout version of an entry; part of every key (2: webgpu IR records `web.split_bindings`;
3: Wasm code entries keep the WAT text)."""
DEFAULT_MAX_BYTES = 2 * 2**30
CACHED_TARGETS = ("webgpu", "wasm")
"""Targets whose compiles are cached (their executors also take code from it)."""


class CacheWarning(UserWarning):
    """A cache entry was unusable (corrupt, truncated, from another engine) and is being rebuilt."""


def default_root() -> Path:
    """`$NNJIT_CACHE_DIR/artifacts`, else `$XDG_CACHE_HOME/nnjit/artifacts` (`~/.cache` by default)."""
    override = os.environ.get("NNJIT_CACHE_DIR")
    if override:
        return Path(override) / "artifacts"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nnjit" / "artifacts"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(value: Any) -> str:
    return _sha256(json.dumps(value, sort_keys=True).encode())


class _Corrupt(Exception):
    """An entry failed a check."""


class LazyStages(MutableMapping[str, ModuleOp]):
    """Stage snapshots of a compile served from the cache: each parsed from its text on first read."""

    def __init__(self, texts: Sequence[tuple[str, str]]):
        self._items: dict[str, ModuleOp | str] = dict(texts)

    def __getitem__(self, key: str) -> ModuleOp:
        item = self._items[key]
        if isinstance(item, str):
            from nnjit.context import parse_module

            item = self._items[key] = parse_module(item)
        return item

    def __setitem__(self, key: str, value: ModuleOp) -> None:
        self._items[key] = value

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class CacheStats:
    """What one `ArtifactCache` did: IR and code hits, misses, entries rebuilt after a failed check."""

    hits: int = 0
    misses: int = 0
    code_hits: int = 0
    code_misses: int = 0
    rebuilt: int = 0


class ArtifactCache:
    """The compile cache in folder `root` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else default_root()
        env = os.environ.get("NNJIT_CACHE_MAX_BYTES")
        self.max_bytes = max_bytes if max_bytes is not None else int(env) if env else DEFAULT_MAX_BYTES
        self.stats = CacheStats()

    # --- keys ---

    def model_digest(self, model: str | os.PathLike[str] | bytes | onnx.ModelProto) -> str | None:
        """sha256 of the model's bytes; for a file, remembered by path, size, mtime and inode.

        None for a model whose weights live in external data files (their bytes are not hashed, so
        such a model is never cached) or a file that cannot be read (the importer reports it).
        """
        if isinstance(model, onnx.ModelProto):
            return None if _external(model) else _sha256(model.SerializeToString())
        if isinstance(model, bytes):
            return _sha256(model)
        path = Path(model).resolve()
        try:
            stat = path.stat()
        except OSError:
            return None
        identity = [str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino]
        memo = self.root / "paths" / f"{_sha256(str(path).encode())[:32]}.json"
        try:
            known = json.loads(memo.read_text())
            if known["identity"] == identity:
                return None if known["digest"] is None else str(known["digest"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            data = path.read_bytes()
            external = _external(onnx.load_model_from_string(data))
        except Exception:
            return None
        digest = None if external else _sha256(data)
        _write_atomic(memo, json.dumps({"identity": identity, "digest": digest}).encode())
        return digest

    def key(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        shapes: Mapping[str, Sequence[int]] | None,
        target: str,
        pipeline: str,
    ) -> str | None:
        """The IR key of a compile (None: not cacheable, see `model_digest`)."""
        digest = self.model_digest(model)
        if digest is None:
            return None
        fields = {
            "format": FORMAT, "model": digest, "target": target, "pipeline": pipeline,
            "shapes": None if shapes is None else sorted([name, [int(d) for d in dims]] for name, dims in shapes.items()),
            "nnjit": _version("nnjit"), "source": compiler_source_digest(), "xdsl": _version("xdsl"),
            "onnx": onnx.__version__,
        }  # fmt: skip
        return _digest(fields)

    def folder(self, key: str) -> Path:
        """Where the entry of an IR key lives."""
        return self.root / key[:2] / key

    # --- IR ---

    def load(self, key: str, target: str) -> CompiledModel | None:
        """The compiled model of an IR key (no schedules applied yet), or None on a miss or a bad entry."""
        from nnjit.compiler import CompiledModel
        from nnjit.context import parse_module

        folder = self.folder(key)
        if not (folder / "meta.json").is_file():
            self.stats.misses += 1
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise _Corrupt("format or key mismatch")
            texts = [(name, _read_checked(folder, file, meta).decode()) for name, file in meta["stages"]]
            module = parse_module(texts[-1][1])
            module.verify()
            weights = WeightStore.load(folder / "weights.npz")
            compiled = CompiledModel(target, module, weights, list(meta["inputs"]), list(meta["outputs"]))
        except Exception as error:  # anything wrong with an entry means: rebuild it
            self._discard(folder, error)
            self.stats.misses += 1
            return None
        compiled.stages = LazyStages(texts)
        compiled.stage_seconds = {str(k): float(v) for k, v in meta["stage_seconds"].items()}
        os.utime(folder / "meta.json")  # last use, for eviction
        self.stats.hits += 1
        return compiled

    def save(self, key: str, compiled: CompiledModel) -> None:
        """Write the entry of an IR key from a freshly compiled model (before schedules are applied)."""
        from nnjit.compiler import print_module

        files: dict[str, bytes] = {}
        stages: list[list[str]] = []
        for index, name in enumerate(compiled.stages):
            file = f"stage-{index}.mlir"
            files[file] = print_module(compiled.stages[name]).encode()
            stages.append([name, file])
        meta = {
            "format": FORMAT, "key": key, "created": time.time(), "target": compiled.target,
            "inputs": compiled.input_names, "outputs": compiled.output_names, "stages": stages,
            "stage_seconds": dict(compiled.stage_seconds),
            "checksums": {name: _sha256(data) for name, data in files.items()},
        }  # fmt: skip

        def write(staging: Path) -> None:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            compiled.weights.save(staging / "weights.npz")
            (staging / "meta.json").write_text(json.dumps(meta))

        _publish(self.folder(key), write)
        self.evict()

    # --- code ---

    def load_code(self, key: str, code_key: str) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        """The code entry's meta and checked files, or None (a bad entry is removed)."""
        folder = self.folder(key) / "code" / code_key
        if not (folder / "meta.json").is_file():
            self.stats.code_misses += 1
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            files = {name: _read_checked(folder, name, meta) for name in meta["checksums"]}
        except Exception as error:
            self._discard(folder, error)
            self.stats.code_misses += 1
            return None
        self.stats.code_hits += 1
        return meta, files

    def save_code(self, key: str, code_key: str, meta: dict[str, Any], files: Mapping[str, bytes]) -> None:
        """Write a code entry (only under an existing IR entry)."""
        if not (self.folder(key) / "meta.json").is_file():
            return
        meta = {**meta, "checksums": {name: _sha256(data) for name, data in files.items()}}

        def write(staging: Path) -> None:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            (staging / "meta.json").write_text(json.dumps(meta))

        _publish(self.folder(key) / "code" / code_key, write)

    def discard_code(self, key: str, code_key: str, error: BaseException) -> None:
        """Remove a code entry that turned out unusable."""
        self._discard(self.folder(key) / "code" / code_key, error)

    # --- housekeeping ---

    def _discard(self, folder: Path, error: BaseException) -> None:
        self.stats.rebuilt += 1
        warnings.warn(f"nnjit cache entry {folder} is unusable ({type(error).__name__}: {error}); rebuilding it",
                      CacheWarning, stacklevel=3)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)

    def entries(self) -> list[Path]:
        """Every IR entry folder."""
        return sorted(p.parent for p in self.root.glob("??/*/meta.json"))

    def evict(self) -> None:
        """Remove the least recently used entries while the cache holds more than `max_bytes`."""
        sized: list[tuple[float, int, Path]] = []
        for folder in self.entries():
            try:
                used = (folder / "meta.json").stat().st_mtime
                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            except OSError:
                continue
            sized.append((used, size, folder))
        total = sum(size for _, size, _ in sized)
        for _, size, folder in sorted(sized, key=lambda entry: entry[0]):
            if total <= self.max_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size


@functools.cache
def compiler_source_digest() -> str:
    """SHA-256 of nnjit's own Python sources (read once a process): a checkout whose passes or
    printers changed without a new version number never reads entries the old code wrote."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except Exception:
        return "unknown"


def _external(model: onnx.ModelProto) -> bool:
    """Whether any initializer keeps its bytes in an external data file."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def _read_checked(folder: Path, name: str, meta: Mapping[str, Any]) -> bytes:
    data = (folder / name).read_bytes()
    if _sha256(data) != meta["checksums"][name]:
        raise _Corrupt(f"{name}: checksum mismatch")
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as handle:
        handle.write(data)
    os.replace(handle.name, path)


def _publish(folder: Path, write: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder with `write`, then rename it to `folder` (a present folder wins)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        write(staging)
        if folder.exists():  # a stale or concurrent copy: replace a stale one, keep a complete one
            if (folder / "meta.json").is_file():
                return
            shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    except OSError:
        pass  # another process renamed its copy first, or the disk is full: the cache is best effort
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- the entry a compiled model carries ------------------------------------------------------------


@dataclass
class CacheEntry:
    """A compiled model's place in the cache: whether its IR was a hit, and its code, per executor."""

    cache: ArtifactCache
    key: str
    hit: bool
    load_seconds: float = 0.0
    code_hit: bool | None = None
    """Whether the last run's code came from the cache (None before a run on a cached executor)."""
    _primed: dict[str, Any] = field(default_factory=dict[str, Any])

    def before_run(self, executor: str, module: ModuleOp, weights: WeightStore) -> None:
        """Hand the executor the cached code of the module's current schedules, once per state."""
        if executor not in CACHED_TARGETS:
            return
        state = _code_state(module)
        if self._primed.get(executor) == state:
            return
        self._primed[executor] = state
        _executor(executor)  # no device is the run's error to report, not a reason to drop the entry
        code_key = _code_key(executor, module)
        found = self.cache.load_code(self.key, code_key)
        self.code_hit = False
        if found is not None:
            try:
                (_prime_webgpu if executor == "webgpu" else _prime_wasm)(module, weights, *found)
                self.code_hit = True
                return
            except Exception as error:
                self.cache.discard_code(self.key, code_key, error)
        self._primed[executor] = ("save", state)

    def after_run(self, executor: str, module: ModuleOp, weights: WeightStore) -> None:
        """Write the code the executor just built, when the cache did not have it."""
        state = _code_state(module)
        if self._primed.get(executor) != ("save", state):
            return
        self._primed[executor] = state
        try:
            meta, files = (_code_webgpu if executor == "webgpu" else _code_wasm)(module, weights)
            self.cache.save_code(self.key, _code_key(executor, module), meta, files)
        except Exception as error:  # the run succeeded; a cache that cannot be written is only a warning
            warnings.warn(f"nnjit could not cache the code of {self.key[:12]}: {error}", CacheWarning, stacklevel=3)


def _executor(name: str) -> Any:
    """The process's executor of a cached target."""
    if name == "webgpu":
        from nnjit.runtime.webgpu import shared_executor

        return shared_executor()
    from nnjit.runtime.wasm import shared_wasmtime

    return shared_wasmtime()


def _kernels(module: ModuleOp) -> list[KernelOp]:
    return [op for op in module.body.block.ops if isinstance(op, KernelOp)]


def _code_state(module: ModuleOp) -> tuple[Any, ...]:
    return (id(module), *((k.template, k.schedule) for k in _kernels(module)), module.attributes.get("web.limits"))


def _code_key(executor: str, module: ModuleOp) -> str:
    from nnjit.tuner.database import schedule_to_json

    kernels = [[k.sym_name.data, k.template.data, schedule_to_json(k.schedule.values)] for k in _kernels(module)]
    limits = module.attributes.get("web.limits")
    engine: list[str] = []
    if executor == "wasm":
        from nnjit.runtime.wasm import shared_wasmtime

        engine = [_version("wasmtime"), str(shared_wasmtime().relaxed), platform.machine(), platform.processor()]
    return _digest([FORMAT, compiler_source_digest(), executor, kernels, str(limits) if limits is not None else "",
                    engine])[:32]  # fmt: skip


def _code_webgpu(module: ModuleOp, weights: WeightStore) -> tuple[dict[str, Any], dict[str, bytes]]:
    from nnjit.runtime.webgpu import shared_executor

    executor = shared_executor()
    shaders = {k.sym_name.data: executor.shader(k) for k in _kernels(module)}
    data = {name: {"text": s.text, "grid": list(s.grid)} for name, s in shaders.items()}
    return {"executor": "webgpu"}, {"wgsl.json": json.dumps(data).encode()}


def _prime_webgpu(module: ModuleOp, weights: WeightStore, meta: dict[str, Any], files: dict[str, bytes]) -> None:
    from nnjit.backends.wgsl import Shader
    from nnjit.runtime.webgpu import shared_executor

    executor = shared_executor()
    shaders = json.loads(files["wgsl.json"])
    kernels = _kernels(module)
    if {k.sym_name.data for k in kernels} != set(shaders):
        raise _Corrupt("wgsl.json does not name the module's kernels")
    for kernel in kernels:
        entry = shaders[kernel.sym_name.data]
        grid = entry["grid"]
        executor.remember_shader(kernel, Shader(str(entry["text"]), (int(grid[0]), int(grid[1]), int(grid[2]))))


def _code_wasm(module: ModuleOp, weights: WeightStore) -> tuple[dict[str, Any], dict[str, bytes]]:
    from nnjit.runtime.wasm import shared_wasmtime

    loaded = shared_wasmtime().load(module, weights)
    plan = loaded.program.plan
    # the WAT text is kept (compressed: it is most of the entry) so `program(...).text` of a cached
    # compile is the module's, as after a cold one
    files = {"program.wasm": loaded.program.binary, "program.wat.z": zlib.compress(loaded.program.text.encode(), 6),
             "plan.json": json.dumps(plan.to_json()).encode()}  # fmt: skip
    if loaded.compiled is not None:
        files["program.cwasm"] = bytes(loaded.compiled.serialize())
    return {"executor": "wasm"}, files


def _prime_wasm(module: ModuleOp, weights: WeightStore, meta: dict[str, Any], files: dict[str, bytes]) -> None:
    from nnjit.backends.wasm import WasmProgram
    from nnjit.runtime.wasm import shared_wasmtime

    executor = shared_wasmtime()
    plan = _plan_from_json(json.loads(files["plan.json"]), module, weights)
    try:
        text = zlib.decompress(files["program.wat.z"]).decode()
    except (KeyError, zlib.error, UnicodeDecodeError) as error:
        raise _Corrupt(f"program.wat.z: {error}") from None
    program = WasmProgram(text, files["program.wasm"], plan)
    loaded = executor.instantiate(program, serialized=files.get("program.cwasm"))
    executor.programs.remember(module, weights, loaded)


def _plan_from_json(data: dict[str, Any], module: ModuleOp, weights: WeightStore) -> Any:
    """A `HostPlan` from its JSON, with the weight bytes taken from the store (in `@main`'s constant order)."""
    from nnjit.backends.indexing import value_kind
    from nnjit.backends.wasm import HostPlan, TensorIO, main_function, to_storage
    from nnjit.dialects import nn
    from nnjit.runtime.reference import constant_value

    if data.get("threads") or data.get("variants"):
        raise _Corrupt("threaded or variant plans are not cached")

    def io(t: dict[str, Any]) -> TensorIO:
        return TensorIO(str(t["name"]), int(t["offset"]), tuple(int(d) for d in t["shape"]), str(t["dtype"]),
                        str(t["storage"]), int(t["after"]))  # fmt: skip

    constants = [op for op in main_function(module).body.block.ops if isinstance(op, nn.ConstantOp)]
    if len(constants) != len(data["weights"]):
        raise _Corrupt("plan.json does not match the module's constants")
    blobs: list[tuple[int, bytes]] = []
    for op, (offset, size) in zip(constants, data["weights"], strict=True):
        blob = to_storage(constant_value(op, weights), value_kind(op.result), f"constant {op.result.type}").tobytes()
        if len(blob) != size:
            raise _Corrupt("plan.json does not match the module's constants")
        blobs.append((int(offset), blob))
    return HostPlan(int(data["pages"]), bool(data["relaxed"]), [io(t) for t in data["inputs"]],
                    [io(t) for t in data["outputs"]], [str(s) for s in data["steps"]], [], blobs,
                    parallel=[bool(p) for p in data["parallel"]])  # fmt: skip


def cached_compile(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    shapes: Mapping[str, Sequence[int]] | None,
    target: str,
    pipeline: str,
    cache: str | os.PathLike[str] | ArtifactCache | None,
    build: Callable[[], CompiledModel],
) -> CompiledModel:
    """`build()`'s compiled model, from the cache when it has the key (then `compiled.cache.hit`)."""
    store = cache if isinstance(cache, ArtifactCache) else ArtifactCache(cache)
    started = time.perf_counter()
    key = store.key(model, shapes, target, pipeline)
    if key is None:
        return build()
    compiled = store.load(key, target)
    hit = compiled is not None
    if compiled is None:
        compiled = build()
        try:
            store.save(key, compiled)
        except (OSError, NnjitError) as error:  # a read-only or full disk never fails a compile
            warnings.warn(f"nnjit could not write its cache in {store.root}: {error}", CacheWarning, stacklevel=3)
    compiled.cache = CacheEntry(store, key, hit, time.perf_counter() - started if hit else 0.0)
    return compiled


__all__ = ["ArtifactCache", "CacheEntry", "CacheStats", "CacheWarning", "LazyStages", "cached_compile", "default_root"]
