"""A small client of the kernel-db service (aiohttp underneath, synchronous methods on top).

    client = KernelDbClient("http://127.0.0.1:8765")
    client.health()                                        # {"status": "ok", ...}
    entries = client.lookup(device, ["matmul:3f0c..."])    # {signature: [entry, ...]}, untrusted data
    client.upload(device, [Submission(...), ...])          # how many the service accepted

What `lookup` returns is whatever the service sent, only checked to be JSON of the right outline:
`nnjit.kerneldb.shared` decides what a tuner may do with it. Each method is one or a few requests
(uploads and lookups are split at the service's per-request maxima); failures raise `ServiceError`
with the service's `{"error": ...}` message when it sent one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from nnjit.errors import NnjitError
from nnjit.kerneldb.schema import MAX_RECORDS, MAX_SIGNATURES, DeviceInfo, Submission, show

if TYPE_CHECKING:
    from nnjit.tuner.backend import Device

MAX_RESPONSE = 8 << 20
"""Bytes of a response, at most: a service that sends more is not trusted further."""
T = TypeVar("T")


class ServiceError(NnjitError):
    """The service could not be reached, refused a request, or answered something that is not the API."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def device_info(device: Device | DeviceInfo) -> DeviceInfo:
    """The API's view of a tuner device: fingerprint, backend and limits (never its description)."""
    if isinstance(device, DeviceInfo):
        return device
    return DeviceInfo(device.fingerprint, device.backend, dict(device.limits))


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code (in a thread when a loop is already running)."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


class KernelDbClient:
    """A client of one kernel-db service at `url` (`http://host:port`)."""

    def __init__(self, url: str, timeout: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise ServiceError(f"kernel-db service URL must start with http:// or https://, got {show(url)}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the decoded JSON reply (`ServiceError` on any failure)."""
        try:
            import aiohttp
        except ImportError:
            raise ServiceError("the kernel-db client needs aiohttp: pip install 'nnjit[service]'") from None

        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session,
                session.request(method, f"{self.url}{path}", data=data, headers=headers) as response,
            ):
                raw = await response.content.read(MAX_RESPONSE + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ServiceError(f"kernel-db service {self.url}: {type(error).__name__}: {error}") from None
        if len(raw) > MAX_RESPONSE:
            raise ServiceError(f"kernel-db service {self.url}: reply over {MAX_RESPONSE} bytes", status)
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ServiceError(
                f"kernel-db service {self.url}: HTTP {status} with a reply that is not JSON", status
            ) from None
        if status != 200:
            reason = reply.get("error") if isinstance(reply, dict) else None
            raise ServiceError(f"kernel-db service {self.url}: HTTP {status}: {show(reason, 300)}", status)
        return reply

    def health(self) -> dict[str, Any]:
        """`GET /v1/health`."""
        reply = _run(lambda: self.request("GET", "/v1/health"))
        if not isinstance(reply, dict):
            raise ServiceError(f"kernel-db service {self.url}: health reply is not an object")
        return reply

    def lookup(
        self, device: Device | DeviceInfo, signatures: Sequence[str], version: str | None = None
    ) -> dict[str, list[Any]]:
        """`POST /v1/lookup` for every signature; per signature the entries as sent (untrusted)."""
        info = device_info(device).to_json()
        wanted = list(dict.fromkeys(signatures))
        chunks = [wanted[i : i + MAX_SIGNATURES] for i in range(0, len(wanted), MAX_SIGNATURES)]

        async def ask() -> dict[str, list[Any]]:
            found: dict[str, list[Any]] = {}
            for chunk in chunks:
                body: dict[str, Any] = {"device": info, "signatures": chunk}
                if version is not None:
                    body["version"] = version
                reply = await self.request("POST", "/v1/lookup", body)
                results = reply.get("results") if isinstance(reply, dict) else None
                if not isinstance(results, dict):
                    raise ServiceError(f"kernel-db service {self.url}: lookup reply has no results object")
                for signature in chunk:
                    entries = results.get(signature, [])
                    found[signature] = entries[:MAX_SIGNATURES] if isinstance(entries, list) else []
            return found

        return _run(ask)

    def upload(self, device: Device | DeviceInfo, records: Sequence[Submission]) -> int:
        """`POST /v1/records`, split at the service's maximum; how many records it accepted."""
        info = device_info(device).to_json()
        chunks = [records[i : i + MAX_RECORDS] for i in range(0, len(records), MAX_RECORDS)]

        async def send() -> int:
            accepted = 0
            for chunk in chunks:
                reply = await self.request(
                    "POST", "/v1/records", {"device": info, "records": [r.to_json() for r in chunk]}
                )
                count = reply.get("accepted") if isinstance(reply, dict) else None
                if isinstance(count, bool) or not isinstance(count, int):
                    raise ServiceError(f"kernel-db service {self.url}: upload reply has no accepted count")
                accepted += count
            return accepted

        return _run(send)
