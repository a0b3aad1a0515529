"""ONNX op converters grouped by family; importing this package registers them all."""

from nnjit.frontend.ops import (
    activations,
    constants,
    elementwise,
    functions,
    linalg,
    movement,
    normalization,
    quantization,
    resize,
)

__all__ = [
    "activations",
    "constants",
    "elementwise",
    "functions",
    "linalg",
    "movement",
    "normalization",
    "quantization",
    "resize",
]
