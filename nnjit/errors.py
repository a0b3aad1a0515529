"""The typed errors nnjit raises for bad input; the CLI prints them as one line."""

from __future__ import annotations


class NnjitError(Exception):
    """A problem with user input (model, shapes, files) explained in one line."""


class OnnxImportError(NnjitError):
    """An ONNX model that cannot be imported; the message names node, op type and opset."""
