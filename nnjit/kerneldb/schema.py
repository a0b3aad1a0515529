"""The kernel-db service's JSON requests, parsed strictly: records are data, never code.

    body = parse_json(raw_bytes)             # SchemaError: not UTF-8, not JSON, NaN, duplicate keys
    request = parse_upload(body)             # UploadRequest(device, records)
    request = parse_lookup(body)             # LookupRequest(device, signatures, version)

Every object has an exact set of keys (optional ones named), every value an exact type (integers are
never booleans, medians are finite numbers in (0, MAX_SECONDS]), every string a pattern and a length
bound, every list a length bound. A `SchemaError` names the offending field by its path, e.g.
`records[3].schedule.workgroup[1]: expected an integer, got "8"`; values are quoted with `repr` and
cut short, so hostile strings (huge, control characters) never reach a log or a reply intact.
Whether a schedule belongs to its template's space is checked by `nnjit.kerneldb.space`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnjit.dialects.web import Schedule
from nnjit.tuner.spaces import SPACES

BACKENDS = ("webgpu", "wasm")
"""Backends the service keeps records for."""
TEMPLATES = tuple(SPACES)
"""Kernel templates (`web.kernel` `template` values)."""
MAX_RECORDS = 256
"""Records in one upload, at most."""
MAX_SIGNATURES = 256
"""Signatures in one lookup, at most."""
MAX_LIMITS = 64
"""Entries of a device's `limits`, at most."""
MAX_LIMIT_VALUE = 2**53
"""Limit values are integers in [0, 2**53] (exact in JavaScript too)."""
MAX_SCHEDULE_INT = 4096
"""Schedule integers (workgroup, tile, thread sizes, vector, unroll) are in [0, 4096]."""
MAX_SECONDS = 3600.0
"""Medians are seconds in (0, 3600]."""
FINGERPRINT = re.compile(r"(webgpu|wasm)-[0-9a-f]{16}")
SIGNATURE = re.compile(r"([a-z][a-z0-9_]{0,31}):[0-9a-f]{24}")
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}")
LIMIT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SCHEDULE_KEYS = ("workgroup", "tile", "thread", "vector", "unroll", "shared")
SCHEDULE_LENGTHS = {"workgroup": 3, "tile": 3, "thread": 2}
WEBGPU_LIMITS = (
    "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x", "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z", "max-compute-workgroup-storage-size", "max-storage-buffer-binding-size",
)  # fmt: skip
"""Limits a WebGPU device must state (wgpu-native's names; the browser's camelCase names map onto them)."""
WASM_LIMITS = ("v128_registers",)
"""Limits a Wasm device must state."""
MAX_V128_REGISTERS = 64


class SchemaError(ValueError):
    """A request that is not what the API accepts; the message names the field (`records[2].median: ...`)."""


@dataclass(frozen=True)
class DeviceInfo:
    """The device a request speaks for: its fingerprint, backend and the limits it states."""

    fingerprint: str
    backend: str
    limits: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        """The JSON object the API takes."""
        return {"fingerprint": self.fingerprint, "backend": self.backend, "limits": dict(self.limits)}


@dataclass(frozen=True)
class Submission:
    """One measured result: a schedule of a kernel signature and its median latency on the device."""

    signature: str
    template: str
    schedule: Schedule
    median: float
    default_median: float
    version: str

    def to_json(self) -> dict[str, Any]:
        """The JSON object the API takes."""
        return {"signature": self.signature, "template": self.template, "schedule": schedule_json(self.schedule),
                "median": self.median, "default_median": self.default_median, "version": self.version}  # fmt: skip


@dataclass(frozen=True)
class LookupRequest:
    """`POST /v1/lookup`: the device and the kernel signatures it wants schedules for."""

    device: DeviceInfo
    signatures: list[str]
    version: str | None


