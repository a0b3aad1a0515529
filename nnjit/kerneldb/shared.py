"""What the tuner does with a kernel-db service: downloads are untrusted offers, uploads are measurements.

    offers, note = fetch_offers("http://127.0.0.1:8765", backend, device, {signature: kernel, ...})
    note = upload_results("http://127.0.0.1:8765", backend, device, report.kernels)

An entry the service sends for a kernel is vetted before anything is built from it: it must be an
object whose `template` is the kernel's, whose `schedule` parses exactly as the API's schedule object
(`schema.parse_schedule`), belongs to the template's full space under *this* device's limits
(`space.space_problem`) and passes `web.kernel`'s verifier in a one-kernel module with this
backend's module attributes (`harness.kernel_module`). What passes is only a candidate: `tune`
measures it like any other (its first run is checked against the oracle) next to the default, and
adopts it only when it measured faster here. A lookup or upload that fails warns (`ServiceWarning`)
and tuning goes on without the service.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from nnjit.dialects.web import KernelOp
from nnjit.kerneldb.client import KernelDbClient, ServiceError
from nnjit.kerneldb.schema import MAX_SECONDS, SchemaError, Submission, parse_schedule, show
from nnjit.kerneldb.space import space_problem
from nnjit.tuner.backend import Backend, Device
from nnjit.tuner.database import nnjit_version
from nnjit.tuner.harness import kernel_module
from nnjit.tuner.tune import KernelTuning, SharedOffer

MAX_ENTRIES = 16
"""Entries per signature looked at, at most (the rest of a long reply is ignored)."""
ORIGINS = ("device", "hint")


class ServiceWarning(UserWarning):
    """The kernel-db service could not be used; tuning went on without it."""


def vet(entry: Any, kernel: KernelOp, backend: Backend, device: Device) -> SharedOffer:
    """One downloaded entry as an offer: `vetted` with its schedule, or `rejected` with the reason."""
    if not isinstance(entry, dict):
        return SharedOffer("hint", "rejected", reason=f"entry is not an object: {show(entry)}")
    data: dict[str, Any] = entry
    origin = data.get("source")
    if origin not in ORIGINS:
        return SharedOffer("hint", "rejected", reason=f"source {show(origin)} is neither device nor hint")
    template = data.get("template")
    if template != kernel.template.data:
        return SharedOffer(
            origin, "rejected", reason=f"template {show(template)} is not the kernel's {kernel.template.data!r}"
        )
    try:
        schedule = parse_schedule(data.get("schedule"))
    except SchemaError as error:
        return SharedOffer(origin, "rejected", reason=str(error))
    try:
        problem = space_problem(backend.name, kernel.template.data, schedule, device.limits)
    except KeyError as error:
        problem = f"cannot be checked: this device's limits do not state {error}"
    if problem is not None:
        return SharedOffer(origin, "rejected", schedule, f"schedule {problem} (this device)")
    try:
        kernel_module(kernel, schedule, backend.module_attributes())
    except Exception as error:  # VerifyException, or anything else the verifier raises
        return SharedOffer(
            origin, "rejected", schedule, f"fails web.kernel verification: {' '.join(str(error).split())[:200]}"
        )
    return SharedOffer(origin, "vetted", schedule)


def fetch_offers(
    service: str, backend: Backend, device: Device, kernels: Mapping[str, KernelOp]
) -> tuple[dict[str, list[SharedOffer]] | None, str]:
    """Look every signature up (this nnjit version) and vet what comes back; the offers (None when the
    service could not be asked) and a one-line note."""
    if not kernels:
        return {}, "nothing to look up"
    try:
        found = KernelDbClient(service).lookup(device, list(kernels), version=nnjit_version())
    except ServiceError as error:
        warnings.warn(f"tuning without the kernel-db service: {error}", ServiceWarning, stacklevel=3)
        return None, f"lookup failed: {error}"
    offers: dict[str, list[SharedOffer]] = {}
    for signature, kernel in kernels.items():
        vetted: list[SharedOffer] = []
        for entry in found.get(signature, [])[:MAX_ENTRIES]:
            offer = vet(entry, kernel, backend, device)
            if offer.status == "vetted" and any(o.schedule == offer.schedule for o in vetted):
                continue
            vetted.append(offer)
        offers[signature] = vetted
    total = sum(len(o) for o in offers.values())
    passed = sum(o.status == "vetted" for v in offers.values() for o in v)
    return offers, f"looked up {len(kernels)} signatures: {total} schedules offered, {passed} passed vetting"


def submissions(backend: Backend, device: Device, kernels: Sequence[KernelTuning]) -> list[Submission]:
    """Every candidate measured in this call that the service would accept (finite medians, in space)."""
    found: list[Submission] = []
    version = nnjit_version()
    for entry in kernels:
        default = entry.default_median
        if entry.source not in ("tuned", "shared") or not 0 < default <= MAX_SECONDS:
            continue
        for result in entry.results:
            if not result.ok or not (math.isfinite(result.median) and 0 < result.median <= MAX_SECONDS):
                continue
            try:
                if space_problem(backend.name, entry.template, result.schedule, device.limits) is not None:
                    continue
            except KeyError:
                continue
            found.append(Submission(entry.signature, entry.template, result.schedule, result.median, default, version))
    return found


def upload_results(service: str, backend: Backend, device: Device, kernels: Sequence[KernelTuning]) -> str:
    """Upload `submissions(...)`; a one-line note of what happened."""
    records = submissions(backend, device, kernels)
    if not records:
        return "nothing to upload"
    try:
        accepted = KernelDbClient(service).upload(device, records)
    except ServiceError as error:
        warnings.warn(f"could not upload to the kernel-db service: {error}", ServiceWarning, stacklevel=3)
        return f"upload failed: {error}"
    return f"uploaded {accepted} measurements"
