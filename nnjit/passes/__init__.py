"""Passes, one a file, each a `ModulePass` registered by name in `nnjit.universe`."""
