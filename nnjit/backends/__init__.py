"""Printers from the `web` dialect to target code (WGSL, Wasm SIMD)."""
