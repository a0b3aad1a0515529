"""Weights beside the IR: the side store that `dense_resource<handle>` constants refer to.

The printed IR of a 100 MB model stays small because weight bytes never become text; a
`WeightStore` maps each resource handle to its array, is saved as an `.npz` file next to the
`.mlir` file, and is handed to executors together with the module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from nnjit.errors import NnjitError

_HANDLE_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def sanitize_identifier(name: str, fallback: str = "v") -> str:
    """An identifier made of `[A-Za-z0-9_]` only, never starting with a digit.

    Model-provided names pass through here once, in the frontend, before they can reach IR
    handles or generated code.
    """
    cleaned = _HANDLE_UNSAFE.sub("_", name).strip("_") or fallback
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


class WeightStore(Mapping[str, np.ndarray]):
    """Arrays keyed by resource handle, with unique, sanitised handles."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None):
        self._arrays: dict[str, np.ndarray] = dict(arrays or {})

    def add(self, name: str, array: np.ndarray) -> str:
        """Store `array` under a fresh handle derived from `name`; returns the handle."""
        base = sanitize_identifier(name, "weight")
        handle, counter = base, 0
        while handle in self._arrays:
            counter += 1
            handle = f"{base}_{counter}"
        self._arrays[handle] = np.ascontiguousarray(array)
        return handle

    def __getitem__(self, handle: str) -> np.ndarray:
        try:
            return self._arrays[handle]
        except KeyError:
            raise NnjitError(f"weight '{handle}' is referenced by the IR but missing from the weight store") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def nbytes(self) -> int:
        """Total size of all stored arrays in bytes."""
        return sum(a.nbytes for a in self._arrays.values())

    def save(self, path: Path) -> None:
        """Write all arrays to an uncompressed `.npz` file."""
        np.savez(path, **self._arrays)  # pyright: ignore[reportArgumentType]

    @classmethod
    def load(cls, path: Path) -> WeightStore:
        """Read a store written by `save`."""
        if not path.exists():
            raise NnjitError(f"weight file {path} does not exist")
        with np.load(path, allow_pickle=False) as archive:
            return cls({key: archive[key] for key in archive.files})

    @staticmethod
    def path_beside(module_path: Path) -> Path:
        """The conventional weight file of an IR file: `m.mlir` -> `m.weights.npz`."""
        return module_path.with_suffix(".weights.npz")
