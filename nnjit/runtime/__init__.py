"""Executors of compiled modules; `reference` is the numpy oracle."""
