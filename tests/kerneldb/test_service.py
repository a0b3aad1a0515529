"""`nnjit kernel-db serve` as a real process: validation with clear errors, lookups, rate limits, CORS,
1,000 concurrent uploads, and kill -9 mid-write, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, http, nnjit_command, post_many, run_async, start_service

from nnjit.kerneldb.store import open_store

WASM = {"fingerprint": "wasm-0000000000000001", "backend": "wasm", "limits": {"v128_registers": 16, "l1_bytes": 32768}}
WEBGPU_LIMITS = {
    "max-compute-invocations-per-workgroup": 256, "max-compute-workgroup-size-x": 256,
    "max-compute-workgroup-size-y": 256, "max-compute-workgroup-size-z": 64,
    "max-compute-workgroup-storage-size": 16384, "max-storage-buffer-binding-size": 134217728,
}  # fmt: skip
WEBGPU = {"fingerprint": "webgpu-0000000000000001", "backend": "webgpu", "limits": WEBGPU_LIMITS}
BIG_GPU = {"fingerprint": "webgpu-0000000000000002", "backend": "webgpu",
           "limits": {**WEBGPU_LIMITS, "max-compute-invocations-per-workgroup": 1024,
                      "max-compute-workgroup-size-x": 1024, "max-compute-workgroup-size-y": 1024,
                      "max-compute-workgroup-storage-size": 32768}}  # fmt: skip


def schedule(**changes: Any) -> dict[str, Any]:
    """The Wasm elementwise default, changed."""
    return {
        "workgroup": [1, 1, 1],
        "tile": [0, 0, 0],
        "thread": [1, 1],
        "vector": 4,
        "unroll": 2,
        "shared": False,
    } | changes


def matmul(x: int, y: int, t: int, k: int = 8, shared: bool = True) -> dict[str, Any]:
    """A WebGPU matmul schedule with a t x t thread tile (the widest vector dividing t)."""
    vector = 4 if t % 4 == 0 else 2 if t % 2 == 0 else 1
    return {"workgroup": [x, y, 1], "tile": [y * t, x * t, k], "thread": [t, t], "vector": vector, "unroll": k,
            "shared": shared}  # fmt: skip


def sig(i: int, template: str = "elementwise") -> str:
    return f"{template}:{i:024x}"


def rec(i: int = 0, **changes: Any) -> dict[str, Any]:
    return {"signature": sig(i), "template": "elementwise", "schedule": schedule(), "median": 1e-5,
            "default_median": 2e-5, "version": "0.1.0"} | changes  # fmt: skip


def upload(device: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"device": device, "records": records}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Generator[Service]:
    folder = tmp_path_factory.mktemp("service")
    running = start_service(f"sqlite:///{folder}/kernels.sqlite", folder, "--rate", "100000", "--burst", "100000")
    yield running
    running.stop()


def post(service: Service, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http("POST", f"{service.url}{path}", raw, {"Content-Type": "application/json"})


def assert_error(reply: tuple[int, dict[str, str], Any], status: int, fragment: str) -> str:
    got, _, body = reply
    assert got == status, body
    assert isinstance(body, dict) and list(body) == ["error"], body
    message = body["error"]
    assert fragment in message, message
    assert len(message) < 400 and message.isprintable(), message  # hostile input is never echoed whole
    return message


HUGE = "matmul:" + "a" * 100_000
BAD_RECORDS: list[tuple[str, Any, str]] = [
    ("malformed", b'{"device": ', "body is not valid JSON: Expecting value at line 1 column 12"),
    ("empty", b"", "body is empty"),
    ("not-utf8", b'{"device": "\xff\xfe"}', "body is not UTF-8"),
    ("nan", b'{"device": NaN}', "NaN is not a JSON number"),
    ("duplicate-key", b'{"device": 1, "device": 2}', "duplicate key 'device'"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("list-body", [], "body: expected an object, got a list"),
    ("missing-key", {"records": []}, "body: missing key device"),
    ("unknown-key", upload(WASM, [rec()]) | {"extra": 1}, "body: unknown key 'extra' (allowed: device, records)"),
    ("no-records", upload(WASM, []), "records: expected 1 to 256 items, got 0"),
    ("too-many", upload(WASM, [rec(i) for i in range(257)]), "records: expected 1 to 256 items, got 257"),
    ("backend", upload(WASM | {"backend": "cuda"}, [rec()]), "device.backend: expected one of webgpu, wasm, got 'cuda'"),
    ("limits-type", upload(WASM | {"limits": {"v128_registers": "16"}}, [rec()]),
     "device.limits.v128_registers: expected an integer, got a string"),
    ("limits-missing", upload(WEBGPU | {"limits": {"max-compute-invocations-per-workgroup": 256}}, [rec()]),
     "device.limits: a webgpu device must state max-compute-workgroup-size-x"),
    ("fingerprint-backend", upload(WASM | {"fingerprint": "webgpu-0000000000000001"}, [rec()]),
     "device.fingerprint: 'webgpu-0000000000000001' is not a wasm fingerprint"),
    ("median-string", upload(WASM, [rec(median="fast")]), "records[0].median: expected a number of seconds, got a string"),
    ("median-bool", upload(WASM, [rec(median=True)]), "records[0].median: expected a number of seconds, got a boolean"),
    ("median-negative", upload(WASM, [rec(), rec(median=-1)]), "records[1].median: -1 is not a finite number of seconds"),
    ("median-zero", upload(WASM, [rec(default_median=0)]), "records[0].default_median: 0 is not a finite number"),
    ("median-inf", b'{"device": %s, "records": [%s]}' % (json.dumps(WASM).encode(), json.dumps(rec()).replace(
        '"median": 1e-05', '"median": 1e999').encode()), "records[0].median: inf is not a finite number"),
    ("workgroup-strings", upload(WASM, [rec(schedule=schedule(workgroup=["1", 1, 1]))]),
     "records[0].schedule.workgroup[0]: expected an integer, got a string"),
    ("vector-float", upload(WASM, [rec(schedule=schedule(vector=4.0))]), "records[0].schedule.vector: expected an integer, got a number"),
    ("thread-length", upload(WASM, [rec(schedule=schedule(thread=[1, 1, 1]))]),
     "records[0].schedule.thread: expected 2 to 2 items, got 3"),
    ("schedule-extra", upload(WASM, [rec(schedule=schedule(code="fetch('x')"))]), "records[0].schedule: unknown key 'code'"),
    ("record-missing", upload(WASM, [{k: v for k, v in rec().items() if k != "version"}]), "records[0]: missing key version"),
    ("template-mismatch", upload(WASM, [rec(template="matmul")]),
     "records[0].template: 'matmul' is not the template of signature 'elementwise:"),
    ("wasm-out-of-space", upload(WASM, [rec(), rec(schedule=schedule(workgroup=[64, 1, 1]))]),
     "records[1].schedule is not in the wasm elementwise space (nnjit.tuner.wasm_spaces) for 16 v128 registers"),
    ("webgpu-over-limits", upload(WEBGPU, [rec(signature=sig(1, "matmul"), template="matmul", schedule=matmul(32, 32, 1))]),
     "records[0].schedule has 1024 invocations a workgroup; the device states max-compute-invocations-per-workgroup 256"),
    ("webgpu-storage", upload(BIG_GPU, [rec(signature=sig(1, "matmul"), template="matmul", schedule=matmul(32, 32, 8, 32))]),
     "records[0].schedule needs 65536 bytes of workgroup storage; the device states max-compute-workgroup-storage-size 32768"),
    ("tile-not-in-space", upload(WEBGPU, [rec(signature=sig(1, "matmul"), template="matmul",
                                              schedule=matmul(16, 16, 4) | {"tile": [64, 64, 12]})]),
     "records[0].schedule is not in the webgpu matmul space (nnjit.tuner.spaces)"),
    ("hostile-huge", upload(WASM, [rec(signature=HUGE)]), "records[0].signature: expected '<template>:<24 hex digits>', got 'matmul:aaa"),
    ("hostile-control", upload(WASM | {"fingerprint": "wasm-0000000000000001\x00\x1b[2J\r\n"}, [rec()]),
     "device.fingerprint: expected '<backend>-<16 hex digits>', got 'wasm-0000000000000001\\x00\\x1b[2J\\r\\n'"),
    ("hostile-sql-signature", upload(WASM, [rec(signature="elementwise:'; DROP TABLE aggregates; --")]),
     "records[0].signature: expected '<template>:<24 hex digits>'"),
    ("hostile-sql-version", upload(WASM, [rec(version="0.1.0'); DELETE FROM samples; --")]),
     "records[0].version: expected a version of [0-9A-Za-z.+_-]"),
    ("hostile-sql-limit", upload(WASM | {"limits": {"v128_registers": 16, "x'; DROP TABLE devices; --": 1}}, [rec()]),
     "device.limits: expected limit names of [a-z0-9_-]"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "fragment"), [c[1:] for c in BAD_RECORDS], ids=[c[0] for c in BAD_RECORDS])
def test_bad_uploads_are_rejected_with_clear_errors(service: Service, body: Any, fragment: str) -> None:
    assert_error(post(service, "/v1/records", body), 400, fragment)


def test_bad_lookups_requests_and_sizes(service: Service) -> None:
    assert_error(post(service, "/v1/lookup", {"device": WASM, "signatures": "matmul:0"}), 400,
                 "signatures: expected a list, got a string")  # fmt: skip
    assert_error(post(service, "/v1/lookup", {"device": WASM, "signatures": [sig(1), "x\ny"]}), 400,
                 "signatures[1]: expected '<template>:<24 hex digits>', got 'x\\ny'")  # fmt: skip
    assert_error(post(service, "/v1/lookup", {"device": WASM, "signatures": [sig(1)], "version": 1}), 400,
                 "version: expected a string, got an integer")  # fmt: skip
    oversized = b'{"device": "' + b"x" * (1 << 20) + b'"}'
    assert_error(post(service, "/v1/records", oversized), 413, "exceeds the limit of 1048576 bytes")
    assert_error(http("GET", f"{service.url}/v1/records"), 405, "method not allowed: GET '/v1/records'")
    assert_error(http("GET", f"{service.url}/v1/drop%27table"), 404, "no such endpoint")

    async def chunked() -> tuple[int, Any]:  # no Content-Length: the limit applies while reading
        import aiohttp

        async def body() -> Any:
            for _ in range(40):
                yield b" " * 65536

        async with aiohttp.ClientSession() as session, session.post(f"{service.url}/v1/records", data=body()) as reply:
            return reply.status, await reply.json()

    status, reply = run_async(chunked())
    assert status == 413 and "exceeds the limit of 1048576 bytes" in reply["error"]


def test_lookup_ranks_own_schedules_then_hints_valid_here(service: Service) -> None:
    signature = sig(77, "matmul")

    def record(s: dict[str, Any], median: float) -> dict[str, Any]:
        return rec(signature=signature, template="matmul", schedule=s, median=median, default_median=4e-5)

    own_fast, own_slow, hint, too_big = matmul(16, 16, 2), matmul(8, 8, 4), matmul(8, 16, 2), matmul(32, 32, 1)
    for body in (upload(WEBGPU, [record(own_slow, 3e-5), record(own_fast, 2e-5)]), upload(WEBGPU, [record(own_slow, 5e-5)]),
                 upload(BIG_GPU, [record(too_big, 1e-6), record(hint, 1e-5)])):  # fmt: skip
        assert post(service, "/v1/records", body)[0] == 200
    status, _, reply = post(
        service, "/v1/lookup", {"device": WEBGPU, "signatures": [signature, sig(78)], "version": "0.1.0"}
    )
    assert status == 200 and reply["device"] == WEBGPU["fingerprint"]
    entries = reply["results"][signature]
    assert [(e["source"], e["schedule"]) for e in entries] == [
        ("device", own_fast),
        ("device", own_slow),
        ("hint", hint),
    ]
    assert entries[1]["median"] == pytest.approx(4e-5) and entries[1]["submissions"] == 2  # median of 3e-5 and 5e-5
    assert entries[2]["speedup"] == pytest.approx(4.0) and reply["results"][sig(78)] == []
    # the 1024-thread schedule is served to the device that can run it
    status, _, reply = post(service, "/v1/lookup", {"device": BIG_GPU, "signatures": [signature]})
    assert status == 200 and reply["results"][signature][0]["schedule"] == too_big


def test_rate_limit_and_cors(service_factory: Callable[..., Service]) -> None:
    limited = service_factory(None, "--rate", "0.5", "--burst", "2", "--cors-origin", "https://nnjit.example")
    statuses = [post(limited, "/v1/lookup", {})[0] for _ in range(4)]
    assert statuses[:2] == [400, 400] and statuses[2:] == [429, 429]
    status, headers, reply = post(limited, "/v1/lookup", {})
    message = assert_error(
        (status, headers, reply), 429, "rate limit exceeded for '127.0.0.1': 0.5 requests/s, burst 2"
    )
    assert int(headers["Retry-After"]) >= 1 and "retry in" in message
    assert http("GET", f"{limited.url}/v1/health")[0] == 200  # health checks are free

    preflight = {"Origin": "http://127.0.0.1:43117", "Access-Control-Request-Method": "POST"}
    status, headers, _ = http("OPTIONS", f"{limited.url}/v1/lookup", None, preflight)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:43117"
    assert (
        "POST" in headers["Access-Control-Allow-Methods"] and "Content-Type" in headers["Access-Control-Allow-Headers"]
    )
    status, headers, _ = http(
        "OPTIONS", f"{limited.url}/v1/lookup", None, preflight | {"Origin": "https://nnjit.example"}
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://nnjit.example"
    reply = http("OPTIONS", f"{limited.url}/v1/lookup", None, preflight | {"Origin": "http://evil.example"})
    assert_error(reply, 403, "CORS: origin 'http://evil.example' is not allowed")
    status, headers, _ = http("GET", f"{limited.url}/v1/health", None, {"Origin": "http://localhost:8080"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    status, headers, _ = http("GET", f"{limited.url}/v1/health", None, {"Origin": "http://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


def database(store: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres").new_database() if store == "postgresql" else None


UNLIMITED = ("--rate", "0")


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_thousand_concurrent_uploads_lose_nothing(
    store: str, request: pytest.FixtureRequest, service_factory: Callable[..., Service]
) -> None:
    running = service_factory(database(store, request), *UNLIMITED)
    device = WASM | {"fingerprint": "wasm-00000000000000c1"}
    bodies = [upload(device, [rec(i % 500, median=(i + 1) * 1e-6)]) for i in range(1000)]
    statuses = run_async(post_many(f"{running.url}/v1/records", bodies))
    assert statuses == [200] * 1000
    with open_store(running.db) as opened:
        assert opened.counts(device["fingerprint"]) == {
            "devices": 1,
            "aggregates": 500,
            "samples": 1000,
            "submissions": 1000,
        }
        assert opened.check() == []
    status, _, reply = post(running, "/v1/lookup", {"device": device, "signatures": [sig(0), sig(499)]})
    assert status == 200
    assert reply["results"][sig(0)][0]["median"] == pytest.approx((1 + 501) * 1e-6 / 2)
    assert reply["results"][sig(499)][0]["submissions"] == 2


async def _flood(running: Service, device: dict[str, Any], per_upload: int) -> tuple[set[int], set[int]]:
    """Uploads from 24 workers until the service dies; kill -9 it once 60 uploads were acknowledged."""
    import aiohttp

    acked: set[int] = set()
    sent: set[int] = set()
    counter = iter(range(1_000_000))

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            n = next(counter)
            body = upload(device, [rec(n * per_upload + j, median=1e-5 + j * 1e-7) for j in range(per_upload)])
            sent.add(n)
            try:
                async with session.post(f"{running.url}/v1/records", json=body) as reply:
                    await reply.read()
                    if reply.status != 200:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                return
            acked.add(n)

    async def killer() -> None:
        deadline = time.monotonic() + 20
        while len(acked) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        os.kill(running.process.pid, signal.SIGKILL)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(killer(), *(worker(session) for _ in range(24)))
    running.process.wait()
    return acked, sent


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_kill_9_mid_write_leaves_a_readable_store(
    store: str, request: pytest.FixtureRequest, service_factory: Callable[..., Service], tmp_path: Path
) -> None:
    running = service_factory(database(store, request), *UNLIMITED)
    device, per_upload = WASM | {"fingerprint": "wasm-00000000000000d1"}, 8
    acked, sent = run_async(_flood(running, device, per_upload))
    assert running.process.returncode == -signal.SIGKILL and len(acked) >= 60 and len(sent) > len(acked)

    again = service_factory(running.db, *UNLIMITED)  # restarts on the same store
    status, _, reply = post(again, "/v1/lookup", {"device": device, "signatures": [sig(min(acked) * per_upload)]})
    assert status == 200 and reply["results"][sig(min(acked) * per_upload)][0]["source"] == "device"
    checked = subprocess.run(
        [*nnjit_command(), "kernel-db", "check", "--db", running.db], capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stdout.strip().endswith("ok"), checked.stdout + checked.stderr
    with open_store(running.db) as opened:
        assert opened.check() == []
        signatures = [sig(n * per_upload + j) for n in sent for j in range(per_upload)]
        present = {row.signature for row in opened.lookup("wasm", signatures, None)}
    for n in sent:  # acknowledged uploads are all there; the rest entirely or not at all
        found = sum(sig(n * per_upload + j) in present for j in range(per_upload))
        assert found == per_upload if n in acked else found in (0, per_upload), (n, found)
    assert post(again, "/v1/records", upload(device, [rec(999_999)]))[0] == 200  # and it takes writes again
