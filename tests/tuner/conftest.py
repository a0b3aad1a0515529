"""Every tuner test gets its own kernel-database folder (`NNJIT_CACHE_DIR`), never the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("NNJIT_CACHE_DIR", str(folder))
    return folder
