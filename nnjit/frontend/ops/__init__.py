"""ONNX op converters grouped by family; importing this package registers them all."""

from nnjit.frontend.ops import constants, elementwise, linalg, movement, normalization

__all__ = ["constants", "elementwise", "linalg", "movement", "normalization"]
