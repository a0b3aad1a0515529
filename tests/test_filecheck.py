"""Run the lit/filecheck suite (`tests/filecheck`) as part of pytest, failing with lit's own report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnjit.dialects.nn import NN

FILECHECK_DIR = Path(__file__).parent / "filecheck"
SCRIPTS = Path(sys.executable).parent  # where pip put `lit`, `filecheck` and `nnjit-opt`


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"`{name}` is not installed (pip install -e '.[test]')")
    return found


def test_filecheck_suite() -> None:
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [_tool("lit"), "-v", str(FILECHECK_DIR)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"lit failed:\n{report}"
    assert re.search(r"Passed\s*:\s*\d+", report), f"lit ran no test:\n{report}"


def test_roundtrip_covers_every_nn_op() -> None:
    text = (FILECHECK_DIR / "dialects" / "nn" / "roundtrip.mlir").read_text()
    missing = [op.name for op in NN.operations if not re.search(rf"= {re.escape(op.name)}\b", text)]
    assert not missing, f"ops without a round-trip case in roundtrip.mlir: {missing}"
