"""The WebGPU executor the backend tests share; no adapter is a failure, never a skip."""

from __future__ import annotations

import pytest

from nnjit.errors import NnjitError
from nnjit.runtime.webgpu import WebGPUExecutor, shared_executor


@pytest.fixture(scope="session")
def executor() -> WebGPUExecutor:
    try:
        return shared_executor()
    except NnjitError as error:
        pytest.fail(f"the WebGPU backend tests need an adapter: {error}")
