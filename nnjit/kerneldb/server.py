"""The kernel-db HTTP service on aiohttp: `/v1/lookup`, `/v1/records`, `/v1/health` (docs/kernel-db.md).

    nnjit kernel-db serve --db sqlite:////srv/kernels.sqlite --host 0.0.0.0 --port 8765

Why aiohttp: one well-kept asyncio dependency that gives both the server and the client (the tests
and the Python tuner need both); nothing else is required besides psycopg for PostgreSQL stores.

Requests pass, in order: CORS (pages served from 127.0.0.1 / localhost on any port, plus
`cors_origins`), a token bucket per client address (429 with `Retry-After`), the body size limit
(413), strict JSON and schema parsing (400, `schema`), each schedule's membership in its template's
full space under the limits the device states (400, `space`), then the store, which runs in a small
thread pool so the event loop never waits on the database. Every error is `{"error": "..."}` naming
the offending field or record index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from nnjit.dialects.web import Schedule
from nnjit.kerneldb.schema import (
    MAX_RECORDS,
    MAX_SIGNATURES,
    DeviceInfo,
    LookupRequest,
    SchemaError,
    parse_json,
    parse_lookup,
    parse_schedule,
    parse_upload,
    schedule_json,
    show,
)
from nnjit.kerneldb.space import in_space, space_problem
from nnjit.kerneldb.store import SCHEMA_VERSION, Aggregate, Store, StoreError, open_store
from nnjit.tuner.database import nnjit_version

LOG = logging.getLogger("nnjit.kerneldb")
LOCAL_ORIGIN = re.compile(r"https?://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?")
"""Origins always allowed by CORS: pages served from this machine, on any port."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and policies of one service."""

    max_body: int = 1 << 20
    """Bytes of a request body, at most (413 above)."""
    rate: float = 20.0
    """Requests per second a client address may sustain (0: no limit)."""
    burst: float = 60.0
    """Requests a client address may make at once."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed besides http(s)://127.0.0.1, localhost and [::1] on any port."""
    workers: int = 4
    """Threads running store calls."""
    per_device: int = 3
    """Schedules per signature from the asking device's own records, at most."""
    hints: int = 3
    """Schedules per signature from other devices of the same backend, at most."""


