#!/usr/bin/env bash
# Set up, then run the whole test suite (pytest: unit, property, filecheck through lit, zoo models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
python3 -m pytest -q "$@"
