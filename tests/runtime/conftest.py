"""Fixtures shared by the runtime tests."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from nnjit.runtime.chromium import ChromiumBrowser


@pytest.fixture(scope="module")
def browser() -> Generator[ChromiumBrowser]:
    """A Chromium of the test module's own (a fresh profile: no cache or IndexedDB from other modules)."""
    browser = ChromiumBrowser()
    yield browser
    browser.close()
