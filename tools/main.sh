#!/usr/bin/env bash
# The main job: set up, then embed sentences with the pretrained MiniLM compiled by nnjit (WebGPU and
# Wasm, similarities next to onnxruntime's), then compile every zoo model, run it on every executor,
# check it against onnxruntime and print timings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python3 tools/main_job.py "$@"
