"""Hermetic tests: compiled models never read (or write) the user's kernel database.

`nnjit.compile` applies tuned schedules from `$NNJIT_CACHE_DIR` (else the user cache); every test
session gets an empty folder of its own, so results do not depend on what was tuned on this machine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_kernel_database() -> Generator[None]:
    previous = os.environ.get("NNJIT_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="nnjit-test-cache-") as folder:
        os.environ["NNJIT_CACHE_DIR"] = folder
        yield
    if previous is None:
        os.environ.pop("NNJIT_CACHE_DIR", None)
    else:
        os.environ["NNJIT_CACHE_DIR"] = previous
