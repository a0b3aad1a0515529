"""The V8 executor: the same Wasm binary and host plan as `WasmtimeExecutor`, run by Node.

    executor = NodeExecutor()                            # starts one `node node_runner.mjs`
    outputs = executor.run(module, {"x": x}, weights)
    executor.close()

One persistent Node process per executor runs `nnjit/runtime/node_runner.mjs` (package data);
requests travel as length-prefixed binary frames on its stdin and stdout, so a run costs one round
trip, not a Node start (~50 ms). Programs are loaded into it once per module, schedules and weight
store, weights copied once. Relaxed SIMD: Node 20's V8 (11.3) ships `f32x4.relaxed_madd` behind
`--experimental-wasm-relaxed-simd`, which the executor passes; at start it asks V8 to validate a
probe module using relaxed SIMD and prints modules without it when V8 says no (or `relaxed=False`).
A missing `node`, a module V8 rejects, a memory it cannot allocate and a trap raise `NnjitError`.
"""

from __future__ import annotations

import atexit
import json
import shutil
import struct
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from nnjit.backends.wasm import WasmProgram, assemble_wat
from nnjit.errors import NnjitError
from nnjit.runtime.wasm import ProgramCache, Weights, input_bytes, output_arrays

RUNNER = Path(__file__).with_name("node_runner.mjs")
"""The Node side of the protocol."""
RELAXED_FLAGS = ("--experimental-wasm-relaxed-simd",)
"""V8 flags that enable relaxed SIMD on Node 20 (harmless where it is on by default)."""
_PROBE = """(module (func (export "f") (param v128 v128 v128) (result v128)
  (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))"""


class NodeExecutor:
    """Runs `web` modules compiled to Wasm in V8 through one persistent Node process."""

    def __init__(self, node: str | None = None, relaxed: bool | None = None, flags: Sequence[str] = RELAXED_FLAGS,
                 guard: int = 0, poison: int | None = None):  # fmt: skip
        found = node or shutil.which("node")
        if found is None:
            raise NnjitError("the node executor needs Node.js (`node` on PATH); none was found")
        self.node = found
        self.poison = poison
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (Node's stderr, kept open while it runs)
        self._released: list[str] = []
        self._keys = 0
        self._process = self._start(list(flags))
        try:
            probe = self._request({"cmd": "probe"}, assemble_wat(_PROBE))[0]
        except BaseException:
            self.close()
            raise
        self.v8 = str(probe.get("v8", ""))
        self.relaxed_supported = bool(probe["valid"])
        self.relaxed = self.relaxed_supported if relaxed is None else relaxed and self.relaxed_supported
        self.programs = ProgramCache(self.relaxed, guard)
        atexit.register(self.close)

    def _start(self, flags: list[str]) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen([self.node, *flags, str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=self._stderr)  # fmt: skip
        except OSError as error:
            raise NnjitError(f"the node executor cannot start Node.js ({self.node}): {error.strerror}") from None

    def close(self) -> None:
        """Stop the Node process."""
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

    # --- protocol ---

    def _request(self, header: dict[str, Any], payload: bytes = b"") -> tuple[dict[str, Any], bytes]:
        while self._released:  # programs whose modules were garbage-collected (never sent from a finalizer)
            self._exchange({"cmd": "unload", "key": self._released.pop()}, b"")
        return self._exchange(header, payload)

    def _exchange(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        head = json.dumps(header).encode()
        try:
            process.stdin.write(struct.pack("<I", len(head)) + head + struct.pack("<I", len(payload)) + payload)
            process.stdin.flush()
            size = struct.unpack("<I", self._read(4))[0]
            answer = json.loads(self._read(size))
            payload_size = struct.unpack("<I", self._read(4))[0]
            data = self._read(payload_size)
        except (BrokenPipeError, EOFError, OSError):
            self._stderr.seek(0)
            detail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            raise NnjitError(f"the node runner stopped: {' '.join(detail) or 'no message'}") from None
        if not answer.get("ok"):
            raise NnjitError(str(answer.get("error", "the node runner failed")))
        return answer, data

    def _read(self, count: int) -> bytes:
        stdout = self._process.stdout
        assert stdout is not None
        chunks: list[bytes] = []
        while count:
            chunk = stdout.read(count)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    # --- programs ---

    def load(self, module: ModuleOp, weights: Weights = None) -> tuple[str, WasmProgram]:
        """Load the module's program into Node (cached); returns its key and the program."""
        known = self.programs.lookup(module, weights)
        if known is None:
            known = self.load_program(self.programs.build(module, weights))
            self.programs.remember(module, weights, known)
            weakref.finalize(module, self._released.append, known[0])
        return known

    def load_program(self, program: WasmProgram) -> tuple[str, WasmProgram]:
        """Send a program and its weights to Node; returns its key."""
        self._keys += 1
        key = f"p{self._keys}"
        payload = program.binary + b"".join(data for _, data in program.plan.weights)
        header = {"cmd": "load", "key": key, "plan": program.plan.to_json(), "binary": len(program.binary),
                  "poison": self.poison}  # fmt: skip
        self._request(header, payload)
        return key, program

    def program(self, module: ModuleOp, weights: Weights = None) -> WasmProgram:
        """The module's program as this executor runs it."""
        return self.load(module, weights)[1]

    def run(self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Weights = None) -> dict[str, np.ndarray]:
        """Run `@main` on `inputs` (keyed by argument `nn.name`); outputs keyed by result `nn.name`."""
        key, program = self.load(module, weights)
        plan = program.plan
        _, data = self._request({"cmd": "run", "key": key}, b"".join(input_bytes(plan, inputs)))
        raw: list[bytes] = []
        at = 0
        for t in plan.outputs:
            raw.append(data[at : at + 4 * t.count])
            at += 4 * t.count
        return output_arrays(plan, raw)

    def time(self, module: ModuleOp, inputs: Mapping[str, np.ndarray], weights: Weights = None, repeats: int = 10,
             inner: int = 1, warmup: int = 1) -> list[float]:  # fmt: skip
        """Seconds per run of all kernels, timed in V8 with `performance.now()` around `run(inner)`."""
        self.run(module, inputs, weights)
        key, _ = self.load(module, weights)
        answer, _ = self._request({"cmd": "time", "key": key, "repeats": repeats, "inner": inner, "warmup": warmup})
        return [float(s) for s in answer["seconds"]]

    def memory(self, module: ModuleOp, weights: Weights = None) -> np.ndarray:
        """A copy of the module instance's linear memory."""
        key, _ = self.load(module, weights)
        return np.frombuffer(self._request({"cmd": "dump", "key": key})[1], np.uint8).copy()
