"""Reference models (tiny random-weight ONNX fixtures) used to exercise the compiler."""
