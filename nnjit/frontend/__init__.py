"""Frontends: ONNX models to the `nn` dialect."""
