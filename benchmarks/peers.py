"""The peers the benchmarks measure against, installed on demand into git-ignored caches.

onnxruntime-web comes from the npm registry (`npm install onnxruntime-web` into `.cache/npm`); its
`dist/` holds the browser bundles (`ort.all.min.mjs`: WebGPU and Wasm execution providers) and the
Node build (`ort.node.min.mjs`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM_CACHE = ROOT / ".cache" / "npm"
ORT_DIST = NPM_CACHE / "node_modules" / "onnxruntime-web" / "dist"
ORT_ENTRY = ORT_DIST / "ort.node.min.mjs"


def ensure_ort_web() -> bool:
    """Install onnxruntime-web into the git-ignored npm cache if it is not there."""
    if ORT_ENTRY.is_file():
        return True
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    if not (NPM_CACHE / "package.json").is_file():
        (NPM_CACHE / "package.json").write_text('{"name": "nnjit-bench-peers", "private": true}\n')
    install = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "onnxruntime-web"], cwd=NPM_CACHE,
                             capture_output=True, text=True, check=False)  # fmt: skip
    return install.returncode == 0 and ORT_ENTRY.is_file()


def ort_web_version() -> str:
    """The installed onnxruntime-web's version."""
    return str(json.loads((ORT_DIST.parent / "package.json").read_text())["version"])