class TokenBuckets:
    """One token bucket per client address: `rate` tokens a second, at most `burst`; one token a request."""

    def __init__(self, rate: float, burst: float, max_clients: int = 100_000):
        self.rate, self.burst, self.max_clients = rate, max(burst, 1.0), max_clients
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, now: float) -> float:
        """0 when the request may go ahead (a token is taken), else the seconds until a token is there."""
        if self.rate <= 0:
            return 0.0
        tokens, stamp = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            self._evict(now)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        """Forget full buckets (they start full anyway), else the older half."""
        full = [c for c, (t, s) in self.buckets.items() if t + (now - s) * self.rate >= self.burst]
        for client in full or sorted(self.buckets, key=lambda c: self.buckets[c][1])[: len(self.buckets) // 2]:
            del self.buckets[client]


class _TooLarge(Exception):
    pass


_STORE = web.AppKey("store", Store)
_CONFIG = web.AppKey("config", ServiceConfig)
_POOL = web.AppKey("pool", ThreadPoolExecutor)
_BUCKETS = web.AppKey("buckets", TokenBuckets)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _origin_allowed(origin: str, extra: Sequence[str]) -> bool:
    return bool(LOCAL_ORIGIN.fullmatch(origin)) or origin in extra


@web.middleware
async def _cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights; let allowed origins read every response (errors included)."""
    origin = request.headers.get("Origin", "")
    allowed = bool(origin) and _origin_allowed(origin, request.app[_CONFIG].cors_origins)
    if request.method == "OPTIONS":
        if not allowed:
            return _error(403, f"CORS: origin {show(origin)} is not allowed")
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as `{"error": ...}` with its status."""
    try:
        return await handler(request)
    except SchemaError as error:
        return _error(400, str(error))
    except _TooLarge as error:
        return _error(413, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        where = f"{request.method} {show(request.path, 60)}"
        messages = {404: f"no such endpoint: {where} (see /v1/health)", 405: f"method not allowed: {where}"}
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
        return _error(error.status, messages.get(error.status, error.reason), headers)
    except StoreError as error:  # busy, or the connection to PostgreSQL was lost: try again
        return _error(503, f"store unavailable: {error}", {"Retry-After": "1"})
    except Exception:
        LOG.exception("internal error on %s %s", request.method, show(request.path, 60))
        return _error(500, "internal error; see the service log")


@web.middleware
async def _rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The client address's token bucket (health checks are free)."""
    if request.path != "/v1/health":
        client = request.remote or "unknown"
        wait = request.app[_BUCKETS].take(client, time.monotonic())
        if wait > 0:
            config = request.app[_CONFIG]
            return _error(
                429,
                f"rate limit exceeded for {show(client)}: {config.rate:g} requests/s, burst {config.burst:g}; "
                f"retry in {wait:.2f} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
    return await handler(request)


async def _body(request: web.Request) -> Any:
    limit = request.app[_CONFIG].max_body
    length = request.content_length
    if length is not None and length > limit:
        raise _TooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _TooLarge(f"request body exceeds the limit of {limit} bytes") from None
    return parse_json(raw)


async def _in_pool(request: web.Request, function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(request.app[_POOL], partial(function, *args))


async def health(request: web.Request) -> web.Response:
    """`GET /v1/health`: the store answers; the limits clients should respect."""
    store, config = request.app[_STORE], request.app[_CONFIG]
    await _in_pool(request, store.ping)
    return web.json_response({
        "status": "ok", "store": store.kind, "schema": SCHEMA_VERSION, "version": nnjit_version(),
        "limits": {"max_body": config.max_body, "max_records": MAX_RECORDS, "max_signatures": MAX_SIGNATURES,
                   "rate": config.rate, "burst": config.burst},
    })  # fmt: skip


async def upload(request: web.Request) -> web.Response:
    """`POST /v1/records`: validate every record (schema, then space), then store them in one transaction."""
    parsed = parse_upload(await _body(request))
    device = parsed.device
    for index, record in enumerate(parsed.records):
        problem = space_problem(device.backend, record.template, record.schedule, device.limits)
        if problem is not None:
            raise SchemaError(f"records[{index}].schedule {problem}")
    store = request.app[_STORE]
    accepted = await _in_pool(request, store.submit, device, parsed.records, request.remote or "unknown")
    return web.json_response({"accepted": accepted, "device": device.fingerprint})


async def lookup(request: web.Request) -> web.Response:
    """`POST /v1/lookup`: per signature, this device's best schedules, then other devices' as hints."""
    parsed = parse_lookup(await _body(request))
    store, config = request.app[_STORE], request.app[_CONFIG]
    rows = await _in_pool(request, store.lookup, parsed.device.backend, parsed.signatures, parsed.version)
    return web.json_response({"device": parsed.device.fingerprint, "results": _results(parsed, rows, config)})


def _entry(row: Aggregate, schedule: Schedule, source: str) -> dict[str, Any]:
    return {
        "source": source, "template": row.template, "schedule": schedule_json(schedule), "median": row.median,
        "default_median": row.default_median, "speedup": row.default_median / row.median,
        "submissions": row.submissions, "version": row.version,
    }  # fmt: skip


def _usable(row: Aggregate, device: DeviceInfo) -> Schedule | None:
    """The row's schedule when it is in its template's space under the asking device's limits."""
    try:
        schedule = parse_schedule(json.loads(row.schedule))
    except (SchemaError, ValueError):
        return None
    return schedule if in_space(device.backend, row.template, schedule, device.limits) else None


def _results(request: LookupRequest, rows: Sequence[Aggregate], config: ServiceConfig) -> dict[str, list[Any]]:
    """Per signature: the device's own schedules by aggregated median, then hints: each other device's best,
    ranked by its speedup over its own default. Only schedules valid under the asking device's limits."""
    device = request.device
    results: dict[str, list[Any]] = {s: [] for s in request.signatures}
    by_signature: dict[str, list[tuple[Aggregate, Schedule]]] = {}
    for row in rows:
        schedule = _usable(row, device)
        if schedule is not None:
            by_signature.setdefault(row.signature, []).append((row, schedule))
    for signature, found in by_signature.items():
        own = sorted(
            (f for f in found if f[0].fingerprint == device.fingerprint), key=lambda f: (f[0].median, -f[0].submissions)
        )
        entries = [_entry(row, schedule, "device") for row, schedule in own[: config.per_device]]
        taken = {row.schedule for row, _ in own[: config.per_device]}
        best_of: dict[str, tuple[Aggregate, Schedule]] = {}
        for row, schedule in sorted(
            (f for f in found if f[0].fingerprint != device.fingerprint), key=lambda f: f[0].median
        ):
            best_of.setdefault(row.fingerprint, (row, schedule))
        hints = sorted(best_of.values(), key=lambda f: -f[0].default_median / f[0].median)
        for row, schedule in hints:
            if row.schedule not in taken and len(entries) < len(own[: config.per_device]) + config.hints:
                taken.add(row.schedule)
                entries.append(_entry(row, schedule, "hint"))
        results[signature] = entries
    return results


def make_app(store: Store, config: ServiceConfig | None = None) -> web.Application:
    """The aiohttp application serving `store` (closed with the application)."""
    config = config or ServiceConfig()
    app = web.Application(middlewares=[_cors, _errors, _rate_limit], client_max_size=config.max_body)
    app[_STORE], app[_CONFIG] = store, config
    app[_POOL] = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="kernel-db")
    app[_BUCKETS] = TokenBuckets(config.rate, config.burst)
    app.router.add_get("/v1/health", health)
    app.router.add_post("/v1/lookup", lookup)
    app.router.add_post("/v1/records", upload)

    async def close(app: web.Application) -> None:
        app[_POOL].shutdown(wait=True)
        store.close()

    app.on_cleanup.append(close)
    return app


async def serve(
    url: str | None, host: str, port: int, config: ServiceConfig | None = None,
    announce: Callable[[str], None] = print, access_log: bool = False,
) -> None:  # fmt: skip
    """Open the store at `url`, listen on host:port (0: any free port), announce the address, run until SIGINT/SIGTERM."""
    store = open_store(url)
    app = make_app(store, config)
    runner = web.AppRunner(app, access_log=LOG if access_log else None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        announce(f"nnjit kernel-db: serving {store.kind} store {store.url} on http://{shown}:{bound_port}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
