#!/usr/bin/env bash
# Installs everything nnjit's main job and test suite need on a fresh Debian machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
# torch only as the pinned CPU build (any other spec pulls a multi-GB CUDA build); it is needed
# only to regenerate the model zoo, never to run nnjit or its tests.
python3 -m pip install --quiet -e ".[test,export]"
