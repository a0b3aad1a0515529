#!/usr/bin/env bash
# The main job: set up, then compile every zoo model with nnjit, run it, check it against
# onnxruntime and print the time of each compiler stage and of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python3 tools/main_job.py "$@"