@dataclass(frozen=True)
class UploadRequest:
    """`POST /v1/records`: the device and what it measured."""

    device: DeviceInfo
    records: list[Submission]


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as the API's JSON object (the same keys as the local kernel database's)."""
    return {
        "workgroup": list(schedule.workgroup), "tile": list(schedule.tile), "thread": list(schedule.thread),
        "vector": schedule.vector, "unroll": schedule.unroll, "shared": schedule.shared,
    }  # fmt: skip


def schedule_text(schedule: Schedule) -> str:
    """The canonical text of a schedule (compact JSON, sorted keys): how the store keys it."""
    return json.dumps(schedule_json(schedule), sort_keys=True, separators=(",", ":"))


def show(value: Any, width: int = 40) -> str:
    """`repr` of a value cut to `width` characters: safe to put in an error message."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 3]}..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


# --- JSON ----------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise SchemaError(f"duplicate key {show(key)} in a JSON object")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise SchemaError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN / Infinity, no duplicate keys, not absurdly nested."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SchemaError(f"body is not UTF-8: {error.reason} at byte {error.start}") from None
    if not text.strip():
        raise SchemaError("body is empty; expected a JSON object")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise SchemaError(f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise SchemaError("body is not valid JSON: nested too deeply") from None


# --- fields ----------------------------------------------------------------------------------------


def _object(value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: expected an object, got {_kind(value)}")
    obj: dict[str, Any] = value
    missing = [k for k in required if k not in obj]
    if missing:
        raise SchemaError(f"{path}: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    unknown = [k for k in obj if k not in required and k not in optional]
    if unknown:
        allowed = ", ".join((*required, *optional))
        raise SchemaError(f"{path}: unknown key {show(unknown[0])} (allowed: {allowed})")
    return obj


def _string(value: Any, path: str, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{path}: expected a string, got {_kind(value)}")
    if not pattern.fullmatch(value):
        raise SchemaError(f"{path}: expected {expected}, got {show(value)}")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{path}: expected an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise SchemaError(f"{path}: {value} is outside [{low}, {high}]")
    return value


def _seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{path}: expected a number of seconds, got {_kind(value)}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise SchemaError(f"{path}: {show(value)} is not a finite number of seconds in (0, {MAX_SECONDS:g}]")
    return seconds


def _list(value: Any, path: str, most: int, least: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaError(f"{path}: expected a list, got {_kind(value)}")
    items: list[Any] = value
    if not least <= len(items) <= most:
        raise SchemaError(f"{path}: expected {least} to {most} items, got {len(items)}")
    return items


def parse_schedule(value: Any, path: str = "schedule") -> Schedule:
    """A schedule object: exactly the keys of `schedule_json`, small non-negative integers, `shared` a boolean."""
    obj = _object(value, path, SCHEDULE_KEYS)
    lists: dict[str, tuple[int, ...]] = {}
    for key, length in SCHEDULE_LENGTHS.items():
        items = _list(obj[key], f"{path}.{key}", length, length)
        lists[key] = tuple(_int(v, f"{path}.{key}[{i}]", 0, MAX_SCHEDULE_INT) for i, v in enumerate(items))
    if not isinstance(obj["shared"], bool):
        raise SchemaError(f"{path}.shared: expected a boolean, got {_kind(obj['shared'])}")
    w, t, th = lists["workgroup"], lists["tile"], lists["thread"]
    return Schedule(
        (w[0], w[1], w[2]), (t[0], t[1], t[2]), (th[0], th[1]),
        _int(obj["vector"], f"{path}.vector", 0, MAX_SCHEDULE_INT), _int(obj["unroll"], f"{path}.unroll", 0, MAX_SCHEDULE_INT),
        obj["shared"],
    )  # fmt: skip


def parse_device(value: Any, path: str = "device") -> DeviceInfo:
    """`{fingerprint, backend, limits}`: the fingerprint `<backend>-<16 hex>`, the limits the backend needs."""
    obj = _object(value, path, ("fingerprint", "backend", "limits"))
    backend = obj["backend"]
    if backend not in BACKENDS:
        raise SchemaError(f"{path}.backend: expected one of {', '.join(BACKENDS)}, got {show(backend)}")
    fingerprint = _string(obj["fingerprint"], f"{path}.fingerprint", FINGERPRINT, "'<backend>-<16 hex digits>'")
    if not fingerprint.startswith(f"{backend}-"):
        raise SchemaError(f"{path}.fingerprint: {show(fingerprint)} is not a {backend} fingerprint")
    raw = obj["limits"]
    if not isinstance(raw, dict):
        raise SchemaError(f"{path}.limits: expected an object, got {_kind(raw)}")
    entries: dict[str, Any] = raw
    if len(entries) > MAX_LIMITS:
        raise SchemaError(f"{path}.limits: {len(entries)} entries, at most {MAX_LIMITS}")
    limits: dict[str, int] = {}
    for name, limit in entries.items():
        _string(name, f"{path}.limits", LIMIT_NAME, "limit names of [a-z0-9_-], at most 64 characters")
        limits[name] = _int(limit, f"{path}.limits.{name}", 0, MAX_LIMIT_VALUE)
    needed = WEBGPU_LIMITS if backend == "webgpu" else WASM_LIMITS
    missing = [n for n in needed if n not in limits]
    if missing:
        raise SchemaError(f"{path}.limits: a {backend} device must state {', '.join(missing)}")
    if backend == "webgpu":
        for name in WEBGPU_LIMITS[:5]:
            _int(limits[name], f"{path}.limits.{name}", 1, MAX_LIMIT_VALUE)
    else:
        _int(limits["v128_registers"], f"{path}.limits.v128_registers", 1, MAX_V128_REGISTERS)
    return DeviceInfo(fingerprint, backend, limits)


def parse_record(value: Any, path: str) -> Submission:
    """`{signature, template, schedule, median, default_median, version}`; the signature's prefix is the template."""
    obj = _object(value, path, ("signature", "template", "schedule", "median", "default_median", "version"))
    signature = _string(obj["signature"], f"{path}.signature", SIGNATURE, "'<template>:<24 hex digits>'")
    template = obj["template"]
    if template not in TEMPLATES:
        raise SchemaError(f"{path}.template: expected one of {', '.join(TEMPLATES)}, got {show(template)}")
    if signature.split(":")[0] != template:
        raise SchemaError(f"{path}.template: {show(template)} is not the template of signature {show(signature)}")
    return Submission(
        signature, template, parse_schedule(obj["schedule"], f"{path}.schedule"), _seconds(obj["median"], f"{path}.median"),
        _seconds(obj["default_median"], f"{path}.default_median"),
        _string(obj["version"], f"{path}.version", VERSION, "a version of [0-9A-Za-z.+_-], at most 32 characters"),
    )  # fmt: skip


def parse_upload(value: Any) -> UploadRequest:
    """The body of `POST /v1/records`."""
    obj = _object(value, "body", ("device", "records"))
    device = parse_device(obj["device"])
    items = _list(obj["records"], "records", MAX_RECORDS, 1)
    return UploadRequest(device, [parse_record(item, f"records[{i}]") for i, item in enumerate(items)])


def parse_lookup(value: Any) -> LookupRequest:
    """The body of `POST /v1/lookup` (`version` optional: only records of that nnjit version when given)."""
    obj = _object(value, "body", ("device", "signatures"), ("version",))
    device = parse_device(obj["device"])
    items = _list(obj["signatures"], "signatures", MAX_SIGNATURES, 1)
    signatures = [
        _string(s, f"signatures[{i}]", SIGNATURE, "'<template>:<24 hex digits>'") for i, s in enumerate(items)
    ]
    version = obj.get("version")
    if version is not None:
        version = _string(version, "version", VERSION, "a version of [0-9A-Za-z.+_-], at most 32 characters")
    return LookupRequest(device, list(dict.fromkeys(signatures)), version)
